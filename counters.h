/* counters.h - the counters model: what the tester, its flow and the
 * node watch count, and the histograms' bucket bounds.
 *
 * tester.c, flow.c and watch.c update a struct counters; the stats line
 * (tester.c) and the Prometheus page (metrics.c) only read it. Keeping
 * the model here, apart from both, is what lets metrics.c render
 * without knowing the watch, and the watch count without the renderer. */
#ifndef COUNTERS_H
#define COUNTERS_H

#include <stddef.h>
#include <stdint.h>

/* Why a query failed. */
enum cause { CAUSE_NONE, CAUSE_BLACKHOLE, CAUSE_NO_REPLY, CAUSE_NO_ENTRY,
             CAUSE_UNKNOWN, CAUSE_NAT_MISSING, CAUSE_REFUSED, CAUSE_SEND, CAUSE_RECV,
             CAUSE_GONE_BACKEND, NCAUSES };
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
	uint64_t blackholes_gone;           /* of blackholes: kind=gone_backend */
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

#endif
