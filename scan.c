/* scan.c - the `scan` subcommand: every UDP conntrack entry to a DNS
 * VIP that strands its client, of either kind (verdict.h), listed and,
 * with --fix, deleted. Per VIP: a fresh probe (is a new flow DNAT'd, and
 * answered?); one kernel-filtered dump of the entries to the VIPs; the
 * distinct backends of the DNAT'd candidates asked straight, all at
 * once, twice in a row; a second read of the candidates' reply
 * counters; then verdict_of() per entry. The cost grows with the number
 * of backends and candidates, not with the table. */
#define _GNU_SOURCE
#include "scan.h"
#include "log.h"
#include "nl.h"
#include "opts.h"
#include "probe.h"
#include "dns.h"
#include "tester.h"
#include "confine.h"
#include "verdict.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCAN_MAX_VIPS 16
#define SCAN_MAX_BACKENDS 256          /* asked at once; beyond: unproven */
#define SCAN_TRIES 3

/* What is known of one VIP. */
struct vip {
	enum probe_verdict pv;         /* is a new flow to it DNAT'd now? */
	int answered;                  /* ... and was it answered */
	struct ct_entry proof;         /* the probe's entry */
	struct sockaddr_storage now;   /* where the probe went (its backend) */
	int probe_err;                 /* -errno when PROBE_FAILED */
	int nat_seen;                  /* an entry to it in the dump is DNAT'd */
	uint64_t stale;                /* entries to it not DNAT'd, never replied */
};

/* A DNAT'd entry's backend, asked straight from a fresh socket. */
struct backend {
	struct sockaddr_storage ss;
	struct probe p;
	unsigned strikes;              /* asks unanswered in a row */
	int answered;                  /* an ask was answered */
};

/* An entry the dump found that may strand its client, and its verdict. */
struct cand {
	struct ct_entry e;
	struct vip *v;
	int b;                         /* index in backends, -1: not DNAT'd (or too many) */
	int moving;                    /* its reply count grew between two reads */
	struct vout out;
};

struct scan {
	struct ct_tuple vips[SCAN_MAX_VIPS];
	struct vip vip[SCAN_MAX_VIPS];
	size_t nvips;
	uint8_t proto;
	int fix, dry_run, kernel_filter;
	uint64_t timeout, rate;        /* each probe and ask's wait; deletions a second */
	/* the dump's candidates: deduplicated (by ID and tuple) after it */
	struct cand *found;
	size_t nfound, cap;
	struct backend *be;
	size_t nbe;
	uint64_t examined;
	int oom;
};

static const char scan_usage[] =
"Usage: " PROG " scan [-d VIP[:PORT]]... [-p udp|tcp] [-w DURATION] [--fix [--dry-run]]\n"
"                    [--heal-rate N] [--filter kernel|user] [--log-format FMT]\n"
"Lists every conntrack entry to one of the DNS VIP:PORTs (default: resolv.conf's\n"
"nameserver, port 53) that strands its client, of either kind:\n"
"  kind=no_dnat       not DNAT'd and never replied (made while the VIP had no\n"
"                     rule: kubernetes/kubernetes#126468) while a new flow is DNAT'd;\n"
"  kind=gone_backend  DNAT'd to a backend that does not answer the same query\n"
"                     asked straight, twice in a row, while a new flow to the VIP\n"
"                     goes to another backend and is answered.\n"
"A probe (one DNS query from a fresh port) first tells whether each VIP's DNAT\n"
"rule is in place now: if a new flow is not DNAT'd either, the rule is missing\n"
"now and entries wait for it (event=nat_missing); a VIP no flow to is DNAT'd is\n"
"not a Service VIP and nothing is listed. With --fix, deletes exactly the\n"
"entries listed event=blackholed, each re-read and guarded by its conntrack ID.\n"
"\n"
"  -d, --server VIP[:PORT]   a Service VIP to check (repeatable, IPv4 or IPv6)\n"
"  -p, --proto udp|tcp       protocol (default udp)\n"
"  -w, --timeout DURATION    how long a probe or a backend asked straight may\n"
"                            take to answer (default 1s)\n"
"      --fix                 delete the entries listed\n"
"      --dry-run             with --fix: say what would be deleted, delete nothing\n"
"      --heal-rate N         with --fix: at most N deletions a second (100)\n"
"      --filter kernel|user  where the dump is filtered (default kernel, falling\n"
"                            back to user space if the kernel refuses)\n"
"      --log-format FMT      logfmt (default) or json\n"
"\n"
"Exit status: 0 none stranded; 3 stranded entries found (with --fix: found and\n"
"all deleted); 1 a probe, the dump or a deletion failed; 2 usage.\n";

