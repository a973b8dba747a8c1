/* main.c - dns-blackhole-tester: options, the query loop, logging.
 *
 * One UDP socket, connect()ed to the DNS server for the life of the
 * process, so every query leaves from the same address and port: the
 * same conntrack flow, exactly like a long-lived resolver. Each cycle
 * sends one query, waits for the answer, and looks at that flow's own
 * conntrack entry (one netlink GET of its exact tuple).
 *
 * Read it top to bottom; the sections, in order:
 *   logging            one event per line, logfmt or JSON, one write(2)
 *   option values      durations, addresses, resolv.conf
 *   options            the command line
 *   the tester's state counters, blackhole and outage bookkeeping
 *   own entry          the per-cycle GET, guarded DELETE, blackhole event
 *   outage accounting  failed/answered, recovered, stats
 *   metrics            the Prometheus endpoint, served from the same loop
 *   waiting            wait_for(): the one place the process sleeps
 *   one cycle          send, wait (probe the entry), classify
 *   scan               the node-wide `scan` subcommand
 *   set-up and loop    socket, conntrack probe, the absolute tick grid
 * DNS wire format is in dns.c, ctnetlink in nl.c. */
#define _GNU_SOURCE
#include "dns.h"
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "0.0.0-dev"
#endif
#define PROG "dns-blackhole-tester"
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)
#define STATS_EVERY (60 * NS_PER_S)

enum exit_code { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_BLACKHOLE = 3 };
enum mode { MODE_DELETE, MODE_MONITOR, MODE_HEAL };

/* ---- logging ------------------------------------------------------ */

/* Formatting without stdio: a small snprintf for the conversions this
 * program (and libmnl's mnl_nlmsg_fprintf) use - %s %c %d %u %x with
 * the h, hh, l, ll and z lengths, the '-' and '0' flags, a width and a
 * precision (.N or .*) - so that musl's printf (about 13 KB with
 * its floating-point formatter) stays out of the binary. Output past cap
 * is dropped and the result is still terminated; the return is the
 * length the whole output has, as with snprintf. An unknown conversion
 * is a bug here: it prints '?' and ends the output (its argument's type
 * is unknown). The format attribute keeps the compiler's checks. */
size_t vfmt(char *buf, size_t cap, const char *f, va_list ap)
	__attribute__((format(printf, 3, 0)));
size_t fmt(char *buf, size_t cap, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
void fmt_rfc3339(const struct timespec *ts, char *buf, size_t cap);

struct sink { char *b; size_t cap, n; };

static void sink_put(struct sink *s, char c)
{
	if (s->n + 1 < s->cap)
		s->b[s->n] = c;
	s->n++;
}

static void sink_pad(struct sink *s, int width, size_t len, char c)
{
	for (; width > 0 && (size_t)width > len; width--)
		sink_put(s, c);
}

size_t vfmt(char *buf, size_t cap, const char *f, va_list ap)
{
	struct sink s = {buf, cap, 0};
	for (; *f; f++) {
		if (*f != '%') {
			sink_put(&s, *f);
			continue;
		}
		int left = 0, zero = 0, width = 0, prec = -1, lng = 0;
		for (f++; *f == '-' || *f == '0'; f++)
			*f == '-' ? (left = 1) : (zero = 1);
		for (; *f >= '0' && *f <= '9' && width < 1000; f++)
			width = width * 10 + (*f - '0');
		if (*f == '.') {
			prec = 0;
			if (*++f == '*') {
				prec = va_arg(ap, int);
				f++;
			}
			for (; *f >= '0' && *f <= '9' && prec < 1000; f++)
				prec = prec * 10 + (*f - '0');
		}
		for (;; f++) {                       /* 1 long, 2 long long, 3 size_t */
			if (*f == 'l')
				lng++;
			else if (*f == 'z')
				lng = 3;
			else if (*f != 'h')              /* short, char: passed as int */
				break;
		}
		char num[72];                    /* 64 digits of precision, a sign */
		const char *str = num;
		size_t len;
		unsigned long long u;
		int neg = 0;
		switch (*f) {
		case '%':
			sink_put(&s, '%');
			continue;
		case 's':
			str = va_arg(ap, const char *);
			for (len = 0; str[len] && (prec < 0 || len < (size_t)prec); len++)
				;
			break;
		case 'c':
			num[0] = (char)va_arg(ap, int);
			len = 1;
			break;
		case 'd': {
			long long v = lng == 3 ? (long long)va_arg(ap, ssize_t) : lng == 2 ? va_arg(ap, long long)
			            : lng ? va_arg(ap, long) : va_arg(ap, int);
			neg = v < 0;
			u = neg ? 0 - (unsigned long long)v : (unsigned long long)v;
			goto number;
		}
		case 'u': case 'x':
			u = lng == 3 ? va_arg(ap, size_t) : lng == 2 ? va_arg(ap, unsigned long long)
			  : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
		number: {
			unsigned base = *f == 'x' ? 16 : 10;
			char *p = num + sizeof num;
			do
				*--p = "0123456789abcdef"[u % base];
			while (u /= base);
			while (num + sizeof num - p < prec && p > num + 1)
				*--p = '0';                      /* %.8x: at least 8 digits */
			if (neg) {
				if (zero && !left) {            /* the sign before the zeros */
					sink_put(&s, '-');
					width--;
				} else {
					*--p = '-';
				}
			}
			str = p;
			len = (size_t)(num + sizeof num - p);
			break;
		}
		default:
			sink_put(&s, '?');
			goto done;
		}
		if (!left)
			sink_pad(&s, width, len, zero ? '0' : ' ');
		for (size_t i = 0; i < len; i++)
			sink_put(&s, str[i]);
		if (left)
			sink_pad(&s, width, len, ' ');
	}
done:
	if (cap)
		buf[s.n < cap ? s.n : cap - 1] = '\0';
	return s.n;
}

size_t fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	size_t n = vfmt(buf, cap, f, ap);
	va_end(ap);
	return n;
}

/* write(2) all of it, across EINTR and short writes; -1 on error. */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* One line on stderr, "dns-blackhole-tester: ..." and a newline. */
static void err_line(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void err_line(const char *f, ...)
{
	char b[4200];                   /* a usage error quotes the argument */
	va_list ap;
	size_t n = fmt(b, sizeof b - 1, PROG ": ");
	va_start(ap, f);
	n += vfmt(b + n, sizeof b - 1 - n, f, ap);
	va_end(ap);
	if (n > sizeof b - 2)
		n = sizeof b - 2;
	b[n++] = '\n';
	write_all(STDERR_FILENO, b, n);
}

/* UTC calendar date of a day count since 1970-01-01 (the proleptic
 * Gregorian calendar, valid for any day a time_t can name here): the
 * civil_from_days algorithm, in eras of 400 years. Done by hand because
 * gmtime_r links musl's time-zone code (4.6 KB) for its "UTC" name. */
static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
	z += 719468;                                 /* from 0000-03-01 */
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);            /* [0, 146096] */
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  /* [0, 365] */
	unsigned mp = (5 * doy + 2) / 153;                       /* March = 0 */
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

