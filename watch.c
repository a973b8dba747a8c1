/* watch.c - the node watch: conntrack events, the clients stranded on a
 * stale entry, their proof, report and heal (see watch.h). Every
 * decision is verdict_of()'s (verdict.h); this file gathers what it
 * needs to know and does what it says. The clients and VIP:ports it
 * tracks are table.c's; the gone-backend prober is backends.c's.
 *
 * no_dnat, the first kind: the proof is the order events arrive in (a
 * sequence number, not the clock: two events read in one wake-up must
 * still have an order). A DNAT'd NEW flow to the client's VIP:port that
 * came after the client's entry and after the last NEW flow there that
 * was not DNAT'd is a fresh flow DNAT'd (FRESH_DNAT); a later one not
 * DNAT'd is FRESH_NO_DNAT (a window); none yet is FRESH_NONE.
 * Events come late (fresh_by_order, verdict.h): ev_floor dates the
 * last time the socket was read empty, the tester's own query
 * (watch_own_dnat) the moment it left.
 *
 * gone_backend, the second kind: backends.c asks the backends learned
 * here and dumps a silent one's clients (backends.h says how). */
#define _GNU_SOURCE
#include "watch.h"
#include "backends.h"
#include "ctfilter.h"
#include "flow.h"
#include "log.h"
#include "counters.h"
#include "metrics.h"            /* struct stuck_client */
#include "nl.h"
#include "table.h"
#include "verdict.h"
#include "view.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_WAKE 64              /* then the loop gets the CPU back */
#define RESYNC_RETRY NS_PER_S
#define RCVBUF_MIN_CAP (4u << 20)      /* ENOBUFS doubles the buffer up to 4x the option, at least this */
#define BACKOFF_FIRST (100 * NS_PER_MS)
#define BACKOFF_MAX (30 * NS_PER_S)
#define EV_TAG 0                       /* the probes' tags follow (backends.h) */
#define RESYNC_TAG PROBE_TAGS_END      /* the CIDR resync's dump */
#define DRAIN_MAX 4096                 /* event messages discarded before a resync */

struct watch;
/* A resync: why, the entries it read, when it began. */
struct resync_ctx { struct watch *w; uint64_t n, t0; const char *why; };

struct watch {
	const struct opts *o;
	const struct flow *f;
	struct counters *st;
	int fd, ep;                   /* the event socket; the epoll set the loop waits on */
	struct mnl_socket *ev;
	struct nl *req;               /* gets, deletes and probes' entries: never a dump */
	int rcvbuf;
	struct ct_target t[OPTS_MAX_WATCH + 1];
	size_t nt;
	int cidr;                     /* a prefix target: the full resync cannot be filtered */
	struct table tb;              /* its clock (now), event order (seq), last resync (gen) */
	struct backends bk;
	uint64_t resync_at;           /* a resync is due then; 0: none */
	uint64_t resync_end, resync_cost;   /* the last one: when it ended, how long it took */
	struct nl *rs;                /* a CIDR resync's dump in progress, read from the loop */
	struct resync_ctx rsc;        /* the resync under way */
	const char *resync_why;
	uint64_t tat, cost;           /* the heals' rate limit: GCRA */
	int limited, unproven_said;
	uint64_t ev_floor;            /* seq when the event socket was last read empty */
	uint8_t buf[8192] __attribute__((aligned(4)));
};

/* ---- heal ---------------------------------------------------------------- */

/* The heals' rate limit: o->heal_rate a second, in bursts of as many. */
static int may_delete(struct watch *w)
{
	uint64_t burst = (w->o->heal_rate - 1) * w->cost;
	if (w->tat < w->tb.now)
		w->tat = w->tb.now;
	if (w->tat - w->tb.now > burst)
		return 0;
	w->tat += w->cost;
	return 1;
}

/* cur is still the entry s was proven on: same CTA_ID, still stranded
 * the same way (no_dnat: untranslated, unanswered; gone_backend: DNAT'd
 * to the same backend, its reply count still). */
