/* watch.c - the node watch: conntrack events, the clients stuck on a
 * stale entry, their proof, report and heal (see watch.h).
 *
 * Proof, per VIP:port, by the order events arrive in (a sequence
 * number, not the clock: two events read in one wake-up must still
 * have an order): a client's entry is stuck once a DNAT'd NEW flow to
 * its VIP:port came after the entry was first seen and after the last
 * NEW flow there that was not DNAT'd (the rule then missing). The
 * tester's own probes are NEW flows too, so they prove it for the DNS
 * server; for any other VIP only other clients' new flows can. */
#define _GNU_SOURCE
#include "watch.h"
#include "ctfilter.h"
#include "flow.h"
#include "log.h"
#include "counters.h"
#include "nl.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FLOWS 4096                 /* clients tracked at once */
#define MAX_KEYS 64                    /* VIP:port pairs */
#define READS_PER_WAKE 64              /* then the loop gets the CPU back */
#define DRAIN_MAX 4096                 /* messages discarded after a loss */
#define RESYNC_RETRY NS_PER_S

enum { F_PENDING, F_STUCK };

/* A client's entry that went to a watched VIP without DNAT. */
struct tracked {
	struct ct_entry e;            /* as first seen */
	uint64_t seen, seq;           /* when first seen: clock, and event order */
	uint32_t gen;                 /* the last resync that found it */
	uint16_t key;                 /* its VIP:port, in keys[] */
	uint8_t state;                /* F_* */
	uint8_t dry;                  /* --dry-run already said it would heal it */
};

/* One VIP:port: what the last new flows to it say about its rule. */
struct key {
	struct ct_target t;           /* a full prefix and a port */
	uint64_t last_dnat;           /* order of the last NEW flow DNAT'd: rule in place */
	uint64_t last_stale;          /* ... of the last one not DNAT'd: rule missing */
	uint32_t pending, stuck;
};

struct watch {
	const struct opts *o;
	const struct flow *f;
	struct counters *st;
	int fd;                       /* the event socket */
	struct ct_target t[OPTS_MAX_WATCH + 1];
	size_t nt;
	struct ct_tuple exact[OPTS_MAX_WATCH + 1];   /* the VIP:port targets: the dump's filter */
	size_t nexact;
	int cidr;                     /* a prefix target: the dump cannot be filtered */
	struct key keys[MAX_KEYS];
	size_t nkeys;
	struct tracked *slot;         /* MAX_FLOWS; the first nflows in use */
	size_t nflows, to_heal;
	uint64_t seq, now;
	uint32_t gen;
	uint64_t resync_at;           /* a failed resync is retried then; 0: none */
	uint64_t tat, cost;           /* the heals' rate limit: GCRA */
	int limited, full;
	uint8_t buf[8192] __attribute__((aligned(4)));
};

/* ---- the table -------------------------------------------------------- */

/* The entry of flow t, or NULL. A plain scan: the table is empty but
 * in a restart window, and a window's clients are a few thousand at
 * most; DESTROY events of DNAT'd flows never get here (ctfilter.h). */
static struct tracked *lookup(struct watch *w, const struct ct_tuple *t)
{
	for (size_t i = 0; i < w->nflows; i++)
		if (ct_tuple_equal(&w->slot[i].e.orig, t))
			return &w->slot[i];
	return NULL;
}

/* A line about the watch itself: one pair says what. */
static void note(const char *level, const char *event, const char *key, const char *value)
{
	struct line l;
	log_begin(&l, level, event);
	log_kv(&l, key, value);
	log_end(&l);
}

static void client_line(const struct watch *w, const char *level, const char *event,
                        const struct tracked *s, uint64_t stuck_ns)
{
	char vip[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN], entry[512];
	struct line l;
	ct_target_format(&w->keys[s->key].t, vip, sizeof vip);
	log_begin(&l, level, event);
	log_kv(&l, "vip", vip);
	log_kv(&l, "client", ct_ntop(s->e.orig.family, s->e.orig.src.b, a, sizeof a));
	log_kvu(&l, "sport", s->e.orig.sport);
	log_kvu(&l, "id", s->e.id);
	if (stuck_ns)
		log_kvu(&l, "stuck_ms", stuck_ns / NS_PER_MS);
	ct_format(&s->e, entry, sizeof entry);
	log_kv(&l, "entry", entry);
	log_end(&l);
}

