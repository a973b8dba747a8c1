/* tests/dns_test.c - unit tests for dns.c, and a "live" mode that asks a
 * real server.
 *
 *   dns_test                    offline tests; real-server fixtures come
 *                               from tests/data/dns (or $DNS_TEST_DATA)
 *   dns_test mutate FILE...     truncate, flip and garble saved replies
 *   dns_test live ADDR PORT NAME TYPE [SAVEFILE]
 *                               one query, one reply: prints what
 *                               dns_parse_reply made of it
 *
 * Each failed assertion prints one "FAIL" line; the last line is a
 * summary; the exit status is non-zero if anything failed. The Makefile
 * builds this with ASan+UBSan and no recovery, and every hostile message
 * is handed to the parser in a heap block of exactly its length, so a
 * read one byte too far aborts the run instead of passing quietly. */
#define _POSIX_C_SOURCE 200809L
#include "dns.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { T_A = 1, T_CNAME = 5, T_SOA = 6, T_AAAA = 28, C_IN = 1, C_CH = 3 };

/* ---- assertions ------------------------------------------------------ */

static unsigned long n_checks, n_failed;

__attribute__((format(printf, 3, 4)))
static int check_at(int line, int ok, const char *fmt, ...)
{
	n_checks++;
	if (ok)
		return 1;
	n_failed++;
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL dns_test.c:%d: ", line);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	return 0;
}

#define CHECK(cond, ...) check_at(__LINE__, !!(cond), __VA_ARGS__)

/* Equality checks; functions, so that each argument is evaluated once. */
#define EQ(what, got, want) eq_long(__LINE__, what, (long)(got), (long)(want))
#define EQ_RC(what, got, want) eq_rc(__LINE__, what, got, want)
#define EQ_STR(what, got, want) eq_str(__LINE__, what, got, want)

static int eq_long(int line, const char *what, long got, long want)
{
	return check_at(line, got == want, "%s: got %ld, want %ld", what, got, want);
}

static int eq_rc(int line, const char *what, int got, int want)
{
	return check_at(line, got == want, "%s: got %s, want %s", what,
	                dns_result_str(got), dns_result_str(want));
}

static int eq_str(int line, const char *what, const char *got, const char *want)
{
	int same = (!got && !want) || (got && want && !strcmp(got, want));
	return check_at(line, same, "%s: got \"%s\", want \"%s\"", what,
	                got ? got : "(null)", want ? want : "(null)");
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Does hay contain needle anywhere? (memmem is a GNU extension.) */
static int contains(const uint8_t *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (!memcmp(hay + i, needle, nlen))
			return 1;
	return 0;
}

/* A printable address, for messages ("-" when there is none). */
static const char *addr_str(const struct dns_reply *r, char *buf, size_t cap)
{
	if (!r->addr_family || !inet_ntop(r->addr_family, r->addr, buf, (socklen_t)cap))
		snprintf(buf, cap, "-");
	return buf;
}

/* ---- building messages by hand --------------------------------------- */

struct msg { uint8_t b[2048]; size_t n; };

static void put(struct msg *m, const void *p, size_t n)
{
	if (m->n + n > sizeof m->b)
		abort();                       /* a bug in this file, not dns.c */
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put8(struct msg *m, unsigned v) { uint8_t b = (uint8_t)v; put(m, &b, 1); }
static void put16(struct msg *m, unsigned v) { put8(m, v >> 8); put8(m, v); }
static void put32(struct msg *m, uint32_t v) { put16(m, v >> 16); put16(m, v & 0xffff); }
static void set16(struct msg *m, size_t off, unsigned v) { m->b[off] = (uint8_t)(v >> 8); m->b[off + 1] = (uint8_t)v; }
static void put_ptr(struct msg *m, unsigned off) { put16(m, 0xc000 | off); }

/* "a.bc" -> 01 'a' 02 'b' 'c' 00; "" is the root. No final zero when
 * open is set, so that a compression pointer can follow. */
static void put_labels(struct msg *m, const char *name, int open)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		put8(m, (unsigned)l);
		put(m, name, l);
		name += l;
		if (*name == '.')
			name++;
	}
	if (!open)
		put8(m, 0);
}

static void put_name(struct msg *m, const char *name) { put_labels(m, name, 0); }

/* The fixed part of a resource record, after its owner name. */
static void put_rr(struct msg *m, unsigned type, unsigned class, uint32_t ttl,
                   const void *rdata, unsigned rdlen)
{
	put16(m, type);
	put16(m, class);
	put32(m, ttl);
	put16(m, rdlen);
	put(m, rdata, rdlen);
}

#define K8S "kubernetes.default.svc.cluster.local"
static const uint8_t k8s_v4[4] = {10, 96, 0, 1};
static const uint8_t k8s_v6[16] = {0xfd, 0x00, 0x00, 0x96, [15] = 1};

/* A query as the tester sends it: built by the code under test. */
struct query { uint8_t b[DNS_MAX_QUERY]; size_t n; };

static struct query query(uint16_t id, const char *name, uint16_t type)
{
	struct query q;
	int n = dns_build_query(q.b, sizeof q.b, id, name, type);
	if (n < 0) {
		printf("FATAL: dns_build_query(\"%s\") failed; every parse test needs it\n", name);
		exit(1);
	}
	q.n = (size_t)n;
	return q;
}

/* Starts a reply to q: its header and question, QR+AA+RD+RA set,
 * ANCOUNT 0. Answers are appended, and ANCOUNT set, by the caller. */
static void reply_to(struct msg *m, const struct query *q)
{
	m->n = 0;
	put(m, q->b, q->n);
	m->b[2] = 0x85;                        /* QR, AA, RD */
	m->b[3] = 0x80;                        /* RA, NOERROR */
}

/* Hands len bytes of msg to the parser in a heap block of exactly that
 * size, so ASan catches any read past the end. */
static int parse_exact(const uint8_t *msg, size_t len, const struct query *q,
                       struct dns_reply *r)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	memcpy(copy, msg, len);
	int rc = dns_parse_reply(copy, len, q->b, q->n, r);
	free(copy);
	return rc;
}

/* What must hold after any parse, whatever the input: a known result,
 * and an address only if those bytes are in the message. */
static void invariants(const char *what, const uint8_t *m, size_t len, int rc,
                       const struct dns_reply *r)
{
	CHECK(rc == DNS_OK || rc == DNS_ESHORT || rc == DNS_ENOTREPLY || rc == DNS_EID ||
	      rc == DNS_EQUESTION || rc == DNS_EFORMAT, "%s: unknown result %d", what, rc);
	if (r->addr_family) {
		size_t alen = r->addr_family == AF_INET ? 4 : 16;
		CHECK(r->addr_family == AF_INET || r->addr_family == AF_INET6,
		      "%s: addr_family %d", what, r->addr_family);
		CHECK(contains(m, len, r->addr, alen), "%s: reported address is not in the message", what);
	}
	if (rc != DNS_OK)
		return;
	CHECK(len >= 12, "%s: ok with %zu bytes", what, len);
	CHECK(r->id == get16(m), "%s: id %u, message has %u", what, r->id, get16(m));
	CHECK(r->rcode == (m[3] & 0x0f), "%s: rcode %d, message has %d", what, r->rcode, m[3] & 0x0f);
	CHECK(r->tc == !!(m[2] & 0x02), "%s: tc %d", what, r->tc);
	CHECK(r->tc ? r->ancount <= get16(m + 6) : r->ancount == get16(m + 6),
	      "%s: ancount %u, message announces %u (tc %d)", what, r->ancount, get16(m + 6), r->tc);
}

