/* metrics.c - Prometheus exposition over a tiny, strict HTTP/1.x server.
 *
 * Served from the tester's loop itself (no threads): every socket is
 * non-blocking, every connection has a fixed-size buffer and a deadline,
 * so a slow or hostile client costs at most MAX_CLIENTS slots for
 * HTTP_DEADLINE and can never delay a query or grow memory. */
#define _GNU_SOURCE
#include "metrics.h"
#include "log.h"
#include "opts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CLIENTS (METRICS_FDS - 1)
#define HTTP_REQ_MAX 2048
#define HTTP_BODY_MAX 65536        /* 140 series (64 VIP:port gauges) x the longest labels */
#define HTTP_OUT_MAX (HTTP_BODY_MAX + 256)
#define HTTP_DEADLINE (2 * NS_PER_S)

struct client {
	int fd;                       /* -1: free */
	uint64_t deadline;
	size_t in, out, sent;
	char req[HTTP_REQ_MAX];
	char resp[HTTP_OUT_MAX];
};

struct metrics {
	int lfd;
	struct client c[MAX_CLIENTS];
	struct client *polled[METRICS_FDS];   /* p[i] is polled[i]'s socket */
	char body[HTTP_BODY_MAX];
};

/* ---- the request -------------------------------------------------- */

/* METHOD SP TARGET SP HTTP/1.x in buf[0..linelen), nothing else and no
 * control bytes: the status, and *head for HEAD. */
static int request_line(const char *buf, size_t linelen, int *head)
{
	const char *sp1 = memchr(buf, ' ', linelen);
	if (!sp1 || sp1 == buf)
		return 400;
	const char *sp2 = memchr(sp1 + 1, ' ', linelen - (size_t)(sp1 + 1 - buf));
	if (!sp2 || sp2 == sp1 + 1)
		return 400;
	size_t mlen = (size_t)(sp1 - buf), tlen = (size_t)(sp2 - sp1 - 1);
	size_t vlen = linelen - (size_t)(sp2 + 1 - buf);
	for (size_t i = 0; i < mlen; i++)
		if (buf[i] < 'A' || buf[i] > 'Z')
			return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= ' ' || sp1[1 + i] == 0x7f)
			return 400;
	if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.0", 8) && memcmp(sp2 + 1, "HTTP/1.1", 8)))
		return 400;
	int get = mlen == 3 && !memcmp(buf, "GET", 3);
	*head = mlen == 4 && !memcmp(buf, "HEAD", 4);
	if (!get && !*head)
		return 405;
	const char *target = sp1 + 1;
	if (tlen < 8 || memcmp(target, "/metrics", 8) || (tlen > 8 && target[8] != '?'))
		return 404;
	return 200;
}

int http_parse_request(const char *buf, size_t len, size_t cap, int *head)
{
	int done = 0;
	*head = 0;
	for (size_t i = 0; i + 1 < len && !done; i++)
		done = (buf[i] == '\n' && buf[i + 1] == '\n') ||
		       (i + 3 < len && !memcmp(buf + i, "\r\n\r\n", 4));
	if (!done)
		return len >= cap ? 431 : 0;
	/* The request line ends at the first LF, which the blank line that
	 * ends the headers guarantees exists. */
	const char *nl = memchr(buf, '\n', len);
	size_t linelen = (size_t)(nl - buf);
	if (linelen && buf[linelen - 1] == '\r')
		linelen--;
	return request_line(buf, linelen, head);
}

/* ---- the exposition ----------------------------------------------- */

#define M "dns_blackhole_tester_"

/* Microseconds as the shortest decimal seconds: 0.0005, 1, 2.5. */
static void fmt_seconds_us(uint32_t us, char *buf, size_t cap)
{
	char frac[8];
	unsigned f = us % 1000000;
	int len = snprintf(frac, sizeof frac, ".%06u", f);
	while (len > 1 && frac[len - 1] == '0')
		frac[--len] = '\0';
	snprintf(buf, cap, "%u%s", (unsigned)(us / 1000000), f ? frac : "");
}

