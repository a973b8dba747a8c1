/* log.h - event lines (logfmt or JSON) on stdout, one-line errors on
 * stderr, and the clocks they read.
 *
 * An event is built in a struct line: log_begin(), then key=value pairs,
 * then log_end(), which writes it with one write(2). A line is always
 * whole: valid logfmt or valid JSON, never cut (see log_end). */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PROG "dns-blackhole-tester"
#ifndef VERSION
#define VERSION "0.0.0-dev"
#endif

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

/* The log configuration: set once from the options, read by every line. */
struct log_config {
	int json;                /* JSON lines instead of logfmt */
	int verbose;             /* per-query lines as well */
	uint64_t dropped;        /* lines stdout could not take */
	uint64_t cut;            /* lines that lost pairs to fit */
};
extern struct log_config logcfg;

#define LINE_MAX_BYTES 4096      /* < PIPE_BUF: one atomic write */

struct line {
	char buf[LINE_MAX_BYTES];
	size_t n;
	int cut;                 /* a pair did not fit and was left out */
	int over;                /* the pair being added does not fit */
};

void log_begin(struct line *l, const char *level, const char *event);
void log_kv(struct line *l, const char *key, const char *value);     /* quoted as needed */
void log_kvu(struct line *l, const char *key, uint64_t value);       /* a bare number */
void log_kv_ms(struct line *l, const char *key, uint64_t ns);        /* 12.345 */
void log_end(struct line *l);
/* A whole line of one pair: level, event, key=value. */
void log_note(const char *level, const char *event, const char *key, const char *value);

/* The strict UTF-8 sequence at p[0..n) (n >= 1): its length, and its
 * code point in *cp; 0 when p starts none (a stray continuation byte, an
 * overlong form, a surrogate, past U+10FFFF, or cut short). */
size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);
/* Not a control character (C0, DEL, C1) nor U+2028/U+2029. */
int utf8_printable(uint32_t c);

/* "dns-blackhole-tester: " + the message + newline on stderr. */
void err_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* write(2) all of it across EINTR and short writes; 0 or -1. */
int write_all(int fd, const char *p, size_t len);

/* Appends to buf at *n as snprintf would, never past cap; *n counts on
 * past cap, like snprintf's return, so a caller can tell text that did
 * not fit (metrics bodies, conntrack entry lines). */
void text_add(char *buf, size_t cap, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* RFC 3339 in UTC with milliseconds: 2026-11-26T10:46:55.938Z. */
void fmt_rfc3339(const struct timespec *ts, char *buf, size_t cap);
/* CLOCK_MONOTONIC in nanoseconds: every deadline and duration. */
uint64_t now_ns(void);

#endif
