/* scan.h - the `scan` subcommand: every conntrack entry on the node to a
 * DNS VIP that is not DNAT'd and never saw a reply (a client blackholed
 * by kubernetes/kubernetes#126468), listed and, with --fix, deleted. */
#ifndef SCAN_H
#define SCAN_H

/* argv[0] is "scan". Returns the exit status: 0 none found, 3 found,
 * 1 the dump or a deletion failed, 2 usage. */
int scan_main(int argc, char **argv);

#endif