/* Which of our VIPs e goes to (the dump's filter made sure one does). */
static struct vip *vip_of(struct scan *s, const struct ct_entry *e)
{
	for (size_t i = 0; i < s->nvips; i++) {
		const struct ct_tuple *v = &s->vips[i];
		if (v->family == e->orig.family && v->dport == e->orig.dport &&
		    !memcmp(v->dst.b, e->orig.dst.b, v->family == AF_INET6 ? 16 : 4))
			return &s->vip[i];
	}
	return NULL;
}

/* Whether the dump keeps e: never answered and not DNAT'd (the first
 * kind), or DNAT'd UDP to another backend than a new flow, which was
 * answered (the second kind can be nothing else). Everything else is
 * healthy whatever its backend says. A reply from the VIP's own address
 * (a port redirected on it) names no backend that can be asked
 * straight: a query to it would be translated again. */
static int candidate(const struct vip *v, const struct ct_entry *e)
{
	struct sockaddr_storage b;
	if (!ct_is_dnat(e))
		return !ct_seen_reply(e);
	if (e->orig.proto != IPPROTO_UDP || v->pv != PROBE_DNAT || !v->answered ||
	    !memcmp(e->reply.src.b, e->orig.dst.b, sizeof e->orig.dst.b))
		return 0;
	probe_backend(e, &b);
	return memcmp(&b, &v->now, sizeof b) != 0;
}

static int scan_collect(const struct ct_entry *e, void *arg)
{
	struct scan *s = arg;
	struct vip *v = vip_of(s, e);
	s->examined++;
	if (v && ct_is_dnat(e))
		v->nat_seen = 1;                /* the VIP is a Service's */
	if (!v || !candidate(v, e))
		return 0;
	if (s->nfound == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct cand *p = cap < SIZE_MAX / sizeof *p ? realloc(s->found, cap * sizeof *p) : NULL;
		if (!p) {
			s->oom = 1;
			return -ENOMEM;
		}
		s->found = p;
		s->cap = cap;
	}
	s->found[s->nfound++] = (struct cand){.e = *e, .v = v, .b = -1};
	return 0;
}

/* The order of entries by ID, then original tuple: equal ones (one entry
 * met twice in a changing table) end up side by side. */
static int cand_cmp(const void *pa, const void *pb)
{
	const struct ct_tuple *a = &((const struct cand *)pa)->e.orig, *b = &((const struct cand *)pb)->e.orig;
	uint32_t ia = ((const struct cand *)pa)->e.id, ib = ((const struct cand *)pb)->e.id;
	int c;
	if (ia != ib)
		return ia < ib ? -1 : 1;
	if (a->family != b->family || a->proto != b->proto)
		return a->family != b->family ? a->family - b->family : a->proto - b->proto;
	if ((c = memcmp(a->src.b, b->src.b, 16)) || (c = memcmp(a->dst.b, b->dst.b, 16)))
		return c;
	if (a->sport != b->sport)
		return a->sport < b->sport ? -1 : 1;
	return a->dport < b->dport ? -1 : a->dport > b->dport;
}

