/* opts_test.c - table tests for main.c's option-value parsers, and its
 * stdio-free formatters held against glibc's (this test is built with
 * glibc): vfmt() against snprintf(), fmt_rfc3339() against gmtime_r(),
 * and nl.c's ct_ntop() against inet_ntop(). */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

int parse_duration(const char *s, uint64_t *out);
const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss);
size_t fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
void fmt_rfc3339(const struct timespec *ts, char *buf, size_t cap);

static int failures, checks;

#define EXPECT(cond, ...) do { checks++; if (!(cond)) { failures++; \
	printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static void durations(void)
{
	static const struct { const char *in; int ok; uint64_t ns; } t[] = {
		{"1s", 1, 1000000000}, {"500ms", 1, 500000000}, {"2m", 1, 120000000000},
		{"1", 1, 1000000000}, {"3", 1, 3000000000}, {"1.5s", 1, 1500000000},
		{"0.25", 1, 250000000}, {"1m30s", 1, 90000000000}, {"100us", 1, 100000},
		{"10ms", 1, 10000000}, {"1h", 1, 3600000000000}, {"250ns", 1, 250},
		{"0", 0, 0}, {"0s", 0, 0}, {"-1s", 0, 0}, {"-1", 0, 0}, {"", 0, 0},
		{"s", 0, 0}, {"1x", 0, 0}, {"1 s", 0, 0}, {"1m30", 0, 0}, {"ms", 0, 0},
		{"99999999999999999999s", 0, 0}, {"400d", 0, 0}, {"9000h", 0, 0},
		{".", 0, 0}, {"1..5s", 0, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		uint64_t ns = 0;
		int rc = parse_duration(t[i].in, &ns);
		EXPECT((rc == 0) == t[i].ok, "duration '%s': rc %d", t[i].in, rc);
		if (t[i].ok)
			EXPECT(ns == t[i].ns, "duration '%s': %llu ns, want %llu", t[i].in,
			       (unsigned long long)ns, (unsigned long long)t[i].ns);
	}
}

static void addresses(void)
{
	static const struct { const char *in; int ok; int family; const char *addr; int port; } t[] = {
		{"10.0.0.10:53", 1, AF_INET, "10.0.0.10", 53},
		{"10.0.0.10", 1, AF_INET, "10.0.0.10", 53},
		{"10.96.0.10:5353", 1, AF_INET, "10.96.0.10", 5353},
		{"[fd00::a]:53", 1, AF_INET6, "fd00::a", 53},
		{"[fd00::a]", 1, AF_INET6, "fd00::a", 53},
		{"fd00::a", 1, AF_INET6, "fd00::a", 53},
		{"::1", 1, AF_INET6, "::1", 53},
		{"[::ffff:10.0.0.1]:99", 1, AF_INET6, "::ffff:10.0.0.1", 99},
		{"10.0.0.10:0", 0, 0, 0, 0}, {"10.0.0.10:65536", 0, 0, 0, 0},
		{"10.0.0.10:", 0, 0, 0, 0}, {"10.0.0.10:x", 0, 0, 0, 0},
		{"10.0.0.256", 0, 0, 0, 0}, {"kube-dns", 0, 0, 0, 0}, {"", 0, 0, 0, 0},
		{"[fd00::a", 0, 0, 0, 0}, {"[fd00::a]x", 0, 0, 0, 0}, {"[10.0.0.1]:53", 0, 0, 0, 0},
		{"fd00::a:53x", 0, 0, 0, 0}, {"10.0.0.10:-1", 0, 0, 0, 0},
		{"1.2.3.4:+53", 0, 0, 0, 0}, {"[]:53", 0, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		struct sockaddr_storage ss;
		const char *why = parse_addr(t[i].in, 53, 0, &ss);
		EXPECT((why == NULL) == t[i].ok, "addr '%s': %s", t[i].in, why ? why : "accepted");
		if (!t[i].ok || why)
			continue;
		char buf[64];
		const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
		                                          : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
		unsigned port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                              : ((struct sockaddr_in *)&ss)->sin_port);
		inet_ntop(ss.ss_family, a, buf, sizeof buf);
		EXPECT(ss.ss_family == t[i].family, "addr '%s': family %d", t[i].in, ss.ss_family);
		EXPECT(!strcmp(buf, t[i].addr), "addr '%s': got %s", t[i].in, buf);
		EXPECT((int)port == t[i].port, "addr '%s': port %u", t[i].in, port);
	}
	/* --source may leave the port to the kernel. */
	struct sockaddr_storage ss;
	EXPECT(!parse_addr("10.224.0.8:0", 0, 1, &ss), "source port 0 refused");
	EXPECT(!parse_addr("10.224.0.8", 0, 1, &ss), "bare source refused");
}

/* Both formatters, the same format and arguments, at every buffer size
 * from 0 to one past the whole output: same bytes, same return. */
#define SAME(...) do { \
	char want[256], got[256]; \
	int wn = snprintf(want, sizeof want, __VA_ARGS__); \
	for (size_t cap = 0; cap <= (size_t)wn + 1; cap++) { \
		memset(want, 'W', sizeof want); memset(got, 'G', sizeof got); \
		snprintf(want, cap, __VA_ARGS__); \
		size_t gn = fmt(got, cap, __VA_ARGS__); \
		EXPECT(gn == (size_t)wn && !memcmp(got, want, cap) && (cap == 0 || got[cap] == 'G'), \
		       "fmt(%s) at cap %zu: '%.*s' (%zu), snprintf: '%.*s' (%d)", #__VA_ARGS__, cap, \
		       (int)(cap ? cap - 1 : 0), got, gn, (int)(cap ? cap - 1 : 0), want, wn); \
	} \
} while (0)

