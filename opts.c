/* opts.c - the command line, read with getopt_long, and the value
 * parsers. Nothing here prints or exits: errors come back as text. */
#define _GNU_SOURCE
#include "opts.h"
#include "dns.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char opts_usage[] =
"Usage: " PROG " [OPTIONS]\n"
"Sends a DNS query over one UDP socket every interval and watches that\n"
"flow's own conntrack entry for the kube-proxy DNS blackhole\n"
"(kubernetes/kubernetes#126468).\n"
"\n"
"  -d, --server ADDR[:PORT]  DNS server (the kube-dns Service VIP): 10.0.0.10:53,\n"
"                            [fd00::a]:53 or a bare address (port 53).\n"
"                            Default: first nameserver in /etc/resolv.conf\n"
"                            (again: a VIP for --watch-node)\n"
"  -n, --name NAME           name to query (default kubernetes.default.svc.cluster.local.)\n"
"  -t, --type TYPE           A (default), AAAA, or a type number\n"
"  -i, --interval DURATION   time between queries (default 1s, at least 1ms):\n"
"                            500ms, 1s, 2m; bare = seconds\n"
"  -w, --timeout DURATION    how long to wait for each reply (default 2s, at least 1ms)\n"
"  -s, --source ADDR[:PORT]  bind the one socket here (default: kernel's choice)\n"
"  -c, --count N             stop after N queries (default: until SIGINT/SIGTERM)\n"
"      --monitor             never delete our own DNAT'd entry (passive detection)\n"
"      --heal                when our own flow is blackholed, report it, then delete that entry\n"
"      --watch-node          report each client on the node stuck on a stale entry\n"
"      --heal-node           and delete it once the VIP's rule is proven back\n"
"      --dry-run             with --heal-node: delete nothing\n"
"      --service-cidr CIDR   watch every UDP ClusterIP in CIDR (repeatable)\n"
"      --heal-rate N         at most N deletions a second (100)\n"
"      --event-buffer BYTES  events' receive buffer (4194304)\n"
"      --watch-filter kernel|user  event filter (kernel)\n"
"      --node-max-keys N     VIP:ports the node watch holds at most (65536)\n"
"      --node-max-clients N  clients the node watch tracks at most (4096)\n"
"      --stuck-clients-max N  stuck clients named in metrics (100; past it counted)\n"
"      --kube-proxy-metrics ADDR|none  kube-proxy's metrics, audited in the node\n"
"                            view (127.0.0.1:10249)\n"
"      --kube-proxy-interval DURATION  re-read it this often (5m)\n"
"      --no-conntrack        DNS only (chosen automatically without CAP_NET_ADMIN)\n"
"      --unconfined          no seccomp filter, capabilities kept: debugging only\n"
"      --log-format FMT      logfmt (default) or json\n"
"      --metrics-addr ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
"  -v, --verbose             one line per query as well\n"
"  -V, --version             print the version and exit\n"
"  -h, --help                print this help and exit\n"
"\n"
"Exit status: 0 stopped by a signal, or --count run fully answered; 1 some\n"
"queries failed, no blackhole; 2 usage or setup error; 3 a blackhole was seen.\n";

/* ---- values ------------------------------------------------------- */

/* unit * frac / scale without overflow: frac < scale <= 10^9, and unit
 * can be 3.6 * 10^12 (an hour), so the plain product would not fit. */
static uint64_t scaled(uint64_t unit, uint64_t frac, uint64_t scale)
{
	return unit / scale * frac + unit % scale * frac / scale;
}

/* The unit at p, the longest that matches ("ms", not "m"); 0 if none. */
static uint64_t unit_at(const char *p, size_t *len)
{
	static const struct { const char *u; uint64_t ns; } units[] = {
		{"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000}, {"ms", NS_PER_MS},
		{"s", NS_PER_S}, {"m", 60 * NS_PER_S}, {"h", 3600 * NS_PER_S},
	};
	uint64_t unit = 0;
	*len = 0;
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		size_t n = strlen(units[i].u);
		if (!strncmp(p, units[i].u, n) && n > *len) {
			unit = units[i].ns;
			*len = n;
		}
	}
	return unit;
}