/* Drops s from the table, the last entry moving into its place; event:
 * the line saying why (NULL: none). A stuck client that went away by
 * itself is client_cleared. */
static void forget(struct watch *w, struct tracked *s, const char *event)
{
	struct key *k = &w->keys[s->key];
	if (s->state == F_STUCK) {
		k->stuck--;
		if (w->o->heal_node && !s->dry)
			w->to_heal--;
		if (event) {
			w->st->node_cleared++;
			client_line(w, "info", event, s, w->now - s->seen);
		}
	} else {
		k->pending--;
	}
	*s = w->slot[--w->nflows];    /* the last one takes its place */
}

/* A client's entry to k without DNAT: tracked from now on. */
static void track(struct watch *w, const struct ct_entry *e, struct key *k)
{
	struct tracked *s = lookup(w, &e->orig);
	if (s && s->e.id == e->id) {
		s->gen = w->gen;          /* found again by a resync */
		return;
	}
	if (s)                        /* a new entry for the same flow */
		forget(w, s, "client_cleared");
	if (w->nflows >= MAX_FLOWS) {
		if (!w->full)             /* once */
			note("warn", "node_table_full", "effect", "some stuck clients are not tracked");
		w->full = 1;
		return;
	}
	w->slot[w->nflows] = (struct tracked){.e = *e, .seen = w->now, .seq = w->seq, .gen = w->gen,
	                      .key = (uint16_t)(k - w->keys), .state = F_PENDING};
	w->nflows++;
	k->pending++;
}

/* ---- proof, report, heal --------------------------------------------- */

/* The heals' rate limit: o->heal_rate a second, in bursts of as many. */
static int may_delete(struct watch *w)
{
	uint64_t burst = (w->o->heal_rate - 1) * w->cost;
	if (w->tat < w->now)
		w->tat = w->now;
	if (w->tat - w->now > burst)
		return 0;
	w->tat += w->cost;
	return 1;
}

/* Deletes s's entry if it is still the one we saw stuck: re-read
 * first (a new entry for the flow can reuse the CTA_ID), then deleted
 * guarded by tuple and CTA_ID. */
static void heal_one(struct watch *w, struct tracked *s)
{
	struct ct_entry cur;
	struct nl *nl = w->f->nl;
	int err = nl ? nl_get_zone(nl, &s->e.orig, s->e.zone, &cur) : -ENOTCONN;
	if (err == 0 && (cur.id != s->e.id || ct_is_dnat(&cur) || ct_seen_reply(&cur)))
		err = -ENOENT;                   /* gone or replaced meanwhile */
	if (err == 0)
		err = nl_delete(nl, &cur);
	if (err == -ENOENT) {
		forget(w, s, "client_cleared");
		return;
	}
	if (err < 0) {
		note("error", "heal_failed", "err", strerror(-err));
		forget(w, s, NULL);
		return;
	}
	w->st->node_healed++;
	hist_add(&w->st->node_stuck, win_bounds, NWIN, w->now - s->seen);
	client_line(w, "info", "client_healed", s, w->now - s->seen);
	forget(w, s, NULL);
}

/* Heals what is stuck, as far as the rate limit lets it. */
static void heal(struct watch *w)
{
	for (size_t i = 0; i < w->nflows && w->to_heal; i++) {
		struct tracked *s = &w->slot[i];
		if (s->state != F_STUCK || s->dry)
			continue;
		if (w->o->dry_run) {
			s->dry = 1;
			w->to_heal--;
			client_line(w, "info", "client_would_heal", s, w->now - s->seen);
			continue;
		}
		if (!may_delete(w)) {
			if (!w->limited)
				note("warn", "heal_rate_limited", "effect", "the rest wait for --heal-rate");
			w->limited = 1;
			return;
		}
		heal_one(w, s);
		i--;                      /* the last entry moved here (from 0: wraps, then 0 again) */
	}
	w->limited = 0;
}

/* A DNAT'd new flow to k came: clients tracked on k since before it,
 * and not met by a missing rule since, are stuck. */
static void promote(struct watch *w, struct key *k)
{
	if (!k->pending || k->last_dnat <= k->last_stale)
		return;
	for (size_t i = 0; i < w->nflows && k->pending; i++) {
		struct tracked *s = &w->slot[i];
		if (s->state != F_PENDING || &w->keys[s->key] != k || s->seq >= k->last_dnat)
			continue;
		s->state = F_STUCK;
		k->pending--;
		k->stuck++;
		w->st->node_blackholed++;
		w->to_heal += w->o->heal_node;
		client_line(w, "error", "client_blackholed", s, 0);
	}
}

