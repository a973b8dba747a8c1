/* fuzz_opts.c - libFuzzer target for opts.c's option-value parsers.
 *
 * Input: one flags byte (bit 0: allow_zero_port for parse_addr), then
 * the value, cut at its first NUL and copied to an exact-size heap
 * string (ASan sees a read past the terminator). Linked with opts.c
 * and what it uses.
 *
 * parse_duration: 0 with 0 < ns <= 366 days, or -1.
 * parse_addr(s, 53, allow_zero): NULL with an AF_INET/AF_INET6 address
 * and a port (never 0 unless allowed), or a non-empty reason; accepted
 * values print back (inet_ntop, "[v6%scope]:port") to a string that
 * parses to the very same sockaddr. */
#define _GNU_SOURCE   /* strnlen, MAP_ANONYMOUS under -std=c11 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *in)
{
	fprintf(stderr, "fuzz_opts: invariant broken: %s (input \"%s\")\n", what, in);
	abort();
}
#define CHECK(c) do { if (!(c)) die(#c, s); } while (0)

static void check_addr(const char *s, int allow_zero)
{
	struct sockaddr_storage ss, back;
	const char *why = parse_addr(s, 53, allow_zero, &ss);
	if (why) {
		CHECK(*why);
		return;
	}
	char host[INET6_ADDRSTRLEN], txt[INET6_ADDRSTRLEN + 32];
	int port;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)&ss;
		CHECK(inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host));
		port = ntohs(in4->sin_port);
		snprintf(txt, sizeof txt, "%s:%d", host, port);
	} else {
		CHECK(ss.ss_family == AF_INET6);
		const struct sockaddr_in6 *in6 = (const void *)&ss;
		CHECK(inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host));
		port = ntohs(in6->sin6_port);
		if (in6->sin6_scope_id)
			snprintf(txt, sizeof txt, "[%s%%%u]:%d", host, in6->sin6_scope_id, port);
		else
			snprintf(txt, sizeof txt, "[%s]:%d", host, port);
	}
	CHECK(port >= 0 && port <= 65535);
	CHECK(allow_zero || port != 0);
	if (port == 0)     /* ":0" is only accepted where allowed: ask so */
		CHECK(parse_addr(txt, 53, 1, &back) == NULL);
	else
		CHECK(parse_addr(txt, 53, allow_zero, &back) == NULL);
	CHECK(!memcmp(&ss, &back, sizeof ss));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = strnlen((const char *)data + 1, size - 1);
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, data + 1, n);
	s[n] = 0;

	uint64_t ns = 0;
	int rc = parse_duration(s, &ns);
	CHECK(rc == 0 || rc == -1);
	if (rc == 0)
		CHECK(ns > 0 && ns <= UINT64_C(366) * 24 * 3600 * 1000000000);

	check_addr(s, data[0] & 1);
	free(s);
	return 0;
}
