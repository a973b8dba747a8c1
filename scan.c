/* scan.c - the `scan` subcommand: a probe per DNS VIP (is its DNAT rule
 * in place now?), one kernel-filtered dump of the entries to the VIPs,
 * and a verdict per VIP: entries not DNAT'd and never replied are
 * blackholed only where the probe proves the rule is back; where a new
 * flow is not DNAT'd either, they wait for the rule (nat_missing); a VIP
 * no flow to is DNAT'd is not a Service VIP and nothing is listed. With
 * --fix the blackholed ones are deleted one by one, each re-read and
 * guarded by its CTA_ID. */
#define _GNU_SOURCE
#include "scan.h"
#include "log.h"
#include "nl.h"
#include "opts.h"
#include "probe.h"
#include "dns.h"
#include "tester.h"
#include "confine.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_VIPS 16
#define SCAN_TRIES 3
#define PROBE_WAIT (500 * NS_PER_MS)   /* for the probe's reply, so it leaves no trace */

/* What is known of one VIP. */
struct vip {
	enum probe_verdict pv;         /* is a new flow to it DNAT'd now? */
	struct ct_entry proof;         /* the probe's entry */
	int probe_err;                 /* -errno when PROBE_FAILED */
	int nat_seen;                  /* an entry to it in the dump is DNAT'd */
	uint64_t stale;                /* entries to it not DNAT'd, never replied */
};

struct scan {
	struct ct_tuple vips[SCAN_MAX_VIPS];
	struct vip vip[SCAN_MAX_VIPS];
	size_t nvips;
	uint8_t proto;
	int fix, kernel_filter;
	/* the dump's findings: blackholed entries, deduplicated by ID */
	struct ct_entry *found;
	size_t nfound, cap;
	uint64_t examined;
	int oom;
};

static const char scan_usage[] =
"Usage: " PROG " scan [-d VIP[:PORT]]... [-p udp|tcp] [--fix] [--log-format FMT]\n"
"Lists every conntrack entry to one of the DNS VIP:PORTs (default: resolv.conf's\n"
"nameserver, port 53) that is not DNAT'd and has never seen a reply. A probe\n"
"(one DNS query from a fresh port) first tells whether each VIP's DNAT rule is\n"
"in place now: if it is, those entries are clients blackholed by\n"
"kubernetes/kubernetes#126468 (event=blackholed); if a new flow is not DNAT'd\n"
"either, the rule is missing now and they wait for it (event=nat_missing); a VIP\n"
"no flow to is DNAT'd is not a Service VIP and nothing is listed. With --fix,\n"
"deletes exactly the blackholed entries, each guarded by its conntrack ID.\n"
"\n"
"  -d, --server VIP[:PORT]   a Service VIP to check (repeatable, IPv4 or IPv6)\n"
"  -p, --proto udp|tcp       protocol (default udp)\n"
"      --fix                 delete the entries listed\n"
"      --filter kernel|user  where the dump is filtered (default kernel, falling\n"
"                            back to user space if the kernel refuses)\n"
"      --log-format FMT      logfmt (default) or json\n"
"\n"
"Exit status: 0 none blackholed; 3 blackholed found (with --fix: found and all\n"
"deleted); 1 a probe, the dump or a deletion failed; 2 usage.\n";

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