static int still_stranded(const struct tracked *s, const struct ct_entry *cur)
{
	if (cur->id != s->e.id)
		return 0;
	if (s->kind == K_NO_DNAT)
		return !ct_is_dnat(cur) && !ct_seen_reply(cur);
	return ct_is_dnat(cur) && cur->reply.sport == s->e.reply.sport &&
	       same_addr(cur->orig.family, &cur->reply.src, &s->e.reply.src) &&
	       !((cur->have & s->e.have & CT_HAVE_COUNTERS) && cur->reply_packets != s->e.reply_packets);
}

/* A heal that failed: s stays stuck (and counted), tried again later,
 * each wait twice the last. */
static void heal_later(struct watch *w, struct tracked *s, int err)
{
	struct line l;
	s->backoff = s->backoff ? s->backoff * 2 : BACKOFF_FIRST;
	if (s->backoff > BACKOFF_MAX)
		s->backoff = BACKOFF_MAX;
	s->retry_at = w->tb.now + s->backoff;
	w->st->node_heal_failed++;
	log_begin(&l, "error", "heal_failed");
	log_kv(&l, "kind", strand_names[s->kind]);
	log_kvu(&l, "sport", s->e.orig.sport);
	log_kvu(&l, "id", s->e.id);
	log_kv(&l, "err", strerror(-err));
	log_kvu(&l, "retry_in_ms", s->backoff / NS_PER_MS);
	log_end(&l);
}

/* Deletes s's entry if it is still the one proven stranded: re-read
 * first (a new entry for the flow can reuse the CTA_ID), then deleted
 * guarded by tuple and CTA_ID, where verdict_may_delete allows it. */
static void heal_one(struct watch *w, struct tracked *s)
{
	struct ct_entry cur;
	struct vout v = {V_STRANDED, (enum strand)s->kind, VA_HEAL, NULL};
	struct heal_policy pol = {VIEW_NODE, (uint8_t)w->o->heal_node, (uint8_t)w->o->dry_run};
	int err = w->req ? nl_get_zone(w->req, &s->e.orig, s->e.zone, &cur) : -ENOTCONN;
	if (err == 0 && !still_stranded(s, &cur))
		err = -ENOENT;                   /* gone or changed meanwhile */
	if (err == 0 && !verdict_may_delete(&v, &pol))
		return;
	if (err == 0)
		err = nl_delete(w->req, &cur);
	if (err == -ENOENT) {
		forget(&w->tb, s, "client_cleared");
		return;
	}
	if (err < 0) {
		heal_later(w, s, err);
		return;
	}
	w->st->node_healed++;
	w->st->node_healed_by[s->kind]++;
	hist_add(&w->st->node_stuck, win_bounds, NWIN, w->tb.now - s->seen);
	client_line(&w->tb, "info", "client_healed", s, w->tb.now - s->seen);
	forget(&w->tb, s, NULL);
}

/* Heals what is stuck and due, as far as the rate limit lets it. */
static void heal(struct watch *w)
{
	uint32_t next;
	for (uint32_t i = w->tb.stuck_head; i != NIL && w->tb.to_heal; i = next) {
		struct tracked *s = &w->tb.slot[i];
		next = s->next;
		if (s->dry || s->retry_at > w->tb.now)
			continue;
		if (w->o->dry_run) {
			s->dry = 1;
			w->tb.to_heal--;
			client_line(&w->tb, "info", "client_would_heal", s, w->tb.now - s->seen);
			continue;
		}
		if (!may_delete(w)) {
			if (!w->limited)
				log_note("warn", "heal_rate_limited", "effect", "the rest wait for --heal-rate");
			w->limited = 1;
			return;
		}
		heal_one(w, s);
	}
	w->limited = 0;
}

/* ---- no_dnat: the proof by event order ----------------------------------- */

static struct obs untranslated_obs(const struct watch *w, const struct key *k, const struct tracked *s)
{
	(void)w;
	struct order ord = {s->seq, s->dumped, k->last_dnat, k->dnat_floor, k->last_stale};
	uint8_t fresh = (uint8_t)fresh_by_order(&ord);
	return (struct obs){.proto = s->e.orig.proto, .port_ok = 1, .dnat = 0,
	                    .replied = (uint8_t)ct_seen_reply(&s->e), .nat_known = k->dnat_seen,
	                    .asks_dns = k->dns, .fresh = fresh};
}