static void formatter(void)
{
	SAME("plain text, no conversion");
	SAME("%%");
	SAME("%s|%s|", "abc", "");
	SAME("%.*s|", 3, "abcdef");
	SAME("%.*s|", 0, "abcdef");
	SAME("%.*s|", 10, "abc");
	SAME("%-8s|%-8s|%-3s|", "udp", "udplite", "icmpv6");
	SAME("%8s|", "udp");
	SAME("%c%c", 'x', '-');
	SAME("%d %d %d %d %d", 0, 1, -1, INT_MAX, INT_MIN);
	SAME("%ld %ld %ld", 0L, LONG_MAX, LONG_MIN);
	SAME("%lld %lld", LLONG_MAX, LLONG_MIN);
	SAME("%u %u %lu %llu", 0u, UINT_MAX, ULONG_MAX, ULLONG_MAX);
	SAME("%x %x %lx %llx", 0u, 0xdeadbeefu, ULONG_MAX, 0x1234abcdULL);
	SAME("%04x|%04x|%04x", 0x1fu, 0x12345u, 0u);
	SAME("%02u:%02u:%02u.%03u", 1u, 59u, 0u, 7u);
	SAME("%04lld-%02u", 2026LL, 11u);
	SAME("%04lld|%05d|%5d|%-5d|%-5d|", -1LL, -42, -42, -42, 42);
	SAME("%" PRIu64 ".%03" PRIu64 "|%" PRIu64 ".%09" PRIu64, (uint64_t)12, (uint64_t)5, UINT64_MAX, (uint64_t)1);
	SAME("\\u%04x", 0x7fu);
	SAME("%zu|%zu|%zd", (size_t)0, SIZE_MAX, (ssize_t)-5);
	SAME("%hu|%hhu|%hd|%hx", (unsigned short)65535, (unsigned char)255, (short)-3, (unsigned short)0xbeef);
	SAME("|%.8x|%.5u|%.2x %.2x|%-3u|%.1u|", 0x1234u, 42u, 0xau, 0xffu, 7u, 0u);  /* libmnl's forms */
	SAME("server=\"%s\",src=\"%s\"%s%s%s", "10.0.0.10:53", "[fd00::8]:40000", ",node=\"", "n1", "\"");
	/* random values through every numeric conversion used */
	srandom(42);
	for (int i = 0; i < 20000; i++) {
		uint64_t r = (uint64_t)random() << 33 ^ (uint64_t)random() << 11 ^ (uint64_t)random();
		r >>= random() % 64;
		SAME("%d|%u|%x|%lu|%lld|%03u|%09lu|%-6d|%06d", (int)r, (unsigned)r, (unsigned)r,
		     (unsigned long)r, (long long)r, (unsigned)(r % 5000), (unsigned long)r,
		     (int)(r % 2000) - 1000, (int)(r % 2000) - 1000);
	}
}