size_t label_escape(char *dst, size_t cap, const char *v, size_t max)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t n = 0, left = strnlen(v, max), len, olen;
	for (size_t i = 0; i < left && cap; i += len) {
		char esc[24];
		const char *out = esc;
		uint32_t c = 0;
		len = utf8_decode(p + i, left - i, &c);
		if (len && utf8_printable(c) && c != '\\' && c != '"') {
			out = v + i;                      /* as it is */
			olen = len;
		} else if (len == 1 && (c == '\\' || c == '"' || c == '\n')) {
			olen = (size_t)snprintf(esc, sizeof esc, "\\%c", c == '\n' ? 'n' : (char)c);
		} else {                          /* the text \xNN, byte by byte */
			len = len ? len : 1;
			olen = 0;
			for (size_t k = 0; k < len; k++)
				olen += (size_t)snprintf(esc + olen, sizeof esc - olen, "\\\\x%02x", p[i + k]);
		}
		if (n + olen >= cap)
			break;                            /* whole escapes only */
		memcpy(dst + n, out, olen);
		n += olen;
	}
	if (cap)
		dst[n] = '\0';
	return n;
}

/* The labels every series of the flow carries. Addresses need no
 * escape; a node name (up to 253 bytes) is escaped, and cut at a whole
 * escape if that grows it past NODE_LABEL_MAX. */
#define NODE_LABEL_MAX 320
static void flow_labels(const struct metrics_view *v, char *lab, size_t cap)
{
	const char *node = getenv("NODE_NAME");
	char esc[NODE_LABEL_MAX];
	size_t nlen = node ? label_escape(esc, sizeof esc, node, 253) : 0;
	snprintf(lab, cap, "server=\"%s\",src=\"%s\"%s%s%s", v->server, v->src,
	         nlen ? ",node=\"" : "", nlen ? esc : "", nlen ? "\"" : "");
}

static void render_counters(const struct metrics_view *v, const char *lab, char *b, size_t cap, size_t *n)
{
	for (size_t i = 0; i < ncounter_fields; i++) {
		const struct counter_field *f = &counter_fields[i];
		if (f->metric)
			text_add(b, cap, n, "# HELP " M "%s %s\n# TYPE " M "%s counter\n" M "%s{%s} %" PRIu64 "\n",
			    f->metric, f->help, f->metric, f->metric, lab, counter_value(v->c, f));
	}
	text_add(b, cap, n, "# HELP " M "timeouts_total Queries that got no reply in time, by cause.\n"
	               "# TYPE " M "timeouts_total counter\n");
	/* the causes a timeout can have (the others end a query otherwise) */
	static const enum cause tc[] = {CAUSE_BLACKHOLE, CAUSE_NO_REPLY, CAUSE_NO_ENTRY, CAUSE_UNKNOWN,
	                                CAUSE_NAT_MISSING, CAUSE_GONE_BACKEND};
	for (size_t i = 0; i < sizeof tc / sizeof *tc; i++)
		text_add(b, cap, n, M "timeouts_total{%s,cause=\"%s\"} %" PRIu64 "\n", lab, cause_names[tc[i]],
		    v->c->timeouts_by[tc[i]]);
	text_add(b, cap, n, "# HELP " M "blackholes_total Own flow proven stranded, by kind: no_dnat (entry not DNAT'd"
	               " while a probe is), gone_backend (DNAT'd to a backend that no longer answers).\n"
	               "# TYPE " M "blackholes_total counter\n"
	               M "blackholes_total{%s,kind=\"no_dnat\"} %" PRIu64 "\n"
	               M "blackholes_total{%s,kind=\"gone_backend\"} %" PRIu64 "\n",
	         lab, v->c->blackholes - v->c->blackholes_gone, lab, v->c->blackholes_gone);
}