/* A DNAT'd new flow to k came: its clients met by a missing rule are
 * judged again. Oldest first: each proven one goes to the head of the
 * stuck list, so heals (rate-limited) take the newest first. A client
 * that still sends, c-ares under load, has made its entry last, after
 * the ports it sent from and closed. */
static void promote(struct watch *w, struct key *k)
{
	uint32_t prev, i = k->head;
	if (!k->pending || i == NIL)
		return;
	while (w->tb.slot[i].next != NIL)            /* the key's list: newest first */
		i = w->tb.slot[i].next;
	for (; i != NIL; i = prev) {
		struct tracked *s = &w->tb.slot[i];
		prev = s->prev;
		if (s->state != F_PENDING)
			continue;
		struct obs o = untranslated_obs(w, k, s);
		struct vout v = verdict_of(&o);
		if (v.v == V_STRANDED)
			make_stuck(&w->tb, s);
		else if (v.v == V_HEALTHY)
			forget(&w->tb, s, NULL);
	}
}

/* A DNAT'd new flow to key ki, dated seq on the event clock, and surely
 * after floor there: an event's (read at seq, made after ev_floor), or
 * the tester's own query (both: the seq as it left, watch_own_dnat). */
static void fresh_dnat(struct watch *w, uint32_t ki, uint64_t seq, uint64_t floor)
{
	struct key *k = &w->tb.keys[ki];
	if (seq > k->last_dnat)
		k->last_dnat = seq;
	if (floor > k->dnat_floor)
		k->dnat_floor = floor;
	key_dnat_seen(&w->tb, ki);
	promote(w, k);
}

/* ---- events ------------------------------------------------------------ */

/* A client's entry to key ki without DNAT, unanswered: tracked, and
 * marked if a dump found it first. */