/* Sorted, then each run of equal entries kept once: O(n log n). */
static void scan_dedup(struct scan *s)
{
	size_t n = 0;
	if (s->nfound > 1)
		qsort(s->found, s->nfound, sizeof *s->found, cand_cmp);
	for (size_t i = 0; i < s->nfound; i++)
		if (!n || cand_cmp(&s->found[n - 1], &s->found[i]))
			s->found[n++] = s->found[i];
	s->nfound = n;
	for (size_t i = 0; i < n; i++)
		s->found[i].v->stale += !ct_is_dnat(&s->found[i].e);
}

/* Writes the message and returns -1. */
static int refuse(char *err, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(err, cap, f, ap);
	va_end(ap);
	return -1;
}

/* --heal-rate N: 1 to 1,000,000 deletions a second. */
static int scan_rate(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || errno || n < 1 || n > 1000000)
		return -1;
	*out = n;
	return 0;
}

static int scan_opt(int c, const char *v, struct scan *s, char *err, size_t cap)
{
	struct sockaddr_storage ss;
	const char *why;
	switch (c) {
	case 'd':
		if ((why = parse_addr(v, 53, 0, &ss)))
			return refuse(err, cap, "scan --server '%s': %s", v, why);
		if (s->nvips == SCAN_MAX_VIPS)
			return refuse(err, cap, "scan: at most %d --server VIPs", SCAN_MAX_VIPS);
		sockaddr_to_tuple(&ss, &s->vips[s->nvips++]);
		return 0;
	case 'p':
		if (strcmp(v, "udp") && strcmp(v, "tcp"))
			return refuse(err, cap, "scan --proto '%s': want udp or tcp", v);
		s->proto = !strcmp(v, "tcp") ? IPPROTO_TCP : IPPROTO_UDP;
		return 0;
	case 'w':
		if (parse_duration(v, &s->timeout) < 0)
			return refuse(err, cap, "scan --timeout '%s': want a duration such as 500ms or 1s", v);
		return 0;
	case 'f': s->fix = 1; return 0;
	case 'n': s->dry_run = 1; return 0;
	case 'r':
		if (scan_rate(v, &s->rate) < 0)
			return refuse(err, cap, "scan --heal-rate '%s': want 1-1000000", v);
		return 0;
	case 'F':
		if (strcmp(v, "user") && strcmp(v, "kernel"))
			return refuse(err, cap, "scan --filter '%s': want kernel or user", v);
		s->kernel_filter = !strcmp(v, "kernel");
		return 0;
	case 'L':
		if ((logcfg.json = parse_log_format(v)) < 0)
			return refuse(err, cap, "scan: --log-format '%s': want logfmt or json", v);
		return 0;
	}
	return -1;
}

/* 0 to scan, 1 for --help, -1 with the reason in err. */
static int scan_args(int argc, char **argv, struct scan *s, char *err, size_t cap)
{
	static const struct option lo[] = {   /* short ones: -d -p -w -h */
		{"server", required_argument, NULL, 'd'}, {"proto", required_argument, NULL, 'p'},
		{"timeout", required_argument, NULL, 'w'}, {"fix", no_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'}, {"heal-rate", required_argument, NULL, 'r'},
		{"filter", required_argument, NULL, 'F'}, {"log-format", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0},
	};
	struct sockaddr_storage ss;
	char why[200];
	int c;
	s->proto = IPPROTO_UDP;
	s->kernel_filter = 1;
	s->timeout = NS_PER_S;
	s->rate = 100;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:p:w:h", lo, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (c == '?' || c == ':') {
			opts_refused(c, argc, argv, lo, why, sizeof why);
			return refuse(err, cap, "scan: %s", why);
		}
		if (scan_opt(c, optarg, s, err, cap) < 0)
			return -1;
	}
	if (optind < argc)
		return refuse(err, cap, "scan: unexpected argument '%s'", argv[optind]);
	if (s->dry_run && !s->fix)
		return refuse(err, cap, "scan: --dry-run goes with --fix");
	if (!s->nvips) {
		if (default_server("/etc/resolv.conf", &ss, why, sizeof why))
			return refuse(err, cap, "scan: %s", why);
		sockaddr_to_tuple(&ss, &s->vips[s->nvips++]);
	}
	return 0;
}

