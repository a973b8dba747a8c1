/* backends.c - the gone-backend prober: backends learned, asked
 * straight once an interval, their clients dumped and judged when one
 * is silent (see backends.h). Every decision is verdict_of()'s. */
#define _GNU_SOURCE
#include "backends.h"
#include "counters.h"
#include "flow.h"
#include "log.h"
#include "verdict.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define VIP_TRIES 4                    /* fresh probes a round to find another backend */

void backends_init(struct backends *bk, const struct flow *f, struct table *tb, struct counters *st)
{
	bk->o = f->o;
	bk->f = f;
	bk->st = st;
	bk->tb = tb;
	bk->ep = -1;
	bk->round_at = tb->now + f->o->interval;
}

void backends_add_vip(struct backends *bk, const struct ct_tuple *t, uint32_t ki)
{
	bk->exact[bk->nexact] = *t;
	probe_init(&bk->vp[bk->nexact].p);
	bk->vp[bk->nexact++].key = ki;
}

static int same_flow(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return a->family == b->family && a->sport == b->sport && !memcmp(a->src.b, b->src.b, 16);
}

int backends_own(const struct backends *bk, const struct ct_tuple *t)
{
	for (unsigned i = 0; i < sizeof bk->mine / sizeof *bk->mine; i++)
		if (same_flow(t, &bk->mine[i]))
			return 1;
	return same_flow(t, &bk->f->tuple) || same_flow(t, &bk->f->last_probe);
}

void backends_learn(struct backends *bk, const struct ct_entry *e, uint32_t ki)
{
	struct backend *free_b = NULL;
	for (size_t i = 0; i < MAX_BACKENDS; i++) {
		struct backend *b = &bk->be[i];
		if (!b->used) {
			free_b = free_b ? free_b : b;
			continue;
		}
		if (b->t.family == e->orig.family && b->t.dport == e->reply.sport &&
		    same_addr(b->t.family, &b->t.dst, &e->reply.src))
			return;
	}
	if (!free_b)
		return;                       /* asked: at most MAX_BACKENDS */
	memset(free_b, 0, sizeof *free_b);
	probe_init(&free_b->p);
	free_b->used = 1;
	free_b->key = ki;
	free_b->t = (struct ct_tuple){.family = e->orig.family, .proto = IPPROTO_UDP,
	                              .dst = e->reply.src, .dport = e->reply.sport};
}

static void drop_backend(struct backends *bk, struct backend *b)
{
	probe_finish(&b->p, bk->req);
	b->used = 0;
}

void backends_close(struct backends *bk)
{
	for (size_t i = 0; i < MAX_BACKENDS; i++)
		if (bk->be[i].used)
			probe_finish(&bk->be[i].p, bk->req);
	for (size_t j = 0; j < bk->nexact; j++)
		probe_finish(&bk->vp[j].p, bk->req);
}

/* ---- asks: straight to a backend, fresh to a VIP ------------------------- */

static void tuple_to_sockaddr(const struct ct_tuple *t, struct sockaddr_storage *ss, int any)
{
	memset(ss, 0, sizeof *ss);
	ss->ss_family = t->family;
	if (t->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (!any)
			memcpy(&s6->sin6_addr, t->dst.b, 16);
		s6->sin6_port = any ? 0 : htons(t->dport);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (!any)
			memcpy(&s4->sin_addr, t->dst.b, 4);
		s4->sin_port = any ? 0 : htons(t->dport);
	}
}

/* The tester's query, from a fresh socket, to t; its socket joins the
 * epoll set under tag. */
static enum probe_verdict ask(struct backends *bk, struct probe *p, const struct ct_tuple *t, uint64_t tag)
{
	struct sockaddr_storage src, dst;
	int err;
	tuple_to_sockaddr(t, &src, 1);
	tuple_to_sockaddr(t, &dst, 0);
	enum probe_verdict pv = probe_send(p, bk->req, &src, &dst, bk->f->query, bk->f->qlen, bk->tb->now,
	                                   bk->o->timeout, &err);
	if (pv == PROBE_FAILED)
		return pv;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	epoll_ctl(bk->ep, EPOLL_CTL_ADD, p->fd, &ev);
	bk->mine[bk->nmine++ % (sizeof bk->mine / sizeof *bk->mine)] = p->e.orig;
	return pv;
}

static int backend_suspect(const struct backends *bk, uint32_t ki, const struct ct_entry *e)
{
	for (size_t i = 0; i < MAX_BACKENDS; i++) {
		const struct backend *b = &bk->be[i];
		if (b->used && b->silent && b->key == ki && b->t.dport == e->reply.sport &&
		    same_addr(b->t.family, &b->t.dst, &e->reply.src))
			return 1;
	}
	return 0;
}

/* A fresh flow to VIP j: sent until one lands on a backend not under
 * suspicion (VIP_TRIES at most), so that the proof does not wait on the
 * load balancer's dice. */