/* RFC 3339 in UTC with milliseconds: 2026-11-26T10:46:55.938Z. */
void fmt_rfc3339(const struct timespec *ts, char *buf, size_t cap)
{
	long long days = ts->tv_sec / 86400, secs = ts->tv_sec % 86400, y;
	unsigned m, d;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	fmt(buf, cap, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d,
	    (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
	    (unsigned)(ts->tv_nsec / 1000000));
}

static struct { int json, verbose; uint64_t dropped; } logcfg;

struct line {
	char buf[4096];               /* < PIPE_BUF: one atomic write */
	size_t n;
};

static void raw(struct line *l, const char *s, size_t len)
{
	if (l->n + len >= sizeof l->buf - 2)      /* keep room for '}' '\n' */
		len = l->n < sizeof l->buf - 2 ? sizeof l->buf - 2 - l->n : 0;
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void raws(struct line *l, const char *s) { raw(l, s, strlen(s)); }

/* logfmt values are quoted when they hold a blank, '=', '"' or are
 * empty; JSON strings are always quoted. Both escape '"', '\' and
 * control bytes, so one event is always exactly one line. */
static void quoted(struct line *l, const char *v, int force)
{
	int need = force || !*v;
	for (const char *p = v; *p && !need; p++)
		need = *p == ' ' || *p == '=' || *p == '"' || (unsigned char)*p < 0x20;
	if (!need) {
		raws(l, v);
		return;
	}
	raws(l, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\'; esc[1] = (char)*p; esc[2] = 0;
		} else if (*p == '\n') {
			strcpy(esc, "\\n");
		} else if (*p < 0x20 || *p == 0x7f) {
			fmt(esc, sizeof esc, "\\u%04x", *p);
		} else {
			esc[0] = (char)*p; esc[1] = 0;
		}
		raws(l, esc);
	}
	raws(l, "\"");
}

static void key(struct line *l, const char *k)
{
	if (logcfg.json) {
		raws(l, ",\"");
		raws(l, k);
		raws(l, "\":");
	} else {
		raws(l, " ");
		raws(l, k);
		raws(l, "=");
	}
}

static void kv(struct line *l, const char *k, const char *v)
{
	key(l, k);
	quoted(l, v, logcfg.json);
}

/* A number: bare in both formats. */
static void kvf(struct line *l, const char *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void kvf(struct line *l, const char *k, const char *fmt, ...)
{
	char v[64];
	va_list ap;
	va_start(ap, fmt);
	vfmt(v, sizeof v, fmt, ap);
	va_end(ap);
	key(l, k);
	raws(l, v);
}

static void kvu(struct line *l, const char *k, uint64_t v) { kvf(l, k, "%" PRIu64, v); }

static void kv_ms(struct line *l, const char *k, uint64_t ns)
{
	kvf(l, k, "%" PRIu64 ".%03" PRIu64, ns / NS_PER_MS, ns % NS_PER_MS / 1000);
}

static void begin(struct line *l, const char *level, const char *event)
{
	struct timespec ts;
	char when[96];
	clock_gettime(CLOCK_REALTIME, &ts);
	fmt_rfc3339(&ts, when, sizeof when);
	l->n = 0;
	if (logcfg.json) {
		raws(l, "{\"ts\":\"");
		raws(l, when);
		raws(l, "\"");
	} else {
		raws(l, "ts=");
		raws(l, when);
	}
	kv(l, "level", level);
	kv(l, "event", event);
}

/* Writes the line with one write(2), and only if stdout can take it
 * now: a closed, full or never-read stdout (a pipe nobody drains) loses
 * the line, never the process, the query cycle or a signal. SIGPIPE is
 * ignored. Lines are under PIPE_BUF, so a writable pipe takes a whole
 * line without blocking. */
static void end(struct line *l)
{
	if (logcfg.json)
		raws(l, "}");
	l->buf[l->n++] = '\n';
	struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
	if (poll(&p, 1, 0) != 1 || (p.revents & (POLLOUT | POLLNVAL)) != POLLOUT) {
		logcfg.dropped++;
		return;
	}
	for (size_t off = 0; off < l->n;) {
		ssize_t w = write(STDOUT_FILENO, l->buf + off, l->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			logcfg.dropped++;
			break;
		}
		off += (size_t)w;
	}
}

/* ---- parsing option values ---------------------------------------- */

int parse_duration(const char *s, uint64_t *out);
const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss);

/* "500ms", "1s", "1.5s", "2m", "1m30s", "100us", bare "3" (seconds). */
int parse_duration(const char *s, uint64_t *out)
{
	static const struct { const char *u; uint64_t ns; } units[] = {
		{"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000}, {"ms", NS_PER_MS},
		{"s", NS_PER_S}, {"m", 60 * NS_PER_S}, {"h", 3600 * NS_PER_S},
	};
	const uint64_t max = UINT64_C(366) * 24 * 3600 * NS_PER_S;   /* a year */
	uint64_t total = 0;
	const char *p = s;
	if (!*p)
		return -1;
	while (*p) {
		uint64_t whole = 0, frac = 0, scale = 1;
		int digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			whole = whole * 10 + (uint64_t)(*p - '0');
			if (whole > max)
				return -1;
		}
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (scale < NS_PER_S) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
		if (!digits)
			return -1;
		uint64_t unit = 0;
		size_t ulen = 0;
		for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
			size_t n = strlen(units[i].u);
			if (!strncmp(p, units[i].u, n) && n > ulen) {   /* longest: ms, not m */
				unit = units[i].ns;
				ulen = n;
			}
		}
		if (!ulen) {
			if (*p || p != s + strspn(s, "0123456789."))
				return -1;             /* only a lone number may omit it */
			unit = NS_PER_S;
		}
		p += ulen;
		if (whole > max / unit)
			return -1;
		total += whole * unit + frac * unit / scale;
		if (total > max)
			return -1;
	}
	*out = total;
	return total ? 0 : -1;
}

/* Shortest exact form: 1s, 500ms, 1.5s, 250us. */
static void fmt_duration(uint64_t ns, char *buf, size_t cap)
{
	if (ns % NS_PER_S == 0)
		fmt(buf, cap, "%" PRIu64 "s", ns / NS_PER_S);
	else if (ns % NS_PER_MS == 0)
		fmt(buf, cap, "%" PRIu64 "ms", ns / NS_PER_MS);
	else if (ns % 1000 == 0)
		fmt(buf, cap, "%" PRIu64 "us", ns / 1000);
	else
		fmt(buf, cap, "%" PRIu64 "ns", ns);
}

/* A whole decimal number, no sign or blank, at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
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

/* ADDR, ADDR:PORT, [V6], [V6]:PORT, bare V6, V6%zone. NULL or a reason. */
const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port = NULL;
	size_t hlen;
	int bracketed = s[0] == '[';
	if (bracketed) {
		const char *close = strchr(s, ']');
		if (!close)
			return "missing ']'";
		hlen = (size_t)(close - s - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return "unexpected text after ']'";
		s++;
	} else {
		const char *colon = strchr(s, ':');
		hlen = strlen(s);
		if (colon && !strchr(colon + 1, ':')) {   /* exactly one ':' */
			hlen = (size_t)(colon - s);
			port = colon + 1;
		}
	}
	if (hlen == 0 || hlen >= sizeof host)
		return "not an IP address";
	memcpy(host, s, hlen);
	host[hlen] = 0;
	int p = defport;
	if (port && (p = parse_port(port, allow_zero_port)) < 0)
		return "bad port";
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		if (bracketed)
			return "brackets are for IPv6 addresses";
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		return NULL;
	}
	char *zone = strchr(host, '%');
	if (zone)
		*zone++ = 0;
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
		return "not an IP address";
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons((uint16_t)p);
	if (zone) {
		int z = parse_port(zone, 0);     /* a number, or an interface */
		in6->sin6_scope_id = z > 0 ? (uint32_t)z : if_nametoindex(zone);
		if (!in6->sin6_scope_id)
			return "unknown IPv6 zone";
	}
	return NULL;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                 : sizeof(struct sockaddr_in);
}

/* A UDP tuple whose destination (address, port) is the sockaddr. */
static void sockaddr_to_tuple(const struct sockaddr_storage *ss, struct ct_tuple *t)
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

/* "10.0.0.10:53" or "[fd00::a]:53". */
static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		ct_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
		fmt(buf, cap, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in4 = (const void *)ss;
		ct_ntop(AF_INET, &in4->sin_addr, a, sizeof a);
		fmt(buf, cap, "%s:%u", a, ntohs(in4->sin_port));
	}
}

/* The first nameserver of resolv.conf, as a string into buf. Reads at
 * most 16 KiB: resolv.conf is a few lines; no stdio, no allocation. */
static int resolv_nameserver(const char *path, char *buf, size_t cap)
{
	static char text[16384];
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
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) || !p[10] || !strchr(" \t", p[10]))
			continue;
		p += 10;
		p += strspn(p, " \t");
		size_t n = strcspn(p, " \t\r#;");
		if (n && n < cap) {
			memcpy(buf, p, n);
			buf[n] = 0;
			return 0;
		}
	}
	return -1;
}

/* ---- options ------------------------------------------------------ */

struct opts {
	struct sockaddr_storage server, source;
	int have_source;
	const char *name;
	uint16_t qtype;
	uint64_t interval, timeout;
	uint64_t count;               /* 0: until a signal */
	enum mode mode;
	int no_conntrack;
	struct sockaddr_storage metrics;   /* --metrics-addr */
	int have_metrics;
};

static const char usage_text[] =
"Usage: " PROG " [OPTIONS]\n"
"Sends a DNS query over one UDP socket every interval and watches that\n"
"flow's own conntrack entry for the kube-proxy DNS blackhole\n"
"(kubernetes/kubernetes#126468).\n"
"\n"
"  -d, --server ADDR[:PORT]  DNS server (the kube-dns Service VIP): 10.0.0.10:53,\n"
"                            [fd00::a]:53 or a bare address (port 53).\n"
"                            Default: first nameserver in /etc/resolv.conf\n"
"  -n, --name NAME           name to query (default kubernetes.default.svc.cluster.local.)\n"
"  -t, --type TYPE           A (default), AAAA, or a type number\n"
"  -i, --interval DURATION   time between queries (default 1s): 500ms, 1s, 2m; bare = seconds\n"
"  -w, --timeout DURATION    how long to wait for each reply (default 2s)\n"
"  -s, --source ADDR[:PORT]  bind the one socket here (default: kernel's choice)\n"
"  -c, --count N             stop after N queries (default: until SIGINT/SIGTERM)\n"
"      --monitor             never delete our own DNAT'd entry (passive detection)\n"
"      --heal                when our own flow is blackholed, report it, then delete that entry\n"
"      --no-conntrack        DNS only (chosen automatically without CAP_NET_ADMIN)\n"
"      --log-format FMT      logfmt (default) or json\n"
"      --metrics-addr ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
"  -v, --verbose             one line per query as well\n"
"  -V, --version             print the version and exit\n"
"  -h, --help                print this help and exit\n"
"\n"
"Exit status: 0 stopped by a signal, or --count run fully answered; 1 some\n"
"queries failed, no blackhole; 2 usage or setup error; 3 a blackhole was seen.\n";