static void fmt_vip(const struct ct_tuple *t, char *buf, size_t cap)
{
	char dst[INET6_ADDRSTRLEN];
	ct_ntop(t->family, t->dst.b, dst, sizeof dst);
	snprintf(buf, cap, t->family == AF_INET6 ? "[%s]:%u" : "%s:%u", dst, t->dport);
}

/* One line about a listed entry: its VIP, client, kind, and for the
 * second kind its backend and where new flows go now. */
static void scan_log_entry(const struct scan *s, const char *level, const char *event,
                           const struct cand *c, int proof, const char *err)
{
	char entry[512], src[INET6_ADDRSTRLEN], vip[INET6_ADDRSTRLEN + 8], a[64];
	struct line l;
	ct_format(&c->e, entry, sizeof entry);
	ct_ntop(c->e.orig.family, c->e.orig.src.b, src, sizeof src);
	fmt_vip(&c->e.orig, vip, sizeof vip);
	log_begin(&l, level, event);
	log_kv(&l, "vip", vip);
	log_kv(&l, "client", src);
	log_kvu(&l, "sport", c->e.orig.sport);
	log_kvu(&l, "id", c->e.id);
	if (c->out.kind != K_NONE)
		log_kv(&l, "kind", strand_names[c->out.kind]);
	if (c->out.kind == K_GONE_BACKEND) {
		fmt_addr(&s->be[c->b].ss, a, sizeof a);
		log_kv(&l, "backend", a);
		fmt_addr(&c->v->now, a, sizeof a);
		log_kv(&l, "now", a);
	}
	if (err)
		log_kv(&l, "err", err);
	log_kv(&l, "entry", entry);
	if (proof) {
		ct_format(&c->v->proof, entry, sizeof entry);
		log_kv(&l, "proof", entry);
	}
	log_end(&l);
}

static void tuple_to_sockaddr(const struct ct_tuple *t, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	ss->ss_family = t->family;
	if (t->family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_addr = t->dst.v6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(t->dport);
	} else {
		((struct sockaddr_in *)ss)->sin_addr = t->dst.v4;
		((struct sockaddr_in *)ss)->sin_port = htons(t->dport);
	}
}

/* Sends one probe to server from the address the kernel picks. */
static enum probe_verdict scan_send(struct nl *nl, const struct scan *s, struct probe *p,
                                    const struct sockaddr_storage *server, const uint8_t *q,
                                    size_t qlen, int *err)
{
	struct sockaddr_storage any;
	memset(&any, 0, sizeof any);
	any.ss_family = server->ss_family;
	return probe_send(p, nl, &any, server, q, qlen, now_ns(), s->timeout, err);
}

/* Waits for n probes at once until each is answered or its time is up
 * (a probe leaves no trace). */
static void await_probes(struct nl *nl, struct probe *const *p, size_t n)
{
	struct pollfd pfd[SCAN_MAX_BACKENDS];
	for (;;) {
		uint64_t now = now_ns(), until = now;
		for (size_t i = 0; i < n; i++) {
			pfd[i] = (struct pollfd){.fd = probe_fd(p[i]), .events = POLLIN};
			if (pfd[i].fd >= 0 && p[i]->until > until)
				until = p[i]->until;
		}
		if (until == now)
			return;                   /* every probe is finished */
		int r = poll(pfd, n, (int)((until - now) / NS_PER_MS) + 1);
		for (size_t i = 0; i < n; i++)
			if (probe_poll(p[i], nl, r > 0 && pfd[i].revents, now_ns()) < 0 || r < 0)
				probe_finish(p[i], nl);
	}
}

/* Is each VIP's rule in place now, and is a new flow answered? All
 * probes at once, then their replies awaited together. */
