/* backends.h - the node watch's gone-backend prober.
 *
 * Backends are learned from DNAT'd flows to the DNS VIPs (events and
 * dumps). Each is asked straight once an interval; when one stays
 * silent its clients are found with a dump filtered by VIP:port in the
 * kernel, their reply counters read at each silence, and a fresh probe
 * of the VIP (answered, by whom) is the other half of the proof
 * (verdict_of). Probes and dumps scale with the backends, never with the
 * table. A --service-cidr Service is not DNS: nothing is asked.
 *
 * It tracks the clients it finds in the watch's tables (table.h) and
 * calls nothing of the watch's. */
#ifndef BACKENDS_H
#define BACKENDS_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"
#include "opts.h"
#include "probe.h"
#include "table.h"

#define MAX_BACKENDS 32                /* distinct backends asked */
/* The probes' tags in the watch's epoll set: [BACKEND_TAG, PROBE_TAGS_END). */
#define BACKEND_TAG 1                  /* + backend index */
#define VIP_TAG 0x100                  /* + VIP index */
#define PROBE_TAGS_END 0x200

struct flow;
struct counters;

/* A DNS backend learned from a DNAT'd flow, asked straight each round. */
struct backend {
	struct ct_tuple t;            /* dst, dport: its address and port */
	struct probe p;
	uint64_t answered_at;
	uint32_t key;
	uint8_t used, silent, sent;
};

struct vipprobe { struct probe p; uint32_t key; uint8_t tries; };

struct backends {
	const struct opts *o;
	const struct flow *f;         /* its query; its own flow and probe are the tester's */
	struct counters *st;
	struct table *tb;             /* the clients found go there; its clock is ours */
	struct nl *req;               /* the watch's request socket and epoll set: borrowed */
	int ep;
	struct ct_tuple exact[OPTS_MAX_WATCH + 1];   /* the DNS VIP:ports: the dumps' filter */
	size_t nexact;
	struct backend be[MAX_BACKENDS];
	struct vipprobe vp[OPTS_MAX_WATCH + 1];
	struct ct_tuple mine[8];      /* our own recent fresh probes: never clients */
	unsigned nmine;
	uint64_t round_at;
	uint32_t dgen;                /* the last backend dump */
};

/* bk zeroed; the first round an interval from tb->now. */
void backends_init(struct backends *bk, const struct flow *f, struct table *tb, struct counters *st);
/* DNS VIP:port t, key ki: its backends are asked, it is probed fresh. */
void backends_add_vip(struct backends *bk, const struct ct_tuple *t, uint32_t ki);
/* Finishes every probe in flight (their entries deleted). */
void backends_close(struct backends *bk);

/* The tester's own socket and its last probe (the tester judges them),
 * and our own recent fresh probes: never a client. */
int backends_own(const struct backends *bk, const struct ct_tuple *t);
/* A DNAT'd flow e to DNS key ki went to e's reply source: a backend. */
void backends_learn(struct backends *bk, const struct ct_entry *e, uint32_t ki);

/* Probes whose time is up, then a round when one is due. */
void backends_tick(struct backends *bk);
/* The probe of tag was readable (readable 0: its time is up); other tags: nothing. */
void backends_wake(struct backends *bk, uint64_t tag, int readable);
/* The time a probe or a round is due (UINT64_MAX: none). */
uint64_t backends_deadline(const struct backends *bk);

/* A dump on a socket of its own, filtered by f, each entry to cb: 0 or -errno. */
int dump_fresh(const struct ct_dump_filter *f, int (*cb)(const struct ct_entry *, void *), void *arg);

#endif
