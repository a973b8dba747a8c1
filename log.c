/* log.c - event lines in logfmt or JSON, one write(2) each.
 *
 * logfmt: ts=... level=info event=start key=value ...
 * JSON:   {"ts":"...","level":"info","event":"start","key":"value",...}
 * Values are quoted when they must be (logfmt) or always (JSON strings);
 * numbers are bare in both. Every line fits LINE_MAX_BYTES, which is
 * under PIPE_BUF, so a line written to a pipe is never interleaved. */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct log_config logcfg;

/* Room kept at the end of every line for what log_end() adds: the
 * "truncated" pair, the closing '}' and the newline. */
#define TRAILER 32

/* Appends len bytes, or nothing and marks the pair as over. */
static void raw(struct line *l, const char *s, size_t len)
{
	if (l->over || len > sizeof l->buf - TRAILER - l->n) {
		l->over = 1;
		return;
	}
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void raws(struct line *l, const char *s) { raw(l, s, strlen(s)); }

size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};   /* below: overlong */
	size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
	           : (p[0] & 0xf0) == 0xe0 ? 3 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	uint32_t c = len == 1 ? p[0] : p[0] & (0x7fu >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3fu);
	}
	if (c < least[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

int utf8_printable(uint32_t c)
{
	/* C0 and C1 controls, DEL, and the two separators JavaScript reads
	 * as line ends: none may reach a reader raw. */
	return c >= 0x20 && c != 0x7f && (c < 0x80 || c >= 0xa0) && c != 0x2028 && c != 0x2029;
}

/* The value's next character at p (left bytes): 0 and *len bytes to copy
 * as they are, or the length of its escape in esc. '"' and '\' are
 * escaped, other controls as \uXXXX (JSON's escape, and Go's strconv in
 * logfmt); a byte that starts no valid UTF-8 sequence (stray, overlong,
 * surrogate, cut short) as the text \xNN: logfmt reads that escape as
 * Go's strconv does, JSON has no escape for a byte, so there the
 * backslash itself is escaped. */
static size_t escape_next(const unsigned char *p, size_t left, size_t *len, char esc[16])
{
	uint32_t c;
	*len = utf8_decode(p, left, &c);
	if (!*len) {
		*len = 1;
		return (size_t)snprintf(esc, 16, logcfg.json ? "\\\\x%02x" : "\\x%02x", p[0]);
	}
	if (c == '"' || c == '\\')
		return (size_t)snprintf(esc, 16, "\\%c", (char)c);
	if (c == '\n')
		return (size_t)snprintf(esc, 16, "\\n");
	if (!utf8_printable(c))
		return (size_t)snprintf(esc, 16, "\\u%04x", (unsigned)c);
	return 0;
}

/* logfmt values are quoted when they hold a blank, '=', or anything that
 * is escaped, or are empty; JSON strings always are. Escaping makes one
 * event exactly one line of printable UTF-8, whatever bytes came in. */
static void quoted(struct line *l, const char *v, int force)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t left = strlen(v), len = 1;
	char esc[16];
	int need = force || !left;
	for (size_t i = 0; i < left && !need; i += len)
		need = p[i] == ' ' || p[i] == '=' || escape_next(p + i, left - i, &len, esc);
	if (!need) {
		raw(l, v, left);
		return;
	}
	raws(l, "\"");
	for (size_t i = 0; i < left; i += len) {
		size_t e = escape_next(p + i, left - i, &len, esc);
		if (e)
			raw(l, esc, e);
		else
			raw(l, v + i, len);
	}
	raws(l, "\"");
}

static void key(struct line *l, const char *k)
{
	raws(l, logcfg.json ? ",\"" : " ");
	raws(l, k);
	raws(l, logcfg.json ? "\":" : "=");
}

/* A pair goes in whole or not at all: a line that would overflow keeps
 * every pair before it and says truncated=true, so it is still valid
 * JSON (or logfmt) and says it is incomplete. */
static void pair(struct line *l, const char *k, const char *v, int bare)
{
	size_t mark = l->n;
	l->over = 0;
	key(l, k);
	if (bare)
		raws(l, v);
	else
		quoted(l, v, logcfg.json);
	if (l->over) {
		l->n = mark;
		l->cut = 1;
		l->over = 0;
	}
}

void log_kv(struct line *l, const char *k, const char *v) { pair(l, k, v, 0); }

void log_kvu(struct line *l, const char *k, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof num, "%" PRIu64, v);
	pair(l, k, num, 1);
}