/* Parses m as a reply to q, checks the invariants, returns the result. */
static int parse(const char *what, const struct msg *m, const struct query *q,
                 struct dns_reply *r)
{
	int rc = parse_exact(m->b, m->n, q, r);
	invariants(what, m->b, m->n, rc, r);
	return rc;
}

static void expect_addr(const char *what, const struct dns_reply *r, int family,
                        const uint8_t *addr)
{
	char got[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN] = "-";
	if (family)
		inet_ntop(family, addr, want, sizeof want);
	addr_str(r, got, sizeof got);
	CHECK(r->addr_family == family && (!family || !memcmp(r->addr, addr, family == AF_INET ? 4 : 16)),
	      "%s: addr %s, want %s", what, got, want);
}

/* ---- names, types, strings ------------------------------------------ */

/* Writes a name of exactly len characters: labels of 63 letters split by
 * dots (a dot at every 64th place), so the label limit is never hit. */
static char *long_name(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '.' : (char)('a' + i % 26);
	buf[len] = 0;
	return buf;
}

static void test_check_name(void)
{
	static const char *const good[] = {
		"a", "example.com", "example.com.", ".", "kubernetes.default.svc.cluster.local",
		"xn--bcher-kva.example", "a-b_c.d0", "*.example",
	};
	static const char *const bad[] = { "", "..", "a..b", ".a", "a..", "..a", ".a.", "a.b.." };
	char n[300];
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		CHECK(!dns_check_name(good[i]), "check_name(\"%s\"): rejected (%s)", good[i], dns_check_name(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECK(dns_check_name(bad[i]), "check_name(\"%s\"): accepted", bad[i]);

	memset(n, 'x', 63), n[63] = 0;
	CHECK(!dns_check_name(n), "label of 63: rejected");
	strcat(n, ".");
	CHECK(!dns_check_name(n), "label of 63 and a final dot: rejected");
	memset(n, 'x', 64), n[64] = 0;
	CHECK(dns_check_name(n), "label of 64: accepted");
	memcpy(n, "a.", 2), memset(n + 2, 'x', 64), memcpy(n + 66, ".b", 3);
	CHECK(dns_check_name(n), "label of 64 between others: accepted");

	CHECK(!dns_check_name(long_name(n, 253)), "name of 253: rejected");
	strcat(n, ".");
	CHECK(!dns_check_name(n), "name of 253 and a final dot: rejected");
	CHECK(dns_check_name(long_name(n, 254)), "name of 254: accepted");
	strcat(n, ".");
	CHECK(dns_check_name(n), "name of 254 and a final dot: accepted");
}

static void test_type_from_str(void)
{
	static const struct { const char *s; int want; } cases[] = {
		{"A", 1}, {"a", 1}, {"AAAA", 28}, {"aaaa", 28}, {"AaAa", 28}, {"CNAME", 5},
		{"NS", 2}, {"SOA", 6}, {"PTR", 12}, {"MX", 15}, {"TXT", 16}, {"SRV", 33}, {"ANY", 255},
		{"1", 1}, {"28", 28}, {"99", 99}, {"TYPE99", 99}, {"type99", 99}, {"TYPE28", 28},
		{"65535", 65535}, {"TYPE65535", 65535},
		{"0", -1}, {"TYPE0", -1}, {"65536", -1}, {"TYPE65536", -1}, {"99999", -1},
		{"123456", -1}, {"", -1}, {"TYPE", -1}, {"garbage", -1}, {"AAAAA", -1},
		{"A ", -1}, {" A", -1}, {"-1", -1}, {"+1", -1}, {"1x", -1}, {"0x1c", -1},
		{"TYPEA", -1}, {"TYPE 1", -1}, {"TYPE-1", -1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char what[64];
		snprintf(what, sizeof what, "type_from_str(\"%s\")", cases[i].s);
		EQ(what, dns_type_from_str(cases[i].s), cases[i].want);
	}
}

static void test_type_str(void)
{
	char buf[16];
	EQ_STR("type_str(1)", dns_type_str(1, buf, sizeof buf), "A");
	EQ_STR("type_str(28)", dns_type_str(28, buf, sizeof buf), "AAAA");
	EQ_STR("type_str(255)", dns_type_str(255, buf, sizeof buf), "ANY");
	EQ_STR("type_str(99)", dns_type_str(99, buf, sizeof buf), "TYPE99");
	EQ_STR("type_str(0)", dns_type_str(0, buf, sizeof buf), "TYPE0");
	EQ_STR("type_str(65535)", dns_type_str(65535, buf, sizeof buf), "TYPE65535");

	/* A small buffer gets a cut, terminated string and nothing past it. */
	memset(buf, '#', sizeof buf);
	EQ_STR("type_str(65535) into 5 bytes", dns_type_str(65535, buf, 5), "TYPE");
	CHECK(buf[5] == '#', "type_str wrote past its buffer's end");

	/* Every type survives a round trip through its name. */
	int bad = 0;
	for (unsigned t = 1; t <= 65535; t++)
		if (dns_type_from_str(dns_type_str((uint16_t)t, buf, sizeof buf)) != (int)t)
			bad = bad ? bad : (int)t;
	CHECK(!bad, "type_from_str(type_str(%d)) is not %d", bad, bad);
}

static void test_strings(void)
{
	static const char *const rcodes[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
	};
	char what[32];
	for (int i = 0; i < 11; i++) {
		snprintf(what, sizeof what, "rcode_str(%d)", i);
		EQ_STR(what, dns_rcode_str(i), rcodes[i]);
	}
	EQ_STR("rcode_str(11)", dns_rcode_str(11), "RCODE11");
	EQ_STR("rcode_str(15)", dns_rcode_str(15), "RCODE15");

	/* These are the reason= values of the tester's log lines. */
	EQ_STR("result_str(OK)", dns_result_str(DNS_OK), "ok");
	EQ_STR("result_str(ESHORT)", dns_result_str(DNS_ESHORT), "truncated_message");
	EQ_STR("result_str(ENOTREPLY)", dns_result_str(DNS_ENOTREPLY), "not_a_reply");
	EQ_STR("result_str(EID)", dns_result_str(DNS_EID), "id_mismatch");
	EQ_STR("result_str(EQUESTION)", dns_result_str(DNS_EQUESTION), "question_mismatch");
	EQ_STR("result_str(EFORMAT)", dns_result_str(DNS_EFORMAT), "malformed");
	EQ_STR("result_str(1)", dns_result_str(1), "unknown");
	EQ_STR("result_str(-6)", dns_result_str(-6), "unknown");
}

/* ---- dns_build_query: byte for byte ---------------------------------- */

/* Builds into a heap block of exactly cap bytes (ASan sees any write
 * past it) and compares with want. Every smaller cap must fail. */
static void expect_query(const char *what, uint16_t id, const char *name, uint16_t type,
                         const uint8_t *want, size_t wlen)
{
	for (size_t cap = 0; cap <= wlen; cap++) {
		uint8_t *buf = malloc(cap ? cap : 1);
		if (!buf)
			abort();
		int n = dns_build_query(buf, cap, id, name, type);
		if (cap < wlen) {
			CHECK(n == -1, "%s: %d bytes into a buffer of %zu, needs %zu", what, n, cap, wlen);
		} else if (EQ(what, n, (long)wlen)) {
			size_t i = 0;
			while (i < wlen && buf[i] == want[i])
				i++;
			/* (arguments are evaluated even when the check passes) */
			CHECK(i == wlen, "%s: byte %zu is 0x%02x, want 0x%02x", what, i,
			      i < wlen ? buf[i] : 0, i < wlen ? want[i] : 0);
		}
		free(buf);
	}
}

static void test_build_query(void)
{
	static const uint8_t example_a[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,  /* ID, RD, QDCOUNT 1 */
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 1, 0, 1,                                      /* A, IN */
	};
	static const uint8_t mixed_aaaa[] = {
		0xff, 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		7, 'E', 'x', 'A', 'm', 'P', 'l', 'e', 3, 'C', 'O', 'M', 0,
		0, 28, 0, 1,
	};
	static const uint8_t root_max[] = {
		0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		0,                                               /* the root */
		0xff, 0xff, 0, 1,
	};
	static const uint8_t k8s_aaaa[] = {
		0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		10, 'k', 'u', 'b', 'e', 'r', 'n', 'e', 't', 'e', 's',
		7, 'd', 'e', 'f', 'a', 'u', 'l', 't', 3, 's', 'v', 'c',
		7, 'c', 'l', 'u', 's', 't', 'e', 'r', 5, 'l', 'o', 'c', 'a', 'l', 0,
		0, 28, 0, 1,
	};
	expect_query("example.com A", 0x1234, "example.com", 1, example_a, sizeof example_a);
	expect_query("example.com. A", 0x1234, "example.com.", 1, example_a, sizeof example_a);
	expect_query("ExAmPle.COM AAAA (case kept)", 0xffff, "ExAmPle.COM", 28, mixed_aaaa, sizeof mixed_aaaa);
	expect_query(". TYPE65535", 0, ".", 65535, root_max, sizeof root_max);
	expect_query("k8s AAAA", 0xbeef, K8S, 28, k8s_aaaa, sizeof k8s_aaaa);

	/* The longest name: 253 characters, 255 bytes on the wire. */
	char name[300];
	uint8_t want[DNS_MAX_QUERY];
	struct msg m = {.n = 0};
	put(&m, example_a, 12);
	put_name(&m, long_name(name, 253));
	put16(&m, 1), put16(&m, 1);
	EQ("253-character query length", m.n, 12 + 255 + 4);
	CHECK(m.b[12] == 63 && m.b[12 + 64] == 63 && m.b[12 + 128] == 63 && m.b[12 + 192] == 61 &&
	      m.b[12 + 254] == 0, "253-character name: labels are not 63,63,63,61");
	CHECK(m.n <= DNS_MAX_QUERY, "DNS_MAX_QUERY %d is below the longest query %zu", DNS_MAX_QUERY, m.n);
	memcpy(want, m.b, m.n);
	expect_query("253-character name", 0x1234, name, 1, want, m.n);
	strcat(name, ".");
	expect_query("253-character name and a final dot", 0x1234, name, 1, want, m.n);

	/* Names dns_check_name rejects are never encoded. */
	uint8_t buf[512];
	static const char *const bad[] = { "", "..", "a..b", ".a" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECK(dns_build_query(buf, sizeof buf, 1, bad[i], 1) == -1, "build_query(\"%s\"): accepted", bad[i]);
	CHECK(dns_build_query(buf, sizeof buf, 1, long_name(name, 254), 1) == -1, "build_query(254 characters): accepted");
	memset(name, 'x', 64), name[64] = 0;
	CHECK(dns_build_query(buf, sizeof buf, 1, name, 1) == -1, "build_query(label of 64): accepted");
}

/* ---- dns_parse_reply: hand-built replies ------------------------------ */

static void test_answers(void)
{
	struct query qa = query(0x1234, K8S, T_A), q6 = query(0x4321, K8S, T_AAAA);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &qa);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	EQ_RC("A", parse("A", &m, &qa, &r), DNS_OK);
	expect_addr("A", &r, AF_INET, k8s_v4);
	EQ("A ttl", r.ttl, 300);
	EQ("A ancount", r.ancount, 1);
	EQ("A id", r.id, 0x1234);
	CHECK(r.aa == 1 && r.ra == 1 && r.tc == 0 && r.rcode == 0, "A flags: aa %d ra %d tc %d rcode %d",
	      r.aa, r.ra, r.tc, r.rcode);

	reply_to(&m, &q6);
	set16(&m, 6, 1);
	m.b[2] &= (uint8_t)~0x04, m.b[3] = 0;    /* not authoritative, no recursion */
	put_ptr(&m, 12), put_rr(&m, T_AAAA, C_IN, 0xffffffff, k8s_v6, 16);
	EQ_RC("AAAA", parse("AAAA", &m, &q6, &r), DNS_OK);
	expect_addr("AAAA", &r, AF_INET6, k8s_v6);
	CHECK(r.ttl == 0xffffffffu, "AAAA ttl: got %u, want 2^32-1", r.ttl);
	CHECK(r.aa == 0 && r.ra == 0, "AAAA flags: aa %d ra %d", r.aa, r.ra);

	/* NOERROR without an answer (NODATA), parsed into the struct that
	 * still holds the A above: no stale address may survive. */
	reply_to(&m, &q6);
	EQ_RC("NODATA", parse("NODATA", &m, &q6, &r), DNS_OK);
	expect_addr("NODATA", &r, 0, NULL);
	EQ("NODATA ancount", r.ancount, 0);

	/* NXDOMAIN with the zone's SOA in the authority section. */
	static const uint8_t soa_rdata[] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	reply_to(&m, &qa);
	m.b[3] = 0x83;
	set16(&m, 8, 1);
	put_name(&m, "cluster.local"), put_rr(&m, T_SOA, C_IN, 60, soa_rdata, sizeof soa_rdata);
	EQ_RC("NXDOMAIN", parse("NXDOMAIN", &m, &qa, &r), DNS_OK);
	EQ("NXDOMAIN rcode", r.rcode, 3);
	EQ_STR("NXDOMAIN rcode string", dns_rcode_str(r.rcode), "NXDOMAIN");
	expect_addr("NXDOMAIN", &r, 0, NULL);

	/* Every rcode, including the unassigned ones, is passed up as is. */
	for (int rcode = 0; rcode < 16; rcode++) {
		reply_to(&m, &qa);
		m.b[3] = (uint8_t)(0x80 | rcode);
		EQ_RC("rcode reply", parse("rcode", &m, &qa, &r), DNS_OK);
		EQ("rcode", r.rcode, rcode);
	}
}

/* A CNAME chain then addresses: the first A/AAAA is the one reported,
 * whatever its owner, and records of other types are stepped over. */
static void test_cname_chain(void)
{
	static const uint8_t first[4] = {192, 0, 2, 7}, second[4] = {192, 0, 2, 8};
	struct query q = query(7, "www.example.com", T_A);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &q);
	set16(&m, 6, 5);
	size_t a_name = m.n + 12;                /* where the first rdata name starts */
	put_ptr(&m, 12);
	put_rr(&m, T_CNAME, C_IN, 100, "\001a\300\020", 4);        /* www -> a.example.com */
	put_ptr(&m, (unsigned)a_name);
	put_rr(&m, T_CNAME, C_IN, 100, "\001b\300\020", 4);        /* a -> b.example.com */
	put_ptr(&m, (unsigned)a_name + 12 + 4);
	put_rr(&m, 99, C_IN, 100, "xyz", 3);                         /* an unknown type */
	put_ptr(&m, (unsigned)a_name + 12 + 4);
	put_rr(&m, T_A, C_IN, 60, first, 4);
	put_ptr(&m, (unsigned)a_name + 12 + 4);
	put_rr(&m, T_A, C_IN, 30, second, 4);
	EQ_RC("CNAME chain", parse("CNAME chain", &m, &q, &r), DNS_OK);
	expect_addr("CNAME chain: first A", &r, AF_INET, first);
	EQ("CNAME chain: ttl of the first A", r.ttl, 60);
	EQ("CNAME chain ancount", r.ancount, 5);

	/* An AAAA query answered with an AAAA then an A: the first wins. */
	struct query q6 = query(8, "www.example.com", T_AAAA);
	reply_to(&m, &q6);
	set16(&m, 6, 2);
	put_ptr(&m, 12), put_rr(&m, T_AAAA, C_IN, 5, k8s_v6, 16);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 5, first, 4);
	EQ_RC("AAAA then A", parse("AAAA then A", &m, &q6, &r), DNS_OK);
	expect_addr("AAAA then A", &r, AF_INET6, k8s_v6);

	/* An A in another class (CHAOS) is no address. */
	reply_to(&m, &q);
	set16(&m, 6, 2);
	put_ptr(&m, 12), put_rr(&m, T_A, C_CH, 5, second, 4);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 5, first, 4);
	EQ_RC("CH A then IN A", parse("CH A then IN A", &m, &q, &r), DNS_OK);
	expect_addr("CH A then IN A", &r, AF_INET, first);
}

