/* kproxy.c - the kube-proxy audit (kproxy.h): a bounded HTTP/1.1 GET of
 * kube-proxy's metrics endpoint from the poll loop, and the verdict on
 * the version it reports.
 *
 * The fixed versions, from the upstream release notes:
 *
 * The restart window (kubernetes#126468): "Fix race condition in
 * kube-proxy initialization that could blackhole UDP traffic to service
 * VIP", kubernetes#126532, first in v1.32.0-alpha.1 (CHANGELOG-1.32.md),
 * and its cherry-picks:
 *   #126687  v1.31.1   (CHANGELOG-1.31.md)
 *   #126688  v1.30.5   (CHANGELOG-1.30.md)
 *   #126689  v1.29.9   (CHANGELOG-1.29.md)
 *   #126692  v1.28.14  (CHANGELOG-1.28.md)
 * 1.27 and older never got it: no cherry-pick was made to them.
 *
 * The conntrack reconciler, kubernetes#127318 ("kube-proxy now reconciles
 * Service/Endpoint changes with conntrack table and cleans up only stale
 * UDP flow entries"), is in v1.32.0 and later. It deletes stale entries
 * to a gone backend when endpoints change; it does not heal a flow that
 * was never DNAT'd, and it has had gaps of its own (kubernetes#139628:
 * Services scaled to zero; #141371: deleted Services). Its metrics
 * (kubeproxy_conntrack_reconciler_sync_duration_seconds and
 * _deleted_entries_total, label ip_family) came later, in 1.33
 * (#130200, #130204): present, they prove the reconciler too. */
#define _GNU_SOURCE
#include "kproxy.h"
#include "log.h"
#include "opts.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define KPROXY_TIMEOUT (2 * NS_PER_S)       /* one request, connect to last byte */
#define KPROXY_HEAD_MAX 8192                /* status line and headers */
#define KPROXY_BUF (KPROXY_BODY_MAX + KPROXY_HEAD_MAX)

const char *const tri_names[3] = {"unknown", "no", "yes"};

/* ---- the verdict ---------------------------------------------------- */

/* The first patch release of each minor that has #126532 (see the top). */
static const struct { unsigned minor, patch; } window_fixed[] = {
	{28, 14}, {29, 9}, {30, 5}, {31, 1}, {32, 0},
};

/* "v1.29.9", "v1.29.9-eks-1", "v1.31.1+k3s1": 0 and the numbers, *pre set
 * for a pre-release (-alpha, -beta, -rc: not yet the release it names). */
static int parse_version(const char *v, unsigned *maj, unsigned *min, unsigned *pat, int *pre)
{
	unsigned n[3];
	const char *p = v;
	if (*p++ != 'v')
		return -1;
	for (int i = 0; i < 3; i++) {
		char *end;
		if (*p < '0' || *p > '9')
			return -1;
		unsigned long x = strtoul(p, &end, 10);
		if (x > 100000 || (i < 2 && *end != '.'))
			return -1;
		n[i] = (unsigned)x;
		p = end + (i < 2);
	}
	if (*p && *p != '-' && *p != '+')
		return -1;
	*pre = !strncmp(p, "-alpha", 6) || !strncmp(p, "-beta", 5) || !strncmp(p, "-rc", 3);
	*maj = n[0], *min = n[1], *pat = n[2];
	return 0;
}

/* Released at or after minor.patch: yes / no; the pre-release of exactly
 * that patch: unknown (the fix may or may not be in it). */
static enum tri at_least(unsigned min, unsigned pat, int pre, unsigned fmin, unsigned fpat)
{
	if (min != fmin)
		return min > fmin ? TRI_YES : TRI_NO;
	if (pat != fpat)
		return pat > fpat ? TRI_YES : TRI_NO;
	return pre ? TRI_UNKNOWN : TRI_YES;
}

void kproxy_judge(const char *version, int reconciler_metric, struct kproxy_info *out)
{
	unsigned maj, min, pat;
	int pre;
	out->window_fix = out->reconciler = TRI_UNKNOWN;
	snprintf(out->version, sizeof out->version, "%s", version ? version : "unknown");
	if (version && !parse_version(version, &maj, &min, &pat, &pre) && maj == 1) {
		out->window_fix = min < window_fixed[0].minor ? TRI_NO : TRI_YES;
		for (size_t i = 0; i < sizeof window_fixed / sizeof *window_fixed; i++)
			if (min == window_fixed[i].minor)
				out->window_fix = at_least(min, pat, pre, min, window_fixed[i].patch);
		out->reconciler = at_least(min, pat, pre, 32, 0);
	}
	if (reconciler_metric)
		out->reconciler = TRI_YES;
}

