/* opts_test.c - table tests for opts.c (the option-value parsers and
 * the command line), log.c's clock and lines, and nl.c's ct_ntop() held
 * against glibc's inet_ntop(), which conntrack -L uses. Built with glibc
 * and the sanitizers; it includes the headers it tests. */
#define _GNU_SOURCE
#include "log.h"
#include "nl.h"
#include "opts.h"

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
#include <unistd.h>

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
		/* fractions of long units: the product once overflowed */
		{"1.999999999m", 1, 119999999940}, {"0.9999999999h", 1, 3599999996400},
		{"1.5h", 1, 5400000000000}, {"0.5m", 1, 30000000000}, {"2.000000001s", 1, 2000000001},
		{"365.999999999h", 1, 1317599999996400}, {"1.1ns", 1, 1},
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

/* opts_parse() on a command line given as one string (split on blanks). */
static enum opts_result parse_line(const char *line, struct opts *o, char *err, size_t cap)
{
	static char buf[512];
	char *argv[32];
	int argc = 0;
	snprintf(buf, sizeof buf, "dns-blackhole-tester %s", line);
	for (char *w = strtok(buf, " "); w && argc < 31; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	err[0] = 0;
	return opts_parse(argc, argv, o, err, cap);
}

static void command_lines(void)
{
	static const struct { const char *line; const char *msg; } bad[] = {
		{"-d 10.0.0.10 -i 100us", "--interval '100us': must be at least 1ms"},
		{"-d 10.0.0.10 -i 999999ns", "--interval '999999ns': must be at least 1ms"},
		{"-d 10.0.0.10 -w 0.5ms", "--timeout '0.5ms': must be at least 1ms"},
		{"-d 10.0.0.10 --frobnicate", "unknown option '--frobnicate'"},
		{"-d 10.0.0.10 --frob=1", "unknown option '--frob'"},
		{"-d 10.0.0.10 -Z", "unknown option '-Z'"},
		{"-d 10.0.0.10 -vZ", "unknown option '-Z'"},
		{"--monitor -Zv -d 10.0.0.10", "unknown option '-Z'"},
		{"--server=10.0.0.10 -Zv", "unknown option '-Z'"},
		{"-d 10.0.0.10 --ver", "ambiguous option '--ver'"},
		{"-d 10.0.0.10 --monitor=yes", "option '--monitor' takes no value"},
		{"-d 10.0.0.10 --mon=yes", "option '--mon' takes no value"},
		{"-d", "option '-d' needs a value"},
		{"-v -d", "option '-d' needs a value"},
		{"-vd", "option '-d' needs a value"},
		{"--log-format", "option '--log-format' needs a value"},
		{"-d 10.0.0.10 --cou", "option '--cou' needs a value"},
		{"-d 10.0.0.10 extra", "unexpected argument 'extra'"},
		{"-d 10.0.0.10 --monitor --heal", "--monitor and --heal cannot be used together"},
		{"-d 10.0.0.10 -c 18446744073709551616", "--count '18446744073709551616'"},
		{"-d 10.0.0.10 --stuck-clients-max 101", "--stuck-clients-max '101': want 0-100"},
		{"-d 10.0.0.10 -c +5", "--count '+5'"},
		{"-d 10.0.0.10 -c 0x5", "--count '0x5'"},
		{"-d 10.0.0.10 -c 0", "--count '0'"},
		{"-d 10.0.0.10 --metrics-addr 9797", "--metrics-addr '9797'"},
		{"-d 10.0.0.10 --log-format xml", "--log-format 'xml'"},
		{"-d 10.0.0.10 --heal-rate 5", "--heal-rate needs --watch-node or --heal-node"},
		{"-d 10.0.0.10 --event-buffer 65536", "--event-buffer needs --watch-node"},
		{"-d 10.0.0.10 --watch-filter user --node-max-keys 64", "--watch-filter needs --watch-node"},
		{"-d 10.0.0.10 --heal --node-max-clients 64", "--node-max-clients needs --watch-node"},
		{"-d 10.0.0.10 --stuck-clients-max 3", "--stuck-clients-max needs --watch-node"},
	};
	struct opts o;
	char err[256];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		enum opts_result r = parse_line(bad[i].line, &o, err, sizeof err);
		EXPECT(r == OPTS_ERROR && strstr(err, bad[i].msg), "'%s': result %d, message '%s', want '%s'",
		       bad[i].line, r, err, bad[i].msg);
	}
	/* Every spelling reads the same, and a parse starts afresh each time. */
	static const char *const same[] = {
		"-d 10.0.0.10 -n example.org -t AAAA -i 20ms -w 30ms -c 2 -v --heal",
		"--server=10.0.0.10 --name=example.org --type=AAAA --interval=20ms --timeout=30ms --count=2 --verbose --heal",
		"-d10.0.0.10 -nexample.org -tAAAA -i20ms -w30ms -vc2 --heal",
		"--serve 10.0.0.10 --na example.org --ty AAAA --int 20ms --time 30ms --cou 2 --verb --heal --",
	};
	for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
		enum opts_result r = parse_line(same[i], &o, err, sizeof err);
		char a[64];
		fmt_addr(&o.server, a, sizeof a);
		EXPECT(r == OPTS_RUN && !strcmp(a, "10.0.0.10:53") && !strcmp(o.name, "example.org") &&
		       o.qtype == 28 && o.interval == 20 * NS_PER_MS && o.timeout == 30 * NS_PER_MS &&
		       o.count == 2 && o.verbose && o.mode == MODE_HEAL,
		       "'%s': result %d (%s), server %s", same[i], r, err, a);
	}
	EXPECT(parse_line("-d 10.0.0.10 -i 1ms -w 1ms", &o, err, sizeof err) == OPTS_RUN &&
	       o.interval == NS_PER_MS, "1ms interval refused: %s", err);
	EXPECT(parse_line("-d 10.0.0.10 -c 18446744073709551615", &o, err, sizeof err) == OPTS_RUN &&
	       o.count == UINT64_MAX, "largest count refused: %s", err);
	EXPECT(parse_line("-d 10.0.0.10 --heal-rate 5 --event-buffer 65536 --stuck-clients-max 0 --heal-node", &o, err,
	                  sizeof err) == OPTS_RUN && o.heal_rate == 5 && o.event_buffer == 65536 && o.stuck_max == 0,
	       "watch options before --heal-node refused: %s", err);
	EXPECT(parse_line("--watch-node --watch-filter user --node-max-keys 64 -d 10.0.0.10", &o, err, sizeof err) ==
	       OPTS_RUN && o.watch_user_filter && o.max_keys == 64, "--watch-node with its options refused: %s", err);
	EXPECT(parse_line("--help", &o, err, sizeof err) == OPTS_HELP, "--help");
	EXPECT(parse_line("-V", &o, err, sizeof err) == OPTS_VERSION, "-V");
}