/* Names compare case-insensitively: resolvers that randomise case
 * (0x20 encoding) or normalise it still match our question. */
static void test_0x20(void)
{
	struct query lower = query(1, K8S, T_A), mixed = query(1, "KuBeRnEtEs.DEFAULT.svc.Cluster.LOCAL", T_A);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &mixed);
	EQ_RC("query lower, reply mixed case", parse("0x20", &m, &lower, &r), DNS_OK);
	reply_to(&m, &lower);
	EQ_RC("query mixed, reply lower case", parse("0x20", &m, &mixed, &r), DNS_OK);

	/* Only letters fold: '-' (0x2d) and '\r' (0x0d) differ by 0x20. */
	struct query dash = query(1, "a-b", T_A), cr = query(1, "a\rb", T_A);
	reply_to(&m, &cr);
	EQ_RC("'-' is not '\\r'", parse("0x20", &m, &dash, &r), DNS_EQUESTION);
	/* '@' (0x40) and '`' (0x60) are not letters either. */
	struct query at = query(1, "a@b", T_A), grave = query(1, "a`b", T_A);
	reply_to(&m, &grave);
	EQ_RC("'@' is not '`'", parse("0x20", &m, &at, &r), DNS_EQUESTION);
}

/* Replies to something else: the tester counts them as unexpected. */
static void test_not_ours(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	char what[64];

	reply_to(&m, &q);
	set16(&m, 0, 0x1235);
	EQ_RC("ID + 1", parse("ID", &m, &q, &r), DNS_EID);
	set16(&m, 0, 0x3412);
	EQ_RC("ID byte-swapped", parse("ID", &m, &q, &r), DNS_EID);

	reply_to(&m, &q);
	m.b[2] &= 0x7f;
	EQ_RC("QR clear", parse("QR", &m, &q, &r), DNS_ENOTREPLY);
	struct msg echo = {.n = 0};
	put(&echo, q.b, q.n);
	EQ_RC("our own query echoed", parse("echo", &echo, &q, &r), DNS_ENOTREPLY);
	for (unsigned op = 1; op < 16; op++) {
		reply_to(&m, &q);
		m.b[2] = (uint8_t)(0x85 | op << 3);
		snprintf(what, sizeof what, "opcode %u", op);
		EQ_RC(what, parse(what, &m, &q, &r), DNS_ENOTREPLY);
	}

	/* The question must be ours: name, type, class, and only one. */
	struct query other = query(0x1234, K8S ".x", T_A), shorter = query(0x1234, "default.svc.cluster.local", T_A),
	             typo = query(0x1234, "kubernetes.default.svc.cluster.locak", T_A),
	             aaaa = query(0x1234, K8S, T_AAAA);
	reply_to(&m, &other);
	EQ_RC("one more label", parse("question", &m, &q, &r), DNS_EQUESTION);
	reply_to(&m, &shorter);
	EQ_RC("one label less", parse("question", &m, &q, &r), DNS_EQUESTION);
	reply_to(&m, &typo);
	EQ_RC("one letter differs", parse("question", &m, &q, &r), DNS_EQUESTION);
	reply_to(&m, &aaaa);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_AAAA, C_IN, 5, k8s_v6, 16);
	EQ_RC("a reply to AAAA for our A query", parse("question", &m, &q, &r), DNS_EQUESTION);
	reply_to(&m, &q);
	set16(&m, m.n - 2, C_CH);
	EQ_RC("class CH", parse("question", &m, &q, &r), DNS_EQUESTION);

	for (unsigned qd = 0; qd < 3; qd += 2) {
		reply_to(&m, &q);
		set16(&m, 4, qd);
		snprintf(what, sizeof what, "QDCOUNT %u", qd);
		EQ_RC(what, parse(what, &m, &q, &r), DNS_EQUESTION);
	}
	reply_to(&m, &q);
	put(&m, q.b + 12, q.n - 12);             /* the same question twice */
	set16(&m, 4, 2);
	EQ_RC("QDCOUNT 2, the same question twice", parse("QDCOUNT", &m, &q, &r), DNS_EQUESTION);
}