/* needle[0..m) in p[0..n), or NULL. libc's memmem is its two-way
 * search (1.5 KB here); these needles are a few bytes long. */
static char *find(const char *p, size_t n, const char *needle, size_t m)
{
	for (const char *q = p; m && (size_t)(p + n - q) >= m && (q = memchr(q, needle[0], (size_t)(p + n - q) - m + 1));
	     q++)
		if (!memcmp(q, needle, m))
			return (char *)q;
	return NULL;
}

/* ---- the metrics text ------------------------------------------------ */

static int version_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '-' || c == '+' || c == '_';
}

/* git_version="..." in one sample line [p, e). */
static int git_version(const char *p, const char *e, char *ver, size_t cap)
{
	static const char key[] = "git_version=\"";
	const char *k = find(p, (size_t)(e - p), key, sizeof key - 1);
	if (!k)
		return -1;
	k += sizeof key - 1;
	size_t n = 0;
	while (k + n < e && version_char(k[n]))
		n++;
	if (n == 0 || n >= cap || k + n >= e || k[n] != '"')
		return -1;                    /* empty, too long, or not a plain version */
	memcpy(ver, k, n);
	ver[n] = '\0';
	return 0;
}

int kproxy_build_info(const char *body, size_t len, char *ver, size_t cap, int *reconciler_metric)
{
	static const char bi[] = "kubernetes_build_info{", rc[] = "kubeproxy_conntrack_reconciler_";
	const char *p = body, *end = body + len;
	int found = -1;
	*reconciler_metric = 0;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		size_t n = (size_t)(e - p);
		if (found < 0 && n > sizeof bi && !memcmp(p, bi, sizeof bi - 1))
			found = git_version(p, e, ver, cap);
		if (n > sizeof rc && !memcmp(p, rc, sizeof rc - 1))
			*reconciler_metric = 1;
		p = e + 1;
	}
	return found;
}

/* ---- HTTP/1.x responses --------------------------------------------- */

