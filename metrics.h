/* metrics.h - the Prometheus endpoint that serves the tester's counters
 * (counters.h): a small, strict HTTP/1.x responder run from the tester's
 * own poll loop (no threads), which only ever reads a view of them. */
#ifndef METRICS_H
#define METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "counters.h"

/* A watched VIP:port and the clients stuck on it now. */
struct vip_gauge {
	char name[56];                      /* [v6addr]:port */
	uint64_t stuck;
};
/* The most VIP:port gauges a page holds (the body's size allows them). */
#define METRICS_VIPS 64

/* What a scrape shows: a read-only view, taken when a client is served.
 * The caller fills it, the node watch's part included: metrics.c only
 * renders what it is given and never calls into the watch. */
struct metrics_view {
	const struct counters *c;
	const char *server, *src;           /* the flow's labels */
	int blackholed;                     /* our flow is blackholed now */
	uint64_t outage_ns;                 /* age of the current outage, or 0 */
	const struct vip_gauge *vips;       /* the node watch's VIP:ports ... */
	size_t nvips;                       /* ... and how many (0: no watch) */
	int watching;                       /* the node watch runs */
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

/* v (at most max bytes of it) as a Prometheus label value into dst[cap],
 * NUL-terminated: '\', '"' and LF get the text format's escapes; every
 * byte of a control character or of no valid UTF-8 sequence (overlong,
 * surrogate, cut short) becomes the text \\xNN, since the format has
 * no escape for it. Only whole escapes: it stops where the next would
 * not fit. Returns the length written. */
size_t label_escape(char *dst, size_t cap, const char *v, size_t max);

/* Decides the answer to the request in buf[0..len). Returns 0 while the
 * headers are incomplete, else the status: 200, 400, 404, 405, 431.
 * *head is set for HEAD (headers without body). Never reads past len. */
int http_parse_request(const char *buf, size_t len, size_t cap, int *head);

#endif