/* Replies that end early. */
static void test_short(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	char what[64];

	reply_to(&m, &q);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	size_t qend = q.n, full = m.n;

	for (size_t len = 0; len < 12; len++) {
		snprintf(what, sizeof what, "header cut at %zu", len);
		EQ_RC(what, parse_exact(m.b, len, &q, &r), DNS_ESHORT);
	}
	/* In the question or the answer: rejected, whatever the reason given
	 * (test_truncation_result holds the reason to account). */
	for (size_t len = 12; len < full; len++) {
		int rc = parse_exact(m.b, len, &q, &r);
		invariants("cut", m.b, len, rc, &r);
		CHECK(rc == DNS_ESHORT || rc == DNS_EFORMAT, "cut at %zu of %zu (question ends at %zu): %s",
		      len, full, qend, dns_result_str(rc));
	}
	EQ_RC("uncut", parse_exact(m.b, full, &q, &r), DNS_OK);

	/* Bytes after the last section are ignored. */
	put(&m, "junk", 4);
	EQ_RC("trailing bytes", parse("trailing", &m, &q, &r), DNS_OK);
	expect_addr("trailing bytes", &r, AF_INET, k8s_v4);
}

/* TC: a server cut the reply to fit; what did arrive is kept. */
static void test_tc(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &q);
	m.b[2] |= 0x02;
	set16(&m, 6, 3);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	size_t one = m.n;
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, "\012\140\000\002", 4);
	size_t two = m.n;
	for (size_t len = q.n; len <= two; len++) {
		int rc = parse_exact(m.b, len, &q, &r);
		invariants("tc", m.b, len, rc, &r);
		unsigned complete = len >= two ? 2 : len >= one ? 1 : 0;
		CHECK(rc == DNS_OK && r.tc == 1 && r.ancount == complete,
		      "TC, 3 announced, cut at %zu: %s ancount %u, want ok ancount %u",
		      len, dns_result_str(rc), r.ancount, complete);
		if (complete)
			expect_addr("TC: first of what came", &r, AF_INET, k8s_v4);
	}

	/* The same cut without TC is an error. */
	m.b[2] &= (uint8_t)~0x02;
	int rc = parse_exact(m.b, two, &q, &r);
	CHECK(rc == DNS_ESHORT || rc == DNS_EFORMAT, "no TC, 3 announced, 2 present: %s", dns_result_str(rc));

	/* TC with the question cut is no reply to anything. */
	m.b[2] |= 0x02;
	CHECK(parse_exact(m.b, q.n - 1, &q, &r) != DNS_OK, "TC with the question cut: ok");
}