/* ---- events ------------------------------------------------------------ */

/* The VIP:port of t: known, or made known (NULL when there are too many). */
static struct key *key_of(struct watch *w, const struct ct_tuple *t)
{
	size_t alen = t->family == AF_INET6 ? 16 : 4;
	for (size_t i = 0; i < w->nkeys; i++) {
		const struct ct_target *k = &w->keys[i].t;
		if (k->family == t->family && k->port == t->dport && !memcmp(k->addr.b, t->dst.b, alen))
			return &w->keys[i];
	}
	if (w->nkeys == MAX_KEYS)
		return NULL;
	struct key *k = &w->keys[w->nkeys++];
	memset(k, 0, sizeof *k);
	k->t = (struct ct_target){t->family, (uint8_t)(alen * 8), t->dport, t->dst};
	return k;
}

static int same_flow(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return a->family == b->family && a->sport == b->sport && !memcmp(a->src.b, b->src.b, 16);
}

/* The tester's own socket and its last probe: the tester judges them. */
static int own(const struct watch *w, const struct ct_tuple *t)
{
	return same_flow(t, &w->f->tuple) || same_flow(t, &w->f->last_probe);
}

static void on_new(struct watch *w, const struct ct_entry *e)
{
	struct key *k = key_of(w, &e->orig);
	if (!k)
		return;
	if (ct_is_dnat(e)) {
		k->last_dnat = w->seq;
		promote(w, k);
		return;
	}
	k->last_stale = w->seq;
	if (!own(w, &e->orig) && !ct_seen_reply(e))
		track(w, e, k);
}

static void on_batch(struct watch *w, size_t n)
{
	const uint8_t *p = w->buf;
	struct ct_entry e;
	int kind;
	while ((kind = ct_event_next(&p, &n, &e)) != CT_EV_END) {
		w->st->node_events++;
		w->seq++;
		if (kind == CT_EV_OTHER || ct_target_match(w->t, w->nt, &e.orig) < 0)
			continue;             /* the kernel's filter let it by: user space decides */
		if (kind == CT_EV_NEW) {
			on_new(w, &e);
			continue;
		}
		struct tracked *s = lookup(w, &e.orig);
		if (s && s->e.id == e.id)
			forget(w, s, "client_cleared");
	}
}

/* ---- resync: the table as it is ------------------------------------- */

static int resync_one(const struct ct_entry *e, void *arg)
{
	struct watch *w = arg;
	struct key *k;
	if (ct_target_match(w->t, w->nt, &e->orig) >= 0 && !ct_is_dnat(e) && !ct_seen_reply(e) &&
	    !own(w, &e->orig) && (k = key_of(w, &e->orig)))
		track(w, e, k);
	return 0;
}

/* Dumps the table (filtered in the kernel by VIP:port unless a CIDR is
 * watched: CTA_FILTER has no prefix match) and makes ours agree: what
 * the dump has is tracked, what it lacks went away. Entries found are
 * dated now: only a DNAT'd flow after the dump proves them stuck. */
static void resync(struct watch *w, const char *why)
{
	struct ct_dump_filter f = {.proto = IPPROTO_UDP, .ndst = w->nexact, .dst = w->exact, .kernel = 1};
	struct line l;
	int kf;
	w->gen++;
	w->seq++;
	w->resync_at = 0;
	int err = w->f->nl ? nl_dump(w->f->nl, w->cidr ? NULL : &f, resync_one, w, &kf) : -ENOTCONN;
	if (err < 0) {
		w->resync_at = w->now + RESYNC_RETRY;
		note("error", "node_resync_failed", "err", strerror(-err));
		return;
	}
	for (size_t i = 0; i < w->nflows; i++) {
		struct tracked *s = &w->slot[i];
		if (s->gen != w->gen) {
			forget(w, s, "client_cleared");
			i--;                  /* as in heal() */
		}
	}
	w->st->node_resyncs++;
	log_begin(&l, "info", "node_resync");
	log_kv(&l, "reason", why);
	log_kvu(&l, "tracked", w->nflows);
	log_end(&l);
}