static void render_hist(const char *name, const char *help, const struct hist *h, const uint32_t *bounds,
                        size_t nb, const char *lab, char *b, size_t cap, size_t *n)
{
	uint64_t cum = 0;
	text_add(b, cap, n, "# HELP " M "%s %s\n# TYPE " M "%s histogram\n", name, help, name);
	for (size_t i = 0; i <= nb; i++) {
		char le[16] = "+Inf";
		cum += h->count[i];
		if (i < nb)
			fmt_seconds_us(bounds[i], le, sizeof le);
		text_add(b, cap, n, M "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, lab, le, cum);
	}
	text_add(b, cap, n, M "%s_sum{%s} %" PRIu64 ".%09" PRIu64 "\n", name, lab,
	    h->sum_ns / NS_PER_S, h->sum_ns % NS_PER_S);
	text_add(b, cap, n, M "%s_count{%s} %" PRIu64 "\n", name, lab, cum);
}

/* Per watched VIP:port, the clients stuck on it now. */
static void render_stuck(const struct metrics_view *v, const char *lab, char *b, size_t cap, size_t *n)
{
	text_add(b, cap, n, "# HELP " M "node_stuck_flows Clients stuck now.\n"
	               "# TYPE " M "node_stuck_flows gauge\n");
	for (size_t i = 0; i < v->nvips; i++)
		text_add(b, cap, n, M "node_stuck_flows{%s,vip=\"%s\"} %" PRIu64 "\n", lab, v->vips[i].name,
		    v->vips[i].stuck);
}

/* Seconds with milliseconds: 12.345. */
static void gauge_seconds(const char *name, const char *help, uint64_t ns, const char *lab,
                          char *b, size_t cap, size_t *n)
{
	text_add(b, cap, n, "# HELP " M "%s %s\n# TYPE " M "%s gauge\n" M "%s{%s} %" PRIu64 ".%03" PRIu64 "\n",
	    name, help, name, name, lab, ns / NS_PER_S, ns % NS_PER_S / NS_PER_MS);
}

size_t metrics_render(const struct metrics_view *v, char *b, size_t cap)
{
	char lab[512];
	size_t n = 0;
	flow_labels(v, lab, sizeof lab);
	render_counters(v, lab, b, cap, &n);
	text_add(b, cap, &n, "# HELP " M "blackholed 1 while our own flow is blackholed.\n# TYPE " M "blackholed gauge\n"
	                M "blackholed{%s} %d\n", lab, v->blackholed);
	gauge_seconds("outage_seconds", "Age of the current outage (0: none).", v->outage_ns, lab, b, cap, &n);
	render_hist("reply_latency_seconds", "Time from query to matching reply.", &v->c->latency,
	            lat_bounds, NLAT, lab, b, cap, &n);
	gauge_seconds("restart_window_last_seconds", "Length of the last restart window seen (0: none yet).",
	              v->c->last_window_ns, lab, b, cap, &n);
	render_hist("restart_window_seconds", "Restart window lengths.",
	            &v->c->window, win_bounds, NWIN, lab, b, cap, &n);
	render_hist("node_stuck_seconds", "Time stuck before the heal.",
	            &v->c->node_stuck, win_bounds, NWIN, lab, b, cap, &n);
	if (v->watching)
		render_stuck(v, lab, b, cap, &n);
	text_add(b, cap, &n, "# HELP " M "build_info Build of the running tester.\n# TYPE " M "build_info gauge\n"
	                M "build_info{version=\"%s\"} 1\n", VERSION);
	return n;
}

/* ---- connections -------------------------------------------------- */

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	}
	return "Service Unavailable";
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Builds the whole response into c->resp: headers, then the body. A
 * body that does not fit is a 500, never a page cut short. */