/* Counts that promise more than the message holds. */
static void test_counts(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	int rc;

	reply_to(&m, &q);
	set16(&m, 6, 0xffff);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	rc = parse("ANCOUNT 65535", &m, &q, &r);
	CHECK(rc == DNS_ESHORT || rc == DNS_EFORMAT, "ANCOUNT 65535, 1 present: %s", dns_result_str(rc));

	m.b[2] |= 0x02;
	EQ_RC("ANCOUNT 65535 with TC", parse("ANCOUNT", &m, &q, &r), DNS_OK);
	EQ("ANCOUNT 65535 with TC: ancount", r.ancount, 1);

	reply_to(&m, &q);
	set16(&m, 4, 0xffff);
	EQ_RC("QDCOUNT 65535", parse("QDCOUNT", &m, &q, &r), DNS_EQUESTION);

	/* The parser reads the answer section only: authority and additional
	 * counts are never followed, so huge ones cannot hurt and are let be. */
	reply_to(&m, &q);
	set16(&m, 6, 1), set16(&m, 8, 0xffff), set16(&m, 10, 0xffff);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	EQ_RC("NSCOUNT, ARCOUNT 65535", parse("NSCOUNT", &m, &q, &r), DNS_OK);
	expect_addr("NSCOUNT, ARCOUNT 65535", &r, AF_INET, k8s_v4);

	/* 65535 empty-ish records: one root-owned unknown record repeated. */
	reply_to(&m, &q);
	set16(&m, 6, 0xffff);
	for (int i = 0; i < 100; i++)
		put8(&m, 0), put_rr(&m, 99, C_IN, 0, "", 0);
	rc = parse("65535 records, 100 present", &m, &q, &r);
	CHECK(rc == DNS_ESHORT || rc == DNS_EFORMAT, "65535 records, 100 present: %s", dns_result_str(rc));
}

/* Records whose fixed part or data is wrong. */
static void test_bad_records(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &q);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, "\012\140\000\001\002", 5);
	EQ_RC("A with 5 bytes of data", parse("A rdlen 5", &m, &q, &r), DNS_EFORMAT);

	reply_to(&m, &q);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_AAAA, C_IN, 300, k8s_v4, 4);
	EQ_RC("AAAA with 4 bytes of data", parse("AAAA rdlen 4", &m, &q, &r), DNS_EFORMAT);

	reply_to(&m, &q);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	set16(&m, m.n - 6, 0xffff);              /* RDLENGTH 65535, 4 bytes follow */
	EQ_RC("RDLENGTH past the end", parse("rdlen", &m, &q, &r), DNS_ESHORT);
	expect_addr("RDLENGTH past the end", &r, 0, NULL);
}

/* Compression pointers (RFC 1035 4.1.4) used against the parser. */
static void test_compression(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	size_t at;

	/* Answer owner names that are pointers gone wrong. */
	static const struct { const char *what; int self, target; } bad_ptr[] = {
		{"pointer to itself", 1, 0},
		{"pointer forward, into the message", 0, -1},
		{"pointer past the end", 0, 0x3fff},
	};
	for (size_t i = 0; i < sizeof bad_ptr / sizeof *bad_ptr; i++) {
		reply_to(&m, &q);
		set16(&m, 6, 1);
		at = m.n;
		put_ptr(&m, bad_ptr[i].self ? (unsigned)at
		            : bad_ptr[i].target < 0 ? (unsigned)at + 2 : (unsigned)bad_ptr[i].target);
		put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
		EQ_RC(bad_ptr[i].what, parse(bad_ptr[i].what, &m, &q, &r), DNS_EFORMAT);
	}

	/* A loop through a label: "a" then a pointer back to the "a". */
	reply_to(&m, &q);
	set16(&m, 6, 1);
	at = m.n;
	put_labels(&m, "a", 1), put_ptr(&m, (unsigned)at);
	put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	EQ_RC("loop via a label", parse("loop", &m, &q, &r), DNS_EFORMAT);

	/* The same loop in the question itself. */
	m.n = 0;
	put(&m, q.b, 12);
	m.b[2] = 0x81;
	put_labels(&m, "a", 1), put_ptr(&m, 12);
	put16(&m, T_A), put16(&m, C_IN);
	EQ_RC("loop in the question", parse("loop", &m, &q, &r), DNS_EFORMAT);

	/* Labels of types 01 and 10 (0x40, 0x80) are reserved. */
	for (unsigned c = 0x40; c <= 0x80; c += 0x40) {
		reply_to(&m, &q);
		set16(&m, 6, 1);
		put8(&m, c), put8(&m, 0);
		put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
		EQ_RC("reserved label type", parse("reserved", &m, &q, &r), DNS_EFORMAT);
	}

	/* A pointer whose second byte is missing. */
	reply_to(&m, &q);
	set16(&m, 6, 1);
	put8(&m, 0xc0);
	CHECK(parse("half a pointer", &m, &q, &r) != DNS_OK, "half a pointer: ok");
}

