/* opts.h - the command line: the tester's options, and the value
 * parsers (durations, addresses, resolv.conf) that scan shares.
 *
 * Parsing never exits or prints: it returns what to do, and a one-line
 * message for the caller to print when the command line is wrong. */
#ifndef OPTS_H
#define OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <getopt.h>

#include "ctfilter.h"
#include "nl.h"

enum mode { MODE_DELETE, MODE_MONITOR, MODE_HEAL };

#define OPTS_MAX_WATCH 32

struct opts {
	struct sockaddr_storage server, source;
	int have_source;
	const char *name;
	uint16_t qtype;
	uint64_t interval, timeout;   /* ns, each at least 1 ms */
	uint64_t count;               /* 0: until a signal */
	enum mode mode;
	int no_conntrack;
	int no_confine;               /* --no-confine: debugging only (confine.h) */
	struct sockaddr_storage metrics;   /* --metrics-addr */
	int have_metrics;
	int json, verbose;            /* for the log configuration */
	/* the node watch (watch.h): what it watches besides the server */
	int watch_node, heal_node, dry_run, watch_user_filter;
	struct ct_target watch[OPTS_MAX_WATCH];   /* more -d VIPs, --service-cidr */
	size_t nwatch;
	uint64_t heal_rate;           /* deletions a second (and the burst) */
	uint64_t event_buffer;        /* event socket's receive buffer, bytes */
};

/* What parsing found to do. */
enum opts_result { OPTS_RUN, OPTS_HELP, OPTS_VERSION, OPTS_ERROR };

/* Parses argv into o (defaults first). OPTS_ERROR writes the reason,
 * naming the option or value as the user wrote it, into err. */
enum opts_result opts_parse(int argc, char **argv, struct opts *o, char *err, size_t cap);
extern const char opts_usage[];

/* The option getopt_long() just refused ('?' or ':'), as written. */
void opts_refused(int c, int argc, char **argv, const struct option *lo, char *err, size_t cap);

/* "500ms", "1s", "1.5s", "2m", "1m30s", "100us", bare "3" (seconds):
 * 0 and the nanoseconds, or -1. At most a year, more than 0. */
int parse_duration(const char *s, uint64_t *out);
/* ADDR, ADDR:PORT, [V6], [V6]:PORT, bare V6, V6%zone: NULL, or why not. */
const char *parse_addr(const char *s, int defport, int allow_zero_port,
                       struct sockaddr_storage *ss);
/* "10.96.0.0/12", "fd00:96::/108": 0, or -1. Host bits are cleared. */
int parse_cidr(const char *s, struct ct_target *t);
/* "logfmt" (0) or "json" (1); -1 otherwise. */
int parse_log_format(const char *s);
/* No --server: resolv.conf's first nameserver, port 53: NULL, or why
 * not (written into err). */
const char *default_server(const char *path, struct sockaddr_storage *ss, char *err, size_t cap);

/* Shortest exact form: 1s, 500ms, 1.5s, 250us. */
void fmt_duration(uint64_t ns, char *buf, size_t cap);
/* "10.0.0.10:53" or "[fd00::a]:53". */
void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t cap);
socklen_t sa_len(const struct sockaddr_storage *ss);
/* A UDP tuple whose destination (address, port) is the sockaddr. */
void sockaddr_to_tuple(const struct sockaddr_storage *ss, struct ct_tuple *t);

#endif