/* One clear line on stderr, then exit 2: nothing has been sent yet. */
static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vfmt(msg, sizeof msg, fmt, ap);
	va_end(ap);
	err_line("%s (see --help)", msg);
	exit(EXIT_USAGE);
}

/* A long option: its name, whether it takes a value, what it returns. */
struct longopt { const char *name; int has_arg; int val; };

enum { OPT_MONITOR = 256, OPT_HEAL, OPT_NO_CONNTRACK, OPT_LOG_FORMAT, OPT_METRICS };

static const struct longopt longopts[] = {
	{"server", 1, 'd'},
	{"name", 1, 'n'},
	{"type", 1, 't'},
	{"interval", 1, 'i'},
	{"timeout", 1, 'w'},
	{"source", 1, 's'},
	{"count", 1, 'c'},
	{"monitor", 0, OPT_MONITOR},
	{"heal", 0, OPT_HEAL},
	{"no-conntrack", 0, OPT_NO_CONNTRACK},
	{"log-format", 1, OPT_LOG_FORMAT},
	{"metrics-addr", 1, OPT_METRICS},
	{"verbose", 0, 'v'},
	{"version", 0, 'V'},
	{"help", 0, 'h'},
	{0, 0, 0},
};

/* The command line, read by hand the way getopt_long reads it (musl's
 * links stdio for messages we never let it print): short options alone
 * or bundled (-v -c 5, -vc5), long ones whole or as a unique prefix
 * (--count 5, --count=5, --cou 5), "--" ends the options. The first
 * argument that is not an option ends them too: this program takes none,
 * so the caller reports it. */
struct args {
	int argc, ind;          /* argv[ind]: the next word to read */
	char **argv;
	const char *bundle;     /* the rest of "-vc5" after 'v' */
	const char *arg;        /* the value of the option just read */
	char what[80];          /* that option as the user wrote it */
};

/* A long option's name (up to '='). Exact match, else one prefix. */
static int next_long(struct args *a, const char *w, const struct longopt *lo)
{
	size_t len = strcspn(w, "=");
	const struct longopt *hit = NULL;
	int hits = 0;
	for (const struct longopt *o = lo; o->name; o++) {
		if (strncmp(o->name, w, len))
			continue;
		hit = o;
		if (strlen(o->name) == len) {
			hits = 1;
			break;
		}
		hits++;
	}
	fmt(a->what, sizeof a->what, "--%.*s", (int)len, w);
	if (hits != 1)
		return '?';                      /* unknown or ambiguous */
	fmt(a->what, sizeof a->what, "--%s", hit->name);
	if (w[len] == '=') {
		if (!hit->has_arg) {
			fmt(a->what, sizeof a->what, "--%s", w);
			return '?';
		}
		a->arg = w + len + 1;
	} else if (hit->has_arg) {
		if (a->ind >= a->argc)
			return ':';
		a->arg = a->argv[a->ind++];
	}
	return hit->val;
}

/* The next option: its value (a character or OPT_*), -1 at the end of
 * the options, ':' if its value is missing, '?' if unknown; a->what
 * names it as written, a->arg holds its value. */
static int next_opt(struct args *a, const char *shortopts, const struct longopt *lo)
{
	a->arg = NULL;
	if (!a->bundle || !*a->bundle) {
		a->bundle = NULL;
		if (a->ind >= a->argc)
			return -1;
		const char *w = a->argv[a->ind];
		if (w[0] != '-' || !w[1])
			return -1;                   /* an operand: "x" or "-" */
		a->ind++;
		if (w[1] == '-')
			return w[2] ? next_long(a, w + 2, lo) : -1;   /* "--" */
		a->bundle = w + 1;
	}
	char c = *a->bundle++;
	const char *s = c != ':' ? strchr(shortopts, c) : NULL;
	fmt(a->what, sizeof a->what, "-%c", c);
	if (!s)
		return '?';
	if (s[1] != ':')
		return c;
	if (*a->bundle)
		a->arg = a->bundle;              /* -c5 */
	else if (a->ind < a->argc)
		a->arg = a->argv[a->ind++];      /* -c 5 */
	else
		return ':';
	a->bundle = NULL;
	return c;
}

/* --log-format, for the tester and scan alike. */
static void set_log_format(const char *who, const char *v)
{
	if (!strcmp(v, "json"))
		logcfg.json = 1;
	else if (strcmp(v, "logfmt"))
		usage_error("%s--log-format '%s': want logfmt or json", who, v);
}

/* No --server: the first nameserver of resolv.conf, port 53. */
static void default_server(const char *who, struct sockaddr_storage *ss)
{
	char ns[INET6_ADDRSTRLEN + IF_NAMESIZE + 8];
	const char *why;
	if (resolv_nameserver("/etc/resolv.conf", ns, sizeof ns) < 0)
		usage_error("%sno --server given and no nameserver found in /etc/resolv.conf", who);
	if ((why = parse_addr(ns, 53, 0, ss)))
		usage_error("%sresolv.conf nameserver '%s': %s", who, ns, why);
}

static void parse_count(const char *s, uint64_t *out)
{
	if (parse_uint(s, UINT64_MAX, out) < 0 || *out == 0)
		usage_error("--count '%s': want a whole number of at least 1", s);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *server = NULL, *source = NULL, *why;
	int monitor = 0, heal = 0, c;

	memset(o, 0, sizeof *o);
	o->name = "kubernetes.default.svc.cluster.local.";
	o->qtype = 1;
	o->interval = NS_PER_S;
	o->timeout = 2 * NS_PER_S;
	struct args a = {.argc = argc, .argv = argv, .ind = 1};
	static const char shortopts[] = "d:n:t:i:w:s:c:vVh";
	while ((c = next_opt(&a, shortopts, longopts)) != -1) {
		switch (c) {
		case 'd': server = a.arg; break;
		case 'n': o->name = a.arg; break;
		case 't': {
			int t = dns_type_from_str(a.arg);
			if (t < 0)
				usage_error("--type '%s': want A, AAAA or a number 1-65535", a.arg);
			o->qtype = (uint16_t)t;
			break;
		}
		case 'i':
			if (parse_duration(a.arg, &o->interval) < 0)
				usage_error("--interval '%s': want a positive duration such as 500ms, 1s, 2m", a.arg);
			break;
		case 'w':
			if (parse_duration(a.arg, &o->timeout) < 0)
				usage_error("--timeout '%s': want a positive duration such as 500ms, 2s", a.arg);
			break;
		case 's': source = a.arg; break;
		case 'c': parse_count(a.arg, &o->count); break;
		case OPT_MONITOR: monitor = 1; break;
		case OPT_HEAL: heal = 1; break;
		case OPT_NO_CONNTRACK: o->no_conntrack = 1; break;
		case OPT_LOG_FORMAT: set_log_format("", a.arg); break;
		case OPT_METRICS: {
			/* ":9797" listens on every IPv4 address. */
			char buf[80];
			fmt(buf, sizeof buf, "%s%s", a.arg[0] == ':' ? "0.0.0.0" : "", a.arg);
			if (!strchr(a.arg, ':') || (why = parse_addr(buf, 0, 0, &o->metrics)))
				usage_error("--metrics-addr '%s': want ADDR:PORT, [V6]:PORT or :PORT", a.arg);
			o->have_metrics = 1;
			break;
		}
		case 'v': logcfg.verbose = 1; break;
		case 'V': write_all(STDOUT_FILENO, PROG " " VERSION "\n", strlen(PROG " " VERSION "\n")); exit(EXIT_OK);
		case 'h': write_all(STDOUT_FILENO, usage_text, strlen(usage_text)); exit(EXIT_OK);
		case ':': usage_error("option '%s' needs a value", a.what);
		default: usage_error("unknown option '%s'", a.what);
		}
	}
	if (a.ind < argc)
		usage_error("unexpected argument '%s'", argv[a.ind]);
	if (monitor && heal)
		usage_error("--monitor and --heal cannot be used together");
	o->mode = heal ? MODE_HEAL : monitor ? MODE_MONITOR : MODE_DELETE;
	if ((why = dns_check_name(o->name)))
		usage_error("--name '%s': %s", o->name, why);
	if (!server)
		default_server("", &o->server);
	else if ((why = parse_addr(server, 53, 0, &o->server)))
		usage_error("--server '%s': %s", server, why);
	if (source) {
		if ((why = parse_addr(source, 0, 1, &o->source)))
			usage_error("--source '%s': %s", source, why);
		if (o->source.ss_family != o->server.ss_family)
			usage_error("--source '%s' is not of the server's address family", source);
		o->have_source = 1;
	}
}