/* Long chains of valid, backward pointers, and names that pointers make
 * longer than 255 bytes: rejected, while short ones are fine. */
static void test_pointer_chains(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	char what[64];

	/* A record of type 99 holds n pointers, each to the one before it,
	 * the first to the question's name; the A record's owner points to
	 * the last: n + 1 hops. */
	static const unsigned hops[] = {1, 10, 200};
	for (size_t i = 0; i < sizeof hops / sizeof *hops; i++) {
		unsigned n = hops[i] - 1;
		reply_to(&m, &q);
		set16(&m, 6, 2);
		put_ptr(&m, 12), put16(&m, 99), put16(&m, C_IN), put32(&m, 0), put16(&m, 2 * (n ? n : 1));
		size_t first = m.n;
		if (!n)
			put16(&m, 0);
		for (unsigned k = 0; k < n; k++)
			put_ptr(&m, k ? (unsigned)(first + 2 * (k - 1)) : 12);
		put_ptr(&m, n ? (unsigned)(first + 2 * (n - 1)) : 12);
		put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
		snprintf(what, sizeof what, "%u pointer hops", hops[i]);
		int rc = parse(what, &m, &q, &r);
		if (hops[i] <= 10)
			EQ_RC(what, rc, DNS_OK);
		else
			EQ_RC(what, rc, DNS_EFORMAT);
	}

	/* Segments of one 63-byte label each, every one ending in a pointer
	 * to the previous segment: k segments expand to 64k + 1 bytes. */
	for (unsigned k = 3; k <= 4; k++) {
		char label[64];
		memset(label, 'x', 63), label[63] = 0;
		reply_to(&m, &q);
		set16(&m, 6, 2);
		put_ptr(&m, 12), put16(&m, 99), put16(&m, C_IN), put32(&m, 0), put16(&m, 64 * k);
		size_t seg = m.n;
		for (unsigned s = 0; s < k; s++) {
			put_labels(&m, label, 1);
			if (s)
				put_ptr(&m, (unsigned)(seg + 66 * (s - 1)));
			else
				put8(&m, 0), put8(&m, 0);    /* the root, padded to 66 */
		}
		set16(&m, seg - 2, (unsigned)(m.n - seg));
		put_ptr(&m, (unsigned)(seg + 66 * (k - 1)));
		put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
		snprintf(what, sizeof what, "name of %u bytes via pointers", 64 * k + 1);
		EQ_RC(what, parse(what, &m, &q, &r), 64 * k + 1 <= 255 ? DNS_OK : DNS_EFORMAT);
	}
}

/* dns.h: DNS_ESHORT is a reply that "ends before a field it announces",
 * logged as reason=truncated_message; DNS_EFORMAT (reason=malformed) is a
 * bad name, a loop, a bad record. A datagram cut inside a name is the
 * former: nothing in the bytes that did arrive is malformed. */
static void test_truncation_result(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;

	reply_to(&m, &q);
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	EQ_RC("cut after the header (question name missing)", parse_exact(m.b, 12, &q, &r), DNS_ESHORT);
	EQ_RC("cut inside the question name", parse_exact(m.b, 20, &q, &r), DNS_ESHORT);
	EQ_RC("cut inside the question type", parse_exact(m.b, q.n - 3, &q, &r), DNS_ESHORT);
	EQ_RC("cut before the answer's owner", parse_exact(m.b, q.n, &q, &r), DNS_ESHORT);
	EQ_RC("cut inside the answer's owner pointer", parse_exact(m.b, q.n + 1, &q, &r), DNS_ESHORT);
	EQ_RC("cut inside the answer's fixed part", parse_exact(m.b, q.n + 5, &q, &r), DNS_ESHORT);
}

/* TC excuses answers that did not fit, not answers that are malformed:
 * a hostile reply must not get a loop or a 5-byte A accepted by setting
 * one flag. */
static void test_tc_is_no_excuse(void)
{
	struct query q = query(0x1234, K8S, T_A);
	struct msg m;
	struct dns_reply r;
	size_t at;

	reply_to(&m, &q);
	m.b[2] |= 0x02;
	set16(&m, 6, 2);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	at = m.n;
	put_labels(&m, "a", 1), put_ptr(&m, (unsigned)at);      /* a loop */
	put_rr(&m, T_A, C_IN, 300, k8s_v4, 4);
	EQ_RC("TC and a compression loop", parse("tc loop", &m, &q, &r), DNS_EFORMAT);

	reply_to(&m, &q);
	m.b[2] |= 0x02;
	set16(&m, 6, 1);
	put_ptr(&m, 12), put_rr(&m, T_A, C_IN, 300, "\012\140\000\001\002", 5);
	EQ_RC("TC and an A with 5 bytes", parse("tc rdlen", &m, &q, &r), DNS_EFORMAT);
}

/* ---- real replies: fixtures and mutations ----------------------------- */

/* Where the parts of a well-formed reply end, found by a walk of our
 * own: the question, then each answer; and each answer's type. */
struct layout { size_t qend, end[64]; uint16_t type[64]; unsigned an; };

static int skip_name(const uint8_t *m, size_t len, size_t *p)
{
	while (*p < len) {
		uint8_t c = m[*p];
		if ((c & 0xc0) == 0xc0) {
			*p += 2;
			return *p <= len ? 0 : -1;
		}
		*p += 1 + (size_t)c;
		if (c == 0)
			return 0;
	}
	return -1;
}

static int walk(const uint8_t *m, size_t len, struct layout *lo)
{
	size_t p = 12;
	if (len < 12 || skip_name(m, len, &p) || p + 4 > len)
		return -1;
	lo->qend = p += 4;
	lo->an = get16(m + 6);
	if (lo->an > 64)
		return -1;
	for (unsigned i = 0; i < lo->an; i++) {
		if (skip_name(m, len, &p) || p + 10 > len)
			return -1;
		lo->type[i] = get16(m + p);
		p += 10 + get16(m + p + 8);
		if (p > len)
			return -1;
		lo->end[i] = p;
	}
	return 0;
}

/* Rebuilds, with dns_build_query, the query a saved reply answers: its
 * ID, its question's name (uncompressed labels) and type. */
