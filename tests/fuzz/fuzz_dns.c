/* fuzz_dns.c - libFuzzer target for dns.c.
 *
 * Input: one selector byte, then bytes. The bytes are used twice:
 *  1. as a reply datagram to the query the selector picks (dns_queries.h):
 *     dns_parse_reply must stay inside the datagram (the input is an
 *     exact-size heap copy, so ASan sees any read past its end) and, when
 *     it says DNS_OK, fill the reply consistently;
 *  2. up to the first NUL, as a name: dns_check_name and dns_build_query
 *     must agree, the query must fit DNS_MAX_QUERY (and any smaller cap
 *     it is given), and it must parse back as its own (empty) answer.
 * dns_type_from_str / dns_type_str get the same string. */
#define _GNU_SOURCE   /* strnlen, MAP_ANONYMOUS under -std=c11 */
#include "dns.h"
#include "dns_queries.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_dns: invariant broken: %s\n", what);
	abort();
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

static int known_result(int rc)
{
	return rc == DNS_OK || rc == DNS_ESHORT || rc == DNS_ENOTREPLY ||
	       rc == DNS_EID || rc == DNS_EQUESTION || rc == DNS_EFORMAT;
}

static void check_reply(const uint8_t *msg, size_t len, const uint8_t *q, size_t qlen)
{
	struct dns_reply r;
	/* Exact-size copies: the datagram and our query both end where
	 * their lengths say, so ASan flags a read one byte past either. */
	uint8_t *m = malloc(len ? len : 1), *qq = malloc(qlen);
	CHECK(m && qq);
	memcpy(m, msg, len);
	memcpy(qq, q, qlen);
	memset(&r, 0xa5, sizeof r);
	int rc = dns_parse_reply(m, len, qq, qlen, &r);
	CHECK(known_result(rc));
	CHECK(strcmp(dns_result_str(rc), "unknown") != 0);
	if (rc == DNS_OK) {
		CHECK(len >= 12);
		CHECK(r.ancount <= 65535);
		CHECK(r.addr_family == 0 || r.addr_family == AF_INET || r.addr_family == AF_INET6);
		CHECK(r.rcode >= 0 && r.rcode <= 15);
		CHECK(r.tc == 0 || r.tc == 1);
		CHECK(r.aa == 0 || r.aa == 1);
		CHECK(r.ra == 0 || r.ra == 1);
		CHECK(r.id == (uint16_t)(q[0] << 8 | q[1]));
		CHECK(r.ancount <= (unsigned)(m[6] << 8 | m[7]));   /* tc may cut it */
		CHECK(r.tc || r.ancount == (unsigned)(m[6] << 8 | m[7]));
		if (r.addr_family == 0) {
			static const uint8_t zero[16];
			CHECK(r.ttl == 0 && !memcmp(r.addr, zero, sizeof zero));
		}
		/* Header, a question of at least a 1-byte name and 4 bytes,
		 * and every answer counted at least a 1-byte name and 10. */
		CHECK(12 + 5 + (size_t)r.ancount * 11 <= len);
		const char *s = dns_rcode_str(r.rcode);
		CHECK(s && *s);
	}
	free(m);
	free(qq);
}

static void check_name(const char *name, uint8_t capsel)
{
	const char *why = dns_check_name(name);
	CHECK(why == NULL || *why);
	/* Into an exact DNS_MAX_QUERY buffer: the documented bound. */
	uint8_t *buf = malloc(DNS_MAX_QUERY);
	CHECK(buf);
	int n = dns_build_query(buf, DNS_MAX_QUERY, 0x5a5a, name, 1);
	CHECK(n <= DNS_MAX_QUERY);
	CHECK((n > 0) == (why == NULL));         /* valid names always fit */
	if (n > 0) {
		CHECK(n >= 12 + 1 + 4);
		/* The query, as a reply with no answers, answers itself. */
		uint8_t *rep = malloc((size_t)n);
		CHECK(rep);
		memcpy(rep, buf, (size_t)n);
		rep[2] |= 0x80;
		struct dns_reply r;
		CHECK(dns_parse_reply(rep, (size_t)n, buf, (size_t)n, &r) == DNS_OK);
		CHECK(r.ancount == 0 && r.addr_family == 0 && r.id == 0x5a5a);
		free(rep);
	}
	free(buf);
	/* A smaller exact buffer: fail or fit, never write past cap. */
	size_t cap = capsel % (DNS_MAX_QUERY + 1);
	uint8_t *small = malloc(cap ? cap : 1);
	CHECK(small);
	int m = dns_build_query(small, cap, 7, name, 28);
	CHECK(m == -1 || (m > 0 && (size_t)m <= cap));
	if (n > 0)
		CHECK(m == -1 || m == n);
	else
		CHECK(m == -1);
	free(small);

	int t = dns_type_from_str(name);
	CHECK(t == -1 || (t >= 1 && t <= 65535));
	if (t > 0) {
		char tb[16];
		const char *ts = dns_type_str((uint16_t)t, tb, sizeof tb);
		CHECK(ts && dns_type_from_str(ts) == t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct fuzz_query *fq = &fuzz_queries[data[0] % NQUERIES];
	uint8_t q[DNS_MAX_QUERY];
	int qlen = dns_build_query(q, sizeof q, fq->id, fq->name, fq->qtype);
	CHECK(qlen > 0);
	check_reply(data + 1, size - 1, q, (size_t)qlen);

	size_t slen = strnlen((const char *)data + 1, size - 1);
	char *s = malloc(slen + 1);
	CHECK(s);
	memcpy(s, data + 1, slen);
	s[slen] = 0;
	check_name(s, size > 1 ? data[size - 1] : 0);
	free(s);
	return 0;
}
