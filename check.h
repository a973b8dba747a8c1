/* check.h - the `check` subcommand: node-problem-detector's custom
 * plugin (deploy/node-problem-detector/). One look at the node's table
 * through scan's probes and dump (scan_count), one line of at most 80
 * bytes on stdout, and NPD's exit codes: 0 nothing stuck, 1 a proven
 * stuck flow (its kind and count), 2 cannot tell (and why). */
#ifndef CHECK_H
#define CHECK_H

#define CHECK_LINE_MAX 80      /* NPD's default max_output_length */

/* argv[0] is "check". Returns 0, 1 or 2 (NPD's OK, NonOK, Unknown). */
int check_main(int argc, char **argv);

struct scan_counts;
/* The verdict for c (pure: tested without root): the exit status and
 * the line (no newline) into line[CHECK_LINE_MAX]. vip names the first
 * VIP looked at. */
int check_verdict(const struct scan_counts *c, const char *vip, char *line);

#endif