/* ---- the tester's state ------------------------------------------- */

enum cause { CAUSE_NONE, CAUSE_BLACKHOLE, CAUSE_NO_REPLY, CAUSE_NO_ENTRY,
             CAUSE_UNKNOWN, CAUSE_REFUSED, CAUSE_SEND };
static const char *const cause_names[] = {
	"none", "blackhole", "no_reply", "no_entry", "unknown", "refused", "send_error",
};

/* What one look at our own entry found. */
enum ct_state { CT_UNKNOWN, CT_NONE, CT_DNAT, CT_BLACKHOLE, CT_DIRECT };

/* Reply latency histogram bounds, in microseconds (Prometheus buckets,
 * printed in seconds: 0.0005 ... 5). */
static const uint32_t lat_bounds[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};
#define NLAT (sizeof lat_bounds / sizeof *lat_bounds)

struct stats {
	uint64_t sent, answered, timeouts, refused, send_errors, unexpected;
	uint64_t timeouts_by[sizeof cause_names / sizeof *cause_names];   /* by enum cause */
	uint64_t lat_count[NLAT + 1], lat_sum_ns;   /* last: +Inf only */
	uint64_t blackholes, heals, deleted, skipped_ticks;
	uint64_t longest_outage_ns;
};

struct tester {
	struct opts o;
	int fd;
	struct sockaddr_storage src;
	char src_s[64], server_s[64];
	struct ct_tuple flow;         /* our own flow's original tuple */
	struct nl *nl;                /* NULL: no conntrack */
	struct stats st;
	uint8_t query[DNS_MAX_QUERY];
	int qlen;
	/* blackhole state: on from the blackhole event until recovery */
	int bh_active;
	uint32_t bh_id;
	int seen_blackhole;           /* ever: for the exit status */
	int cycle_blackhole;          /* this cycle's query was blackholed */
	int cycle_healed;             /* ... and --heal deleted its entry */
	/* the current outage episode */
	int out_open;
	uint64_t out_start, out_failed;
	enum cause out_cause;
	struct metrics *m;            /* NULL: no --metrics-addr */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Flow events name the flow: src= and server= on every line. */
static void begin_flow(struct tester *t, struct line *l, const char *level,
                       const char *event)
{
	begin(l, level, event);
	kv(l, "src", t->src_s);
	kv(l, "server", t->server_s);
}

/* SIGINT/SIGTERM are blocked except inside ppoll (see wait_for). */
static sigset_t wait_mask;

/* ---- our own conntrack entry -------------------------------------- */

static void log_nl_error(struct tester *t, const char *op, int err)
{
	struct line l;
	begin_flow(t, &l, "error", "conntrack_error");
	kv(&l, "op", op);
	kv(&l, "err", strerror(-err));
	end(&l);
}

/* Conntrack lost for good (EPERM): say so once and go on with DNS. */
static void conntrack_unavailable(struct tester *t, const char *why)
{
	struct line l;
	begin_flow(t, &l, "warn", "conntrack_unavailable");
	kv(&l, "reason", why);
	kv(&l, "effect", "DNS only: blackholes cannot be named, timeouts get cause=unknown");
	end(&l);
	nl_close(t->nl);
	t->nl = NULL;
}

/* The command an operator would type to clear the entry by hand. */
static void fix_command(const struct ct_entry *e, char *buf, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	ct_ntop(e->orig.family, e->orig.src.b, s, sizeof s);
	ct_ntop(e->orig.family, e->orig.dst.b, d, sizeof d);
	fmt(buf, cap, "conntrack -D -f %s -p udp --orig-src %s --orig-dst %s --sport %u --dport %u",
	         e->orig.family == AF_INET6 ? "ipv6" : "ipv4", s, d, e->orig.sport, e->orig.dport);
}

static int delete_entry(struct tester *t, const struct ct_entry *e)
{
	int err = nl_delete(t->nl, e);
	if (err == -ENOENT)
		return err;        /* gone or replaced since we read it: leave it */
	if (err == -EPERM)
		conntrack_unavailable(t, "netlink: operation not permitted (CAP_NET_ADMIN lost)");
	else if (err < 0)
		log_nl_error(t, "delete", err);
	return err;
}

static void blackhole_seen(struct tester *t, const struct ct_entry *e)
{
	char entry[512], fix[256];
	struct line l;
	t->cycle_blackhole = 1;
	if (t->bh_active && t->bh_id == e->id)
		return;                       /* logged when it began */
	t->bh_active = 1;
	t->bh_id = e->id;
	t->seen_blackhole = 1;
	t->st.blackholes++;
	ct_format(e, entry, sizeof entry);
	fix_command(e, fix, sizeof fix);
	begin_flow(t, &l, "error", "blackhole");
	kv(&l, "entry", entry);
	kvu(&l, "id", e->id);
	kv(&l, "explain", "conntrack entry to the VIP without DNAT: every query from this socket skips NAT");
	kv(&l, "fix", fix);
	end(&l);
	if (t->o.mode != MODE_HEAL)
		return;
	if (delete_entry(t, e) == 0) {
		t->st.heals++;
		t->cycle_healed = 1;
		/* This state is over. A new entry can come back with the same
		 * CTA_ID (the kernel hashes the slab address and the tuples),
		 * so the ID alone cannot tell us it is a new blackhole. */
		t->bh_active = 0;
		begin_flow(t, &l, "info", "healed");
		kv(&l, "entry", entry);
		kvu(&l, "id", e->id);
		end(&l);
	}
}

/* One netlink GET of our exact tuple: what state is our flow in?
 * Deletes a DNAT'd entry when may_delete (the query is answered or
 * given up: never while its reply may still be on the way). */
static enum ct_state check_entry(struct tester *t, int may_delete, struct ct_entry *e)
{
	if (!t->nl)
		return CT_UNKNOWN;
	int err = nl_get(t->nl, &t->flow, e);
	if (err == -ENOENT)
		return CT_NONE;
	if (err == -EPERM) {
		conntrack_unavailable(t, "netlink: operation not permitted (no CAP_NET_ADMIN)");
		return CT_UNKNOWN;
	}
	if (err < 0) {
		log_nl_error(t, "get", err);
		return CT_UNKNOWN;
	}
	if (ct_is_dnat(e)) {
		t->bh_active = 0;
		if (may_delete && t->o.mode != MODE_MONITOR && delete_entry(t, e) == 0) {
			t->st.deleted++;
			if (logcfg.verbose) {
				char entry[512];
				struct line l;
				ct_format(e, entry, sizeof entry);
				begin_flow(t, &l, "debug", "conntrack_deleted");
				kvu(&l, "id", e->id);
				kv(&l, "entry", entry);
				end(&l);
			}
		}
		return CT_DNAT;
	}
	if (ct_seen_reply(e)) {
		t->bh_active = 0;
		return CT_DIRECT;             /* the VIP answers for itself */
	}
	blackhole_seen(t, e);
	return CT_BLACKHOLE;
}

/* The entry check_entry() filled in, if its answer came with one. */
static const struct ct_entry *found(enum ct_state cs, const struct ct_entry *e)
{
	return cs == CT_UNKNOWN || cs == CT_NONE ? NULL : e;
}

/* ---- outage accounting -------------------------------------------- */

static void failed(struct tester *t, enum cause c)
{
	if (!t->out_open) {
		t->out_open = 1;
		t->out_start = now_ns();
		t->out_failed = 0;
		t->out_cause = c;
	}
	t->out_failed++;
	if (c == CAUSE_BLACKHOLE || t->out_cause != CAUSE_BLACKHOLE)
		t->out_cause = c;             /* a blackhole names the episode */
}

static void answered(struct tester *t)
{
	t->bh_active = 0;
	if (!t->out_open)
		return;
	uint64_t len = now_ns() - t->out_start;
	if (len > t->st.longest_outage_ns)
		t->st.longest_outage_ns = len;
	struct line l;
	begin_flow(t, &l, "info", "recovered");
	kvu(&l, "outage_ms", len / NS_PER_MS);
	kvu(&l, "failed", t->out_failed);
	kv(&l, "cause", cause_names[t->out_cause]);
	end(&l);
	t->out_open = 0;
}

static void log_stats(struct tester *t, const char *event)
{
	struct stats *s = &t->st;
	uint64_t longest = s->longest_outage_ns;
	if (t->out_open && now_ns() - t->out_start > longest)
		longest = now_ns() - t->out_start;
	struct line l;
	begin_flow(t, &l, "info", event);
	kvu(&l, "sent", s->sent);
	kvu(&l, "answered", s->answered);
	kvu(&l, "timeouts", s->timeouts);
	kvu(&l, "refused", s->refused);
	kvu(&l, "send_errors", s->send_errors);
	kvu(&l, "blackholes", s->blackholes);
	kvu(&l, "heals", s->heals);
	kvu(&l, "deleted", s->deleted);
	kvu(&l, "unexpected", s->unexpected);
	kvu(&l, "skipped_ticks", s->skipped_ticks);
	kvu(&l, "longest_outage_ms", longest / NS_PER_MS);
	kv(&l, "blackholed_now", t->bh_active ? "true" : "false");
	if (logcfg.dropped)
		kvu(&l, "log_lines_dropped", logcfg.dropped);
	end(&l);
}

/* ---- metrics: a tiny, strict HTTP/1.x responder for Prometheus ---- */

/* Served from the query loop itself (no threads): every socket is
 * non-blocking, every connection has a fixed-size buffer and a deadline,
 * so a slow or hostile client costs at most MAX_CLIENTS slots for
 * HTTP_DEADLINE and can never delay a query or grow memory. */
#define MAX_CLIENTS 8
#define HTTP_REQ_MAX 2048
#define HTTP_BODY_MAX 16384        /* 30 series x the longest labels */
#define HTTP_OUT_MAX (HTTP_BODY_MAX + 256)
#define HTTP_DEADLINE (2 * NS_PER_S)

struct client {
	int fd;                       /* -1: free */
	uint64_t deadline;
	size_t in, out, sent;
	char req[HTTP_REQ_MAX];
	char resp[HTTP_OUT_MAX];
};

struct metrics {
	int lfd;
	struct client c[MAX_CLIENTS];
};

int http_parse_request(const char *buf, size_t len, size_t cap, int *head);

/* Decides the answer to the request in buf[0..len). Returns 0 while the
 * headers are incomplete, else the status: 200, 400, 404, 405, 431.
 * *head is set for HEAD (headers without body). Never reads past len. */
int http_parse_request(const char *buf, size_t len, size_t cap, int *head)
{
	const char *end = NULL;
	*head = 0;
	for (size_t i = 0; i + 1 < len && !end; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			end = buf + i;
		else if (i + 3 < len && !memcmp(buf + i, "\r\n\r\n", 4))
			end = buf + i;
	}
	if (!end)
		return len >= cap ? 431 : 0;
	/* The request line ends at the first LF, which the blank line that
	 * ends the headers guarantees exists. */
	const char *nl = memchr(buf, '\n', len);
	size_t linelen = (size_t)(nl - buf);
	if (linelen && buf[linelen - 1] == '\r')
		linelen--;
	/* METHOD SP TARGET SP HTTP/1.x, nothing else, no control bytes. */
	const char *sp1 = memchr(buf, ' ', linelen);
	if (!sp1 || sp1 == buf)
		return 400;
	const char *sp2 = memchr(sp1 + 1, ' ', linelen - (size_t)(sp1 + 1 - buf));
	if (!sp2 || sp2 == sp1 + 1)
		return 400;
	size_t mlen = (size_t)(sp1 - buf), tlen = (size_t)(sp2 - sp1 - 1);
	size_t vlen = linelen - (size_t)(sp2 + 1 - buf);
	for (size_t i = 0; i < mlen; i++)
		if (buf[i] < 'A' || buf[i] > 'Z')
			return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= ' ' || sp1[1 + i] == 0x7f)
			return 400;
	if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.0", 8) && memcmp(sp2 + 1, "HTTP/1.1", 8)))
		return 400;
	int get = mlen == 3 && !memcmp(buf, "GET", 3);
	*head = mlen == 4 && !memcmp(buf, "HEAD", 4);
	if (!get && !*head)
		return 405;
	const char *target = sp1 + 1;
	if (tlen < 8 || memcmp(target, "/metrics", 8) || (tlen > 8 && target[8] != '?'))
		return 404;
	return 200;
}

