/* tester.h - the tester: one UDP socket to the DNS server for life, one
 * query every interval, and a look at that flow's own conntrack entry.
 *
 * Each cycle sends the query, waits for the reply (looking at our entry
 * once meanwhile, to name a blackhole before the timeout), and ends in a
 * result that one function applies to the state and the counters; log
 * lines and the metrics endpoint only read them. */
#ifndef TESTER_H
#define TESTER_H

#include <signal.h>

#include "opts.h"

enum exit_code { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_BLACKHOLE = 3 };

/* Set by main.c's SIGINT/SIGTERM handler: the signal, or 0. */
extern volatile sig_atomic_t stop_signal;

/* Runs the tester until o->count queries or a signal. wait_mask is the
 * signal mask ppoll() sleeps with: SIGINT/SIGTERM are blocked except
 * while sleeping, so a signal cannot slip in between the check and the
 * sleep. Returns the exit status. */
int tester_run(const struct opts *o, const sigset_t *wait_mask);

#endif