/* log.c: a line that would overflow its buffer keeps the pairs that fit,
 * says truncated=true and stays one valid JSON object (or logfmt line). */
static void json_lines(void)
{
	static char big[6000];
	int fds[2], saved = dup(STDOUT_FILENO);
	EXPECT(pipe(fds) == 0 && saved >= 0, "pipe");
	fflush(stdout);
	dup2(fds[1], STDOUT_FILENO);
	for (int json = 0; json <= 1; json++) {
		logcfg.json = json;
		for (size_t len = 3950; len < 4150; len += 7) {
			struct line l;
			char got[LINE_MAX_BYTES + 64];
			memset(big, 'x', len);
			big[len] = 0;
			log_begin(&l, "info", "start");
			log_kv(&l, "node", big);
			log_kvu(&l, "pid", 42);
			log_end(&l);
			ssize_t n = read(fds[0], got, sizeof got - 1);
			got[n > 0 ? n : 0] = 0;
			int whole = n > 0 && got[n - 1] == '\n' && !memchr(got, '\n', (size_t)n - 1);
			int valid = json ? n > 2 && got[0] == '{' && got[n - 2] == '}' : !strncmp(got, "ts=", 3);
			int cut = strstr(got, json ? "\"truncated\":true" : " truncated=true") != NULL;
			int pid = strstr(got, json ? "\"pid\":42" : " pid=42") != NULL;
			int kept = strstr(got, big) != NULL;
			/* every pair is whole or absent; absent only when it did not fit */
			EXPECT(whole && valid && n <= LINE_MAX_BYTES && (kept || pid) && cut == !(kept && pid),
			       "json=%d value %zu bytes: line of %zd bytes, whole %d valid %d cut %d pid %d",
			       json, len, n, whole, valid, cut, pid);
		}
	}
	logcfg.json = 0;
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fds[0]);
	close(fds[1]);
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
	command_lines();
	json_lines();
	timestamps();
	addresses_out();
	printf("opts_test: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