/* The value of header name in the head [p, e), or NULL; *vlen its length. */
static const char *header(const char *p, const char *e, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	while (p < e) {
		const char *eol = find(p, (size_t)(e - p), "\r\n", 2);
		if (!eol)
			eol = e;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen && (v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
				(*vlen)--;
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

/* Decimal (base 10) or hex (16) digits only, at most 9 of them. */
static int number(const char *s, size_t n, int base, size_t *out)
{
	if (n == 0 || n > 9)
		return -1;
	char tmp[10];
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *end;
	unsigned long v = strtoul(tmp, &end, base);
	if (*end || tmp[0] == '-' || tmp[0] == '+' || tmp[0] == ' ')
		return -1;
	*out = v;
	return 0;
}

/* Joins the chunks of b[0..len) in place: 0 done (*out the body's
 * length), 1 incomplete, -1 malformed. */
static int dechunk(char *b, size_t len, size_t *out)
{
	size_t r = 0, w = 0;
	for (;;) {
		char *eol = find(b + r, len - r, "\r\n", 2);
		if (!eol)
			return len - r > 32 ? -1 : 1;
		const char *semi = memchr(b + r, ';', (size_t)(eol - (b + r)));
		size_t size;                   /* a chunk extension after ';' is ignored */
		if (number(b + r, (size_t)((semi ? semi : eol) - (b + r)), 16, &size))
			return -1;
		r = (size_t)(eol - b) + 2;
		if (size == 0) {               /* the last chunk: no trailers taken */
			if (len - r < 2)
				return 1;
			*out = w;
			return memcmp(b + r, "\r\n", 2) ? -1 : 0;
		}
		if (len - r < size + 2)
			return 1;
		if (memcmp(b + r + size, "\r\n", 2))
			return -1;
		memmove(b + w, b + r, size);
		w += size;
		r += size + 2;
	}
}

/* "HTTP/1.x DDD..." at the start: the status, or -1. */
static int status_line(const char *b, const char *eol)
{
	size_t st;
	if (eol - b < 12 || memcmp(b, "HTTP/1.", 7) || (b[7] != '0' && b[7] != '1') || b[8] != ' ' ||
	    (eol - b > 12 && b[12] != ' ') || number(b + 9, 3, 10, &st) || st < 100)
		return -1;
	return (int)st;
}

int kproxy_response(char *buf, size_t len, int eof, int *status, char **body, size_t *blen,
                    const char **why)
{
	size_t vl, cl, hlen;
	*status = 0;
	char *he = find(buf, len, "\r\n\r\n", 4);
	if (!he) {
		*why = "malformed";
		return eof || len > KPROXY_HEAD_MAX ? -1 : 1;
	}
	hlen = (size_t)(he - buf) + 4;
	*status = status_line(buf, find(buf, len, "\r\n", 2));
	*why = *status < 0 ? "malformed" : "status";
	if (*status != 200)
		return -1;
	*why = "malformed";
	const char *te = header(buf, he, "Transfer-Encoding", &vl), *cv;
	*body = buf + hlen;
	if (te) {
		if (vl != 7 || strncasecmp(te, "chunked", 7))
			return -1;
		int r = dechunk(*body, len - hlen, blen);
		return r == 1 && eof ? -1 : r;
	}
	if ((cv = header(buf, he, "Content-Length", &vl))) {
		if (number(cv, vl, 10, &cl))
			return -1;
		if (len - hlen < cl)
			return eof ? -1 : 1;
		*blen = cl;
		return 0;
	}
	*blen = len - hlen;              /* no length: the body ends when the peer closes */
	return eof ? 0 : 1;
}

/* ---- the audit: one state machine in the poll loop ------------------ */

enum kstate { K_IDLE, K_CONNECT, K_SEND, K_RECV };
static const char *const paths[2] = {"/metrics", "/proxyMode"};

struct kproxy {
	struct sockaddr_storage addr;
	char addr_s[64];
	uint64_t every;               /* a new read this often */
	enum kstate state;
	int fd, which;                /* which: index in paths[] */
	char req[256];
	size_t reqlen, sent, len;
	char *buf;                    /* KPROXY_BUF while a request runs */
	uint64_t deadline, next_at;
	/* this round */
	char version[48];
	int have_version, reconciler_metric;
	/* what was said */
	struct kproxy_info last;
	int have_last, unavailable_said;
};

struct kproxy *kproxy_open(const struct sockaddr_storage *addr, uint64_t every)
{
	struct kproxy *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->addr = *addr;
	fmt_addr(addr, k->addr_s, sizeof k->addr_s);
	k->every = every;
	k->fd = -1;
	k->next_at = 0;                   /* the first read at the first wake */
	return k;
}

static void end_request(struct kproxy *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	free(k->buf);
	k->buf = NULL;
	k->state = K_IDLE;
}

void kproxy_close(struct kproxy *k)
{
	if (!k)
		return;
	end_request(k);
	free(k);
}

int kproxy_fd(const struct kproxy *k, short *events)
{
	*events = k->state == K_RECV ? POLLIN : POLLOUT;
	return k->state == K_IDLE ? -1 : k->fd;
}

uint64_t kproxy_deadline(const struct kproxy *k)
{
	return k->state == K_IDLE ? k->next_at : k->deadline;
}

int kproxy_last(const struct kproxy *k, struct kproxy_info *out)
{
	if (k->have_last)
		*out = k->last;
	return k->have_last;
}

/* The round failed: said once until an answer comes again. */
static void unavailable(struct kproxy *k, const char *reason, const char *detail)
{
	end_request(k);
	if (k->unavailable_said)
		return;
	k->unavailable_said = 1;
	struct line l;
	log_begin(&l, "warn", "kube_proxy_unavailable");
	log_kv(&l, "addr", k->addr_s);
	log_kv(&l, "path", paths[k->which]);
	log_kv(&l, "reason", reason);
	log_kv(&l, "detail", detail);
	log_kv(&l, "effect", "no kube-proxy audit; everything else goes on");
	log_end(&l);
}

/* The round is done: the verdict, said when it is new or changed. */
static void report(struct kproxy *k, const char *mode)
{
	struct kproxy_info in;
	kproxy_judge(k->have_version ? k->version : NULL, k->reconciler_metric, &in);
	snprintf(in.mode, sizeof in.mode, "%s", mode);
	k->unavailable_said = 0;
	if (k->have_last && !strcmp(in.version, k->last.version) && !strcmp(in.mode, k->last.mode) &&
	    in.reconciler == k->last.reconciler)
		return;
	k->last = in;
	k->have_last = 1;
	struct line l;
	log_begin(&l, in.window_fix == TRI_YES ? "info" : "warn", "kube_proxy");
	log_kv(&l, "version", in.version);
	log_kv(&l, "mode", in.mode);
	log_kv(&l, "window_fix", tri_names[in.window_fix]);
	log_kv(&l, "reconciler", tri_names[in.reconciler]);
	log_kv(&l, "addr", k->addr_s);
	log_end(&l);
}

static void start_request(struct kproxy *k, int which, uint64_t now)
{
	k->which = which;
	k->sent = k->len = 0;
	k->deadline = now + KPROXY_TIMEOUT;
	int n = snprintf(k->req, sizeof k->req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " PROG "/" VERSION
	                 "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n", paths[which], k->addr_s);
	k->reqlen = (size_t)n;
	k->buf = malloc(KPROXY_BUF);
	k->fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!k->buf || k->fd < 0) {
		unavailable(k, "no_answer", k->buf ? strerror(errno) : "out of memory");
		return;
	}
	k->state = K_CONNECT;
	if (connect(k->fd, (const struct sockaddr *)&k->addr, sa_len(&k->addr)) == 0)
		k->state = K_SEND;
	else if (errno != EINPROGRESS)
		unavailable(k, "no_answer", strerror(errno));
}

/* A whole answer to paths[k->which]: the next request, or the report. */
static void answered(struct kproxy *k, char *body, size_t blen, uint64_t now)
{
	char mode[16] = "unknown";
	if (k->which == 0) {
		k->have_version = !kproxy_build_info(body, blen, k->version, sizeof k->version,
		                                     &k->reconciler_metric);
		end_request(k);
		start_request(k, 1, now);
		return;
	}
	while (blen && (body[blen - 1] == '\n' || body[blen - 1] == '\r'))
		blen--;
	size_t i = 0;
	while (i < blen && i < sizeof mode - 1 && body[i] >= 'a' && body[i] <= 'z')
		i++;
	if (i == blen && i > 0 && i < sizeof mode) {   /* iptables, ipvs, nftables, kernelspace */
		memcpy(mode, body, i);
		mode[i] = '\0';
	}
	end_request(k);
	report(k, mode);
}

/* A failed /proxyMode still reports what /metrics said, mode unknown. */
static void failed(struct kproxy *k, const char *reason, const char *detail)
{
	if (k->which == 1) {
		end_request(k);
		report(k, "unknown");
		return;
	}
	unavailable(k, reason, detail);
}

static void receive(struct kproxy *k, uint64_t now)
{
	for (;;) {
		if (k->len == KPROXY_BUF)
			return failed(k, "huge", "the answer is past the size cap");
		ssize_t n = recv(k->fd, k->buf + k->len, KPROXY_BUF - k->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			return failed(k, k->len ? "malformed" : "no_answer", strerror(errno));
		k->len += (size_t)n;
		int st;
		char *body;
		size_t blen;
		const char *why;
		int r = kproxy_response(k->buf, k->len, n == 0, &st, &body, &blen, &why);
		if (r == 0)
			return answered(k, body, blen, now);
		if (r < 0) {
			char d[32];
			snprintf(d, sizeof d, "status %d", st);
			return failed(k, why, st > 0 ? d : "not an HTTP/1.x answer");
		}
		if (n == 0)
			return failed(k, "malformed", "closed mid-answer");
	}
}

static void send_some(struct kproxy *k)
{
	ssize_t n = send(k->fd, k->req + k->sent, k->reqlen - k->sent, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return failed(k, "no_answer", strerror(errno));
	if (n > 0 && (k->sent += (size_t)n) == k->reqlen)
		k->state = K_RECV;
}

void kproxy_wake(struct kproxy *k, short revents, uint64_t now)
{
	if (k->state == K_IDLE) {
		if (now < k->next_at)
			return;
		k->next_at = now + k->every;
		k->have_version = k->reconciler_metric = 0;
		start_request(k, 0, now);
		return;
	}
	if (k->state == K_CONNECT && revents) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err)
			return failed(k, "no_answer", strerror(err));
		k->state = K_SEND;
	}
	if (k->state == K_SEND && revents)
		send_some(k);
	else if (k->state == K_RECV && revents)
		receive(k, now);
	if (k->state != K_IDLE && now >= k->deadline)
		failed(k, k->len ? "slow" : "no_answer", "no whole answer within 2s");
}