/* ENOBUFS: events were lost. What is still queued predates the loss
 * (a NEW there may be of an entry whose DESTROY was lost): discard it,
 * then only a dump tells the truth. */
static void lost(struct watch *w)
{
	w->st->node_lost++;
	note("warn", "node_events_lost", "err", "ENOBUFS");
	for (int i = 0; i < DRAIN_MAX && recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT) > 0; i++)
		;
	resync(w, "events_lost");
}

void watch_read(struct watch *w, uint64_t now)
{
	w->now = now;
	for (int i = 0; i < READS_PER_WAKE; i++) {
		ssize_t n = recv(w->fd, w->buf, sizeof w->buf, MSG_DONTWAIT | MSG_TRUNC);
		if ((n < 0 && errno == ENOBUFS) || n > (ssize_t)sizeof w->buf) {
			lost(w);              /* or an event cut short: lost too */
			continue;
		}
		if (n <= 0)
			break;                /* EAGAIN: all read */
		on_batch(w, (size_t)n);
	}
	heal(w);
}

void watch_tick(struct watch *w, uint64_t now)
{
	w->now = now;
	if (w->resync_at && now >= w->resync_at)
		resync(w, "retry");
	heal(w);
}

uint64_t watch_deadline(const struct watch *w)
{
	uint64_t d = w->resync_at ? w->resync_at : UINT64_MAX;
	uint64_t free_at = w->tat - (w->o->heal_rate - 1) * w->cost;
	return w->limited && free_at < d ? free_at : d;
}

int watch_fd(const struct watch *w) { return w->fd; }

int watch_vip(const struct watch *w, size_t i, char *name, size_t cap, uint64_t *stuck)
{
	if (i >= w->nkeys)
		return 0;
	ct_target_format(&w->keys[i].t, name, cap);
	*stuck = w->keys[i].stuck;
	return 1;
}

/* ---- set-up ------------------------------------------------------------- */

/* The server first, then the options' VIPs and CIDRs. */
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
		struct ct_tuple *x = &w->exact[w->nexact++];
		*x = (struct ct_tuple){.family = t->family, .proto = IPPROTO_UDP, .dst = t->addr, .dport = t->port};
		key_of(w, x);             /* its gauge shows from the start */
	}
}

/* The socket: filter attached before it joins the groups, so not one
 * unfiltered event gets in. A plain socket, as nl.c's: libmnl's socket
 * helpers are one object in Debian's libmnl.a, linked whole, and with
 * recvmsg(2) cost 1,088 bytes of a binary with no room for them; libmnl
 * is for messages and attributes (ct_parse_msg). */
static int open_socket(struct watch *w, int *insns, char *why, size_t cap)
{
	int groups[] = {NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY};
	struct sock_filter prog[1024];
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int buf = (int)w->o->event_buffer, fd;
	const char *op = "socket";
	struct sock_fprog fp = {0, prog};
	*insns = ct_filter_build(w->t, w->nt, prog, sizeof prog / sizeof *prog);
	fp.len = (unsigned short)*insns;
	if ((fd = w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER)) < 0)
		goto fail;
	op = "filter";
	if (!w->o->watch_user_filter && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) < 0)
		goto fail;
	/* CAP_NET_ADMIN may go past rmem_max: a busy node's bursts need it. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
	op = "bind";
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto fail;
	op = "subscribe";
	for (size_t i = 0; i < 2; i++)
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0)
			goto fail;
	return 0;
fail:
	snprintf(why, cap, "events: %s: %s%s", op, strerror(errno),
	         errno == EPERM ? " (no CAP_NET_ADMIN)" : "");
	return -1;
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

struct watch *watch_open(const struct flow *f, struct counters *st)
{
	struct watch *w = calloc(1, sizeof *w);
	char why[160] = "out of memory";
	int insns = 0;
	if (w) {
		w->fd = -1;
		w->f = f;
		w->o = f->o;
		w->st = st;
		w->cost = NS_PER_S / f->o->heal_rate;
		set_targets(w);
	}
	if (!w || !(w->slot = calloc(MAX_FLOWS, sizeof *w->slot)) || open_socket(w, &insns, why, sizeof why) < 0) {
		note("warn", "node_watch_unavailable", "reason", why);
		watch_close(w);
		return NULL;
	}
	w->now = now_ns();
	start_line(w, insns);
	resync(w, "start");
	return w;
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->slot);
	free(w);
}
