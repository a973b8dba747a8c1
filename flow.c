/* flow.c - the tester's own flow: its socket, its conntrack entry, and
 * what that entry and a probe prove (see flow.h). */
#define _GNU_SOURCE
#include "flow.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Flow events name the flow: src= and server= on every line. */
void flow_begin(const struct flow *f, struct line *l, const char *level, const char *event)
{
	log_begin(l, level, event);
	log_kv(l, "src", f->src_s);
	log_kv(l, "server", f->server_s);
}
/* ---- our own conntrack entry -------------------------------------- */

/* One GET of our exact tuple. A DNAT'd entry is deleted when may_delete
 * (the query is answered or given up, never while its reply may be on
 * the way) unless --monitor: the next query then passes the NAT rules
 * again, which is what makes a restart window likely to be hit. */
static void look_entry(struct flow *f, int may_delete, struct look *lk)
{
	lk->state = CT_UNKNOWN;
	lk->err = lk->action_err = 0;
	lk->action = ACT_NONE;
	if (!f->nl)
		return;
	int err = nl_get(f->nl, &f->tuple, &lk->e);
	if (err == -ENOENT) {
		lk->state = CT_NONE;
	} else if (err < 0) {
		lk->err = err;
	} else if (ct_is_dnat(&lk->e)) {
		lk->state = CT_DNAT;
		if (may_delete && f->o->mode != MODE_MONITOR) {
			lk->action = ACT_DELETED;
			lk->action_err = nl_delete(f->nl, &lk->e);
		}
	} else {
		lk->state = ct_seen_reply(&lk->e) ? CT_DIRECT : CT_STALE;
	}
}

/* Conntrack lost for good (EPERM): say so once and go on with DNS. */
void flow_lost(struct flow *f, const char *why)
{
	struct line l;
	flow_begin(f, &l, "warn", "conntrack_unavailable");
	log_kv(&l, "reason", why);
	/* the one string ends the other: ld stores it once */
	log_kv(&l, "effect", f->o->watch_node ? "the node is not watched; DNS only: blackholes cannot be named, timeouts get cause=unknown"
	                                      : "DNS only: blackholes cannot be named, timeouts get cause=unknown");
	log_end(&l);
	probe_finish(&f->probe, NULL);
	nl_close(f->nl);
	f->nl = NULL;
}

/* A netlink failure: EPERM ends conntrack use; others are logged. */
static void flow_nl_failed(struct flow *f, const char *op, int err)
{
	struct line l;
	if (err == -EPERM) {
		flow_lost(f, strcmp(op, "delete") ? "netlink: operation not permitted (no CAP_NET_ADMIN)"
		                                       : "netlink: operation not permitted (CAP_NET_ADMIN lost)");
		return;
	}
	flow_begin(f, &l, "error", "conntrack_error");
	log_kv(&l, "op", op);
	log_kv(&l, "err", strerror(-err));
	log_end(&l);
}

/* The command an operator would type to clear the entry by hand. */
static void fix_command(const struct ct_entry *e, char *buf, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	ct_ntop(e->orig.family, e->orig.src.b, s, sizeof s);
	ct_ntop(e->orig.family, e->orig.dst.b, d, sizeof d);
	snprintf(buf, cap, "conntrack -D -f %s -p udp --orig-src %s --orig-dst %s --sport %u --dport %u",
	         e->orig.family == AF_INET6 ? "ipv6" : "ipv4", s, d, e->orig.sport, e->orig.dport);
}

static void log_entry(struct line *l, const char *key, const struct ct_entry *e)
{
	char entry[512];
	ct_format(e, entry, sizeof entry);
	log_kv(l, key, entry);
}

static void entry_line(const struct flow *f, const char *level, const char *event,
                       const struct ct_entry *e)
{
	struct line l;
	flow_begin(f, &l, level, event);
	log_entry(&l, "entry", e);
	log_kvu(&l, "id", e->id);
	log_end(&l);
}

/* ---- what the server is, and what a probe proves -------------------- */

/* The server is a Service VIP: a flow to it was seen DNAT'd. */
static void learn_nat(struct flow *f, const char *via, const struct ct_entry *e)
{
	struct line l;
	if (f->nat_known)
		return;
	f->nat_known = 1;
	f->view = VIEW_NODE;            /* this table translates flows to the server */
	flow_begin(f, &l, "info", "nat_learned");
	log_kv(&l, "nat", "yes");
	log_kv(&l, "via", via);
	log_entry(&l, "entry", e);
	log_end(&l);
}

