/* verdict.h - what a UDP flow's conntrack entry is, from what was
 * observed of it, and what may be done about it: the one place the
 * rules live. Pure: no sockets, no log, no clock. flow.c (the tester's
 * own flow), scan.c and watch.c (every client on the node) gather the
 * observations and ask here; tests/verdict_test.c checks every input
 * combination against tests/verdict_table.txt, without root.
 *
 * An entry strands its client in one of two ways, each claimed only
 * with proof gathered now:
 *   no_dnat       the entry goes to the VIP itself (it was made while
 *                 the VIP had no DNAT rule: kubernetes#126468) while a
 *                 fresh flow to the same VIP:port is DNAT'd;
 *   gone_backend  the entry is DNAT'd to backend B, a fresh flow to the
 *                 same VIP:port is DNAT'd to another backend and is
 *                 answered, and B itself did not answer the same query
 *                 sent straight to it from a fresh socket, twice in a
 *                 row, each within the tester's timeout.
 * A slow or down server is never either: it is not a conntrack fault. */
#ifndef VERDICT_H
#define VERDICT_H

#include <stdint.h>

enum verdict {
	V_HEALTHY,               /* nothing conntrack holds strands it */
	V_WINDOW,                /* the VIP's DNAT rule is missing now: a restart window */
	V_STRANDED,              /* proven: kind says how */
	V_UNPROVEN,              /* suspect; act says what would prove it */
};

enum strand { K_NONE, K_NO_DNAT, K_GONE_BACKEND, K_UNSEEN };
/* K_UNSEEN: proven at the DNS level from a namespace whose table does
 * not hold the entry (verdict_dns): its kind cannot be seen from there. */

/* What the caller should do next about the entry. */
enum vact {
	VA_NONE,
	VA_PROBE,                /* send a fresh flow to the VIP:port and look at it */
	VA_ASK_BACKEND,          /* query the entry's backend straight from a fresh socket */
	VA_HEAL,                 /* proven: delete it, where deleting is allowed (verdict_may_delete) */
};

/* What a fresh flow to the same VIP:port showed, just now. */
enum fresh {
	FRESH_NONE,              /* none sent yet, or it failed */
	FRESH_NO_DNAT,           /* not DNAT'd: the VIP's rule is missing */
	FRESH_DNAT,              /* DNAT'd; no answer (yet) */
	FRESH_ANSWERED,          /* DNAT'd and answered */
};

/* The backend was asked straight this many times in a row without an
 * answer (each within the timeout) before it is taken as gone. */
#define VERDICT_BACKEND_SILENT 2

struct obs {
	uint8_t proto;           /* the entry's protocol (IPPROTO_*) */
	uint8_t port_ok;         /* its original destination is the VIP:port judged */
	uint8_t dnat;            /* the entry is DNAT'd */
	uint8_t replied;         /* it has seen a reply */
	uint8_t nat_known;       /* some flow to this VIP was seen DNAT'd: a Service VIP */
	uint8_t own_answered;    /* the tester's own flow, and its query was answered */
	uint8_t asks_dns;        /* the Service speaks DNS: its backends can be asked */
	uint8_t reply_moving;    /* its reply packet count grew between two reads (acct) */
	uint8_t fresh;           /* enum fresh */
	uint8_t fresh_same;      /* the fresh flow went to this entry's own backend */
	uint8_t backend_silent;  /* straight queries to its backend unanswered in a row */
	uint8_t backend_recent;  /* its backend answered within the last interval */
};

struct vout {
	enum verdict v;
	enum strand kind;
	enum vact act;
	const char *why;         /* one plain sentence, for explain= */
};

/* The verdict on one entry. */
struct vout verdict_of(const struct obs *o);

/* The node watch's fresh flow, from the order things were read in (seq:
 * one counter for events, dumps and the tester's own queries). Events
 * come late, so an event read after a dump may predate it: a client the
 * dump found (dumped) is proven only by a DNAT'd flow surely after it
 * (dnat_floor: an event read once the socket had been found empty, or
 * the tester's own query). */
struct order {
	uint64_t seq;            /* the client's entry was first read then */
	uint8_t dumped;          /* ... by a resync's dump, not an event */
	uint64_t last_dnat;      /* the last DNAT'd new flow to its VIP:port */
	uint64_t dnat_floor;     /* ... surely came after this */
	uint64_t last_stale;     /* the last new flow there not DNAT'd */
};
enum fresh fresh_by_order(const struct order *o);

/* Where the tool runs, from what this namespace's table shows (#20). */
enum view {
	VIEW_UNKNOWN,            /* not learned yet */
	VIEW_NODE,               /* this table translates flows to the server: kube-proxy works here */
	VIEW_POD,                /* conntrack tracks nothing here: NAT lives in another namespace */
	VIEW_UNTRACKED,          /* tracked here, but not flows to this server (NOTRACK) */
	VIEW_DIRECT,             /* tracked here and never translated: a real server address */
};
extern const char *const view_names[];

/* What the kernel showed; each -1 (not known yet), 0 or 1. */
struct view_obs {
	int8_t lo_tracked;       /* a flow of ours to a loopback port of ours has an entry */
	int8_t server_tracked;   /* our flow to the server has an entry */
	int8_t server_dnat;      /* a flow to the server was seen DNAT'd */
	int8_t server_replied;   /* ... or seen answered, not translated */
};
enum view view_of(const struct view_obs *o);

/* Proof at the DNS level, for a view whose table cannot show the entry:
 * run counts the queries in a row that our socket left unanswered while
 * a fresh socket to the same server was answered each time. Packet loss
 * breaks a run long before it gets this long (30% loss: about one claim
 * in 250,000 queries). */
#define VERDICT_DNS_RUN 8
struct vout verdict_dns(unsigned run);

/* Whether a proven entry may be deleted: only in the node view (the
 * table that holds it), only when asked to heal, never on a dry run,
 * and only what verdict_of said to heal. */
struct heal_policy {
	enum view view;
	uint8_t heal;            /* --heal / --heal-node / scan --fix */
	uint8_t dry_run;
};
int verdict_may_delete(const struct vout *v, const struct heal_policy *p);

extern const char *const verdict_names[], *const strand_names[], *const vact_names[];

#endif