static void ask_vip(struct backends *bk, size_t j)
{
	struct vipprobe *v = &bk->vp[j];
	for (v->tries = 0; v->tries < VIP_TRIES; v->tries++) {
		enum probe_verdict pv = ask(bk, &v->p, &bk->exact[j], VIP_TAG + j);
		if (pv != PROBE_DNAT || !backend_suspect(bk, v->key, &v->p.e))
			return;
		probe_finish(&v->p, bk->req);
		v->p.done = 0;                /* not an outcome: another try */
	}
}

/* One round: each backend asked straight; each DNS VIP with a backend
 * under suspicion, or with clients met by a missing rule (verdict_of:
 * VA_PROBE, a fresh flow tells whether the rule is back), gets a fresh
 * flow of our own; one of each in flight. */
static void round_start(struct backends *bk)
{
	bk->round_at = bk->tb->now + bk->o->interval;
	for (size_t i = 0; i < MAX_BACKENDS; i++) {
		struct backend *b = &bk->be[i];
		if (b->used && b->p.fd < 0)
			b->sent = ask(bk, &b->p, &b->t, BACKEND_TAG + i) != PROBE_FAILED;
	}
	for (size_t j = 0; j < bk->nexact; j++) {
		int suspect = 0;
		for (size_t i = 0; i < MAX_BACKENDS; i++)
			suspect |= bk->be[i].used && bk->be[i].silent && bk->be[i].key == bk->vp[j].key;
		if ((suspect || bk->tb->keys[bk->vp[j].key].pending) && bk->vp[j].p.fd < 0)
			ask_vip(bk, j);
	}
}

/* A fresh flow to VIP j finished: what it showed is the key's fresh. */
static void vip_done(struct backends *bk, size_t j)
{
	struct vipprobe *v = &bk->vp[j];
	struct key *k = &bk->tb->keys[v->key];
	if (!v->p.done)
		return;
	v->p.done = 0;
	if (!ct_is_dnat(&v->p.e)) {
		k->fresh = FRESH_NO_DNAT;
		return;
	}
	k->fresh = v->p.answered ? FRESH_ANSWERED : FRESH_DNAT;
	k->fresh_to = v->p.e.reply.src;
	k->fresh_port = v->p.e.reply.sport;
}

/* ---- a silent backend's clients ----------------------------------------- */

/* A fresh socket for each dump (these are filtered in the kernel by
 * VIP:port: short): one given up mid-way is closed with its socket, and
 * never leaves a shared one answering EBUSY. */
int dump_fresh(const struct ct_dump_filter *f, int (*cb)(const struct ct_entry *, void *), void *arg)
{
	int kf;
	struct nl *nl = nl_open();
	if (!nl)
		return -errno;
	int err = nl_dump(nl, f, cb, arg, &kf);
	nl_close(nl);
	return err;
}

struct gone_ctx { struct backends *bk; struct backend *b; uint32_t found; };

static struct obs translated_obs(const struct backends *bk, const struct key *k, const struct backend *b,
                                 const struct ct_entry *e, const struct tracked *s)
{
	return (struct obs){
		.proto = e->orig.proto, .port_ok = 1, .dnat = 1, .replied = (uint8_t)ct_seen_reply(e),
		.nat_known = 1, .asks_dns = k->dns,
		.reply_moving = s && (e->have & s->e.have & CT_HAVE_COUNTERS) && e->reply_packets != s->e.reply_packets,
		.fresh = k->fresh,
		.fresh_same = k->fresh_port == b->t.dport && same_addr(b->t.family, &k->fresh_to, &b->t.dst),
		.backend_silent = b->silent,
		.backend_recent = b->answered_at && bk->tb->now - b->answered_at <= bk->o->interval,
	};
}

/* One entry of a silent backend's dump: judged, and tracked as verdict_of
 * says (stranded: stuck; unproven: its counters kept for the next read). */