static int query_of(const uint8_t *m, size_t len, struct query *q)
{
	char name[256];
	size_t p = 12, n = 0;
	while (p < len && m[p] && m[p] < 64 && p + 1 + m[p] <= len && n + m[p] + 2 < sizeof name) {
		memcpy(name + n, m + p + 1, m[p]);
		n += m[p];
		name[n++] = '.';
		p += 1 + (size_t)m[p];
	}
	if (p + 5 > len || m[p])
		return -1;
	if (!n)
		name[n++] = '.';
	name[n] = 0;
	int qlen = dns_build_query(q->b, sizeof q->b, get16(m), name, get16(m + p + 1));
	q->n = qlen < 0 ? 0 : (size_t)qlen;
	return qlen < 0 ? -1 : 0;
}

static int same_answer(const struct dns_reply *a, const struct dns_reply *b)
{
	return a->rcode == b->rcode && a->ancount == b->ancount && a->tc == b->tc &&
	       a->addr_family == b->addr_family && a->ttl == b->ttl &&
	       !memcmp(a->addr, b->addr, sizeof a->addr);
}

/* Every cut from 0 to len: the outcome each length must have. */
static void mutate_cuts(const char *tag, const uint8_t *msg, size_t len, const struct query *q,
                        const struct layout *lo, const struct dns_reply *full)
{
	size_t aend = lo->an ? lo->end[lo->an - 1] : lo->qend;
	for (size_t cut = 0; cut <= len; cut++) {
		struct dns_reply r;
		int rc = parse_exact(msg, cut, q, &r);
		invariants(tag, msg, cut, rc, &r);
		if (cut < lo->qend || (cut < aend && !full->tc)) {
			CHECK(rc == DNS_ESHORT || rc == DNS_EFORMAT, "%s cut at %zu of %zu: %s",
			      tag, cut, len, dns_result_str(rc));
		} else if (cut < aend) {
			/* TC: the complete answers before the cut are kept. */
			unsigned complete = 0, first = lo->an;
			while (complete < lo->an && lo->end[complete] <= cut)
				complete++;
			for (unsigned i = lo->an; i-- > 0;)
				if (lo->type[i] == T_A || lo->type[i] == T_AAAA)
					first = i;
			CHECK(rc == DNS_OK && r.ancount == complete &&
			      (first < complete ? r.addr_family == full->addr_family : !r.addr_family),
			      "%s (TC) cut at %zu of %zu: %s ancount %u family %d, want ok ancount %u",
			      tag, cut, len, dns_result_str(rc), r.ancount, r.addr_family, complete);
		} else {
			/* Past the answers: authority and additional are not read. */
			CHECK(rc == DNS_OK && same_answer(&r, full), "%s cut at %zu of %zu (answers end at %zu): %s",
			      tag, cut, len, aend, dns_result_str(rc));
		}
	}
}

/* Every single-bit flip: invariants everywhere, and the outcome the
 * header and question bits decide. */
static void mutate_flips(const char *tag, const uint8_t *msg, size_t len, const struct query *q,
                         const struct layout *lo, const struct dns_reply *full)
{
	uint8_t *m = malloc(len);
	if (!m)
		abort();
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 9; bit++) {
			struct dns_reply r;
			uint8_t x = bit < 8 ? (uint8_t)(1u << bit) : 0xff;
			memcpy(m, msg, len);
			m[i] ^= x;
			int rc = dns_parse_reply(m, len, q->b, q->n, &r);
			invariants(tag, m, len, rc, &r);
			if (bit == 8)
				continue;                /* all bits: invariants only */
			uint8_t c = msg[i];
			int letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
			const char *why = NULL;
			if (i < 2 && rc != DNS_EID)
				why = "a flip in the ID must give id_mismatch";
			else if (i == 2 && (x & 0xf8) && rc != DNS_ENOTREPLY)
				why = "a flip of QR or the opcode must give not_a_reply";
			else if ((i == 2 || i == 3 || (i >= 8 && i < 12)) && !(i == 2 && (x & 0xf8)) && rc != DNS_OK)
				why = "a flip in AA/TC/RD/RA/Z/RCODE or NSCOUNT/ARCOUNT must still parse";
			else if (i >= 8 && i < 12 && !same_answer(&r, full))
				why = "a flip in NSCOUNT/ARCOUNT changed the answer";
			else if ((i == 4 || i == 5 || (i >= lo->qend - 4 && i < lo->qend)) && rc != DNS_EQUESTION)
				why = "a flip in QDCOUNT or QTYPE/QCLASS must give question_mismatch";
			else if (i >= 12 && i < lo->qend - 4 && letter && x == 0x20 && (rc != DNS_OK || !same_answer(&r, full)))
				why = "a case flip in the question must still match (0x20)";
			else if (i >= 12 && i < lo->qend - 4 && !(letter && x == 0x20) && rc == DNS_OK)
				why = "a flip in the question name must not match";
			CHECK(!why, "%s: byte %zu ^ 0x%02x: %s (got %s)", tag, i, x, why ? why : "", dns_result_str(rc));
		}
	}
	free(m);
}

/* Random damage, reproducible: a few bytes overwritten, then a cut. */
static void mutate_random(const char *tag, const uint8_t *msg, size_t len, const struct query *q)
{
	uint32_t s = 2463534242u;
	for (int round = 0; round < 3000; round++) {
		uint8_t m[4096];
		memcpy(m, msg, len);
		for (int k = 0; k < 1 + round % 4; k++) {
			s ^= s << 13, s ^= s >> 17, s ^= s << 5;     /* xorshift32 */
			m[s % len] = (uint8_t)(s >> 24);
		}
		s ^= s << 13, s ^= s >> 17, s ^= s << 5;
		size_t cut = round % 2 ? len : s % (len + 1);
		struct dns_reply r;
		int rc = parse_exact(m, cut, q, &r);
		invariants(tag, m, cut, rc, &r);
	}
}

/* A saved real reply: parse it whole, then every cut, flip and garble. */
static int mutate_reply(const char *tag, const uint8_t *msg, size_t len, struct dns_reply *full)
{
	struct query q;
	struct layout lo;
	if (!CHECK(len > 0 && len <= 4096 && !query_of(msg, len, &q) && !walk(msg, len, &lo),
	           "%s: not a reply this test can walk (%zu bytes)", tag, len))
		return -1;
	int rc = parse_exact(msg, len, &q, full);
	invariants(tag, msg, len, rc, full);
	if (!EQ_RC(tag, rc, DNS_OK))
		return -1;
	mutate_cuts(tag, msg, len, &q, &lo, full);
	mutate_flips(tag, msg, len, &q, &lo, full);
	mutate_random(tag, msg, len, &q);
	return 0;
}