static void scan_probes(struct nl *nl, struct scan *s, const uint8_t *q, size_t qlen)
{
	struct probe p[SCAN_MAX_VIPS], *pp[SCAN_MAX_VIPS];
	struct sockaddr_storage vip;
	for (size_t i = 0; i < s->nvips; i++) {
		probe_init(&p[i]);
		pp[i] = &p[i];
		tuple_to_sockaddr(&s->vips[i], &vip);
		s->vip[i].pv = scan_send(nl, s, &p[i], &vip, q, qlen, &s->vip[i].probe_err);
	}
	await_probes(nl, pp, s->nvips);
	for (size_t i = 0; i < s->nvips; i++) {
		struct vip *v = &s->vip[i];
		v->proof = p[i].e;
		v->answered = v->pv == PROBE_DNAT && p[i].answered;
		if (v->pv != PROBE_FAILED)
			probe_backend(&p[i].e, &v->now);
	}
}

/* The VIP's verdict, once the probe and the dump are in. */
static void scan_vip_line(const struct scan *s, size_t i)
{
	const struct vip *v = &s->vip[i];
	char vip[INET6_ADDRSTRLEN + 8], entry[512];
	struct line l;
	fmt_vip(&s->vips[i], vip, sizeof vip);
	if (v->pv == PROBE_DNAT) {
		log_begin(&l, "info", "scan_vip");
		log_kv(&l, "vip", vip);
		log_kv(&l, "nat", "in_place");
		log_kv(&l, "answered", v->answered ? "true" : "false");
	} else if (v->pv == PROBE_FAILED) {
		log_begin(&l, "error", "scan_vip");
		log_kv(&l, "vip", vip);
		log_kv(&l, "nat", "unknown");
		log_kv(&l, "err", strerror(-v->probe_err));
	} else {
		log_begin(&l, v->nat_seen ? "error" : "info", "scan_vip");
		log_kv(&l, "vip", vip);
		log_kv(&l, "nat", v->nat_seen ? "missing" : "none");
		log_kv(&l, "explain", v->nat_seen ? "a new flow to this Service VIP is not DNAT'd: its rule is missing now; entries wait for it"
		                                  : "no flow to it is DNAT'd: not a Service VIP; nothing listed");
	}
	log_kvu(&l, "stale", v->stale);
	if (v->pv != PROBE_FAILED) {
		ct_format(&v->proof, entry, sizeof entry);
		log_kv(&l, "probe", entry);
	}
	log_end(&l);
}

/* Dumps until one dump completes whole: a dump cut short (ENOBUFS, an
 * interrupted dump) is retried from scratch, never reported as whole. */
static int scan_dump(struct nl **nl, struct scan *s, int *kernel_filtered)
{
	struct ct_dump_filter f = {.proto = s->proto, .ndst = s->nvips,
	                           .dst = s->vips, .kernel = s->kernel_filter};
	int err = 0;
	for (int try = 1; try <= SCAN_TRIES; try++) {
		s->nfound = 0;
		s->examined = 0;
		for (size_t i = 0; i < s->nvips; i++)
			s->vip[i].nat_seen = 0;
		err = nl_dump(*nl, &f, scan_collect, s, kernel_filtered);
		if (err == 0 || s->oom || err == -EPERM)
			return err;
		struct line l;
		log_begin(&l, "warn", "scan_retry");
		log_kvu(&l, "try", (uint64_t)try);
		log_kv(&l, "err", strerror(-err));
		log_end(&l);
		/* The kernel is still in the middle of the broken dump on this
		 * socket and answers EBUSY to a new one: retry on a fresh
		 * socket opened beside it, then let the broken one go. */
		struct nl *fresh = nl_open();
		if (!fresh)
			return -errno;
		nl_close(*nl);
		*nl = fresh;
	}
	return err;
}

/* ---- the backends of the DNAT'd candidates ------------------------- */