static void track_pending(struct watch *w, const struct ct_entry *e, uint32_t ki, uint8_t dumped)
{
	struct tracked *s = lookup(&w->tb, &e->orig);
	if (s && s->e.id == e->id) {
		s->gen = w->tb.gen;       /* found again by a resync */
		return;
	}
	if (s)                        /* a new entry for the same flow */
		forget(&w->tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
	if ((s = track_new(&w->tb, e, ki, F_PENDING, K_NO_DNAT)))
		s->dumped = dumped;
}

/* A non-DNS Service seen DNAT'd: its backends cannot be asked, so a
 * client stranded on a gone one can never be proven. Said once. */
static void unproven_once(struct watch *w, struct key *k)
{
	char vip[64];
	struct obs o = {.proto = IPPROTO_UDP, .port_ok = 1, .dnat = 1, .nat_known = 1, .asks_dns = 0};
	struct vout v = verdict_of(&o);
	struct line l;
	if (w->unproven_said || v.v != V_UNPROVEN)
		return;
	w->unproven_said = 1;
	ct_target_format(&k->t, vip, sizeof vip);
	log_begin(&l, "warn", "node_unproven");
	log_kv(&l, "kind", strand_names[K_GONE_BACKEND]);
	log_kv(&l, "vip", vip);
	log_kv(&l, "explain", v.why);
	log_end(&l);
}

static void on_new(struct watch *w, const struct ct_entry *e)
{
	uint32_t ki = key_of(&w->tb, &e->orig);
	if (ki == NIL)
		return;
	struct key *k = &w->tb.keys[ki];
	if (ct_is_dnat(e)) {
		if (k->dns)
			backends_learn(&w->bk, e, ki);
		else
			unproven_once(w, k);
		fresh_dnat(w, ki, w->tb.seq, w->ev_floor);
		return;
	}
	k->last_stale = w->tb.seq;
	if (!backends_own(&w->bk, &e->orig) && !ct_seen_reply(e))
		track_pending(w, e, ki, 0);
}

static void on_batch(struct watch *w, size_t n)
{
	const uint8_t *p = w->buf;
	struct ct_entry e;
	int kind;
	while ((kind = ct_event_next(&p, &n, &e)) != CT_EV_END) {
		w->st->node_events++;
		w->tb.seq++;
		if (kind == CT_EV_OTHER || ct_target_match(w->t, w->nt, &e.orig) < 0)
			continue;             /* the kernel's filter let it by: user space decides */
		if (kind == CT_EV_NEW) {
			on_new(w, &e);
			continue;
		}
		struct tracked *s = lookup(&w->tb, &e.orig);
		if (s && s->e.id == e.id)
			forget(&w->tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
	}
}

/* ---- resync: the table as it is ------------------------------------- */


static int resync_one(const struct ct_entry *e, void *arg)
{
	struct resync_ctx *c = arg;
	struct watch *w = c->w;
	uint32_t ki;
	c->n++;
	if (ct_target_match(w->t, w->nt, &e->orig) < 0 || backends_own(&w->bk, &e->orig))
		return 0;
	if (ct_is_dnat(e)) {
		ki = key_find(&w->tb, e->orig.family, &e->orig.dst, e->orig.dport);
		if (ki != NIL && w->tb.keys[ki].dns) {
			key_dnat_seen(&w->tb, ki);
			backends_learn(&w->bk, e, ki);
		}
		return 0;
	}
	if (!ct_seen_reply(e) && (ki = key_of(&w->tb, &e->orig)) != NIL)
		track_pending(w, e, ki, 1);
	return 0;
}

static void resync_failed(struct watch *w, int err)
{
	w->resync_at = w->tb.now + RESYNC_RETRY;
	log_note("error", "node_resync_failed", "err", strerror(-err));
}

/* The dump is whole: what it lacks went away (a client tracked by an
 * event meanwhile carries this resync's generation: it stays). */
static void resync_done(struct watch *w)
{
	struct line l;
	for (uint32_t i = 0; i < w->tb.ccap; i++) {
		struct tracked *s = &w->tb.slot[i];
		if (s->used && s->kind == K_NO_DNAT && s->gen != w->tb.gen)
			forget(&w->tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
	}
	w->st->node_resyncs++;
	w->resync_end = now_ns();
	w->resync_cost = w->resync_end - w->rsc.t0;
	log_begin(&l, "info", "node_resync");
	log_kv(&l, "reason", w->rsc.why);
	log_kvu(&l, "tracked", w->tb.nflows);
	log_kvu(&l, "entries", w->rsc.n);
	log_kvu(&l, "ms", w->resync_cost / NS_PER_MS);
	log_end(&l);
}

/* Reads what the CIDR resync's dump has sent, a few batches a wake. */
static void resync_step(struct watch *w)
{
	int r = nl_dump_more(w->rs, resync_one, &w->rsc, 8);
	if (r == 1)
		return;
	nl_close(w->rs);              /* its socket leaves the epoll set with it */
	w->rs = NULL;
	if (r < 0)
		resync_failed(w, r);
	else
		resync_done(w);
}

/* Dumps the table on a socket of its own and makes ours agree: what the
 * dump has is tracked, what it lacks went away. Entries found are dated
 * now and marked dumped: only a DNAT'd flow surely after the dump proves
 * them stuck (fresh_by_order). The VIP:ports
 * alone are filtered in the kernel: a short dump, read at once. A CIDR
 * cannot be (CTA_FILTER has no
 * prefix match): the whole table is read from the loop, a few batches
 * at a time, while events, probes, queries and signals are served. */
static void resync(struct watch *w, const char *why)
{
	struct ct_dump_filter f = {.proto = IPPROTO_UDP, .ndst = w->bk.nexact, .dst = w->bk.exact, .kernel = 1};
	/* What the event socket still holds predates the dump, which tells
	 * the truth about those entries: discarded, up to DRAIN_MAX, so the
	 * loop catches up (and a client deleted meanwhile is not tracked
	 * again from its old NEW). What is left cannot prove the clients the
	 * dump finds: only a flow after ev_floor does (fresh_by_order). */
	for (int i = 0; i < DRAIN_MAX && recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT) > 0; i++)
		;
	w->tb.gen++;
	w->tb.seq++;
	w->resync_at = 0;
	w->resync_why = why;
	w->rsc = (struct resync_ctx){w, 0, now_ns(), why};
	if (!w->cidr) {
		int err = dump_fresh(&f, resync_one, &w->rsc);
		if (err < 0)
			resync_failed(w, err);
		else
			resync_done(w);
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = RESYNC_TAG};
	int err = (w->rs = nl_open()) ? nl_dump_begin(w->rs) : -errno;
	if (!err && epoll_ctl(w->ep, EPOLL_CTL_ADD, nl_fd(w->rs), &ev) < 0)
		err = -errno;
	if (err < 0) {
		nl_close(w->rs);
		w->rs = NULL;
		resync_failed(w, err);
	}
}

static void set_rcvbuf(struct watch *w, int bytes)
{
	/* CAP_NET_ADMIN may go past rmem_max: a busy node's bursts need it. */
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
		setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
	w->rcvbuf = bytes;
}

/* ENOBUFS: events were lost. The buffer doubles (up to a cap), and one
 * resync is due an interval from now: losses meanwhile join it, and the
 * events read until then are kept (the resync sweeps what they got
 * wrong). */
static void lost(struct watch *w)
{
	struct line l;
	/* A bigger buffer loses less but lags more: past the cap, a resync
	 * is the cheaper truth. */
	uint64_t cap = w->o->event_buffer * 4 > RCVBUF_MIN_CAP ? w->o->event_buffer * 4 : RCVBUF_MIN_CAP;
	w->st->node_lost++;
	if ((uint64_t)w->rcvbuf * 2 <= cap)
		set_rcvbuf(w, w->rcvbuf * 2);
	if (w->resync_at)
		return;                   /* one is due already */
	/* One interval from now, and never more than a fifth of the time
	 * in resyncs: a flood that keeps overflowing the buffer gets them
	 * spaced by their own cost. */
	w->resync_at = w->tb.now + w->o->interval;
	if (w->resync_at < w->resync_end + 4 * w->resync_cost)
		w->resync_at = w->resync_end + 4 * w->resync_cost;
	w->resync_why = "events_lost";
	/* the size in force, as the kernel keeps it (twice what was asked) */
	int inforce = 0;
	socklen_t len = sizeof inforce;
	if (getsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &inforce, &len) < 0 || inforce <= 0)
		inforce = w->rcvbuf;
	log_begin(&l, "warn", "node_events_lost");
	log_kv(&l, "err", "ENOBUFS");
	log_kvu(&l, "event_buffer", (uint64_t)inforce);
	log_end(&l);
}

static void read_events(struct watch *w)
{
	for (int i = 0; i < READS_PER_WAKE; i++) {
		ssize_t n = recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT | MSG_TRUNC);
		if ((n < 0 && errno == ENOBUFS) || n > (ssize_t)sizeof w->buf) {
			lost(w);              /* or an event cut short: lost too */
			continue;
		}
		if (n <= 0) {             /* EAGAIN: all read; what comes next is newer */
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				w->ev_floor = ++w->tb.seq;
			break;
		}
		on_batch(w, (size_t)n);
	}
}