static size_t load(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* Replies captured from real servers by tests/t_dns.sh, checked in. */
static const struct fixture {
	const char *file, *name;
	uint16_t type;
	int rcode, tc;
	unsigned ancount;
	const char *addr;                      /* NULL: no address */
	long ttl;                              /* -1: not checked */
} fixtures[] = {
	/* file                    name asked                  type  rcode tc an addr           ttl */
	{"dnsmasq-A.bin",          K8S,                        T_A,    0, 0, 1, "10.96.0.1",  300},
	{"dnsmasq-AAAA.bin",       K8S,                        T_AAAA, 0, 0, 1, "fd00:96::1", 300},
	{"dnsmasq-refused-A.bin",  "nope.cluster.local",       T_A,    5, 0, 0, NULL,         0},
	{"dnsmasq-cname-A.bin",    "alias.cluster.local",      T_A,    0, 0, 2, "10.96.0.1",  300},
	{"dnsmasq-0x20-A.bin",     "KuBeRnEtEs.Default.SVC.cluster.LOCAL", T_A, 0, 0, 1, "10.96.0.1", 300},
	/* 40 AAAA records, cut to the 17 that fit in 512 bytes */
	{"dnsmasq-tc-AAAA.bin",    "many.cluster.local",       T_AAAA, 0, 1, 17, "fd00:96::21", 0},
	{"unbound-A.bin",          K8S,                        T_A,    0, 0, 1, "10.96.0.1",  300},
	{"unbound-AAAA.bin",       K8S,                        T_AAAA, 0, 0, 1, "fd00:96::1", 300},
	{"unbound-nxdomain-A.bin", "nope.cluster.local",       T_A,    3, 0, 0, NULL,         0},
	/* the CNAME alone: unbound's local data does not chase it */
	{"unbound-cname-A.bin",    "alias.cluster.local",      T_A,    0, 0, 1, NULL,         0},
	/* unbound drops the whole RRset that does not fit */
	{"unbound-tc-AAAA.bin",    "many.cluster.local",       T_AAAA, 0, 1, 0, NULL,         0},
	{"unbound-nodata-TXT.bin", K8S,                        16,     0, 0, 0, NULL,         0},
};

static void test_fixtures(const char *dir)
{
	for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
		const struct fixture *f = &fixtures[i];
		char path[512], got[INET6_ADDRSTRLEN];
		uint8_t msg[4096];
		snprintf(path, sizeof path, "%s/%s", dir, f->file);
		size_t len = load(path, msg, sizeof msg);
		if (!CHECK(len >= 12, "%s: missing or short (%zu bytes)", path, len))
			continue;

		/* The server echoed the question dns_build_query wrote. */
		struct query q = query(get16(msg), f->name, f->type);
		CHECK(len >= q.n && !memcmp(msg + 12, q.b + 12, q.n - 12),
		      "%s: question is not the one dns_build_query writes", f->file);

		struct dns_reply r;
		int rc = parse_exact(msg, len, &q, &r);
		invariants(f->file, msg, len, rc, &r);
		addr_str(&r, got, sizeof got);
		CHECK(rc == DNS_OK && r.rcode == f->rcode && r.tc == f->tc && r.ancount == f->ancount &&
		      !strcmp(got, f->addr ? f->addr : "-") && (f->ttl < 0 || r.ttl == (uint32_t)f->ttl),
		      "%s: %s rcode %s tc %d ancount %u addr %s ttl %u; want ok rcode %s tc %d ancount %u addr %s ttl %ld",
		      f->file, dns_result_str(rc), dns_rcode_str(r.rcode), r.tc, r.ancount, got, r.ttl,
		      dns_rcode_str(f->rcode), f->tc, f->ancount, f->addr ? f->addr : "-", f->ttl);

		struct dns_reply again;
		mutate_reply(f->file, msg, len, &again);
	}
}

/* ---- modes ------------------------------------------------------------ */

static void summary(const char *what, unsigned long checks, unsigned long failed)
{
	printf("dns_test %s: %lu assertions, %lu failed\n", what, checks, failed);
}

static int offline(void)
{
	const char *dir = getenv("DNS_TEST_DATA");
	test_check_name();
	test_type_from_str();
	test_type_str();
	test_strings();
	test_build_query();
	test_answers();
	test_cname_chain();
	test_0x20();
	test_not_ours();
	test_short();
	test_tc();
	test_counts();
	test_bad_records();
	test_compression();
	test_pointer_chains();
	test_truncation_result();
	test_tc_is_no_excuse();
	unsigned long unit = n_checks, unit_failed = n_failed;
	test_fixtures(dir && *dir ? dir : "tests/data/dns");
	printf("dns_test: %lu unit assertions (%lu failed); %lu on %zu real-server fixtures and their mutations (%lu failed)\n",
	       unit, unit_failed, n_checks - unit, sizeof fixtures / sizeof *fixtures, n_failed - unit_failed);
	summary("offline", n_checks, n_failed);
	return n_failed ? 1 : 0;
}

static int mutate(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		uint8_t msg[4097];
		struct dns_reply r;
		size_t len = load(argv[i], msg, sizeof msg);
		mutate_reply(argv[i], msg, len, &r);
	}
	summary("mutate", n_checks, n_failed);
	return n_failed || argc < 3 ? 1 : 0;
}

/* One query to ADDR (numeric: never a name lookup), one reply, printed
 * as key=value words; the raw reply is saved if asked. */
static int live(int argc, char **argv)
{
	const char *host = argv[2], *port = argv[3], *name = argv[4], *save = argc > 6 ? argv[6] : NULL;
	int type = dns_type_from_str(argv[5]);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *ai;
	struct query q;
	int qlen = type < 0 ? -1 : dns_build_query(q.b, sizeof q.b, (uint16_t)(getpid() * 40503u), name, (uint16_t)type);
	if (qlen < 0 || getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "dns_test live: bad name, type, address or port\n");
		return 2;
	}
	q.n = (size_t)qlen;
	int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) || send(fd, q.b, q.n, 0) != (ssize_t)q.n) {
		perror("dns_test live: send");
		return 2;
	}
	freeaddrinfo(ai);

	uint8_t buf[4096];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n = poll(&p, 1, 2000) == 1 ? recv(fd, buf, sizeof buf, 0) : -1;
	close(fd);
	if (n < 0) {
		printf("error=%s\n", p.revents ? "recv" : "timeout");
		return 2;
	}
	if (save) {
		FILE *f = fopen(save, "wb");
		if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f)) {
			perror(save);
			return 2;
		}
	}
	struct dns_reply r;
	char addr[INET6_ADDRSTRLEN];
	int rc = dns_parse_reply(buf, (size_t)n, q.b, q.n, &r);
	printf("result=%s rcode=%s ancount=%u tc=%d aa=%d addr=%s ttl=%u bytes=%zd\n",
	       dns_result_str(rc), dns_rcode_str(r.rcode), r.ancount, r.tc, r.aa,
	       addr_str(&r, addr, sizeof addr), r.ttl, n);
	return rc == DNS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 1)
		return offline();
	if (!strcmp(argv[1], "mutate"))
		return mutate(argc, argv);
	if (!strcmp(argv[1], "live") && (argc == 6 || argc == 7))
		return live(argc, argv);
	fprintf(stderr, "usage: dns_test\n"
	                "       dns_test mutate FILE...\n"
	                "       dns_test live ADDR PORT NAME TYPE [SAVEFILE]\n");
	return 2;
}