void log_kv_ms(struct line *l, const char *k, uint64_t ns)
{
	char num[32];
	snprintf(num, sizeof num, "%" PRIu64 ".%03" PRIu64, ns / NS_PER_MS, ns % NS_PER_MS / 1000);
	pair(l, k, num, 1);
}

void log_begin(struct line *l, const char *level, const char *event)
{
	struct timespec ts;
	char when[64];
	clock_gettime(CLOCK_REALTIME, &ts);
	fmt_rfc3339(&ts, when, sizeof when);
	l->n = 0;
	l->cut = l->over = 0;
	raws(l, logcfg.json ? "{\"ts\":\"" : "ts=");
	raws(l, when);
	if (logcfg.json)
		raws(l, "\"");
	log_kv(l, "level", level);
	log_kv(l, "event", event);
}

/* Writes the line with one write(2), and only if stdout can take it
 * now: a closed, full or never-read stdout (a pipe nobody drains) loses
 * the line, never the process, the query cycle or a signal. SIGPIPE is
 * ignored. Lines are under PIPE_BUF, so a writable pipe takes a whole
 * line without blocking. */
void log_end(struct line *l)
{
	if (l->cut) {                 /* TRAILER keeps room for this */
		logcfg.cut++;
		memcpy(l->buf + l->n, logcfg.json ? ",\"truncated\":true" : " truncated=true",
		       logcfg.json ? 17 : 15);
		l->n += logcfg.json ? 17 : 15;
	}
	if (logcfg.json)
		l->buf[l->n++] = '}';
	l->buf[l->n++] = '\n';
	struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
	if (poll(&p, 1, 0) != 1 || (p.revents & (POLLOUT | POLLNVAL)) != POLLOUT ||
	    write_all(STDOUT_FILENO, l->buf, l->n) < 0)
		logcfg.dropped++;
}

/* A line of one pair: what the node watch says of itself (a table
 * full, a dump failed), from each of its files. */
void log_note(const char *level, const char *event, const char *key, const char *value)
{
	struct line l;
	log_begin(&l, level, event);
	log_kv(&l, key, value);
	log_end(&l);
}

int write_all(int fd, const char *p, size_t len)
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

void err_line(const char *f, ...)
{
	char b[4200];                 /* a usage error quotes the argument */
	va_list ap;
	int n = snprintf(b, sizeof b, PROG ": ");
	va_start(ap, f);
	int m = vsnprintf(b + n, sizeof b - (size_t)n - 1, f, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof b - 2)
		len = sizeof b - 2;   /* cut to the buffer; the newline stays */
	b[len++] = '\n';
	write_all(STDERR_FILENO, b, len);
}

void text_add(char *buf, size_t cap, size_t *n, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int w = vsnprintf(buf + (*n < cap ? *n : cap), *n < cap ? cap - *n : 0, f, ap);
	va_end(ap);
	if (w > 0)
		*n += (size_t)w;
}

void fmt_rfc3339(const struct timespec *ts, char *buf, size_t cap)
{
	struct tm tm;
	if (!gmtime_r(&ts->tv_sec, &tm)) {  /* a year past int: never here */
		snprintf(buf, cap, "%lld", (long long)ts->tv_sec);
		return;
	}
	snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02d.%03ldZ", (long long)tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (long)(ts->tv_nsec / 1000000));
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}