/* Appends to a fixed buffer; output past the end is dropped. */
static void out(char *buf, size_t cap, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void out(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	if (*n >= cap)
		return;
	va_start(ap, fmt);
	size_t w = vfmt(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	*n = *n + w < cap ? *n + w : cap;
}

#define M "dns_blackhole_tester_"

/* Microseconds as the shortest decimal seconds: 0.0005, 1, 2.5. */
static void fmt_seconds_us(uint32_t us, char *buf, size_t cap)
{
	char frac[8];
	unsigned f = us % 1000000;
	size_t len = fmt(frac, sizeof frac, ".%06u", f);
	while (len > 1 && frac[len - 1] == '0')
		frac[--len] = '\0';
	fmt(buf, cap, "%u%s", us / 1000000, f ? frac : "");
}

static size_t render_metrics(struct tester *t, char *b, size_t cap)
{
	const struct stats *s = &t->st;
	const char *node = getenv("NODE_NAME");
	char lab[512];
	size_t n = 0;
	/* Label values are addresses and a node name: no '"', '\' or '\n'
	 * can occur in an address; a node name with them is cut there. */
	char nodev[254] = "";                /* a node name: up to 253 */
	if (node)
		fmt(nodev, sizeof nodev, "%.*s", (int)strcspn(node, "\"\\\n"), node);
	fmt(lab, sizeof lab, "server=\"%s\",src=\"%s\"%s%s%s", t->server_s, t->src_s,
	         *nodev ? ",node=\"" : "", nodev, *nodev ? "\"" : "");
	static const struct { const char *name, *help; size_t off; } counters[] = {
		{"queries_sent_total", "DNS queries sent.", offsetof(struct stats, sent)},
		{"queries_answered_total", "Queries answered by a matching reply.", offsetof(struct stats, answered)},
		{"refused_total", "Queries refused (ICMP port unreachable).", offsetof(struct stats, refused)},
		{"send_errors_total", "Queries that could not be sent.", offsetof(struct stats, send_errors)},
		{"unexpected_replies_total", "Datagrams ignored: wrong ID, question or format.", offsetof(struct stats, unexpected)},
		{"conntrack_deletions_total", "Own DNAT'd conntrack entries deleted.", offsetof(struct stats, deleted)},
		{"blackholes_total", "Blackholes seen (own entry to the VIP without DNAT, never replied).", offsetof(struct stats, blackholes)},
		{"heals_total", "Blackholed own entries deleted by --heal.", offsetof(struct stats, heals)},
	};
	for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
		uint64_t v;
		memcpy(&v, (const char *)s + counters[i].off, sizeof v);
		out(b, cap, &n, "# HELP " M "%s %s\n# TYPE " M "%s counter\n" M "%s{%s} %" PRIu64 "\n",
		    counters[i].name, counters[i].help, counters[i].name, counters[i].name, lab, v);
	}
	out(b, cap, &n, "# HELP " M "timeouts_total Queries that got no reply in time, by cause.\n"
	                "# TYPE " M "timeouts_total counter\n");
	for (int c = CAUSE_BLACKHOLE; c <= CAUSE_UNKNOWN; c++)
		out(b, cap, &n, M "timeouts_total{%s,cause=\"%s\"} %" PRIu64 "\n", lab, cause_names[c], s->timeouts_by[c]);
	out(b, cap, &n, "# HELP " M "blackholed 1 while our own flow is blackholed.\n# TYPE " M "blackholed gauge\n"
	                M "blackholed{%s} %d\n", lab, t->bh_active);
	uint64_t age = t->out_open ? now_ns() - t->out_start : 0;
	out(b, cap, &n, "# HELP " M "outage_seconds Age of the current outage (0: none).\n# TYPE " M "outage_seconds gauge\n"
	                M "outage_seconds{%s} %" PRIu64 ".%03" PRIu64 "\n", lab, age / NS_PER_S, age % NS_PER_S / NS_PER_MS);
	out(b, cap, &n, "# HELP " M "reply_latency_seconds Time from query to matching reply.\n"
	                "# TYPE " M "reply_latency_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i <= NLAT; i++) {
		char le[16];
		cum += s->lat_count[i];
		if (i < NLAT)
			fmt_seconds_us(lat_bounds[i], le, sizeof le);
		else
			strcpy(le, "+Inf");
		out(b, cap, &n, M "reply_latency_seconds_bucket{%s,le=\"%s\"} %" PRIu64 "\n", lab, le, cum);
	}
	out(b, cap, &n, M "reply_latency_seconds_sum{%s} %" PRIu64 ".%09" PRIu64 "\n", lab,
	    s->lat_sum_ns / NS_PER_S, s->lat_sum_ns % NS_PER_S);
	out(b, cap, &n, M "reply_latency_seconds_count{%s} %" PRIu64 "\n", lab, cum);
	out(b, cap, &n, "# HELP " M "build_info Build of the running tester.\n# TYPE " M "build_info gauge\n"
	                M "build_info{version=\"%s\"} 1\n", VERSION);
	return n;
}

static void record_latency(struct stats *s, uint64_t ns)
{
	size_t i = 0;
	while (i < NLAT && ns > (uint64_t)lat_bounds[i] * 1000)
		i++;
	s->lat_count[i]++;
	s->lat_sum_ns += ns;
}

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	}
	return "Service Unavailable";
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Builds the whole response into c->resp: headers, then the body. A
 * body that does not fit is a 500, never a page cut short. */