int parse_duration(const char *s, uint64_t *out)
{
	const uint64_t max = UINT64_C(366) * 24 * 3600 * NS_PER_S;   /* a year */
	uint64_t total = 0;
	const char *p = s;
	if (!*p)
		return -1;
	while (*p) {
		uint64_t whole = 0, frac = 0, scale = 1, unit;
		int digits = 0;
		size_t ulen;
		for (; *p >= '0' && *p <= '9'; p++, digits++)
			if ((whole = whole * 10 + (uint64_t)(*p - '0')) > max)
				return -1;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (scale < NS_PER_S) {         /* finer than 1 ns: ignored */
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
		if (!digits)
			return -1;
		if (!(unit = unit_at(p, &ulen))) {
			if (*p || p != s + strspn(s, "0123456789."))
				return -1;             /* only a lone number may omit it */
			unit = NS_PER_S;
		}
		p += ulen;
		if (whole > max / unit)
			return -1;
		total += whole * unit + scaled(unit, frac, scale);
		if (total > max)
			return -1;
	}
	*out = total;
	return total ? 0 : -1;
}

void fmt_duration(uint64_t ns, char *buf, size_t cap)
{
	if (ns % NS_PER_S == 0)
		snprintf(buf, cap, "%" PRIu64 "s", ns / NS_PER_S);
	else if (ns % NS_PER_MS == 0)
		snprintf(buf, cap, "%" PRIu64 "ms", ns / NS_PER_MS);
	else if (ns % 1000 == 0)
		snprintf(buf, cap, "%" PRIu64 "us", ns / 1000);
	else
		snprintf(buf, cap, "%" PRIu64 "ns", ns);
}

/* A whole decimal number, digits only, at most max: strtoull would take
 * a sign, blanks and "0x", which a port or a count must not have. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_port(const char *s, int allow_zero)
{
	uint64_t v;
	if (parse_uint(s, 65535, &v) < 0 || (v == 0 && !allow_zero))
		return -1;
	return (int)v;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port": the host into
 * host[cap], *port at the port text or NULL. NULL or why not. */
static const char *split_host(const char *s, char *host, size_t cap, const char **port, int *bracketed)
{
	size_t hlen;
	*port = NULL;
	*bracketed = s[0] == '[';
	if (*bracketed) {
		const char *close = strchr(s, ']');
		if (!close)
			return "missing ']'";
		hlen = (size_t)(close - s - 1);
		if (close[1] == ':')
			*port = close + 2;
		else if (close[1])
			return "unexpected text after ']'";
		s++;
	} else {
		const char *colon = strchr(s, ':');
		hlen = strlen(s);
		if (colon && !strchr(colon + 1, ':')) {   /* exactly one ':' */
			hlen = (size_t)(colon - s);
			*port = colon + 1;
		}
	}
	if (hlen == 0 || hlen >= cap)
		return "not an IP address";
	memcpy(host, s, hlen);
	host[hlen] = 0;
	return NULL;
}

static const char *set_v6(char *host, int port, struct sockaddr_in6 *in6)
{
	char *zone = strchr(host, '%');
	if (zone)
		*zone++ = 0;
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
		return "not an IP address";
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)port);
	if (zone) {
		int z = parse_port(zone, 0);     /* a number, or an interface */
		in6->sin6_scope_id = z > 0 ? (uint32_t)z : if_nametoindex(zone);
		if (!in6->sin6_scope_id)
			return "unknown IPv6 zone";
	}
	return NULL;
}

const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port, *why;
	int bracketed, p = defport;
	if ((why = split_host(s, host, sizeof host, &port, &bracketed)))
		return why;
	if (port && (p = parse_port(port, allow_zero_port)) < 0)
		return "bad port";
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		if (bracketed)
			return "brackets are for IPv6 addresses";
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		return NULL;
	}
	return set_v6(host, p, (struct sockaddr_in6 *)ss);
}

int parse_cidr(const char *s, struct ct_target *t)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t plen;
	memset(t, 0, sizeof *t);
	if (!slash || (size_t)(slash - s) >= sizeof host)
		return -1;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = 0;
	t->family = inet_pton(AF_INET, host, t->addr.b) == 1 ? AF_INET
	          : inet_pton(AF_INET6, host, t->addr.b) == 1 ? AF_INET6 : 0;
	if (!t->family || parse_uint(slash + 1, t->family == AF_INET ? 32 : 128, &plen) < 0)
		return -1;
	t->plen = (uint8_t)plen;
	for (unsigned i = 0; i < 16; i++)      /* clear the host bits */
		t->addr.b[i] &= i * 8 >= plen ? 0 : i * 8 + 8 <= plen ? 0xff : (0xff00 >> (plen % 8)) & 0xff;
	return 0;
}