/* Each DNAT'd candidate's backend, each distinct one once. Past
 * SCAN_MAX_BACKENDS an entry keeps b = -1: never asked, never claimed. */
static int scan_backends(struct scan *s)
{
	for (size_t i = 0; i < s->nfound; i++) {
		struct cand *c = &s->found[i];
		struct sockaddr_storage b;
		size_t k;
		if (!ct_is_dnat(&c->e))
			continue;
		probe_backend(&c->e, &b);
		for (k = 0; k < s->nbe && memcmp(&s->be[k].ss, &b, sizeof b); k++)
			;
		if (k == s->nbe && k < SCAN_MAX_BACKENDS) {
			if (!s->be && !(s->be = calloc(SCAN_MAX_BACKENDS, sizeof *s->be)))
				return -ENOMEM;
			s->be[s->nbe].ss = b;
			probe_init(&s->be[s->nbe++].p);
		}
		c->b = k < s->nbe ? (int)k : -1;
	}
	return 0;
}

/* Asks every backend not yet heard from, all at once, the same query
 * straight from a fresh socket, each within the timeout: silence (or an
 * ICMP error) is a strike, an answer clears it. A send that fails is
 * neither. Done twice in a row: VERDICT_BACKEND_SILENT. */
static void scan_ask(struct nl *nl, struct scan *s, const uint8_t *q, size_t qlen)
{
	struct probe *pp[SCAN_MAX_BACKENDS];
	int sent[SCAN_MAX_BACKENDS], err;
	for (int round = 0; round < VERDICT_BACKEND_SILENT; round++) {
		size_t n = 0;
		for (size_t k = 0; k < s->nbe; k++) {
			struct backend *b = &s->be[k];
			sent[k] = !b->answered && b->strikes == (unsigned)round &&
			          scan_send(nl, s, &b->p, &b->ss, q, qlen, &err) != PROBE_FAILED;
			if (sent[k])
				pp[n++] = &b->p;
		}
		if (!n)
			return;
		await_probes(nl, pp, n);
		for (size_t k = 0; k < s->nbe; k++) {
			if (!sent[k])
				continue;
			s->be[k].answered |= s->be[k].p.answered;
			s->be[k].strikes = s->be[k].p.answered ? 0 : s->be[k].strikes + 1;
		}
	}
}

/* A second read of each candidate whose backend stayed silent: its
 * reply count must not have moved since the dump. Gone since: dropped. */
static void scan_reread(struct nl *nl, struct scan *s)
{
	for (size_t i = 0; i < s->nfound; i++) {
		struct cand *c = &s->found[i];
		struct ct_entry now;
		if (c->b < 0 || s->be[c->b].answered || s->be[c->b].strikes < VERDICT_BACKEND_SILENT)
			continue;
		if (nl_get_zone(nl, &c->e.orig, c->e.zone, &now) < 0 || now.id != c->e.id) {
			c->b = -1;                    /* gone or replaced: nothing to judge */
			continue;
		}
		c->moving = (now.have & CT_HAVE_COUNTERS) && now.reply_packets != c->e.reply_packets;
	}
}

/* What was observed of a candidate, for the verdict core. */
static struct obs cand_obs(const struct scan *s, const struct cand *c)
{
	const struct vip *v = c->v;
	const struct backend *b = c->b >= 0 ? &s->be[c->b] : NULL;
	enum fresh fr = v->pv == PROBE_FAILED ? FRESH_NONE : v->pv == PROBE_NO_DNAT ? FRESH_NO_DNAT
	              : v->answered ? FRESH_ANSWERED : FRESH_DNAT;
	return (struct obs){
		.proto = c->e.orig.proto, .port_ok = 1, .dnat = ct_is_dnat(&c->e) != 0,
		.replied = ct_seen_reply(&c->e) != 0,
		.nat_known = v->nat_seen || v->pv == PROBE_DNAT, .asks_dns = 1,
		.reply_moving = (uint8_t)c->moving, .fresh = (uint8_t)fr,
		.fresh_same = 0,                  /* candidate() kept only other backends */
		.backend_silent = (uint8_t)(b ? (b->strikes > 255 ? 255 : b->strikes) : 0),
		.backend_recent = b && b->answered,
	};
}

