/* verdict.c - the rules, in the order they are tried (see verdict.h).
 * tests/verdict_table.txt is the same decision table, written out for
 * people; tests/verdict_test.c holds this file to it on every input. */
#include "verdict.h"

#include <netinet/in.h>

const char *const verdict_names[] = {"healthy", "window", "stranded", "unproven"};
const char *const strand_names[] = {"none", "no_dnat", "gone_backend", "unseen"};
const char *const vact_names[] = {"none", "probe", "ask_backend", "heal"};
const char *const view_names[] = {"unknown", "node", "pod", "untracked", "direct"};

static struct vout out(enum verdict v, enum strand k, enum vact a, const char *why)
{
	return (struct vout){v, k, a, why};
}

/* An entry that goes to the VIP itself: stranded once a fresh flow is
 * DNAT'd (answered or not: the rule is back, and ours skips it). */
static struct vout untranslated(const struct obs *o)
{
	if (o->replied)
		return out(V_HEALTHY, K_NONE, VA_NONE, "answered without translation: a direct server");
	switch (o->fresh) {
	case FRESH_DNAT:
	case FRESH_ANSWERED:
		return out(V_STRANDED, K_NO_DNAT, VA_HEAL,
		           "the entry goes to the VIP without DNAT while a fresh flow to it is DNAT'd: every packet of this flow skips NAT");
	case FRESH_NO_DNAT:
		if (o->nat_known)
			return out(V_WINDOW, K_NONE, VA_NONE,
			           "a fresh flow to the Service VIP is not DNAT'd either: its rule is missing now (kube-proxy restarting?)");
		return out(V_HEALTHY, K_NONE, VA_NONE, "no flow to it is DNAT'd: not a Service VIP, nothing to prove");
	default:
		return out(V_UNPROVEN, K_NONE, VA_PROBE, "never answered and not DNAT'd: a fresh flow tells whether the rule is in place");
	}
}

/* An entry DNAT'd to backend B: stranded only when fresh flows are
 * answered elsewhere and B itself stays silent when asked straight. */
static struct vout translated(const struct obs *o)
{
	if (o->reply_moving)
		return out(V_HEALTHY, K_NONE, VA_NONE, "its reply count is still moving: answers still come");
	if (o->backend_recent)
		return out(V_HEALTHY, K_NONE, VA_NONE, "its backend answered within the last interval");
	if (o->fresh == FRESH_NO_DNAT)
		return out(V_WINDOW, K_NONE, VA_NONE,
		           "a fresh flow to the Service VIP is not DNAT'd: its rule is missing now (kube-proxy restarting?)");
	if (!o->asks_dns)
		return out(V_UNPROVEN, K_NONE, VA_NONE, "not a DNS Service: its backend cannot be asked, so nothing is proven or deleted");
	if (o->fresh != FRESH_ANSWERED)
		return out(V_UNPROVEN, K_NONE, VA_PROBE, "no fresh flow to the VIP has been answered yet");
	if (o->fresh_same)
		return out(V_HEALTHY, K_NONE, VA_NONE, "fresh flows go to its backend and are answered");
	if (o->backend_silent >= VERDICT_BACKEND_SILENT)
		return out(V_STRANDED, K_GONE_BACKEND, VA_HEAL,
		           "the entry is DNAT'd to a backend that no longer answers while fresh flows to the VIP go to another and are answered");
	return out(V_UNPROVEN, K_NONE, VA_ASK_BACKEND, "fresh flows are answered elsewhere: its backend must be asked straight");
}

struct vout verdict_of(const struct obs *o)
{
	if (o->proto != IPPROTO_UDP)
		return out(V_HEALTHY, K_NONE, VA_NONE, "not UDP: a stale entry strands only a UDP client that keeps its port");
	if (!o->port_ok)
		return out(V_HEALTHY, K_NONE, VA_NONE, "another port: not the Service judged");
	if (o->own_answered)
		return out(V_HEALTHY, K_NONE, VA_NONE, "our own query on this flow was answered");
	return o->dnat ? translated(o) : untranslated(o);
}

enum fresh fresh_by_order(const struct order *o)
{
	uint64_t after = o->dumped ? o->dnat_floor : o->last_dnat;
	if (o->last_stale > o->seq && o->last_stale >= o->last_dnat)
		return FRESH_NO_DNAT;         /* the last new flow met the rule missing */
	if (after > o->seq && o->last_dnat > o->last_stale)
		return FRESH_DNAT;
	return FRESH_NONE;
}

enum view view_of(const struct view_obs *o)
{
	if (o->server_tracked == 1 && o->server_dnat == 1)
		return VIEW_NODE;
	if (o->server_tracked == 1 && o->server_replied == 1 && o->server_dnat == 0)
		return VIEW_DIRECT;
	if (o->server_tracked == 0 && o->lo_tracked == 1)
		return VIEW_UNTRACKED;
	if (o->server_tracked == 0 && o->lo_tracked == 0)
		return VIEW_POD;
	return VIEW_UNKNOWN;
}

struct vout verdict_dns(unsigned run)
{
	if (run >= VERDICT_DNS_RUN)
		return out(V_STRANDED, K_UNSEEN, VA_NONE,
		           "our socket is left unanswered while fresh sockets to the same server are answered: a stale entry in another namespace's table holds our flow");
	if (run)
		return out(V_UNPROVEN, K_NONE, VA_PROBE, "unanswered while a fresh socket was answered: not yet often enough to rule out loss");
	return out(V_HEALTHY, K_NONE, VA_NONE, "no run of unanswered queries beside answered fresh ones");
}

int verdict_may_delete(const struct vout *v, const struct heal_policy *p)
{
	return v->v == V_STRANDED && v->act == VA_HEAL && p->view == VIEW_NODE && p->heal && !p->dry_run;
}