static void client_respond(struct metrics *m, struct client *c, int code, int head,
                           const struct metrics_view *v)
{
	size_t blen = 0;
	if (code == 200 && (blen = metrics_render(v, m->body, sizeof m->body)) >= sizeof m->body)
		code = 500;
	if (code != 200)
		blen = (size_t)snprintf(m->body, sizeof m->body, "%d %s\n", code, status_text(code));
	c->out = 0;
	text_add(c->resp, sizeof c->resp, &c->out,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
	    code, status_text(code),
	    code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
	    blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && c->out + blen <= sizeof c->resp) {
		memcpy(c->resp + c->out, m->body, blen);
		c->out += blen;
	}
	c->sent = 0;
}

/* Reading a request, or draining after the answer: closing with unread
 * request bytes would send a TCP reset that can overtake the answer. */
static void client_read(struct metrics *m, struct client *c, const struct metrics_view *v)
{
	char *dst = c->out ? c->req : c->req + c->in;
	size_t room = c->out ? sizeof c->req : sizeof c->req - c->in;
	ssize_t n = recv(c->fd, dst, room, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(c);
		return;
	}
	if (c->out || n < 0)
		return;
	c->in += (size_t)n;
	int head, code = http_parse_request(c->req, c->in, sizeof c->req, &head);
	if (code)
		client_respond(m, c, code, head, v);
}

/* One request per connection: read it, answer it, then half-close and
 * read until the client closes too. */
static void client_io(struct metrics *m, struct client *c, short revents, const struct metrics_view *v)
{
	if (c->out == 0 || c->sent == c->out) {
		client_read(m, c, v);
		return;
	}
	if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
		return;
	ssize_t n = send(c->fd, c->resp + c->sent, c->out - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		c->sent += (size_t)n;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		client_close(c);
	else if (c->sent == c->out)
		shutdown(c->fd, SHUT_WR);      /* FIN after the answer */
}

static void metrics_accept(struct metrics *m)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
		"Content-Length: 0\r\nConnection: close\r\n\r\n";
	for (;;) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct client *c = NULL;
		for (int i = 0; i < MAX_CLIENTS && !c; i++)
			if (m->c[i].fd < 0)
				c = &m->c[i];
		if (!c) {                          /* all busy: say so, never wait */
			if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				(void)0;           /* best effort: it is closed anyway */
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in = c->out = c->sent = 0;
		c->deadline = now_ns() + HTTP_DEADLINE;
	}
}

size_t metrics_pollfds(struct metrics *m, struct pollfd *p, uint64_t now, uint64_t *until)
{
	size_t n = 0;
	m->polled[n] = NULL;
	p[n++] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &m->c[i];
		if (c->fd < 0)
			continue;
		if (now >= c->deadline) {         /* too slow: drop it */
			client_close(c);
			continue;
		}
		if (c->deadline < *until)
			*until = c->deadline;
		int writing = c->out && c->sent < c->out;
		m->polled[n] = c;
		p[n++] = (struct pollfd){.fd = c->fd, .events = writing ? POLLOUT : POLLIN};
	}
	return n;
}

void metrics_serve(struct metrics *m, const struct pollfd *p, size_t n, const struct metrics_view *v)
{
	if (n && (p[0].revents & POLLIN))
		metrics_accept(m);
	for (size_t i = 1; i < n; i++)
		if (p[i].revents && m->polled[i]->fd >= 0)
			client_io(m, m->polled[i], p[i].revents, v);
}

struct metrics *metrics_open(const struct sockaddr_storage *addr, const char **why)
{
	int on = 1;
	struct metrics *m = calloc(1, sizeof *m);
	if (!m) {
		*why = strerror(errno);
		return NULL;
	}
	m->lfd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0 ||
	    setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
	    bind(m->lfd, (const struct sockaddr *)addr, sa_len(addr)) < 0 ||
	    listen(m->lfd, 16) < 0) {
		*why = strerror(errno);
		if (m->lfd >= 0)
			close(m->lfd);
		free(m);
		return NULL;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		m->c[i].fd = -1;
	return m;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m->c[i].fd >= 0)
			client_close(&m->c[i]);
	close(m->lfd);
	free(m);
}
