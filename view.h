/* view.h - where the tool runs, learned from what this namespace's
 * conntrack table shows, and the lines that say it (#20). The decision
 * is view_of() in verdict.c; this file does its I/O.
 *
 * Conntrack tracks every flow of a namespace as soon as one rule there
 * uses it (a DNAT, a ct match), and none otherwise. So a flow of our own
 * between two sockets on a loopback port we own tells whether conntrack
 * is in use here at all, and a GET of our flow to the server, right
 * after a send that left, tells whether that flow is tracked and
 * translated:
 *   lo not tracked                     pod: NAT lives in another table
 *   lo tracked, server flow not        untracked: NOTRACK (NodeLocal DNSCache)
 *   server flow DNAT'd                 node: kube-proxy's NAT works here
 *   server flow answered untranslated  direct: a real server address */
#ifndef VIEW_H
#define VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "nl.h"
#include "verdict.h"

struct flow;

/* Is a flow of ours between two loopback sockets (family AF_INET or
 * AF_INET6) tracked here? 1, 0, or -1 (cannot tell: no conntrack, a
 * socket or the GET failed). Its entry is deleted again. */
int view_lo_tracked(struct nl *nl, int family);

/* One plain sentence about view v, for explain=. */
const char *view_explain(enum view v, char *buf, size_t cap);

/* What the tester has learned of its own flow, over its cycles. */
struct view_learn {
	struct view_obs o;
	enum view said;          /* the view the last event=view said */
	int heal_said;           /* --heal where it cannot delete: said once */
	int missing;             /* looks in a row without an entry, after one had it */
};
void view_learn_init(struct view_learn *v);

/* One look at our flow (state: enum ct_state) made after a send that
 * left this namespace: folded in; event=view when the view is learned
 * or changes, and f->view set to it. */
void view_note(struct view_learn *v, struct flow *f, int state);

#endif
