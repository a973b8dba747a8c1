/* view.c - the view's I/O: the loopback test, the fresh look scan and
 * the node watch use, and the lines that say the view (see view.h). */
#define _GNU_SOURCE
#include "view.h"
#include "flow.h"
#include "log.h"
#include "opts.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The loopback address of family: port 0, any port the kernel picks. */
static void loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Two sockets of ours on loopback, one datagram between them: the flow
 * is confirmed (or not tracked) once send() returns, as the packet has
 * passed the output hooks by then. */
int view_lo_tracked(struct nl *nl, int family)
{
	struct sockaddr_storage rx_a, tx_a;
	socklen_t len = sizeof rx_a;
	struct ct_tuple t, me;
	struct ct_entry e;
	int rx, tx = -1, r = -1;
	if (!nl)
		return -1;
	loopback(family, &rx_a);
	rx = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (rx < 0 || bind(rx, (struct sockaddr *)&rx_a, sa_len(&rx_a)) < 0 ||
	    getsockname(rx, (struct sockaddr *)&rx_a, &len) < 0)
		goto out;
	len = sizeof tx_a;
	tx = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (tx < 0 || connect(tx, (struct sockaddr *)&rx_a, sa_len(&rx_a)) < 0 ||
	    getsockname(tx, (struct sockaddr *)&tx_a, &len) < 0 || send(tx, "v", 1, 0) != 1)
		goto out;
	sockaddr_to_tuple(&rx_a, &t);
	sockaddr_to_tuple(&tx_a, &me);
	t.src = me.dst;
	t.sport = me.dport;
	int err = nl_get(nl, &t, &e);
	r = err == 0 ? 1 : err == -ENOENT ? 0 : -1;
	if (err == 0)
		nl_delete(nl, &e);            /* ours: leave no trace */
out:
	if (tx >= 0)
		close(tx);
	if (rx >= 0)
		close(rx);
	return r;
}

const char *view_explain(enum view v, char *buf, size_t cap)
{
	const char *node = getenv("NODE_NAME");
	switch (v) {
	case VIEW_NODE:
		return "this namespace's table translates flows to the server (kube-proxy's NAT works here): entries are judged here, and deleted here only";
	case VIEW_POD:
		snprintf(buf, cap, "conntrack tracks nothing in this namespace: NAT, and any stale entry that strands this flow, "
		         "live in the node's table; from here a stuck flow is proven at the DNS level only. To see or heal "
		         "entries, run on the node: kubectl debug node/%s, or a hostNetwork pod",
		         node && *node ? node : "NAME");
		return buf;
	case VIEW_UNTRACKED:
		return "this namespace tracks other flows but not flows to this server (NOTRACK, as NodeLocal DNSCache installs): "
		       "no conntrack entry can strand them; going on as a DNS checker";
	case VIEW_DIRECT:
		return "flows to this server are tracked here and never translated: a real server address, not a Service VIP";
	default:
		return "not learned yet";
	}
}

#define VIEW_MISSING_RUN 3

void view_learn_init(struct view_learn *v)
{
	memset(v, 0, sizeof *v);
	v->o = (struct view_obs){-1, -1, -1, -1};
	v->said = VIEW_UNKNOWN;
}

/* --heal where the table cannot be changed: said once, then on. */
static void heal_unavailable(struct view_learn *v, const struct flow *f, enum view now)
{
	struct line l;
	if (v->heal_said || f->o->mode != MODE_HEAL || now == VIEW_NODE || now == VIEW_UNKNOWN)
		return;
	v->heal_said = 1;
	flow_begin(f, &l, "warn", "heal_unavailable");
	log_kv(&l, "view", view_names[now]);
	log_kv(&l, "explain", now == VIEW_POD ? "the entry that could strand this flow is in the node's table, not this one: "
	                                        "nothing is deleted here; a proven blackhole's fix= is the command to run on the node"
	                                      : "no entry here can strand this flow: there is nothing to heal");
	log_end(&l);
}

void view_note(struct view_learn *v, struct flow *f, int state)
{
	char buf[400];
	struct line l;
	int8_t tracked = state == CT_NONE ? 0 : state == CT_UNKNOWN ? -1 : 1;
	/* A flow that had an entry and has none after a send: far more
	 * likely deleted by someone else just then (scan --fix, the node
	 * watch, kube-proxy's reconciler) than NOTRACK'd since. Only three
	 * such looks in a row change the view (the demo saw one flip it). */
	v->missing = tracked == 0 && v->o.server_tracked == 1 ? v->missing + 1 : 0;
	if (v->missing && v->missing < VIEW_MISSING_RUN)
		return;
	if (tracked >= 0 && tracked != v->o.server_tracked) {
		v->o.server_tracked = tracked;
		/* Only an untracked flow needs the loopback test (pod or
		 * untracked?): a node's table is asked nothing more. */
		v->o.lo_tracked = tracked ? -1 : (int8_t)view_lo_tracked(f->nl, f->src.ss_family);
	}
	if (state == CT_DIRECT)
		v->o.server_replied = 1;
	v->o.server_dnat = f->nat_known ? 1 : v->o.server_dnat == 1 ? 1 : 0;
	enum view now = view_of(&v->o);
	if (now == VIEW_UNKNOWN || now == v->said)
		return;
	v->said = f->view = now;
	flow_begin(f, &l, "info", "view");
	log_kv(&l, "view", view_names[now]);
	log_kv(&l, "explain", view_explain(now, buf, sizeof buf));
	log_end(&l);
	heal_unavailable(v, f, now);
}