static int judge_gone(const struct ct_entry *e, void *arg)
{
	struct gone_ctx *c = arg;
	struct backends *bk = c->bk;
	struct table *tb = bk->tb;
	struct backend *b = c->b;
	if (!ct_is_dnat(e) || e->reply.sport != b->t.dport || !same_addr(b->t.family, &e->reply.src, &b->t.dst) ||
	    backends_own(bk, &e->orig))
		return 0;
	uint32_t ki = key_find(tb, e->orig.family, &e->orig.dst, e->orig.dport);
	if (ki == NIL)
		return 0;
	struct tracked *s = lookup(tb, &e->orig);
	if (s && (s->e.id != e->id || s->kind != K_GONE_BACKEND)) {
		forget(tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
		s = NULL;
	}
	struct obs o = translated_obs(bk, &tb->keys[ki], b, e, s);
	struct vout v = verdict_of(&o);
	c->found++;
	if (v.v != V_STRANDED && v.v != V_UNPROVEN) {
		if (s)
			forget(tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
		return 0;
	}
	if (!s && !(s = track_new(tb, e, ki, F_SUSPECT, K_GONE_BACKEND)))
		return 0;
	if (s->state != F_STUCK) {
		s->e.reply_packets = e->reply_packets;   /* the next read compares with this one */
		s->e.have = e->have;
	}
	s->gen = bk->dgen;                           /* found by this dump */
	s->backend = (uint8_t)(b - bk->be);
	if (v.v == V_STRANDED && s->state != F_STUCK) {
		s->now = tb->keys[ki].fresh_to;
		s->now_port = tb->keys[ki].fresh_port;
		make_stuck(tb, s);
	}
	return 0;
}

/* The clients of silent backend b (a dump filtered in the kernel by the
 * DNS VIP:ports), judged; its clients the dump no longer has are gone. */
static void dump_backend(struct backends *bk, struct backend *b)
{
	struct ct_dump_filter f = {.proto = IPPROTO_UDP, .ndst = bk->nexact, .dst = bk->exact, .kernel = 1};
	struct gone_ctx c = {bk, b, 0};
	struct table *tb = bk->tb;
	uint32_t bi = (uint32_t)(b - bk->be);
	bk->dgen++;
	int err = dump_fresh(&f, judge_gone, &c);
	bk->st->node_dumps++;
	if (err < 0) {
		log_note("error", "node_dump_failed", "err", strerror(-err));
		return;
	}
	for (uint32_t i = 0; i < tb->ccap; i++) {
		struct tracked *s = &tb->slot[i];
		if (s->used && s->kind == K_GONE_BACKEND && s->backend == bi && s->gen != bk->dgen)
			forget(tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
	}
	if (!c.found && b->silent >= VERDICT_BACKEND_SILENT)
		drop_backend(bk, b);          /* silent, and nobody left on it: learned again if seen */
}

/* Backend b answered: its clients unproven or stuck are not stranded
 * (a backend that answers again before the proof resets it). */
static void backend_answers(struct backends *bk, struct backend *b)
{
	struct table *tb = bk->tb;
	uint32_t bi = (uint32_t)(b - bk->be);
	int was_silent = b->silent;
	b->silent = 0;
	b->answered_at = tb->now;
	if (!was_silent)
		return;                       /* clients are only ever found at a silence */
	for (uint32_t i = 0; i < tb->ccap; i++) {
		struct tracked *s = &tb->slot[i];
		if (s->used && s->kind == K_GONE_BACKEND && s->backend == bi)
			forget(tb, s, s->state == F_STUCK ? "client_cleared" : NULL);
	}
}

/* A straight ask of backend b finished. */
static void backend_done(struct backends *bk, struct backend *b)
{
	if (!b->p.done || !b->sent)
		return;
	b->p.done = 0;
	b->sent = 0;
	if (b->p.answered) {
		backend_answers(bk, b);
		return;
	}
	if (b->silent < 255)
		b->silent++;
	dump_backend(bk, b);
}

/* ---- the loop's calls ----------------------------------------------------- */

void backends_wake(struct backends *bk, uint64_t tag, int readable)
{
	uint64_t now = bk->tb->now;
	if (tag >= VIP_TAG && tag - VIP_TAG < bk->nexact) {
		probe_poll(&bk->vp[tag - VIP_TAG].p, bk->req, readable, now);
		if (bk->vp[tag - VIP_TAG].p.fd < 0)
			vip_done(bk, tag - VIP_TAG);
	} else if (tag >= BACKEND_TAG && tag - BACKEND_TAG < MAX_BACKENDS) {
		struct backend *b = &bk->be[tag - BACKEND_TAG];
		probe_poll(&b->p, bk->req, readable, now);
		if (b->p.fd < 0)
			backend_done(bk, b);
	}
}

void backends_tick(struct backends *bk)
{
	uint64_t now = bk->tb->now;
	for (size_t i = 0; i < MAX_BACKENDS; i++)
		if (bk->be[i].used && bk->be[i].p.fd >= 0 && now >= bk->be[i].p.until)
			backends_wake(bk, BACKEND_TAG + i, 0);
	for (size_t j = 0; j < bk->nexact; j++)
		if (bk->vp[j].p.fd >= 0 && now >= bk->vp[j].p.until)
			backends_wake(bk, VIP_TAG + j, 0);
	if (now >= bk->round_at)
		round_start(bk);
}

static uint64_t earlier(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t backends_deadline(const struct backends *bk)
{
	uint64_t d = UINT64_MAX;
	for (size_t i = 0; i < MAX_BACKENDS; i++)
		if (bk->be[i].used) {
			d = earlier(d, bk->round_at);
			if (bk->be[i].p.fd >= 0)
				d = earlier(d, bk->be[i].p.until);
		}
	for (size_t j = 0; j < bk->nexact; j++) {
		if (bk->tb->keys[bk->vp[j].key].pending)
			d = earlier(d, bk->round_at);
		if (bk->vp[j].p.fd >= 0)
			d = earlier(d, bk->vp[j].p.until);
	}
	return d;
}