void watch_read(struct watch *w, uint64_t now)
{
	struct epoll_event ev[8];
	w->tb.now = now;
	int n = epoll_wait(w->ep, ev, 8, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == EV_TAG)
			read_events(w);
		else if (ev[i].data.u64 == RESYNC_TAG && w->rs)
			resync_step(w);
		else
			backends_wake(&w->bk, ev[i].data.u64, 1);
	}
	heal(w);
}

void watch_tick(struct watch *w, uint64_t now)
{
	w->tb.now = now;
	backends_tick(&w->bk);
	if (w->resync_at && now >= w->resync_at && !w->rs)
		resync(w, w->resync_why);
	heal(w);
}

uint64_t watch_mark(const struct watch *w) { return w->tb.seq; }

void watch_own_dnat(struct watch *w, uint64_t mark)
{
	const struct ct_target *t = &w->t[0];         /* the server (set_targets) */
	uint32_t ki = key_find(&w->tb, t->family, &t->addr, t->port);
	/* dnat_floor <= last_dnat: past the floor is news to one or both */
	if (ki != NIL && mark > w->tb.keys[ki].dnat_floor)
		fresh_dnat(w, ki, mark, mark);
}

static uint64_t earlier(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t watch_deadline(const struct watch *w)
{
	uint64_t d = backends_deadline(&w->bk);
	if (w->resync_at && !w->rs)
		d = earlier(d, w->resync_at);
	for (uint32_t i = w->tb.stuck_head; i != NIL && w->tb.to_heal; i = w->tb.slot[i].next)
		if (w->tb.slot[i].retry_at && !w->tb.slot[i].dry)
			d = earlier(d, w->tb.slot[i].retry_at);
	if (w->limited)
		d = earlier(d, w->tat - (w->o->heal_rate - 1) * w->cost);
	return d;
}

int watch_fd(const struct watch *w) { return w->ep; }

int watch_vip(const struct watch *w, size_t i, char *name, size_t cap, uint64_t stuck[2])
{
	if (i >= w->tb.kcap)
		return -1;
	const struct key *k = &w->tb.keys[i];
	if (!k->used || !(k->pinned || k->dnat_seen || k->stuck[0] || k->stuck[1]))
		return 0;                 /* junk VIP:ports add no series */
	ct_target_format(&k->t, name, cap);
	stuck[0] = k->stuck[SK_NO_DNAT];
	stuck[1] = k->stuck[SK_GONE];
	return 1;
}


/* ---- set-up ------------------------------------------------------------- */

/* The server first, then the options' VIPs and CIDRs. The VIP:ports are
 * DNS Services (their backends can be asked) and are never evicted. */
static void set_targets(struct watch *w)
{
	const struct ct_tuple *s = &w->f->tuple;
	w->t[0] = (struct ct_target){s->family, s->family == AF_INET6 ? 128 : 32, s->dport, s->dst};
	memcpy(w->t + 1, w->o->watch, w->o->nwatch * sizeof *w->t);
	w->nt = 1 + w->o->nwatch;
	for (size_t i = 0; i < w->nt; i++) {
		const struct ct_target *t = &w->t[i];
		if (t->plen != (t->family == AF_INET6 ? 128 : 32) || !t->port) {
			w->cidr = 1;
			continue;
		}
		struct ct_tuple x = {.family = t->family, .proto = IPPROTO_UDP, .dst = t->addr, .dport = t->port};
		uint32_t ki = key_of(&w->tb, &x);  /* its gauge shows from the start */
		if (ki == NIL)
			continue;
		key_pin(&w->tb, ki);
		w->tb.keys[ki].dns = 1;
		backends_add_vip(&w->bk, &x, ki);
	}
}

/* The event socket, libmnl's: the filter attached before it joins the
 * groups, so not one unfiltered event gets in. 0, or -errno and in *op
 * the step that failed. */
static int open_events(struct watch *w, int *insns, const char **op)
{
	int groups[] = {NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY};
	struct sock_filter prog[1024];
	struct sock_fprog fp = {0, prog};
	*insns = ct_filter_build(w->t, w->nt, prog, sizeof prog / sizeof *prog);
	fp.len = (unsigned short)*insns;
	*op = "socket";
	if (!(w->ev = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK)))
		goto fail;
	w->fd = mnl_socket_get_fd(w->ev);
	*op = "filter";
	if (!w->o->watch_user_filter && setsockopt(w->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) < 0)
		goto fail;
	set_rcvbuf(w, (int)w->o->event_buffer);
	*op = "bind";
	if (mnl_socket_bind(w->ev, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	*op = "subscribe";
	for (size_t i = 0; i < 2; i++)
		if (mnl_socket_setsockopt(w->ev, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0)
			goto fail;
	*op = "epoll";
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_TAG};
	if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		goto fail;
	*op = "requests";
	if (!(w->req = nl_open()))
		goto fail;
	return 0;
fail:
	return -errno;
}

static void start_line(const struct watch *w, int insns)
{
	char list[OPTS_MAX_WATCH * 48 + 64] = "", one[64];
	struct line l;
	for (size_t i = 0; i < w->nt; i++) {
		ct_target_format(&w->t[i], one, sizeof one);
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " " : "", one);
	}
	log_begin(&l, "info", "node_watch");
	log_kv(&l, "targets", list);
	log_kv(&l, "filter", w->o->watch_user_filter ? "user" : "kernel");
	log_kvu(&l, "bpf_insns", (uint64_t)insns);
	log_kv(&l, "heal", !w->o->heal_node ? "off" : w->o->dry_run ? "dry_run" : "on");
	log_kvu(&l, "heal_rate", w->o->heal_rate);
	log_end(&l);
}

/* A view whose table holds no client's entry to the server (a pod's
 * namespace; NOTRACK'd flows, unless more targets are watched), as the
 * tester's first query showed it: one line says why, and there is
 * nothing to watch. */
int watch_view_off(const struct flow *f)
{
	char buf[400];
	struct line l;
	enum view v = f->view;
	if (v != VIEW_POD && (v != VIEW_UNTRACKED || f->o->nwatch))
		return 0;
	log_begin(&l, v == VIEW_POD ? "warn" : "info", "node_watch_unavailable");
	log_kv(&l, "view", view_names[v]);
	log_kv(&l, "explain", view_explain(v, buf, sizeof buf));
	log_kv(&l, "effect", "the node is not watched from here");
	log_end(&l);
	return 1;
}

static struct watch *watch_new(const struct flow *f, struct counters *st)
{
	struct watch *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->fd = w->ep = -1;
	w->f = f;
	w->o = f->o;
	w->st = st;
	w->cost = NS_PER_S / f->o->heal_rate;
	table_init(&w->tb, f->o, st);
	w->tb.now = now_ns();
	backends_init(&w->bk, f, &w->tb, st);
	set_targets(w);
	return w;
}

struct watch *watch_open(const struct flow *f, struct counters *st, char *why, size_t cap)
{
	const char *op = NULL;
	int insns = 0, err = -ENOMEM;
	struct watch *w = watch_new(f, st);
	if (w && w->tb.kcap)
		err = open_events(w, &insns, &op);
	if (err < 0) {
		if (op)
			snprintf(why, cap, "events: %s: %s%s", op, strerror(-err),
			         err == -EPERM ? " (no CAP_NET_ADMIN)" : "");
		else
			snprintf(why, cap, "out of memory");
		watch_close(w);
		return NULL;
	}
	w->bk.req = w->req;           /* lent to the probes; closed here */
	w->bk.ep = w->ep;
	start_line(w, insns);
	resync(w, "start");
	return w;
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	backends_close(&w->bk);
	if (w->ep >= 0)
		close(w->ep);
	if (w->ev)
		mnl_socket_close(w->ev);
	nl_close(w->req);
	nl_close(w->rs);
	table_free(&w->tb);
	free(w);
}

/* Each stuck client now (see watch.h): a client's sockets on one VIP:port,
 * of one kind, are one client. */
size_t watch_stuck_clients(const struct watch *w, struct stuck_client *out, size_t max, uint64_t *omitted)
{
	size_t n = 0;
	*omitted = 0;
	for (uint32_t i = w->tb.stuck_head; i != NIL; i = w->tb.slot[i].next) {
		const struct tracked *s = &w->tb.slot[i];
		struct stuck_client c;
		ct_target_format(&w->tb.keys[s->key].t, c.vip, sizeof c.vip);
		ct_ntop(s->e.orig.family, s->e.orig.src.b, c.client, sizeof c.client);
		c.kind = strand_names[s->kind];
		size_t j = 0;
		while (j < n && (strcmp(out[j].client, c.client) || strcmp(out[j].vip, c.vip) || out[j].kind != c.kind))
			j++;
		if (j < n)
			continue;
		if (n == max)
			(*omitted)++;         /* a stuck client left out */
		else
			out[n++] = c;
	}
	return n;
}