static int scan_collect(const struct ct_entry *e, void *arg)
{
	struct scan *s = arg;
	struct vip *v = vip_of(s, e);
	s->examined++;
	if (v && ct_is_dnat(e))
		v->nat_seen = 1;                /* the VIP is a Service's */
	if (!v || ct_is_dnat(e) || ct_seen_reply(e))
		return 0;                       /* healthy, or a local server */
	for (size_t i = 0; i < s->nfound; i++)
		if (s->found[i].id == e->id && ct_tuple_equal(&s->found[i].orig, &e->orig))
			return 0;               /* seen twice in a changing table */
	if (s->nfound == s->cap) {
		/* malloc and a copy, not realloc: the list only doubles a
		 * few times, and realloc alone is 1.2 KB of the binary */
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct ct_entry *p = cap < SIZE_MAX / sizeof *p ? malloc(cap * sizeof *p) : NULL;
		if (!p) {
			s->oom = 1;
			return -ENOMEM;
		}
		if (s->nfound)
			memcpy(p, s->found, s->nfound * sizeof *p);
		free(s->found);
		s->found = p;
		s->cap = cap;
	}
	s->found[s->nfound++] = *e;
	v->stale++;
	return 0;
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
	case 'f': s->fix = 1; return 0;
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
	static const struct option lo[] = {   /* short ones: -d -p -h */
		{"server", required_argument, NULL, 'd'}, {"proto", required_argument, NULL, 'p'},
		{"fix", no_argument, NULL, 'f'}, {"filter", required_argument, NULL, 'F'},
		{"log-format", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	struct sockaddr_storage ss;
	char why[200];
	int c;
	s->proto = IPPROTO_UDP;
	s->kernel_filter = 1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:p:h", lo, NULL)) != -1) {
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

static void scan_log_entry(const char *level, const char *event, const struct ct_entry *e,
                           const struct ct_entry *proof, const char *err)
{
	char entry[512], src[INET6_ADDRSTRLEN], vip[INET6_ADDRSTRLEN + 8];
	struct line l;
	ct_format(e, entry, sizeof entry);
	ct_ntop(e->orig.family, e->orig.src.b, src, sizeof src);
	fmt_vip(&e->orig, vip, sizeof vip);
	log_begin(&l, level, event);
	log_kv(&l, "vip", vip);
	log_kv(&l, "client", src);
	log_kvu(&l, "sport", e->orig.sport);
	log_kvu(&l, "id", e->id);
	if (err)
		log_kv(&l, "err", err);
	log_kv(&l, "entry", entry);
	if (proof) {
		ct_format(proof, entry, sizeof entry);
		log_kv(&l, "proof", entry);
	}
	log_end(&l);
}

/* Sends VIP i's probe from the address the kernel picks for it. */
static void scan_probe(struct nl *nl, struct scan *s, size_t i, struct probe *p,
                       const uint8_t *q, size_t qlen)
{
	struct sockaddr_storage any, vip;
	struct vip *v = &s->vip[i];
	memset(&any, 0, sizeof any);
	memset(&vip, 0, sizeof vip);
	any.ss_family = vip.ss_family = s->vips[i].family;
	if (vip.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&vip)->sin6_addr = s->vips[i].dst.v6;
		((struct sockaddr_in6 *)&vip)->sin6_port = htons(s->vips[i].dport);
	} else {
		((struct sockaddr_in *)&vip)->sin_addr = s->vips[i].dst.v4;
		((struct sockaddr_in *)&vip)->sin_port = htons(s->vips[i].dport);
	}
	v->pv = probe_send(p, nl, &any, &vip, q, qlen, now_ns(), PROBE_WAIT, &v->probe_err);
	v->proof = p->e;
}

/* Is each VIP's rule in place now? All probes at once, then their
 * replies awaited together (a probe leaves no trace), PROBE_WAIT at most. */
static void scan_probes(struct nl *nl, struct scan *s)
{
	struct probe p[SCAN_MAX_VIPS];
	uint8_t q[DNS_MAX_QUERY];
	int qlen = dns_build_query(q, sizeof q, 0, "kubernetes.default.svc.cluster.local.", 1);
	for (size_t i = 0; i < s->nvips; i++) {
		probe_init(&p[i]);
		if (qlen > 0)
			scan_probe(nl, s, i, &p[i], q, (size_t)qlen);
	}
	for (;;) {
		struct pollfd pfd[SCAN_MAX_VIPS];
		uint64_t now = now_ns(), until = now;
		for (size_t i = 0; i < s->nvips; i++) {
			pfd[i] = (struct pollfd){.fd = probe_fd(&p[i]), .events = POLLIN};
			if (pfd[i].fd >= 0 && p[i].until > until)
				until = p[i].until;
		}
		if (until == now)
			return;                   /* every probe is finished */
		int r = poll(pfd, s->nvips, (int)((until - now) / NS_PER_MS) + 1);
		for (size_t i = 0; i < s->nvips; i++)
			if (probe_poll(&p[i], nl, r > 0 && pfd[i].revents, now_ns()) < 0 || r < 0)
				probe_finish(&p[i], nl);
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

/* Deletes one listed entry, if it is still the blackhole we listed. The
 * CTA_ID guard alone is not enough: a new entry for the same flow that
 * reuses the freed memory gets the same ID. So read it again just before
 * the delete: still not DNAT'd, still never replied, same ID. */
static int scan_fix_one(struct nl *nl, const struct ct_entry *listed)
{
	struct ct_entry now;
	int err = nl_get_zone(nl, &listed->orig, listed->zone, &now);
	if (err < 0)
		return err;
	if (now.id != listed->id || ct_is_dnat(&now) || ct_seen_reply(&now))
		return -ENOENT;                   /* healed or replaced meanwhile */
	return nl_delete(nl, &now);
}

/* What an entry not DNAT'd and never replied is, by its VIP's probe. */
enum kind { K_BLACKHOLED, K_NAT_MISSING, K_UNPROVEN, K_NOT_NAT };

static enum kind kind_of(const struct vip *v)
{
	if (v->pv == PROBE_DNAT)
		return K_BLACKHOLED;
	if (v->pv == PROBE_FAILED)
		return K_UNPROVEN;
	return v->nat_seen ? K_NAT_MISSING : K_NOT_NAT;
}

/* --fix: every entry proven blackholed. Returns how many deletions failed. */
static int scan_fix(struct nl *nl, struct scan *s, uint64_t *deleted)
{
	int failures = 0;
	for (size_t i = 0; i < s->nfound; i++) {
		const struct ct_entry *e = &s->found[i];
		if (kind_of(vip_of(s, e)) != K_BLACKHOLED)
			continue;                   /* never an entry not proven */
		int err = scan_fix_one(nl, e);
		if (err == 0) {
			(*deleted)++;
			scan_log_entry("info", "scan_deleted", e, NULL, NULL);
		} else if (err == -ENOENT) {   /* gone or replaced: leave it */
			scan_log_entry("warn", "scan_gone", e, NULL, "entry gone or replaced since listed");
		} else {
			failures++;
			scan_log_entry("error", "scan_delete_failed", e, NULL, strerror(-err));
		}
	}
	return failures;
}

/* Lists the entries by kind; n[kind] counts them. */
static void scan_list(struct scan *s, uint64_t n[4])
{
	static const struct { const char *level, *event; } how[] = {
		[K_BLACKHOLED] = {"error", "blackholed"},
		[K_NAT_MISSING] = {"error", "nat_missing"},
		[K_UNPROVEN] = {"warn", "unproven"},
	};
	for (size_t i = 0; i < s->nfound; i++) {
		const struct vip *v = vip_of(s, &s->found[i]);
		enum kind k = kind_of(v);
		n[k]++;
		if (k != K_NOT_NAT)
			scan_log_entry(how[k].level, how[k].event, &s->found[i],
			               k == K_BLACKHOLED ? &v->proof : NULL, NULL);
	}
}

static void scan_summary(const struct scan *s, const uint64_t n[4], uint64_t deleted, int kernel_filtered)
{
	struct line l;
	log_begin(&l, n[K_BLACKHOLED] || n[K_NAT_MISSING] ? "error" : "info", "scan_summary");
	log_kvu(&l, "examined", s->examined);
	log_kvu(&l, "blackholed", n[K_BLACKHOLED]);
	log_kvu(&l, "nat_missing", n[K_NAT_MISSING]);
	log_kvu(&l, "unproven", n[K_UNPROVEN]);
	log_kvu(&l, "deleted", deleted);
	log_kv(&l, "filter", kernel_filtered ? "kernel" : "user");
	log_kv(&l, "proto", s->proto == IPPROTO_TCP ? "tcp" : "udp");
	log_end(&l);
}

/* The probes, the dump, the list, the fixes; the exit status. */
static int scan_run(struct scan *s, struct nl **nl)
{
	int kernel_filtered = 0, failures = 0;
	uint64_t deleted = 0, n[4] = {0};
	struct line l;
	scan_probes(*nl, s);
	int err = scan_dump(nl, s, &kernel_filtered);
	if (err < 0) {
		log_begin(&l, "error", "scan_failed");
		log_kv(&l, "err", s->oom ? "out of memory" : strerror(-err));
		if (err == -EPERM)
			log_kv(&l, "hint", "needs CAP_NET_ADMIN in the node's network namespace");
		log_end(&l);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < s->nvips; i++) {
		scan_vip_line(s, i);
		failures += s->vip[i].pv == PROBE_FAILED;
	}
	scan_list(s, n);
	if (s->fix)
		failures += scan_fix(*nl, s, &deleted);
	scan_summary(s, n, deleted, kernel_filtered);
	if (failures)
		return EXIT_FAILED;
	return n[K_BLACKHOLED] ? EXIT_BLACKHOLE : EXIT_OK;
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
	return rc;
}
