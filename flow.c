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
 * again, which is what makes a restart window likely to be hit, and
 * what re-balances a flow left on a gone backend. */
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
		/* --heal keeps an unanswered one while it is judged (judge_dnat) */
		if (may_delete && f->o->mode != MODE_MONITOR && !(f->o->mode == MODE_HEAL && lk->unanswered)) {
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
	if (f->o->watch_node)
		log_kv(&l, "effect", "the node is not watched; DNS only: blackholes cannot be named, timeouts get cause=unknown");
	else
		log_kv(&l, "effect", "DNS only: blackholes cannot be named, timeouts get cause=unknown");
	log_end(&l);
	probe_finish(&f->probe, NULL);
	probe_finish(&f->ask, NULL);
	f->gone.active = f->gone.probing = f->gone.asking = 0;
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

/* A probe or an ask that failed. A failed send is netfilter dropping
 * the packet (a DROP rule, a full table: EPERM), never a lost
 * capability: said once until a probe goes out again, and conntrack is
 * kept. A netlink failure is one. */
static void probe_failed(struct flow *f, const struct probe *p, const char *op, int err)
{
	struct line l;
	if (!p->send_failed) {
		flow_nl_failed(f, op, err);
		return;
	}
	if (f->probe_send_failed)
		return;
	f->probe_send_failed = 1;
	flow_begin(f, &l, "warn", "probe_send_failed");
	log_kv(&l, "op", op);
	log_kv(&l, "err", strerror(-err));
	if (err == -EPERM)
		log_kv(&l, "explain", "netfilter dropped the probe (a DROP/REJECT rule, or a full conntrack table): no proof this time, conntrack stays on");
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

/* Proven stranded (v says how): logged once, when it begins (a new
 * entry ID or another kind); --heal then deletes our entry, where the
 * verdict core allows it. */
static void note_blackhole(struct flow *f, struct look *lk, const struct vout *v,
                           const struct ct_entry *proof)
{
	struct line l;
	char fix[256];
	const struct ct_entry *e = &lk->e;
	const struct heal_policy hp = {f->view, f->o->mode == MODE_HEAL, 0};
	lk->blackholed = 1;
	lk->kind = v->kind;
	if (!(f->bh_active && f->bh_id == e->id && f->bh_kind == v->kind)) {
		f->bh_active = 1;
		f->bh_id = e->id;
		f->bh_kind = v->kind;
		f->seen_blackhole = 1;
		f->st->blackholes++;
		f->st->blackholes_gone += v->kind == K_GONE_BACKEND;
		fix_command(e, fix, sizeof fix);
		flow_begin(f, &l, "error", "blackhole");
		log_kv(&l, "kind", strand_names[v->kind]);
		if (v->kind == K_GONE_BACKEND) {
			log_kv(&l, "backend", f->gone.b_s);
			log_kv(&l, "now", f->gone.now_s);
		}
		log_entry(&l, "entry", e);
		log_kvu(&l, "id", e->id);
		log_entry(&l, "proof", proof);
		log_kv(&l, "explain", v->why);
		log_kv(&l, "fix", fix);
		log_end(&l);
	}
	if (verdict_may_delete(v, &hp) && !lk->healed) {
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
 * tells whether the VIP's rule is there now; the verdict core says what
 * that proves. */
static void judge_stale(struct flow *f, struct look *lk)
{
	int err;
	if (!lk->probed) {
		lk->probed = 1;
		f->st->probes++;
		f->gone.probing = 0;              /* the slot is this query's now */
		lk->pv = probe_send(&f->probe, f->nl, &f->src, &f->o->server, f->query, f->qlen,
		                   now_ns(), f->o->timeout, &err);
		if (lk->pv != PROBE_FAILED) {
			f->last_probe = (lk->proof = f->probe.e).orig;
			f->probe_send_failed = 0;
		} else {
			probe_failed(f, &f->probe, "probe", err);
		}
		if (logcfg.verbose && lk->pv != PROBE_FAILED)
			probe_line(f, lk);
	}
	if (lk->pv == PROBE_FAILED || !f->nl) {    /* no news: what was known holds */
		lk->blackholed = f->bh_active && f->bh_id == lk->e.id && f->bh_kind == K_NO_DNAT;
		lk->kind = lk->blackholed ? K_NO_DNAT : K_NONE;
		lk->nat_missing = !lk->blackholed && f->win_open;
		return;
	}
	if (lk->pv == PROBE_DNAT)
		learn_nat(f, "probe", &lk->proof);
	const struct obs o = {.proto = IPPROTO_UDP, .port_ok = 1, .nat_known = f->nat_known != 0,
	                      .asks_dns = 1, .fresh = lk->pv == PROBE_DNAT ? FRESH_DNAT : FRESH_NO_DNAT};
	const struct vout v = verdict_of(&o);
	if (v.v == V_STRANDED) {
		window_closes(f, lk->sent_at, 1);
		note_blackhole(f, lk, &v, &lk->proof);
	} else if (v.v == V_WINDOW) {
		window_opens(f, lk->sent_at, &lk->proof);
		lk->nat_missing = 1;
	}
}

/* ---- the second kind: our entry DNAT'd to a backend that is gone -- */

/* Our query is over and unanswered, and our entry is DNAT'd to backend
 * B: go on judging it, or start afresh for a new entry or backend. The
 * reply count is compared with the last read's (the kernel counts
 * packets only with nf_conntrack_acct). */
static void gone_track(struct flow *f, const struct ct_entry *e)
{
	struct gone *g = &f->gone;
	struct sockaddr_storage b;
	probe_backend(e, &b);
	if (g->active && g->id == e->id && !memcmp(&b, &g->b, sizeof b)) {
		g->moving = (e->have & CT_HAVE_COUNTERS) && e->reply_packets != g->packets;
		g->packets = e->reply_packets;
		return;
	}
	if (g->asking)
		probe_finish(&f->ask, f->nl);   /* it asked another backend */
	memset(g, 0, sizeof *g);
	g->active = 1;
	g->id = e->id;
	g->b = b;
	g->packets = e->reply_packets;
	fmt_addr(&b, g->b_s, sizeof g->b_s);
}

/* What was observed of it, for the verdict core. */
static struct obs gone_obs(const struct flow *f, const struct ct_entry *e, uint64_t now)
{
	const struct gone *g = &f->gone;
	return (struct obs){
		.proto = IPPROTO_UDP, .port_ok = 1, .dnat = 1, .replied = ct_seen_reply(e) != 0,
		.nat_known = f->nat_known != 0, .asks_dns = 1, .reply_moving = (uint8_t)g->moving,
		.fresh = (uint8_t)g->fresh, .fresh_same = (uint8_t)g->fresh_same,
		.backend_silent = (uint8_t)(g->strikes > 255 ? 255 : g->strikes),
		.backend_recent = g->answered_at && now - g->answered_at <= f->o->interval,
	};
}

/* The next evidence, without waiting for it: a fresh flow to the VIP and
 * a straight ask of B from a fresh socket, each unless one is in flight
 * (so at most one of each an interval), each given the timeout. */
static void gone_gather(struct flow *f)
{
	struct gone *g = &f->gone;
	int err;
	if (!g->probing && probe_fd(&f->probe) < 0) {
		f->st->probes++;
		if (probe_send(&f->probe, f->nl, &f->src, &f->o->server, f->query, f->qlen,
		               now_ns(), f->o->timeout, &err) == PROBE_FAILED) {
			probe_failed(f, &f->probe, "probe", err);
		} else {
			f->last_probe = f->probe.e.orig;
			f->probe_send_failed = 0;
			g->probing = 1;
		}
	}
	if (f->nl && !g->asking) {
		if (probe_send(&f->ask, f->nl, &f->src, &g->b, f->query, f->qlen,
		               now_ns(), f->o->timeout, &err) == PROBE_FAILED)
			probe_failed(f, &f->ask, "ask_backend", err);
		else
			g->asking = 1;
	}
}

/* The fresh flow is over: where it went, and whether it was answered. */
static void gone_probe_done(struct flow *f)
{
	struct gone *g = &f->gone;
	const struct ct_entry *e = &f->probe.e;
	struct sockaddr_storage now;
	g->probing = 0;
	g->fresh_e = *e;
	if (!ct_is_dnat(e)) {
		g->fresh = FRESH_NO_DNAT;
		return;
	}
	learn_nat(f, "probe", e);
	g->fresh = f->probe.answered ? FRESH_ANSWERED : FRESH_DNAT;
	probe_backend(e, &now);
	g->fresh_same = !memcmp(&now, &g->b, sizeof now);
	fmt_addr(&now, g->now_s, sizeof g->now_s);
}

/* The straight ask is over: an answer clears the strikes, silence (or
 * an ICMP error) within the timeout is one more. */
static void gone_ask_done(struct flow *f, uint64_t now)
{
	struct gone *g = &f->gone;
	g->asking = 0;
	if (f->ask.answered) {
		g->strikes = 0;
		g->answered_at = now;
	} else {
		g->strikes++;
	}
}

/* Our query is over and unanswered, our entry DNAT'd (and kept: not
 * deleted by this look): what the evidence so far proves, then the next
 * evidence. Under --heal the entry is kept while it is judged, and goes
 * the default mode's way (deleted, re-balanced) once nothing is left to
 * ask. */
static void judge_dnat(struct flow *f, struct look *lk)
{
	gone_track(f, &lk->e);
	const struct obs o = gone_obs(f, &lk->e, now_ns());
	const struct vout v = verdict_of(&o);
	lk->blackholed = 0;                   /* what the mid-query look assumed */
	lk->kind = K_NONE;
	if (v.v == V_STRANDED)
		note_blackhole(f, lk, &v, &f->gone.fresh_e);
	else if (f->bh_kind == K_GONE_BACKEND)
		f->bh_active = 0;                 /* no longer proven */
	if (lk->action == ACT_HEALED) {
		f->gone.active = 0;
		return;
	}
	if (f->o->mode == MODE_HEAL && v.act == VA_NONE && v.v != V_STRANDED) {
		lk->action = ACT_DELETED;         /* nothing left to ask: re-balance it */
		lk->action_err = nl_delete(f->nl, &lk->e);
		f->gone.active = 0;
		return;
	}
	gone_gather(f);
}

/* Our entry is DNAT'd. Mid-query, a proven gone backend for this very
 * entry gives the query up (no answer can come); once the query is
 * over, an unanswered one kept by this look is judged, and an answered
 * or deleted one ends the judging. */
static void dnat_seen(struct flow *f, int final, struct look *lk)
{
	int proven = f->bh_active && f->bh_kind == K_GONE_BACKEND && f->bh_id == lk->e.id;
	if (!final) {
		lk->blackholed = proven;
		lk->kind = proven ? K_GONE_BACKEND : K_NONE;
		if (!proven)
			f->bh_active = 0;
		return;
	}
	/* A reply from the VIP's own address (a port redirected on it) names
	 * no backend that can be asked straight: nothing to judge. */
	if (lk->unanswered && lk->action == ACT_NONE &&
	    memcmp(lk->e.reply.src.b, lk->e.orig.dst.b, sizeof lk->e.orig.dst.b)) {
		judge_dnat(f, lk);
		return;
	}
	if (f->gone.asking)
		probe_finish(&f->ask, f->nl);
	f->gone.active = f->gone.asking = 0;
	if (!lk->unanswered)
		f->bh_active = 0;
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
		dnat_seen(f, may_delete, lk);
	}
	if (lk->state == CT_DIRECT)
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

void flow_pollfds(const struct flow *f, struct pollfd *p, uint64_t *until)
{
	const struct probe *pr[FLOW_FDS] = {&f->probe, &f->ask};
	for (int i = 0; i < FLOW_FDS; i++) {
		p[i] = (struct pollfd){.fd = probe_fd(pr[i]), .events = POLLIN};
		if (p[i].fd >= 0 && pr[i]->until < *until)
			*until = pr[i]->until;
	}
}

/* The probe and the ask wait for their replies (or their time) with the
 * rest; a finished one is evidence for the gone-backend judging. */
void flow_wake(struct flow *f, const struct pollfd *p, uint64_t now)
{
	struct probe *pr[FLOW_FDS] = {&f->probe, &f->ask};
	for (int i = 0; i < FLOW_FDS; i++) {
		int fd = probe_fd(pr[i]);
		int readable = fd >= 0 && p && p[i].fd == fd && p[i].revents;
		if (fd < 0 || (!readable && now < pr[i]->until))
			continue;
		int err = probe_poll(pr[i], f->nl, readable, now);
		if (err < 0)
			flow_nl_failed(f, i ? "ask_delete" : "probe_delete", err);
		if (probe_fd(pr[i]) >= 0)
			continue;
		if (i == 0 && f->gone.probing)
			gone_probe_done(f);
		else if (i == 1 && f->gone.asking)
			gone_ask_done(f, now);
	}
}
