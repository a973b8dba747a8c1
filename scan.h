/* scan.h - the `scan` subcommand: every conntrack entry on the node to a
 * DNS VIP that is not DNAT'd and never saw a reply (a client blackholed
 * by kubernetes/kubernetes#126468), listed and, with --fix, deleted. */
#ifndef SCAN_H
#define SCAN_H

/* argv[0] is "scan". Returns the exit status: 0 none found, 3 found,
 * 1 the dump or a deletion failed, 2 usage. */
int scan_main(int argc, char **argv);

/* scan's own run (no --fix) for `check` (check.h), its verdicts counted
 * by kind. Its lines go to stdout: check holds stdout elsewhere. node_view: a flow to a VIP
 * is DNAT'd here (the probe's, or one in the table). Returns 0, or -errno
 * of the dump (-EPERM: no CAP_NET_ADMIN), also in err. */
#include <stddef.h>
#include <stdint.h>
struct ct_tuple;
struct scan_counts {
	uint64_t examined, no_dnat, gone_backend, nat_missing, unproven;
	int node_view, probe_failed, err;
};
int scan_count(const struct ct_tuple *vips, size_t n, struct scan_counts *c);

#endif