int parse_log_format(const char *s)
{
	return !strcmp(s, "json") ? 1 : !strcmp(s, "logfmt") ? 0 : -1;
}

socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                 : sizeof(struct sockaddr_in);
}

void sockaddr_to_tuple(const struct sockaddr_storage *ss, struct ct_tuple *t)
{
	memset(t, 0, sizeof *t);
	t->family = (uint8_t)ss->ss_family;
	t->proto = IPPROTO_UDP;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		t->dst.v6 = in6->sin6_addr;
		t->dport = ntohs(in6->sin6_port);
	} else {
		const struct sockaddr_in *in4 = (const void *)ss;
		t->dst.v4 = in4->sin_addr;
		t->dport = ntohs(in4->sin_port);
	}
}

void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		ct_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
		snprintf(buf, cap, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in4 = (const void *)ss;
		ct_ntop(AF_INET, &in4->sin_addr, a, sizeof a);
		snprintf(buf, cap, "%s:%u", a, ntohs(in4->sin_port));
	}
}

/* The first nameserver line's address, into buf. Reads at most 16 KiB:
 * resolv.conf is a few lines. */
static int resolv_nameserver(const char *path, char *buf, size_t cap)
{
	char text[16384];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (ssize_t n; len < sizeof text - 1; len += (size_t)n)
		if ((n = read(fd, text + len, sizeof text - 1 - len)) <= 0)
			break;
	close(fd);
	text[len] = 0;
	for (char *line = text, *next; line && *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) || !p[10] || !strchr(" \t", p[10]))
			continue;
		p += 10 + strspn(p + 10, " \t");
		size_t n = strcspn(p, " \t\r#;");
		if (n && n < cap) {
			memcpy(buf, p, n);
			buf[n] = 0;
			return 0;
		}
	}
	return -1;
}

const char *default_server(const char *path, struct sockaddr_storage *ss, char *err, size_t cap)
{
	char ns[INET6_ADDRSTRLEN + IF_NAMESIZE + 8];
	const char *why;
	if (resolv_nameserver(path, ns, sizeof ns) < 0) {
		snprintf(err, cap, "no --server given and no nameserver found in %s", path);
		return err;
	}
	if ((why = parse_addr(ns, 53, 0, ss))) {
		snprintf(err, cap, "%s nameserver '%s': %s", path, ns, why);
		return err;
	}
	return NULL;
}

/* ---- the command line --------------------------------------------- */

enum {
	OPT_MONITOR = 256, OPT_HEAL, OPT_NO_CONNTRACK, OPT_LOG_FORMAT, OPT_METRICS,
	OPT_WATCH, OPT_HEAL_NODE, OPT_DRY_RUN, OPT_CIDR, OPT_HEAL_RATE, OPT_EVBUF, OPT_WFILTER,
	OPT_UNCONFINED,
	OPT_MAX_KEYS, OPT_MAX_CLIENTS,
	OPT_KPROXY, OPT_KPROXY_EVERY, OPT_STUCK_MAX,
};

