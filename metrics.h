/* metrics.h - the tester's counters, and the Prometheus endpoint that
 * serves them: a small, strict HTTP/1.x responder run from the tester's
 * own poll loop (no threads), which only ever reads the counters. */
#ifndef METRICS_H
#define METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Why a query failed. */
enum cause { CAUSE_NONE, CAUSE_BLACKHOLE, CAUSE_NO_REPLY, CAUSE_NO_ENTRY,
             CAUSE_UNKNOWN, CAUSE_NAT_MISSING, CAUSE_REFUSED, CAUSE_SEND, CAUSE_RECV,
             NCAUSES };
extern const char *const cause_names[NCAUSES];

/* Histogram bucket bounds in microseconds (printed in seconds); one more
 * bucket counts +Inf only. Reply latency: 0.0005 ... 5 s; restart
 * windows: 0.1 ... 300 s. */
#define NLAT 13
#define NWIN 11
extern const uint32_t lat_bounds[NLAT], win_bounds[NWIN];

struct hist { uint64_t count[NLAT + 1], sum_ns; };   /* NLAT: the most buckets */
void hist_add(struct hist *h, const uint32_t *bounds, size_t n, uint64_t ns);

struct counters {
	uint64_t sent, answered, timeouts, refused, send_errors, recv_errors, unexpected;
	uint64_t timeouts_by[NCAUSES];      /* by enum cause */
	struct hist latency;
	uint64_t blackholes, heals, deleted, skipped_ticks;
	uint64_t longest_outage_ns;
	uint64_t probes, windows, last_window_ns;
	struct hist window;
	/* the node watch (watch.h) */
	uint64_t node_events, node_lost, node_resyncs, node_blackholed, node_healed, node_cleared;
	struct hist node_stuck;             /* how long a client was stuck before its heal */
};

/* Each counter, by its name on the stats line and as a Prometheus
 * series (NULL: not exported), in the order the stats line lists them. */
struct counter_field { const char *stat, *metric, *help; size_t off; };
extern const struct counter_field counter_fields[];
extern const size_t ncounter_fields;
uint64_t counter_value(const struct counters *c, const struct counter_field *f);

/* What a scrape shows: a read-only view, taken when a client is served. */
struct watch;
struct kproxy_info;
/* A client stuck now (watch_stuck_clients() fills them). */
struct stuck_client { char vip[56], client[46]; const char *kind; };
struct metrics_view {
	const struct counters *c;
	const char *server, *src;           /* the flow's labels */
	int blackholed;                     /* our flow is blackholed now */
	uint64_t outage_ns;                 /* age of the current outage, or 0 */
	const struct watch *w;              /* the node watch, or NULL */
	const struct kproxy_info *kproxy;   /* the kube-proxy audit's verdict, or NULL */
	const struct stuck_client *stuck;   /* the node's stuck clients by name (watch.h) */
	size_t nstuck;
	uint64_t stuck_omitted;             /* ... and how many more were left out */
};

struct metrics;

/* Listens on addr. NULL and *why on failure. */
struct metrics *metrics_open(const struct sockaddr_storage *addr, const char **why);
void metrics_close(struct metrics *m);

/* The poll loop's part: metrics_pollfds() fills at most METRICS_FDS
 * entries of p (dropping clients past their deadline, lowering *until to
 * the next one); after ppoll, metrics_serve() handles what is ready in
 * the same n entries, answering from the view. */
#define METRICS_FDS 9
size_t metrics_pollfds(struct metrics *m, struct pollfd *p, uint64_t now, uint64_t *until);
void metrics_serve(struct metrics *m, const struct pollfd *p, size_t n, const struct metrics_view *v);

/* The exposition text for v into b[cap]; returns its whole length (a
 * length >= cap means it did not fit). */
size_t metrics_render(const struct metrics_view *v, char *b, size_t cap);

/* Decides the answer to the request in buf[0..len). Returns 0 while the
 * headers are incomplete, else the status: 200, 400, 404, 405, 431.
 * *head is set for HEAD (headers without body). Never reads past len. */
int http_parse_request(const char *buf, size_t len, size_t cap, int *head);

#endif
