/* watch.h - the node watch (--watch-node, --heal-node): every client on
 * the node, not only the tester's own flow.
 *
 * Both ways an entry strands a client (verdict.h) are watched:
 * no_dnat by the order of events, gone_backend by asking each DNS
 * backend straight once an interval and, when one is silent, dumping its
 * clients by VIP:port (watch.c says how).
 *
 * A socket subscribed to conntrack's NEW and DESTROY events, filtered in
 * the kernel (ctfilter.h) so that only UDP flows to the watched targets
 * reach it: the tester's server, more -d VIPs, --service-cidr prefixes.
 * A NEW flow to a target that is not DNAT'd is a client that met a
 * missing rule; it is tracked until its DESTROY. A NEW flow that is
 * DNAT'd proves the rule of its VIP:port is in place: every client
 * tracked on that VIP:port since before the proof, and not met by a
 * missing rule since, is stuck on a stale entry - reported once
 * (event=client_blackholed) and, with --heal-node, deleted (guarded by
 * its CTA_ID, re-read first, within a rate limit). The tester's own
 * flow and its probes are left to the tester. Lost events (ENOBUFS)
 * and the start are covered by a dump of the table (a resync).
 *
 * watch.c: the events, the proof, heal and resync; table.c: the
 * clients and VIP:ports tracked; backends.c: the gone-backend prober. */
#ifndef WATCH_H
#define WATCH_H

#include <stddef.h>
#include <stdint.h>

struct watch;
struct flow;
struct counters;

/* 1, after a line saying why (event=node_watch_unavailable view=...),
 * when the view f's first query showed holds nothing to watch. */
int watch_view_off(const struct flow *f);
/* Opens the event socket with its filter and resyncs. NULL when the
 * watch cannot run, the reason in why[cap] for the caller's line: the
 * tester goes on. */
struct watch *watch_open(const struct flow *f, struct counters *st, char *why, size_t cap);
void watch_close(struct watch *w);

/* For the poll loop: one descriptor (an epoll set: the event socket and
 * the backends' probes), and the time something is due
 * (a heal held back by the rate limit, a resync to retry; UINT64_MAX:
 * nothing). */
int watch_fd(const struct watch *w);
uint64_t watch_deadline(const struct watch *w);
/* Reads what the socket holds (a bounded number of messages a call). */
void watch_read(struct watch *w, uint64_t now);
/* Does what is due by now. */
void watch_tick(struct watch *w, uint64_t now);

/* The event clock now: read as the tester's query leaves. */
uint64_t watch_mark(const struct watch *w);

/* The tester's own query, a new flow that left at mark, is DNAT'd to the
 * server: a fresh flow to the server's VIP:port, as its NEW event would
 * say. Known from the tester's own look: under a flood that overflows
 * the event buffer, resyncs discard the queued events, its own among
 * them, and the server's clients would wait for a proof that never
 * comes. */
void watch_own_dnat(struct watch *w, uint64_t mark);

/* The i-th slot of the VIP:port table: 1 and its name into name[cap],
 * the clients stuck on it now by kind into stuck[] (no_dnat,
 * gone_backend), for a VIP:port worth a series (a target, or one seen
 * DNAT'd); 0 for a slot that is not; -1 past the last. */
int watch_vip(const struct watch *w, size_t i, char *name, size_t cap, uint64_t stuck[2]);

/* The clients stuck now, by name, for metrics: one per client address
 * and VIP, at most max into out; *omitted, the stuck flows of clients
 * left out. kind: "no_dnat" (never DNAT'd, met a restart window) or
 * "gone_backend". Returns how many were written. */
struct stuck_client;                  /* metrics.h */
size_t watch_stuck_clients(const struct watch *w, struct stuck_client *out, size_t max, uint64_t *omitted);

#endif
