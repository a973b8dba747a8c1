/* fuzz_escape.c - libFuzzer target for the escapers of untrusted bytes:
 * log.c's values (logfmt and JSON, through log_kv) and metrics.c's
 * label_escape(). Input: any bytes, used up to the first NUL (as a
 * NODE_NAME or --name arrives). Checked with this file's own UTF-8
 * validator (RFC 3629's table of byte ranges, not log.c's decoder):
 *   - every output is valid UTF-8 with no control character (C0, DEL,
 *     C1, U+2028/9) and no raw quote inside a value;
 *   - logfmt: the quoted value, unescaped as Go's strconv reads it
 *     (\" \\ \n \uXXXX \xNN), gives back the input byte for byte;
 *   - JSON: only JSON's escapes; an input of printable UTF-8 without
 *     '"' or '\' comes back as it is;
 *   - label_escape: only the text format's escapes (\\ \" \n), NUL-
 *     terminated within cap, whole escapes only; printable input
 *     without '"' or '\' comes back as it is (when it fits). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_escape: invariant broken: %s\n", what);
	abort();
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

/* RFC 3629 section 4: the length of the well-formed sequence at p, its
 * code point in *cp, or 0. */
static size_t rfc3629(const unsigned char *p, size_t n, uint32_t *cp)
{
	static const struct { unsigned char lo0, hi0, lo1, hi1; size_t len; } t[] = {
		{0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
		{0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
		{0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		if (p[0] < t[i].lo0 || p[0] > t[i].hi0)
			continue;
		size_t len = t[i].len;
		if (len > n || (len > 1 && (p[1] < t[i].lo1 || p[1] > t[i].hi1)))
			return 0;
		uint32_t c = len == 1 ? p[0] : len == 2 ? p[0] & 0x1fu : len == 3 ? p[0] & 0x0fu : p[0] & 0x07u;
		for (size_t k = 1; k < len; k++) {
			if (k > 1 && (p[k] < 0x80 || p[k] > 0xbf))
				return 0;
			c = c << 6 | (p[k] & 0x3fu);
		}
		*cp = c;
		return len;
	}
	return 0;
}

static int control(uint32_t c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029;
}

/* Valid UTF-8 with no control character. */
static void clean_text(const char *s, size_t n)
{
	uint32_t c;
	for (size_t i = 0, len; i < n; i += len) {
		len = rfc3629((const unsigned char *)s + i, n - i, &c);
		CHECK(len > 0);
		CHECK(!control(c));
	}
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Encodes c as UTF-8 into out; returns the length. */
static size_t put_utf8(uint32_t c, char *out)
{
	if (c < 0x80) { out[0] = (char)c; return 1; }
	if (c < 0x800) { out[0] = (char)(0xc0 | c >> 6); out[1] = (char)(0x80 | (c & 0x3f)); return 2; }
	out[0] = (char)(0xe0 | c >> 12);
	out[1] = (char)(0x80 | (c >> 6 & 0x3f));
	out[2] = (char)(0x80 | (c & 0x3f));
	return 3;
}

/* The quoted value at q (after its opening quote) unescaped into out;
 * returns its length, or aborts on an escape the format has not. */
static size_t unquote(const char *q, const char *end, char *out, int json)
{
	size_t n = 0;
	for (; q < end && *q != '"'; q++) {
		if (*q != '\\') {
			out[n++] = *q;
			continue;
		}
		CHECK(q + 1 < end);
		char e = *++q;
		if (e == '"' || e == '\\')
			out[n++] = e;
		else if (e == 'n')
			out[n++] = '\n';
		else if (e == 'u' || (e == 'x' && !json)) {
			size_t digits = e == 'u' ? 4 : 2;
			uint32_t c = 0;
			CHECK(q + digits < end);
			for (size_t k = 1; k <= digits; k++) {
				CHECK(hexval(q[k]) >= 0);
				c = c << 4 | (uint32_t)hexval(q[k]);
			}
			q += digits;
			if (e == 'x')
				out[n++] = (char)c;
			else
				n += put_utf8(c, out + n);
		} else
			die("an escape the format does not have");
	}
	CHECK(q < end && *q == '"');
	return n;
}

static void one_log(const char *v, size_t vlen, int json)
{
	static struct line l;
	static char back[LINE_MAX_BYTES * 2];
	logcfg.json = json;
	log_begin(&l, "info", "fuzz");
	size_t mark = l.n;
	log_kv(&l, "v", v);
	clean_text(l.buf, l.n);
	if (l.cut)
		return;                       /* the pair did not fit: left out whole */
	const char *p = l.buf + mark, *end = l.buf + l.n;
	const char *open = json ? ",\"v\":\"" : " v=";
	CHECK(!memcmp(p, open, strlen(open)));
	p += strlen(open);
	if (!json && *p != '"') {             /* bare: the input as it is */
		CHECK((size_t)(end - p) == vlen && !memcmp(p, v, vlen));
		CHECK(!memchr(p, ' ', vlen) && !memchr(p, '"', vlen) && !memchr(p, '=', vlen));
		return;
	}
	if (!json)
		p++;
	size_t n = unquote(p, end, back, json);
	CHECK(p + (end - p) == end);
	if (!json)
		CHECK(n == vlen && !memcmp(back, v, vlen));
}

static int plain_utf8(const char *v, size_t n)
{
	uint32_t c;
	for (size_t i = 0, len; i < n; i += len)
		if (!(len = rfc3629((const unsigned char *)v + i, n - i, &c)) || control(c) || c == '"' || c == '\\')
			return 0;
	return 1;
}

static void one_label(const char *v, size_t vlen, size_t cap)
{
	char out[4096 + 1];
	size_t n = label_escape(out, cap, v, vlen);
	CHECK(n < cap && out[n] == '\0' && strlen(out) == n);
	clean_text(out, n);
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '"')
			die("a raw quote in a label value");
		if (out[i] == '\\') {
			CHECK(i + 1 < n && (out[i + 1] == '\\' || out[i + 1] == '"' || out[i + 1] == 'n'));
			i++;
		}
	}
	if (plain_utf8(v, vlen) && vlen < cap)
		CHECK(n == vlen && !memcmp(out, v, vlen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	CHECK(v);
	memcpy(v, data, size);
	v[size] = '\0';
	size_t vlen = strlen(v);
	one_log(v, vlen, 0);
	one_log(v, vlen, 1);
	one_label(v, vlen, 4097);
	one_label(v, vlen, 1 + (size ? data[0] % 64 : 0));
	free(v);
	return 0;
}
