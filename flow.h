/* flow.h - the tester's own flow: its one UDP socket, its conntrack
 * entry, and what that entry and a probe prove about the server.
 *
 * A look is one GET of our exact tuple. An entry that is not DNAT'd and
 * never saw a reply is only suspect: a probe (probe.h) then tells a
 * restart window (a new flow is not DNAT'd either: event=nat_missing)
 * from a proven blackhole (a new flow is DNAT'd, ours is not:
 * event=blackhole), and a server never seen NAT'd from both (taken as
 * direct: nothing is claimed). flow_look() is the one place a look
 * changes this state. */
#ifndef FLOW_H
#define FLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"
#include "counters.h"
#include "nl.h"
#include "opts.h"
#include "probe.h"
#include "verdict.h"

/* What one look at our own entry found. */
enum ct_state {
	CT_UNKNOWN,                   /* no conntrack, or the GET failed */
	CT_NONE,                      /* no entry */
	CT_DNAT,                      /* DNAT'd: the server is a Service VIP */
	CT_DIRECT,                    /* not DNAT'd, and the server replied */
	CT_STALE,                     /* not DNAT'd, never replied: a probe tells why */
};
/* What was done about it. */
enum ct_action { ACT_NONE, ACT_DELETED, ACT_HEALED };

/* The looks during one query: the last look, and what was proven. */
struct look {
	uint64_t sent_at;             /* the query's send time (monotonic ns) */
	enum ct_state state;
	int err;                      /* the GET's -errno when CT_UNKNOWN */
	enum ct_action action;
	int action_err;               /* the delete's -errno, 0 if done */
	struct ct_entry e;            /* valid unless CT_UNKNOWN or CT_NONE */
	int probed;                   /* a probe was sent for this query */
	enum probe_verdict pv;        /* ... what it found */
	struct ct_entry proof;        /* ... its entry */
	int blackholed;               /* proven: ours stale while the probe is DNAT'd */
	int nat_missing;              /* the VIP has no rule right now */
	int healed;                   /* --heal deleted our blackholed entry */
};

struct flow {
	const struct opts *o;
	int fd;                       /* the one UDP socket, kept for life */
	struct sockaddr_storage src;  /* its address and port */
	char src_s[64], server_s[64];
	struct ct_tuple tuple;        /* its original tuple */
	struct nl *nl;                /* NULL: no conntrack */
	struct probe probe;
	struct ct_tuple last_probe;   /* the last probe's flow (the node watch skips it) */
	const uint8_t *query;         /* the tester's query, for probes */
	size_t qlen;
	struct counters *st;
	/* the server: NAT'd once any flow to it was seen DNAT'd */
	int nat_known;
	enum view view;               /* where we run (verdict.h): node once nat_known */
	int win_open;                 /* its rule is missing now: a restart window */
	uint64_t win_start;           /* the query that found it missing */
	/* from the blackhole event until our flow is seen healthy again */
	int bh_active;
	uint32_t bh_id;
	int seen_blackhole;           /* ever: for the exit status */
};

/* Opens the socket: bound (if asked), connected. 0, or -1 after a line
 * on stderr. */
int flow_open(struct flow *f);
/* Opens ctnetlink and proves it with one GET: the handle, or NULL and
 * the reason in why. */
struct nl *flow_conntrack(struct flow *f, char *why, size_t cap);
/* Conntrack lost for good: says so once, goes on with DNS only. */
void flow_lost(struct flow *f, const char *why);

/* A look at our entry (deleting a DNAT'd one if may_delete and not
 * --monitor), with a probe when it is stale, applied to the state. */
void flow_look(struct flow *f, int may_delete, struct look *lk);
/* A probe in flight: its socket was readable, or its time is up. */
void flow_probe_wake(struct flow *f, int readable, uint64_t now);

/* A line about our flow: src= and server= first. */
void flow_begin(const struct flow *f, struct line *l, const char *level, const char *event);

#endif