static const struct option longopts[] = {
	{"server", required_argument, NULL, 'd'},
	{"name", required_argument, NULL, 'n'},
	{"type", required_argument, NULL, 't'},
	{"interval", required_argument, NULL, 'i'},
	{"timeout", required_argument, NULL, 'w'},
	{"source", required_argument, NULL, 's'},
	{"count", required_argument, NULL, 'c'},
	{"monitor", no_argument, NULL, OPT_MONITOR},
	{"heal", no_argument, NULL, OPT_HEAL},
	{"no-conntrack", no_argument, NULL, OPT_NO_CONNTRACK},
	{"unconfined", no_argument, NULL, OPT_UNCONFINED},
	{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
	{"metrics-addr", required_argument, NULL, OPT_METRICS},
	{"watch-node", no_argument, NULL, OPT_WATCH},
	{"heal-node", no_argument, NULL, OPT_HEAL_NODE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"service-cidr", required_argument, NULL, OPT_CIDR},
	{"heal-rate", required_argument, NULL, OPT_HEAL_RATE},
	{"event-buffer", required_argument, NULL, OPT_EVBUF},
	{"watch-filter", required_argument, NULL, OPT_WFILTER},
	{"node-max-keys", required_argument, NULL, OPT_MAX_KEYS},
	{"node-max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
	{"kube-proxy-metrics", required_argument, NULL, OPT_KPROXY},
	{"kube-proxy-interval", required_argument, NULL, OPT_KPROXY_EVERY},
	{"stuck-clients-max", required_argument, NULL, OPT_STUCK_MAX},
	{"verbose", no_argument, NULL, 'v'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{0, 0, 0, 0},
};

/* How many long options the word's name (up to '=') is a prefix of;
 * *hit is the exact match, else the last prefix match. */
static int long_matches(const char *w, const struct option *lo, const struct option **hit)
{
	size_t len = strcspn(w, "=");
	int n = 0;
	*hit = NULL;
	for (; lo->name; lo++) {
		if (strncmp(lo->name, w, len))
			continue;
		*hit = lo;
		if (strlen(lo->name) == len)
			return 1;
		n++;
	}
	return n;
}

/* getopt_long() tells what went wrong but not the word: the word it
 * stepped past is argv[optind - 1] for a long option and for the last
 * letter of a bundle; optopt holds a short option's letter. A long
 * option is told from a short one by its name matching optopt. */
void opts_refused(int c, int argc, char **argv, const struct option *lo, char *err, size_t cap)
{
	/* musl steps optind past argc for a short option missing its value */
	int i = optind > argc ? argc : optind;
	const char *w = i > 0 && argv[i - 1] ? argv[i - 1] : "";
	const struct option *hit = NULL;
	int n = 0;
	if (w[0] == '-' && w[1] == '-' && w[2])
		n = long_matches(w + 2, lo, &hit);
	if (w[0] == '-' && w[1] == '-' && (optopt == 0 || (n == 1 && hit->val == optopt))) {
		int len = (int)strcspn(w, "=");
		if (c == ':')
			snprintf(err, cap, "option '%.*s' needs a value", len, w);
		else if (n == 1 && strchr(w, '='))
			snprintf(err, cap, "option '%.*s' takes no value", len, w);
		else
			snprintf(err, cap, "%s option '%.*s'", n > 1 ? "ambiguous" : "unknown", len, w);
	} else if (c == ':') {
		snprintf(err, cap, "option '-%c' needs a value", optopt);
	} else {
		snprintf(err, cap, "unknown option '-%c'", optopt);
	}
}

static void set_defaults(struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->name = "kubernetes.default.svc.cluster.local.";
	o->qtype = 1;
	o->interval = NS_PER_S;
	o->timeout = 2 * NS_PER_S;
	o->heal_rate = 100;
	o->event_buffer = 4 << 20;
	o->max_keys = 65536;
	o->max_clients = 4096;
	o->kproxy_every = 300 * NS_PER_S;
	o->stuck_max = 100;
	parse_addr("127.0.0.1:10249", 0, 0, &o->kproxy);
}

/* Writes the message and returns OPTS_ERROR. */
static enum opts_result refuse(char *err, size_t cap, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static enum opts_result refuse(char *err, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(err, cap, f, ap);
	va_end(ap);
	return OPTS_ERROR;
}

/* --interval and --timeout: a duration of at least 1 ms (a shorter one
 * would turn the loop into a busy loop). */
static enum opts_result set_duration(const char *opt, const char *v, uint64_t *out,
                                     char *err, size_t cap)
{
	if (parse_duration(v, out) < 0)
		return refuse(err, cap, "%s '%s': want a positive duration such as 500ms, 1s, 2m", opt, v);
	if (*out < NS_PER_MS)
		return refuse(err, cap, "%s '%s': must be at least 1ms", opt, v);
	return OPTS_RUN;
}

static enum opts_result set_metrics(const char *v, struct opts *o, char *err, size_t cap)
{
	char buf[80];
	/* ":9797" listens on every IPv4 address. */
	snprintf(buf, sizeof buf, "%s%s", v[0] == ':' ? "0.0.0.0" : "", v);
	if (!strchr(v, ':') || strlen(v) > 64 || parse_addr(buf, 0, 0, &o->metrics))
		return refuse(err, cap, "--metrics-addr '%s': want ADDR:PORT, [V6]:PORT or :PORT", v);
	o->have_metrics = 1;
	return OPTS_RUN;
}

/* What is only judged once every option is read; watch_only: the first
 * option given that only the node watch uses (it needs --watch-node). */
struct later { const char *server, *source; int monitor, heal, more, watch_only; };

/* An option's long name, as longopts spells it. */
static const char *long_name(int c)
{
	for (const struct option *lo = longopts; lo->name; lo++)
		if (lo->val == c)
			return lo->name;
	return "?";
}

/* A second -d or a --service-cidr: one more target for the node watch. */
static enum opts_result add_watch(int c, const char *v, struct opts *o, struct later *l,
                                  char *err, size_t cap)
{
	struct sockaddr_storage ss;
	struct ct_tuple t;
	struct ct_target *w = &o->watch[o->nwatch];
	if (o->nwatch == OPTS_MAX_WATCH)
		return refuse(err, cap, "too many VIPs and CIDRs");
	if (c == OPT_CIDR) {
		if (parse_cidr(v, w) < 0)
			return refuse(err, cap, "--service-cidr '%s': want ADDR/LEN", v);
	} else {
		const char *why = parse_addr(v, 53, 0, &ss);
		if (why)
			return refuse(err, cap, "--server '%s': %s", v, why);
		sockaddr_to_tuple(&ss, &t);
		*w = (struct ct_target){t.family, t.family == AF_INET6 ? 128 : 32, t.dport, t.dst};
	}
	o->nwatch++;
	l->more = 1;
	return OPTS_RUN;
}

/* The options of the node watch; OPTS_ERROR for any other. */
static enum opts_result watch_opt(int c, const char *v, struct opts *o, struct later *l,
                                  char *err, size_t cap)
{
	if (!l->watch_only && (c == OPT_HEAL_RATE || c == OPT_EVBUF || c == OPT_WFILTER || c == OPT_MAX_KEYS ||
	                       c == OPT_MAX_CLIENTS || c == OPT_STUCK_MAX))
		l->watch_only = c;
	switch (c) {
	case OPT_WATCH: o->watch_node = 1; return OPTS_RUN;
	case OPT_HEAL_NODE: o->watch_node = o->heal_node = 1; return OPTS_RUN;
	case OPT_DRY_RUN: o->dry_run = 1; return OPTS_RUN;
	case OPT_CIDR: return add_watch(c, v, o, l, err, cap);
	case OPT_HEAL_RATE:
		if (parse_uint(v, 1000000, &o->heal_rate) < 0 || !o->heal_rate)
			return refuse(err, cap, "--heal-rate '%s': want 1-1000000", v);
		return OPTS_RUN;
	case OPT_EVBUF:
		if (parse_uint(v, 1 << 30, &o->event_buffer) < 0 || o->event_buffer < 1024)
			return refuse(err, cap, "--event-buffer '%s': want 1024-1073741824", v);
		return OPTS_RUN;
	case OPT_MAX_KEYS:
	case OPT_MAX_CLIENTS:
		if (parse_uint(v, 1 << 24, c == OPT_MAX_KEYS ? &o->max_keys : &o->max_clients) < 0 ||
		    (c == OPT_MAX_KEYS ? o->max_keys : o->max_clients) < 64)
			return refuse(err, cap, "--node-max-%s '%s': want 64-16777216",
			              c == OPT_MAX_KEYS ? "keys" : "clients", v);
		return OPTS_RUN;
	case OPT_WFILTER:
		if (strcmp(v, "kernel") && strcmp(v, "user"))
			return refuse(err, cap, "--watch-filter '%s': want kernel or user", v);
		o->watch_user_filter = !strcmp(v, "user");
		return OPTS_RUN;
	case OPT_STUCK_MAX:
		/* 100 at most: /metrics' body (HTTP_BODY_MAX) is sized for them */
		if (parse_uint(v, 100, &o->stuck_max) < 0)
			return refuse(err, cap, "--stuck-clients-max '%s': want 0-100", v);
		return OPTS_RUN;
	case OPT_KPROXY_EVERY:
		return set_duration("--kube-proxy-interval", v, &o->kproxy_every, err, cap);
	case OPT_KPROXY:
		o->kproxy_off = !strcmp(v, "none");
		if (!o->kproxy_off && (!strchr(v, ':') || strlen(v) > 64 || parse_addr(v, 0, 0, &o->kproxy)))
			return refuse(err, cap, "--kube-proxy-metrics '%s': want ADDR:PORT, [V6]:PORT or none", v);
		return OPTS_RUN;
	}
	return OPTS_ERROR;
}

/* One option with its value; OPTS_RUN to go on. */
static enum opts_result one_opt(int c, const char *v, struct opts *o, struct later *l,
                                char *err, size_t cap)
{
	int t;
	uint64_t n;
	switch (c) {
	case 'd':
		if (l->server)
			return add_watch(c, v, o, l, err, cap);
		l->server = v;
		return OPTS_RUN;
	case 'n': o->name = v; return OPTS_RUN;
	case 's': l->source = v; return OPTS_RUN;
	case 't':
		if ((t = dns_type_from_str(v)) < 0)
			return refuse(err, cap, "--type '%s': want A, AAAA or a number 1-65535", v);
		o->qtype = (uint16_t)t;
		return OPTS_RUN;
	case 'i': return set_duration("--interval", v, &o->interval, err, cap);
	case 'w': return set_duration("--timeout", v, &o->timeout, err, cap);
	case 'c':
		if (parse_uint(v, UINT64_MAX, &n) < 0 || n == 0)
			return refuse(err, cap, "--count '%s': want a whole number of at least 1", v);
		o->count = n;
		return OPTS_RUN;
	case OPT_MONITOR: l->monitor = 1; return OPTS_RUN;
	case OPT_HEAL: l->heal = 1; return OPTS_RUN;
	case OPT_NO_CONNTRACK: o->no_conntrack = 1; return OPTS_RUN;
	case OPT_UNCONFINED: o->unconfined = 1; return OPTS_RUN;
	case OPT_LOG_FORMAT:
		if ((o->json = parse_log_format(v)) < 0)
			return refuse(err, cap, "--log-format '%s': want logfmt or json", v);
		return OPTS_RUN;
	case OPT_METRICS: return set_metrics(v, o, err, cap);
	case 'v': o->verbose = 1; return OPTS_RUN;
	case 'V': return OPTS_VERSION;
	case 'h': return OPTS_HELP;
	}
	return watch_opt(c, v, o, l, err, cap);   /* '?' and ':': see opts_parse */
}

/* What the options say together: the mode, the name, the addresses. */
static enum opts_result check_all(struct opts *o, const struct later *l, char *err, size_t cap)
{
	const char *why, *server = l->server, *source = l->source;
	if (l->monitor && l->heal)
		return refuse(err, cap, "--monitor and --heal cannot be used together");
	o->mode = l->heal ? MODE_HEAL : l->monitor ? MODE_MONITOR : MODE_DELETE;
	if (l->more && !o->watch_node)
		return refuse(err, cap, "more -d or --service-cidr need --watch-node");
	if (o->dry_run && !o->heal_node)
		return refuse(err, cap, "--dry-run needs --heal-node");
	if (l->watch_only && !o->watch_node)
		return refuse(err, cap, "--%s needs --watch-node or --heal-node", long_name(l->watch_only));
	if ((why = dns_check_name(o->name)))
		return refuse(err, cap, "--name '%s': %s", o->name, why);
	if (!server && default_server("/etc/resolv.conf", &o->server, err, cap))
		return OPTS_ERROR;
	if (server && (why = parse_addr(server, 53, 0, &o->server)))
		return refuse(err, cap, "--server '%s': %s", server, why);
	if (!source)
		return OPTS_RUN;
	if ((why = parse_addr(source, 0, 1, &o->source)))
		return refuse(err, cap, "--source '%s': %s", source, why);
	if (o->source.ss_family != o->server.ss_family)
		return refuse(err, cap, "--source '%s' is not of the server's address family", source);
	o->have_source = 1;
	return OPTS_RUN;
}

enum opts_result opts_parse(int argc, char **argv, struct opts *o, char *err, size_t cap)
{
	struct later l = {0};
	enum opts_result r;
	int c;
	set_defaults(o);
	/* '+': options end at the first operand (this program takes none);
	 * ':': report a missing value as ':', and print nothing ourselves. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:n:t:i:w:s:c:vVh", longopts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			opts_refused(c, argc, argv, longopts, err, cap);
			return OPTS_ERROR;
		}
		if ((r = one_opt(c, optarg, o, &l, err, cap)) != OPTS_RUN)
			return r;
	}
	if (optind < argc)
		return refuse(err, cap, "unexpected argument '%s'", argv[optind]);
	return check_all(o, &l, err, cap);
}