/* fmt_rfc3339() against gmtime_r() and snprintf(). */
static void timestamps(void)
{
	static const long long fixed[] = {
		0, 1, -1, 59, 86399, 86400, -86400, -86401, 951782400 /* 2000-02-29 */,
		951868800, 4107542400 /* 2100-03-01 */, 1795689955, 253402300799 /* 9999-12-31 */,
		-62135596800 /* 0001-01-01 */, -62135596801, 68169463000, -2208988800,
	};
	srandom(7);
	for (int i = 0; i < 200000 + (int)(sizeof fixed / sizeof *fixed); i++) {
		struct timespec ts;
		int nfixed = (int)(sizeof fixed / sizeof *fixed);
		if (i < nfixed)
			ts.tv_sec = (time_t)fixed[i];
		else    /* years 0001 to 9999, and far beyond both ways */
			ts.tv_sec = (time_t)(((long long)random() << 31 | random()) % (i % 10 ? 315537897600LL : 3155378976000LL)
			                     - (i % 10 ? 62135596800LL : 1577688988800LL));
		ts.tv_nsec = random() % 1000000000;
		struct tm tm;
		char want[96], got[96];
		if (!gmtime_r(&ts.tv_sec, &tm))
			continue;
		snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d.%03ldZ", (long long)tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
		fmt_rfc3339(&ts, got, sizeof got);
		EXPECT(!strcmp(want, got), "rfc3339 of %lld.%09ld: %s, gmtime_r: %s", (long long)ts.tv_sec, ts.tv_nsec, got, want);
	}
}

/* ct_ntop() against glibc's inet_ntop(), which conntrack -L uses. */
static void addresses_out(void)
{
	static const char *const fixed[] = {
		"::", "::1", "::2", "1::", "fd00::a", "fd00:96::a", "::ffff:10.0.0.1", "::10.0.0.1",
		"::ffff:0.0.0.0", "::1:0:0:0", "1:0:0:1:0:0:0:1", "1:0:0:0:1:0:0:1", "0:0:1:0:0:1::",
		"2001:db8::1:0:0:1", "2001:db8:0:0:1:0:0:1", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8",
		"::ffff:1:2", "0:0:0:0:0:fffe:1.2.3.4", "1::ffff:1.2.3.4", "64:ff9b::10.0.0.1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::0.0.1.0", "0:1::", "1:0::",
	};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
		unsigned char a[16];
		char want[INET6_ADDRSTRLEN], got[INET6_ADDRSTRLEN];
		EXPECT(inet_pton(AF_INET6, fixed[i], a) == 1, "inet_pton %s", fixed[i]);
		inet_ntop(AF_INET6, a, want, sizeof want);
		ct_ntop(AF_INET6, a, got, sizeof got);
		EXPECT(!strcmp(want, got), "ct_ntop %s: %s, inet_ntop: %s", fixed[i], got, want);
	}
	srandom(9);
	for (int i = 0; i < 300000; i++) {
		unsigned char a[16];
		char want[INET6_ADDRSTRLEN], got[INET6_ADDRSTRLEN];
		int fam = i % 5 ? AF_INET6 : AF_INET;
		for (int w = 0; w < 8; w++) {          /* groups mostly zero: runs of all lengths */
			unsigned v = random() % 3 ? 0 : (unsigned)random() & (random() % 2 ? 0xffff : 0xf);
			if (i % 7 == 0 && w == 5)
				v = 0xffff;
			a[2 * w] = (unsigned char)(v >> 8);
			a[2 * w + 1] = (unsigned char)v;
		}
		if (fam == AF_INET)
			for (int b = 0; b < 4; b++)
				a[b] = (unsigned char)random();
		inet_ntop(fam, a, want, sizeof want);
		ct_ntop(fam, a, got, sizeof got);
		EXPECT(!strcmp(want, got), "ct_ntop: %s, inet_ntop: %s", got, want);
	}
}

int main(void)
{
	durations();
	addresses();
	formatter();
	timestamps();
	addresses_out();
	printf("opts_test: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