/* A new flow to the NAT'd server was not DNAT'd: its rule is missing. */
static void window_opens(struct flow *f, uint64_t sent_at, const struct ct_entry *e)
{
	struct line l;
	if (f->win_open)
		return;
	f->win_open = 1;
	f->win_start = sent_at;
	f->st->windows++;
	flow_begin(f, &l, "error", "nat_missing");
	log_entry(&l, "entry", e);
	log_kv(&l, "explain", "a new flow to the Service VIP is not DNAT'd: its rule is missing (kube-proxy restarting?)");
	log_end(&l);
}

/* A flow to the VIP is DNAT'd again; stuck: ours was left on a stale
 * entry. The window runs from the send time of the first query that
 * found the rule missing to that of the first that found it back: both
 * ends are on the tick grid, so it is measured to one interval. */
static void window_closes(struct flow *f, uint64_t sent_at, int stuck)
{
	struct line l;
	if (!f->win_open)
		return;
	uint64_t len = sent_at > f->win_start ? sent_at - f->win_start : 0;
	f->win_open = 0;
	f->st->last_window_ns = len;
	hist_add(&f->st->window, win_bounds, NWIN, len);
	flow_begin(f, &l, "info", "nat_restored");
	log_kvu(&l, "window_ms", len / NS_PER_MS);
	log_kv(&l, "stuck", stuck ? "true" : "false");
	log_end(&l);
}

/* Proven: our entry is stale while a new flow is DNAT'd. Logged once,
 * when it begins (a new entry ID); --heal then deletes our entry. */
static void note_blackhole(struct flow *f, struct look *lk)
{
	struct line l;
	char fix[256];
	const struct ct_entry *e = &lk->e;
	lk->blackholed = 1;
	if (!(f->bh_active && f->bh_id == e->id)) {
		f->bh_active = 1;
		f->bh_id = e->id;
		f->seen_blackhole = 1;
		f->st->blackholes++;
		fix_command(e, fix, sizeof fix);
		flow_begin(f, &l, "error", "blackhole");
		log_entry(&l, "entry", e);
		log_kvu(&l, "id", e->id);
		log_entry(&l, "proof", &lk->proof);
		log_kv(&l, "explain", "our entry goes to the VIP without DNAT while a new flow to it is DNAT'd: every query from this socket skips NAT");
		log_kv(&l, "fix", fix);
		log_end(&l);
	}
	if (f->o->mode == MODE_HEAL && !lk->healed) {
		lk->action = ACT_HEALED;
		lk->action_err = nl_delete(f->nl, e);
	}
}

static void probe_line(const struct flow *f, const struct look *lk)
{
	struct line l;
	flow_begin(f, &l, "debug", "probe");
	log_kv(&l, "verdict", lk->pv == PROBE_DNAT ? "dnat" : "no_dnat");
	log_kvu(&l, "sport", lk->proof.orig.sport);
	log_entry(&l, "entry", &lk->proof);
	log_end(&l);
}

/* Our entry is stale (not DNAT'd, never replied): one probe a query
 * tells whether the VIP's rule is there now. */
static void judge_stale(struct flow *f, struct look *lk)
{
	int err;
	if (!lk->probed) {
		lk->probed = 1;
		f->st->probes++;
		lk->pv = probe_send(&f->probe, f->nl, &f->src, &f->o->server, f->query, f->qlen,
		                   now_ns(), f->o->timeout, &err);
		if (lk->pv != PROBE_FAILED)
			f->last_probe = (lk->proof = f->probe.e).orig;
		else
			flow_nl_failed(f, "probe", err);
		if (logcfg.verbose && lk->pv != PROBE_FAILED)
			probe_line(f, lk);
	}
	if (lk->pv == PROBE_DNAT) {
		learn_nat(f, "probe", &lk->proof);
		window_closes(f, lk->sent_at, 1);
		note_blackhole(f, lk);
	} else if (lk->pv == PROBE_NO_DNAT && f->nat_known) {
		window_opens(f, lk->sent_at, &lk->proof);
		lk->nat_missing = 1;
	} else if (lk->pv == PROBE_FAILED) {       /* no news: what was known holds */
		lk->blackholed = f->bh_active && f->bh_id == lk->e.id;
		lk->nat_missing = !lk->blackholed && f->win_open;
	}
}

