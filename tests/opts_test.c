/* opts_test.c - table tests for main.c's option-value parsers. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int parse_duration(const char *s, uint64_t *out);
const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss);

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

int main(void)
{
	durations();
	addresses();
	printf("opts_test: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
