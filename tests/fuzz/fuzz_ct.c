/* fuzz_ct.c - libFuzzer target for nl.c's message parser and formatter.
 *
 * Input: one ctnetlink message (nlmsghdr, nfgenmsg, attributes), as the
 * kernel sends it in a dump. ct_parse_msg(msg, len) promises to read
 * nothing past len. Three ways of holding it to that:
 *  1. an exact-size heap copy: ASan flags nl.c's own reads past len;
 *  2. a copy whose last byte is the last byte before a PROT_NONE page:
 *     libmnl.a is not instrumented, but a read past len there faults
 *     (exact for lengths that are a multiple of 4, where the copy can
 *     start 4-aligned and still end at the page);
 *  3. for other lengths, the 1-3 bytes between len and the next 4-byte
 *     boundary are filled with 0x00 and then with 0xff: the result must
 *     not depend on them.
 * When the message parses, ct_format must NUL-terminate inside any cap
 * (0, small, large), the small output must be a prefix of the large one,
 * and ct_is_dnat / ct_seen_reply / ct_tuple_equal must answer 0 or 1. */
#define _GNU_SOURCE   /* strnlen, MAP_ANONYMOUS under -std=c11 */
#include "nl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG (1 << 16)

static void die(const char *what)
{
	fprintf(stderr, "fuzz_ct: invariant broken: %s\n", what);
	abort();
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

static uint8_t *region;       /* MAX_MSG + slack bytes, then a guard page */
static size_t region_len;

static void setup(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	region_len = ((MAX_MSG + 8 + (size_t)pg - 1) / (size_t)pg) * (size_t)pg;
	uint8_t *p = mmap(NULL, region_len + (size_t)pg, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	CHECK(mprotect(p + region_len, (size_t)pg, PROT_NONE) == 0);
	region = p;
}

/* Copies data so that it starts 4-aligned and ends as close to the
 * guard page as that allows; fills the 0-3 bytes between with fill. */
static uint8_t *place(const uint8_t *data, size_t size, uint8_t fill)
{
	size_t alen = (size_t)(size + 3) & ~(size_t)3;
	uint8_t *m = region + region_len - alen;
	memcpy(m, data, size);
	memset(m + size, fill, alen - size);
	return m;
}

static void check_entry(const struct ct_entry *e)
{
	CHECK(e->orig.family == AF_INET || e->orig.family == AF_INET6);
	if (e->have & CT_HAVE_REPLY)
		CHECK(e->reply.family == AF_INET || e->reply.family == AF_INET6);
	int d = ct_is_dnat(e), s = ct_seen_reply(e);
	CHECK(d == 0 || d == 1);
	CHECK(s == 0 || s == 1);
	CHECK(ct_tuple_equal(&e->orig, &e->orig) == 1);

	/* Large enough for any entry: two IPv6 tuples and every field. */
	enum { BIG = 4096 };
	char *big = malloc(BIG);
	CHECK(big);
	memset(big, 'X', BIG);
	int n = ct_format(e, big, BIG);
	CHECK(n > 0 && n < BIG);
	CHECK(strlen(big) == (size_t)n);
	CHECK(big[n - 1] != ' ');

	/* Exact-size small buffers of every interesting cap: ASan sees
	 * a write one past the end; output is a NUL-terminated prefix. */
	static const size_t caps[] = {1, 2, 8, 16, 33, 64, 100};
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
		size_t cap = caps[i];
		char *small = malloc(cap);
		CHECK(small);
		memset(small, 'X', cap);
		int m = ct_format(e, small, cap);
		size_t sl = strnlen(small, cap);
		CHECK(sl < cap);
		CHECK(!memcmp(small, big, sl));
		/* snprintf's contract, give or take the final blank, which
		 * is only trimmed when it fit: m is n or n + 1 when cut. */
		CHECK(m == n || m == n + 1);
		if ((size_t)m < cap)
			CHECK(m == n && sl == (size_t)n);
		else
			CHECK(sl == cap - 1);
		free(small);
	}
	/* cap 0: nothing written, the length still counted. */
	char guard = 'G';
	CHECK(ct_format(e, &guard, 0) >= n && guard == 'G');
	free(big);
}

/* Says how the two parses differ: the report needs more than "differs". */
static void die_slack(size_t size, int r2, int r3, const struct ct_entry *a,
                      const struct ct_entry *b)
{
	size_t off = 0;
	while (off < sizeof *a && ((const uint8_t *)a)[off] == ((const uint8_t *)b)[off])
		off++;
	fprintf(stderr, "fuzz_ct: len %zu, %zu byte(s) after it 0x00 vs 0xff: rc %d vs %d, "
	        "struct ct_entry differs from byte %zu\n", size, 4 - size % 4, r2, r3, off);
	die("result depends on the bytes past len (up to the next 4-byte boundary)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!region)
		setup();
	if (size > MAX_MSG)
		return 0;
	struct ct_entry e1, e2, e3;

	/* 1. exact heap copy (ASan: nl.c's reads) */
	uint8_t *heap = malloc(size ? size : 1);
	CHECK(heap);
	memcpy(heap, data, size);
	memset(&e1, 0, sizeof e1);
	int r1 = ct_parse_msg(heap, size, &e1);
	free(heap);
	CHECK(r1 == 0 || r1 == -EINVAL);

	/* 2. against the guard page, slack 0x00; 3. slack 0xff. Parses of
	 * the same bytes can only differ by reading past len: the slack
	 * check goes first, as its message says which field differs. */
	memset(&e2, 0, sizeof e2);
	int r2 = ct_parse_msg(place(data, size, 0x00), size, &e2);
	if (size % 4) {
		memset(&e3, 0, sizeof e3);
		int r3 = ct_parse_msg(place(data, size, 0xff), size, &e3);
		if (r3 != r2 || memcmp(&e2, &e3, sizeof e2))
			die_slack(size, r2, r3, &e2, &e3);
	}
	CHECK(r2 == r1);
	if (r1 == 0) {
		CHECK(!memcmp(&e1, &e2, sizeof e1));
		check_entry(&e1);
	}
	return 0;
}