static void client_respond(struct tester *t, struct client *c, int code, int head)
{
	static char body[HTTP_BODY_MAX];
	size_t blen = 0;
	if (code == 200 && (blen = render_metrics(t, body, sizeof body)) >= sizeof body)
		code = 500;
	if (code != 200)
		blen = fmt(body, sizeof body, "%d %s\n", code, status_text(code));
	c->out = 0;
	out(c->resp, sizeof c->resp, &c->out,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
	    code, status_text(code),
	    code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
	    blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && c->out + blen <= sizeof c->resp) {
		memcpy(c->resp + c->out, body, blen);
		c->out += blen;
	}
	c->sent = 0;
}

/* One request per connection: read it, answer it, then half-close and
 * read until the client closes too. Closing with unread request bytes
 * would send a TCP reset that can overtake the answer. */
static void client_io(struct tester *t, struct client *c, short revents)
{
	if (c->out == 0 || c->sent == c->out) {   /* reading, or draining */
		char *dst = c->out ? c->req : c->req + c->in;
		size_t room = c->out ? sizeof c->req : sizeof c->req - c->in;
		ssize_t n = recv(c->fd, dst, room, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(c);
			return;
		}
		if (c->out || n < 0)
			return;
		c->in += (size_t)n;
		int head, code = http_parse_request(c->req, c->in, sizeof c->req, &head);
		if (code)
			client_respond(t, c, code, head);
		return;
	}
	if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
		return;
	ssize_t n = send(c->fd, c->resp + c->sent, c->out - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		c->sent += (size_t)n;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		client_close(c);
	else if (c->sent == c->out)
		shutdown(c->fd, SHUT_WR);      /* FIN after the answer */
}

static void metrics_accept(struct metrics *m)
{
	for (;;) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct client *c = NULL;
		for (int i = 0; i < MAX_CLIENTS && !c; i++)
			if (m->c[i].fd < 0)
				c = &m->c[i];
		if (!c) {                          /* all busy: say so, never wait */
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				"Content-Length: 0\r\nConnection: close\r\n\r\n";
			ssize_t w = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			(void)w;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in = c->out = c->sent = 0;
		c->deadline = now_ns() + HTTP_DEADLINE;
	}
}

static const char *metrics_open(struct tester *t, const struct sockaddr_storage *addr)
{
	static struct metrics m;
	int on = 1;
	m.lfd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m.lfd < 0)
		return strerror(errno);
	setsockopt(m.lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(m.lfd, (const struct sockaddr *)addr, sa_len(addr)) < 0 || listen(m.lfd, 16) < 0) {
		const char *why = strerror(errno);
		close(m.lfd);
		return why;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		m.c[i].fd = -1;
	t->m = &m;
	return NULL;
}

/* ---- waiting: the one place the loop sleeps ------------------------ */

/* Sleeps until deadline (monotonic) or until fd is readable (fd >= 0),
 * serving metrics clients meanwhile. SIGINT/SIGTERM are blocked except
 * inside ppoll, so a signal cannot slip in between the check and the
 * sleep. Returns 1 readable, 0 at the deadline, -1 when asked to stop. */
static int wait_for(struct tester *t, int fd, uint64_t deadline)
{
	struct pollfd p[2 + MAX_CLIENTS];
	struct client *who[2 + MAX_CLIENTS];
	for (;;) {
		if (stop_signal)
			return -1;
		uint64_t now = now_ns(), until = deadline;
		if (now >= deadline)
			return 0;
		nfds_t n = 0;
		p[n++] = (struct pollfd){.fd = fd, .events = POLLIN};   /* fd -1: ignored */
		if (t->m) {
			p[n++] = (struct pollfd){.fd = t->m->lfd, .events = POLLIN};
			for (int i = 0; i < MAX_CLIENTS; i++) {
				struct client *c = &t->m->c[i];
				if (c->fd < 0)
					continue;
				if (now >= c->deadline) {   /* too slow: drop it */
					client_close(c);
					continue;
				}
				if (c->deadline < until)
					until = c->deadline;
				who[n] = c;
				int writing = c->out && c->sent < c->out;
				p[n++] = (struct pollfd){.fd = c->fd, .events = writing ? POLLOUT : POLLIN};
			}
		}
		uint64_t left = until - now;
		struct timespec ts = {(time_t)(left / NS_PER_S), (long)(left % NS_PER_S)};
		int r = ppoll(p, n, &ts, &wait_mask);
		if (r <= 0)
			continue;                   /* EINTR or a deadline: recheck */
		if (fd >= 0 && (p[0].revents & (POLLIN | POLLERR)))
			return 1;
		if (!t->m)
			continue;
		if (p[1].revents & POLLIN)
			metrics_accept(t->m);
		for (nfds_t i = 2; i < n; i++)
			if (p[i].revents)
				client_io(t, who[i], p[i].revents);
	}
}

/* ---- one cycle ---------------------------------------------------- */

enum rx { RX_NONE, RX_ANSWER, RX_REFUSED };

/* Reads every datagram waiting; ignores (and counts) those that do not
 * answer our query. Returns RX_ANSWER with r filled, RX_REFUSED for an
 * ICMP port unreachable, or RX_NONE. */
static enum rx read_replies(struct tester *t, struct dns_reply *r, int *bad_logged)
{
	uint8_t buf[4096];
	for (;;) {
		ssize_t n = recv(t->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED)
				return RX_REFUSED;
			return RX_NONE;        /* EAGAIN, or an ICMP error we skip */
		}
		int rc = (size_t)n > sizeof buf ? DNS_ESHORT
		       : dns_parse_reply(buf, (size_t)n, t->query, (size_t)t->qlen, r);
		if (rc == DNS_OK)
			return RX_ANSWER;
		t->st.unexpected++;
		if (!*bad_logged || logcfg.verbose) {   /* a flood: one line a cycle */
			struct line l;
			begin_flow(t, &l, "warn", "unexpected_reply");
			kv(&l, "reason", (size_t)n > sizeof buf ? "oversized" : dns_result_str(rc));
			kvu(&l, "bytes", (uint64_t)n);
			end(&l);
			*bad_logged = 1;
		}
	}
}

static void log_reply(struct tester *t, const struct dns_reply *r, uint64_t rtt)
{
	char addr[INET6_ADDRSTRLEN] = "", tbuf[16];
	struct line l;
	int bad = r->rcode != 0;
	if (!logcfg.verbose && !bad)
		return;
	if (r->addr_family)
		ct_ntop(r->addr_family, r->addr, addr, sizeof addr);
	begin_flow(t, &l, bad ? "warn" : "info", "reply");
	kvu(&l, "seq", t->st.sent);
	kvu(&l, "id", r->id);
	kv(&l, "rcode", dns_rcode_str(r->rcode));
	kv(&l, "type", dns_type_str(t->o.qtype, tbuf, sizeof tbuf));
	kvu(&l, "answers", r->ancount);
	if (*addr)
		kv(&l, "addr", addr);
	if (r->tc)
		kv(&l, "truncated", "true");
	kv_ms(&l, "rtt_ms", rtt);
	end(&l);
}

/* e: our entry as the last look found it, or NULL (none, or unknown). */
static void log_failure(struct tester *t, const char *event, enum cause c,
                        uint64_t waited, const struct ct_entry *e, const char *err)
{
	char entry[512];
	struct line l;
	begin_flow(t, &l, "error", event);
	kvu(&l, "seq", t->st.sent);
	kv(&l, "cause", cause_names[c]);
	if (waited)
		kv_ms(&l, "waited_ms", waited);
	if (err)
		kv(&l, "err", err);
	if (t->cycle_healed)                 /* given up early: entry deleted */
		kv(&l, "healed", "true");
	if (e) {
		ct_format(e, entry, sizeof entry);
		kv(&l, "entry", entry);
	}
	end(&l);
	failed(t, c);
}

/* Query IDs from getrandom(2), 32 at a time: one syscall per 32 cycles. */
static uint16_t random_id(void)
{
	static uint16_t pool[32];
	static size_t left;
	if (!left) {
		if (getrandom(pool, sizeof pool, GRND_NONBLOCK) == (ssize_t)sizeof pool) {
			left = sizeof pool / sizeof *pool;
		} else {
			/* No getrandom (old kernel, strict seccomp): the clock's low bits. */
			uint64_t n = now_ns();
			return (uint16_t)(n ^ n >> 16 ^ n >> 32);
		}
	}
	return pool[--left];
}

/* How long after sending to look at our entry if no reply has come:
 * soon enough to name a blackhole within one interval, late enough
 * that a healthy server has answered and set SEEN_REPLY. */
static uint64_t probe_delay(const struct opts *o)
{
	uint64_t d = (o->interval < o->timeout ? o->interval : o->timeout) / 4;
	return d > 250 * NS_PER_MS ? 250 * NS_PER_MS : d;
}