/* ---- listing and fixing -------------------------------------------- */

/* Deletes one listed entry, if it is still what was judged. The CTA_ID
 * guard alone is not enough: a new entry for the same flow that reuses
 * the freed memory gets the same ID. So read it again just before the
 * delete: same ID, and still not DNAT'd and never replied (the first
 * kind) or still DNAT'd to the same backend (the second). */
static int scan_fix_one(struct nl *nl, const struct scan *s, const struct cand *c)
{
	struct ct_entry now;
	struct sockaddr_storage b;
	int err = nl_get_zone(nl, &c->e.orig, c->e.zone, &now);
	if (err < 0)
		return err;
	if (now.id != c->e.id)
		return -ENOENT;                   /* replaced meanwhile */
	if (c->out.kind == K_NO_DNAT && (ct_is_dnat(&now) || ct_seen_reply(&now)))
		return -ENOENT;                   /* healed meanwhile */
	if (c->out.kind == K_GONE_BACKEND) {
		probe_backend(&now, &b);
		if (!ct_is_dnat(&now) || memcmp(&b, &s->be[c->b].ss, sizeof b))
			return -ENOENT;
	}
	return nl_delete(nl, &now);
}

/* At most s->rate deletions a second, after a first burst of as many:
 * a node's conntrack is shared with kube-proxy and every flow on it. */
