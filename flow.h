/* flow.h - the tester's own flow: its one UDP socket, its conntrack
 * entry, and what that entry and a probe prove about the server.
 *
 * A look is one GET of our exact tuple. An entry that is not DNAT'd and
 * never saw a reply is only suspect: a probe (probe.h) then tells a
 * restart window (a new flow is not DNAT'd either: event=nat_missing)
 * from a proven blackhole (a new flow is DNAT'd, ours is not:
 * event=blackhole), and a server never seen NAT'd from both (taken as
 * direct: nothing is claimed). An entry that is DNAT'd while our query
 * goes unanswered may be stranded on a gone backend: a fresh probe to
 * the VIP and straight asks of the backend (struct gone), gathered over
 * cycles without blocking, let verdict_of() prove it (event=blackhole
 * kind=gone_backend). flow_look() is the one place a look changes this
 * state. */
#ifndef FLOW_H
#define FLOW_H

#include <poll.h>
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
	int blackholed;               /* proven: ours stranded (kind says how) */
	enum strand kind;             /* ... K_NO_DNAT or K_GONE_BACKEND */
	int nat_missing;              /* the VIP has no rule right now */
	int healed;                   /* --heal deleted our blackholed entry */
	int unanswered;               /* set by the caller: the query is over, unanswered */
};

/* What is known of the backend our DNAT'd entry goes to, while our
 * queries on it go unanswered (the second kind, verdict.h): gathered
 * over cycles by a fresh probe to the VIP and a straight ask of the
 * backend, each non-blocking and served by the tester's wait. */
struct gone {
	int active;                   /* judging this entry */
	uint32_t id;                  /* its CTA_ID */
	struct sockaddr_storage b;    /* its backend: the reply's source */
	char b_s[64], now_s[64];      /* the backend; where the fresh flow went */
	uint64_t packets;             /* its reply packet count at the last read */
	int moving;                   /* ... which grew since the read before */
	unsigned strikes;             /* straight asks unanswered in a row */
	uint64_t answered_at;         /* the backend last answered an ask (0: not yet) */
	int probing, asking;          /* a fresh probe / an ask in flight for it */
	enum fresh fresh;             /* what the last fresh probe showed */
	int fresh_same;               /* ... it went to this backend */
	struct ct_entry fresh_e;      /* ... its entry: the proof */
};

struct flow {
	const struct opts *o;
	int fd;                       /* the one UDP socket, kept for life */
	struct sockaddr_storage src;  /* its address and port */
	char src_s[64], server_s[64];
	struct ct_tuple tuple;        /* its original tuple */
	struct nl *nl;                /* NULL: no conntrack */
	struct probe probe;
	struct probe ask;             /* a straight ask of our entry's backend */
	struct gone gone;
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
	enum strand bh_kind;
	int seen_blackhole;           /* ever: for the exit status */
	int probe_send_failed;        /* said once: a probe could not be sent */
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
/* The probe and the ask in flight, for the poll set: fills p[0..2)
 * (fd -1: none), lowering *until to the time either gives up. */
#define FLOW_FDS 2
void flow_pollfds(const struct flow *f, struct pollfd *p, uint64_t *until);
/* After poll (p as filled, or NULL: nothing readable): serves what is
 * readable and finishes what is due. */
void flow_wake(struct flow *f, const struct pollfd *p, uint64_t now);

/* A line about our flow: src= and server= first. */
void flow_begin(const struct flow *f, struct line *l, const char *level, const char *event);

#endif