static void cycle(struct tester *t)
{
	struct ct_entry e;
	struct dns_reply r;
	int bad_logged = 0;
	enum ct_state cs;

	t->cycle_blackhole = t->cycle_healed = 0;
	/* The query is encoded once at start; each cycle gets a fresh ID. */
	uint16_t id = random_id();
	t->query[0] = (uint8_t)(id >> 8);
	t->query[1] = (uint8_t)id;
	uint64_t sent_at = now_ns();
	if (send(t->fd, t->query, (size_t)t->qlen, 0) < 0) {
		int err = errno;
		enum cause c = err == ECONNREFUSED ? CAUSE_REFUSED : CAUSE_SEND;
		t->st.sent++;
		if (c == CAUSE_REFUSED)
			t->st.refused++;
		else
			t->st.send_errors++;
		char why[160];
		fmt(why, sizeof why, "%s%s", strerror(err), err == EPERM ?
		         " (netfilter dropped it: conntrack table full, or a DROP/REJECT rule)" : "");
		log_failure(t, c == CAUSE_REFUSED ? "refused" : "send_failed", c, 0, NULL, why);
		check_entry(t, 1, &e);
		return;
	}
	t->st.sent++;

	uint64_t deadline = sent_at + t->o.timeout;
	uint64_t probe_at = sent_at + probe_delay(&t->o);
	int probed = t->nl == NULL;
	for (;;) {
		int w = wait_for(t, t->fd, probed ? deadline : probe_at);
		if (w < 0)
			return;                   /* stopping: this query does not count */
		if (w == 0) {
			if (!probed) {
				probed = 1;
				check_entry(t, 0, &e);
				/* Healed: this query went to the VIP untranslated
				 * and its entry is gone; no answer can come. Give
				 * it up now so the next tick is not delayed. */
				if (!t->cycle_healed)
					continue;
			}
			break;                    /* timed out */
		}
		enum rx rx = read_replies(t, &r, &bad_logged);
		if (rx == RX_ANSWER) {
			uint64_t rtt = now_ns() - sent_at;
			t->st.answered++;
			record_latency(&t->st, rtt);
			log_reply(t, &r, rtt);
			answered(t);
			check_entry(t, 1, &e);
			return;
		}
		if (rx == RX_REFUSED) {
			t->st.refused++;
			cs = check_entry(t, 1, &e);
			log_failure(t, "refused", CAUSE_REFUSED, now_ns() - sent_at, found(cs, &e),
			            "connection refused (ICMP port unreachable)");
			return;
		}
	}

	/* Timed out: the same lookup says why. */
	t->st.timeouts++;
	cs = t->cycle_healed ? CT_BLACKHOLE : check_entry(t, 1, &e);
	enum cause c = CAUSE_UNKNOWN;
	if (t->cycle_blackhole || cs == CT_BLACKHOLE)
		c = CAUSE_BLACKHOLE;
	else if (cs == CT_DNAT || cs == CT_DIRECT)
		c = CAUSE_NO_REPLY;
	else if (cs == CT_NONE)
		c = CAUSE_NO_ENTRY;
	t->st.timeouts_by[c]++;
	log_failure(t, "timeout", c, now_ns() - sent_at, found(cs, &e), NULL);
}

/* ---- scan: every blackholed flow to the DNS VIPs, node-wide -------- */

#define SCAN_MAX_VIPS 16
#define SCAN_TRIES 3