static void scan_pace(const struct scan *s, uint64_t t0, uint64_t done)
{
	if (done < s->rate)
		return;
	uint64_t due = t0 + (done - s->rate + 1) * NS_PER_S / s->rate, now = now_ns();
	if (due > now) {
		struct timespec ts = {(time_t)((due - now) / NS_PER_S), (long)((due - now) % NS_PER_S)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* --fix: every entry proven stranded. Returns how many deletions failed. */
static int scan_fix(struct nl *nl, struct scan *s, uint64_t *deleted)
{
	int failures = 0;
	uint64_t t0 = now_ns(), tried = 0;
	for (size_t i = 0; i < s->nfound; i++) {
		const struct cand *c = &s->found[i];
		if (c->out.v != V_STRANDED)
			continue;                   /* never an entry not proven */
		if (s->dry_run) {
			scan_log_entry(s, "info", "scan_would_delete", c, 0, NULL);
			continue;
		}
		scan_pace(s, t0, tried++);
		int err = scan_fix_one(nl, s, c);
		if (err == 0) {
			(*deleted)++;
			scan_log_entry(s, "info", "scan_deleted", c, 0, NULL);
		} else if (err == -ENOENT) {   /* gone or replaced: leave it */
			scan_log_entry(s, "warn", "scan_gone", c, 0, "entry gone or replaced since listed");
		} else {
			failures++;
			scan_log_entry(s, "error", "scan_delete_failed", c, 0, strerror(-err));
		}
	}
	return failures;
}

/* The verdict on each entry, and the list: n[verdict], k[kind]. */
static void scan_list(struct scan *s, uint64_t n[4], uint64_t k[4])
{
	static const struct { const char *level, *event; } how[] = {
		[V_STRANDED] = {"error", "blackholed"},
		[V_WINDOW] = {"error", "nat_missing"},
		[V_UNPROVEN] = {"warn", "unproven"},
	};
	for (size_t i = 0; i < s->nfound; i++) {
		struct cand *c = &s->found[i];
		const struct obs o = cand_obs(s, c);
		c->out = verdict_of(&o);
		/* a DNAT'd entry is a candidate only for the second kind: it is
		 * listed once proven, never as a mere suspect */
		if (o.dnat && c->out.v != V_STRANDED)
			continue;
		n[c->out.v]++;
		k[c->out.kind]++;
		if (c->out.v != V_HEALTHY)
			scan_log_entry(s, how[c->out.v].level, how[c->out.v].event, c, c->out.v == V_STRANDED, NULL);
	}
}

static void scan_summary(const struct scan *s, const uint64_t n[4], const uint64_t k[4],
                         uint64_t deleted, int kernel_filtered)
{
	struct line l;
	log_begin(&l, n[V_STRANDED] || n[V_WINDOW] ? "error" : "info", "scan_summary");
	log_kvu(&l, "examined", s->examined);
	log_kvu(&l, "blackholed", n[V_STRANDED]);
	log_kvu(&l, "no_dnat", k[K_NO_DNAT]);
	log_kvu(&l, "gone_backend", k[K_GONE_BACKEND]);
	log_kvu(&l, "nat_missing", n[V_WINDOW]);
	log_kvu(&l, "unproven", n[V_UNPROVEN]);
	log_kvu(&l, "backends_asked", s->nbe);
	log_kvu(&l, "deleted", deleted);
	if (s->dry_run)
		log_kv(&l, "dry_run", "true");
	log_kv(&l, "filter", kernel_filtered ? "kernel" : "user");
	log_kv(&l, "proto", s->proto == IPPROTO_TCP ? "tcp" : "udp");
	log_end(&l);
}

/* The probes, the dump, the backends asked, the list, the fixes; the
 * exit status. */
static int scan_run(struct scan *s, struct nl **nl)
{
	int kernel_filtered = 0, failures = 0;
	uint64_t deleted = 0, n[4] = {0}, k[4] = {0};
	uint8_t q[DNS_MAX_QUERY];
	struct line l;
	int qlen = dns_build_query(q, sizeof q, 0, "kubernetes.default.svc.cluster.local.", 1);
	if (qlen < 0)
		return EXIT_FAILED;               /* a constant name: never */
	scan_probes(*nl, s, q, (size_t)qlen);
	int err = scan_dump(nl, s, &kernel_filtered);
	if (!err) {
		scan_dedup(s);
		err = scan_backends(s);
	}
	if (err < 0) {
		log_begin(&l, "error", "scan_failed");
		log_kv(&l, "err", s->oom || err == -ENOMEM ? "out of memory" : strerror(-err));
		if (err == -EPERM)
			log_kv(&l, "hint", "needs CAP_NET_ADMIN in the node's network namespace");
		log_end(&l);
		return EXIT_FAILED;
	}
	scan_ask(*nl, s, q, (size_t)qlen);
	scan_reread(*nl, s);
	for (size_t i = 0; i < s->nvips; i++) {
		scan_vip_line(s, i);
		failures += s->vip[i].pv == PROBE_FAILED;
	}
	scan_list(s, n, k);
	if (s->fix)
		failures += scan_fix(*nl, s, &deleted);
	scan_summary(s, n, k, deleted, kernel_filtered);
	if (failures)
		return EXIT_FAILED;
	return n[V_STRANDED] ? EXIT_BLACKHOLE : EXIT_OK;
}

int scan_main(int argc, char **argv)
{
	struct scan s;
	char err[4200];
	memset(&s, 0, sizeof s);
	signal(SIGPIPE, SIG_IGN);
	int a = scan_args(argc, argv, &s, err, sizeof err);
	if (a > 0)
		return write_all(1, scan_usage, sizeof scan_usage - 1) < 0 ? EXIT_FAILED : EXIT_OK;
	if (a < 0) {
		err_line("%s (see --help)", err);
		return EXIT_USAGE;
	}
	struct nl *nl = nl_open();
	if (!nl) {
		err_line("scan: cannot open a netfilter netlink socket: %s", strerror(errno));
		return EXIT_FAILED;
	}
	int rc = confine() < 0 ? EXIT_FAILED : scan_run(&s, &nl);
	nl_close(nl);
	free(s.found);
	free(s.be);
	return rc;
}