static void note_action(struct flow *f, const struct look *lk)
{
	if (lk->action == ACT_NONE || lk->action_err == -ENOENT)
		return;                       /* gone or replaced since read: leave it */
	if (lk->action_err < 0) {
		flow_nl_failed(f, "delete", lk->action_err);
		return;
	}
	if (lk->action == ACT_HEALED) {
		f->st->heals++;
		/* This state is over. A new entry can come back with the same
		 * CTA_ID (the kernel hashes the slab address and the tuples),
		 * so the ID alone cannot tell us it is a new blackhole. */
		f->bh_active = 0;
		entry_line(f, "info", "healed", &lk->e);
		return;
	}
	f->st->deleted++;
	if (logcfg.verbose)
		entry_line(f, "debug", "conntrack_deleted", &lk->e);
}

/* A look during a query, and what it proves, applied to the state: the
 * one place a look changes it. */
void flow_look(struct flow *f, int may_delete, struct look *lk)
{
	look_entry(f, may_delete, lk);
	if (lk->err) {
		flow_nl_failed(f, "get", lk->err);
		return;
	}
	if (lk->state == CT_DNAT) {
		learn_nat(f, "entry", &lk->e);
		window_closes(f, lk->sent_at, 0);   /* ours is new and DNAT'd: not stuck */
	}
	if (lk->state == CT_DNAT || lk->state == CT_DIRECT)
		f->bh_active = 0;
	if (lk->state == CT_STALE && f->nl)
		judge_stale(f, lk);
	note_action(f, lk);
	lk->healed |= lk->action == ACT_HEALED && lk->action_err == 0;
}


/* The one socket: bound (if asked), connected, kept for life; and our
 * flow as conntrack sees it in the original direction. Returns 0, or -1
 * after one line on stderr. */
int flow_open(struct flow *f)
{
	const struct opts *o = f->o;
	struct sockaddr_storage src;
	socklen_t len = sizeof src;
	char a[64];
	struct ct_tuple me;
	if ((f->fd = socket(o->server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP)) < 0) {
		err_line("socket: %s", strerror(errno));
		return -1;
	}
	if (o->have_source && bind(f->fd, (const struct sockaddr *)&o->source, sa_len(&o->source)) < 0) {
		fmt_addr(&o->source, a, sizeof a);
		err_line("bind %s: %s", a, strerror(errno));
		return -1;
	}
	if (connect(f->fd, (const struct sockaddr *)&o->server, sa_len(&o->server)) < 0) {
		err_line("connect %s: %s", f->server_s, strerror(errno));
		return -1;
	}
	if (getsockname(f->fd, (struct sockaddr *)&src, &len) < 0) {
		err_line("getsockname: %s", strerror(errno));
		return -1;
	}
	f->src = src;
	fmt_addr(&src, f->src_s, sizeof f->src_s);
	sockaddr_to_tuple(&o->server, &f->tuple);
	sockaddr_to_tuple(&src, &me);
	f->tuple.src = me.dst;
	f->tuple.sport = me.dport;
	return 0;
}

/* Opens ctnetlink and proves it works with one GET of our own tuple.
 * Returns NULL and a reason in why[cap] when conntrack cannot be used. */
struct nl *flow_conntrack(struct flow *f, char *why, size_t cap)
{
	struct ct_entry e;
	struct nl *nl = nl_open();
	if (!nl) {
		snprintf(why, cap, "cannot open a netfilter netlink socket: %s", strerror(errno));
		return NULL;
	}
	int err = nl_get(nl, &f->tuple, &e);
	if (err == 0 || err == -ENOENT)
		return nl;
	snprintf(why, cap, "ctnetlink refused a lookup: %s%s", strerror(-err),
	         err == -EPERM ? " (no CAP_NET_ADMIN)" : "");
	nl_close(nl);
	return NULL;
}

/* A probe in flight waits for its reply (or its time) with the rest. */
void flow_probe_wake(struct flow *f, int readable, uint64_t now)
{
	int err = probe_poll(&f->probe, f->nl, readable, now);
	if (err < 0)
		flow_nl_failed(f, "probe_delete", err);
}