struct scan {
	struct ct_tuple vips[SCAN_MAX_VIPS];
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
"Lists every conntrack entry to one of the VIP:PORTs (default: resolv.conf's\n"
"nameserver, port 53) that is not DNAT'd and has never seen a reply: a client\n"
"blackholed by kubernetes/kubernetes#126468. With --fix, deletes exactly those\n"
"entries, each guarded by its conntrack ID.\n"
"\n"
"  -d, --server VIP[:PORT]   a Service VIP to check (repeatable, IPv4 or IPv6)\n"
"  -p, --proto udp|tcp       protocol (default udp)\n"
"      --fix                 delete the entries listed\n"
"      --filter kernel|user  where the dump is filtered (default kernel, falling\n"
"                            back to user space if the kernel refuses)\n"
"      --log-format FMT      logfmt (default) or json\n"
"\n"
"Exit status: 0 none found; 3 found (with --fix: found and all deleted);\n"
"1 the dump or a deletion failed; 2 usage.\n";

static int scan_collect(const struct ct_entry *e, void *arg)
{
	struct scan *s = arg;
	s->examined++;
	if (ct_is_dnat(e) || ct_seen_reply(e))
		return 0;                       /* healthy, or a local server */
	for (size_t i = 0; i < s->nfound; i++)
		if (s->found[i].id == e->id && ct_tuple_equal(&s->found[i].orig, &e->orig))
			return 0;               /* seen twice in a changing table */
	if (s->nfound == s->cap) {             /* grow: mmap, no malloc */
		size_t cap = s->cap ? s->cap * 2 : 256;
		void *p = s->cap ? mremap(s->found, s->cap * sizeof *s->found, cap * sizeof *s->found, MREMAP_MAYMOVE)
		                 : mmap(NULL, cap * sizeof *s->found, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			s->oom = 1;
			return -ENOMEM;
		}
		s->found = p;
		s->cap = cap;
	}
	s->found[s->nfound++] = *e;
	return 0;
}

static void scan_args(int argc, char **argv, struct scan *s)
{
	static const struct longopt opts[] = {
		{"server", 1, 'd'},
		{"proto", 1, 'p'},
		{"fix", 0, 'f'},
		{"filter", 1, 'F'},
		{"log-format", 1, 'L'},
		{"help", 0, 'h'},
		{0, 0, 0},
	};
	struct sockaddr_storage ss;
	const char *why;
	int c;
	memset(s, 0, sizeof *s);
	s->proto = IPPROTO_UDP;
	s->kernel_filter = 1;
	struct args a = {.argc = argc, .argv = argv, .ind = 1};
	static const char shortopts[] = "d:p:h";
	while ((c = next_opt(&a, shortopts, opts)) != -1) {
		switch (c) {
		case 'd':
			if ((why = parse_addr(a.arg, 53, 0, &ss)))
				usage_error("scan --server '%s': %s", a.arg, why);
			if (s->nvips == SCAN_MAX_VIPS)
				usage_error("scan: at most %d --server VIPs", SCAN_MAX_VIPS);
			sockaddr_to_tuple(&ss, &s->vips[s->nvips++]);
			break;
		case 'p':
			if (!strcmp(a.arg, "udp"))
				s->proto = IPPROTO_UDP;
			else if (!strcmp(a.arg, "tcp"))
				s->proto = IPPROTO_TCP;
			else
				usage_error("scan --proto '%s': want udp or tcp", a.arg);
			break;
		case 'f': s->fix = 1; break;
		case 'F':
			if (!strcmp(a.arg, "user"))
				s->kernel_filter = 0;
			else if (strcmp(a.arg, "kernel"))
				usage_error("scan --filter '%s': want kernel or user", a.arg);
			break;
		case 'L': set_log_format("scan: ", a.arg); break;
		case 'h': write_all(STDOUT_FILENO, scan_usage, strlen(scan_usage)); exit(EXIT_OK);
		case ':': usage_error("scan: option '%s' needs a value", a.what);
		default: usage_error("scan: unknown option '%s'", a.what);
		}
	}
	if (a.ind < argc)
		usage_error("scan: unexpected argument '%s'", argv[a.ind]);
	if (!s->nvips) {
		default_server("scan: ", &ss);
		sockaddr_to_tuple(&ss, &s->vips[s->nvips++]);
	}
}

static void scan_log_entry(const char *level, const char *event, const struct ct_entry *e,
                           const char *err)
{
	char entry[512], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], vip[INET6_ADDRSTRLEN + 8];
	struct line l;
	ct_format(e, entry, sizeof entry);
	ct_ntop(e->orig.family, e->orig.src.b, src, sizeof src);
	ct_ntop(e->orig.family, e->orig.dst.b, dst, sizeof dst);
	fmt(vip, sizeof vip, e->orig.family == AF_INET6 ? "[%s]:%u" : "%s:%u", dst, e->orig.dport);
	begin(&l, level, event);
	kv(&l, "vip", vip);
	kv(&l, "client", src);
	kvu(&l, "sport", e->orig.sport);
	kvu(&l, "id", e->id);
	if (err)
		kv(&l, "err", err);
	kv(&l, "entry", entry);
	end(&l);
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
		err = nl_dump(*nl, &f, scan_collect, s, kernel_filtered);
		if (err == 0 || s->oom || err == -EPERM)
			return err;
		struct line l;
		begin(&l, "warn", "scan_retry");
		kvu(&l, "try", (uint64_t)try);
		kv(&l, "err", strerror(-err));
		end(&l);
		/* The kernel is still in the middle of the broken dump on this
		 * socket and answers EBUSY to a new one: start afresh. */
		nl_close(*nl);
		if (!(*nl = nl_open()))
			return -errno;
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

static int scan_main(int argc, char **argv)
{
	static struct scan s;
	int kernel_filtered = 0, failures = 0;
	uint64_t deleted = 0;
	struct line l;
	signal(SIGPIPE, SIG_IGN);
	scan_args(argc, argv, &s);
	struct nl *nl = nl_open();
	if (!nl) {
		err_line("scan: cannot open a netfilter netlink socket: %s", strerror(errno));
		return EXIT_FAILED;
	}
	int err = scan_dump(&nl, &s, &kernel_filtered);
	if (err < 0) {
		begin(&l, "error", "scan_failed");
		kv(&l, "err", s.oom ? "out of memory" : strerror(-err));
		if (err == -EPERM)
			kv(&l, "hint", "needs CAP_NET_ADMIN in the node's network namespace");
		end(&l);
		nl_close(nl);
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < s.nfound; i++)
		scan_log_entry("error", "blackholed", &s.found[i], NULL);
	for (size_t i = 0; s.fix && i < s.nfound; i++) {
		err = scan_fix_one(nl, &s.found[i]);
		if (err == 0) {
			deleted++;
			scan_log_entry("info", "scan_deleted", &s.found[i], NULL);
		} else if (err == -ENOENT) {   /* gone or replaced: leave it */
			scan_log_entry("warn", "scan_gone", &s.found[i], "entry gone or replaced since listed");
		} else {
			failures++;
			scan_log_entry("error", "scan_delete_failed", &s.found[i], strerror(-err));
		}
	}
	begin(&l, s.nfound ? "error" : "info", "scan_summary");
	kvu(&l, "examined", s.examined);
	kvu(&l, "blackholed", s.nfound);
	kvu(&l, "deleted", deleted);
	kv(&l, "filter", kernel_filtered ? "kernel" : "user");
	kv(&l, "proto", s.proto == IPPROTO_TCP ? "tcp" : "udp");
	end(&l);
	nl_close(nl);
	if (s.found)
		munmap(s.found, s.cap * sizeof *s.found);
	if (failures)
		return EXIT_FAILED;
	return s.nfound ? EXIT_BLACKHOLE : EXIT_OK;
}

/* ---- set-up and the loop ------------------------------------------ */

static void setup_error(const char *what, int err) __attribute__((noreturn));
static void setup_error(const char *what, int err)
{
	err_line("%s: %s", what, strerror(err));
	exit(EXIT_USAGE);
}

/* The one socket: bound (if asked), connected, kept for life. */
static void open_socket(struct tester *t)
{
	const struct opts *o = &t->o;
	char what[128];
	t->fd = socket(o->server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (t->fd < 0)
		setup_error("socket", errno);
	if (o->have_source && bind(t->fd, (const struct sockaddr *)&o->source, sa_len(&o->source)) < 0) {
		fmt_addr(&o->source, t->src_s, sizeof t->src_s);
		fmt(what, sizeof what, "bind %s", t->src_s);
		setup_error(what, errno);
	}
	if (connect(t->fd, (const struct sockaddr *)&o->server, sa_len(&o->server)) < 0) {
		fmt(what, sizeof what, "connect %s", t->server_s);
		setup_error(what, errno);
	}
	socklen_t len = sizeof t->src;
	if (getsockname(t->fd, (struct sockaddr *)&t->src, &len) < 0)
		setup_error("getsockname", errno);
	fmt_addr(&t->src, t->src_s, sizeof t->src_s);

	/* Our flow as conntrack sees it in the original direction. */
	struct ct_tuple me;
	sockaddr_to_tuple(&o->server, &t->flow);
	sockaddr_to_tuple(&t->src, &me);
	t->flow.src = me.dst;
	t->flow.sport = me.dport;
}

/* Opens ctnetlink and proves it works with one GET of our own tuple.
 * Returns NULL and a reason when conntrack cannot be used. */
static struct nl *open_conntrack(struct tester *t, const char **why)
{
	static char reason[160];
	struct ct_entry e;
	struct nl *nl = nl_open();
	if (!nl) {
		fmt(reason, sizeof reason, "cannot open a netfilter netlink socket: %s", strerror(errno));
		*why = reason;
		return NULL;
	}
	int err = nl_get(nl, &t->flow, &e);
	if (err == 0 || err == -ENOENT)
		return nl;
	fmt(reason, sizeof reason, "ctnetlink refused a lookup: %s%s", strerror(-err),
	         err == -EPERM ? " (no CAP_NET_ADMIN)" : "");
	*why = reason;
	nl_close(nl);
	return NULL;
}

static void log_start(struct tester *t)
{
	static const char *const modes[] = {"delete", "monitor", "heal"};
	char iv[32], to[32], tbuf[16];
	const char *node = getenv("NODE_NAME");
	struct line l;
	fmt_duration(t->o.interval, iv, sizeof iv);
	fmt_duration(t->o.timeout, to, sizeof to);
	begin_flow(t, &l, "info", "start");
	kv(&l, "version", VERSION);
	kv(&l, "name", t->o.name);
	kv(&l, "type", dns_type_str(t->o.qtype, tbuf, sizeof tbuf));
	kv(&l, "interval", iv);
	kv(&l, "timeout", to);
	kv(&l, "mode", t->nl ? modes[t->o.mode] : "no-conntrack");
	kv(&l, "conntrack", t->nl ? "on" : "off");
	if (t->o.count)
		kvu(&l, "count", t->o.count);
	if (node && *node)
		kv(&l, "node", node);
	if (t->m) {
		char a[64];
		fmt_addr(&t->o.metrics, a, sizeof a);
		kv(&l, "metrics", a);
	}
	kvu(&l, "pid", (uint64_t)getpid());
	end(&l);
}

/* Sockets must never land on fd 0-2: with stdout closed, the query
 * socket would get fd 1 and every log line would be sent to the DNS
 * server. Hold any closed one with /dev/null, or (in an empty root with
 * no /dev) an unconnected UDP socket, on which a write just fails. */
static void hold_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			n = socket(AF_INET, SOCK_DGRAM, 0);
		if (n >= 0 && n != fd)             /* lowest free fd: it is fd */
			close(n);
	}
}

static void setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t block;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);             /* a closed stdout is not fatal */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
}

static int run(struct tester *t)
{
	uint64_t t0 = now_ns(), k = 0, next_stats = t0 + STATS_EVERY;
	while (!stop_signal) {
		if (wait_for(t, -1, t0 + k * t->o.interval) < 0)
			break;
		cycle(t);
		if (t->o.count && t->st.sent >= t->o.count)
			break;
		/* Next tick on the absolute grid; skip the ones we overran. */
		uint64_t now = now_ns(), next = k + 1;
		if (now > t0 + next * t->o.interval)
			next = (now - t0) / t->o.interval + 1;
		t->st.skipped_ticks += next - k - 1;
		k = next;
		if (now >= next_stats) {
			log_stats(t, "stats");
			next_stats += STATS_EVERY * ((now - next_stats) / STATS_EVERY + 1);
		}
	}
	log_stats(t, "stats");
	struct line l;
	begin_flow(t, &l, "info", "stop");
	if (stop_signal)
		kv(&l, "reason", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
	else
		kv(&l, "reason", "count");
	end(&l);
	if (t->seen_blackhole)
		return EXIT_BLACKHOLE;
	if (!stop_signal && t->st.answered < t->st.sent)
		return EXIT_FAILED;
	return EXIT_OK;
}

/* Tests and fuzz targets link this file with their own main(). */
#ifdef NO_MAIN
int tester_main(int argc, char **argv);
#define main tester_main
#endif

int main(int argc, char **argv)
{
	static struct tester t;               /* zeroed, off the stack */
	const char *why = NULL;
	hold_std_fds();
	if (argc > 1 && !strcmp(argv[1], "scan"))
		return scan_main(argc - 1, argv + 1);
	parse_args(argc, argv, &t.o);
	fmt_addr(&t.o.server, t.server_s, sizeof t.server_s);
	setup_signals();
	open_socket(&t);
	t.qlen = dns_build_query(t.query, sizeof t.query, 0, t.o.name, t.o.qtype);
	/* Wake-ups within a microsecond of the tick, not the default 50. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
	if (t.o.have_metrics) {
		const char *err = metrics_open(&t, &t.o.metrics);
		char a[64];
		fmt_addr(&t.o.metrics, a, sizeof a);
		if (err) {
			err_line("cannot serve metrics on %s: %s", a, err);
			return EXIT_USAGE;
		}
	}
	if (!t.o.no_conntrack)
		t.nl = open_conntrack(&t, &why);
	log_start(&t);
	if (why)
		conntrack_unavailable(&t, why);
	int rc = run(&t);
	nl_close(t.nl);
	close(t.fd);
	if (t.m) {
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (t.m->c[i].fd >= 0)
				client_close(&t.m->c[i]);
		close(t.m->lfd);
	}
	return rc;
}
