/* kproxy.h - the kube-proxy audit: which kube-proxy runs on this node,
 * in which mode, and whether it carries the fixes for the DNS blackhole.
 *
 * A minimal HTTP/1.1 GET of kube-proxy's own metrics endpoint (default
 * 127.0.0.1:10249, /metrics then /proxyMode), run as a non-blocking
 * state machine from the tester's poll loop like the node watch
 * (kproxy_fd / kproxy_deadline / kproxy_wake): a connect, one request,
 * a bounded read, never a blocking call. Each refusal has a reason: slow
 * (the deadline passed mid-answer), huge (past the size cap), malformed,
 * no_answer (refused, or nothing before the deadline), status (not 200).
 *
 * The verdict is pure (kproxy_judge): kubernetes_build_info's git_version
 * against the upstream release notes; anything it cannot place is
 * "unknown", never a guess. */
#ifndef KPROXY_H
#define KPROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KPROXY_DEFAULT "127.0.0.1:10249"
#define KPROXY_BODY_MAX (1024 * 1024)   /* kube-proxy's /metrics: ~100-300 KB */

/* yes / no / unknown */
enum tri { TRI_UNKNOWN, TRI_NO, TRI_YES };
extern const char *const tri_names[3];

/* What one read of the endpoint says. */
struct kproxy_info {
	char version[48];             /* git_version, or "unknown" */
	char mode[16];                /* /proxyMode, or "unknown" */
	enum tri window_fix;          /* kubernetes#126532 and its cherry-picks */
	enum tri reconciler;          /* kubernetes#127318 */
};

/* ---- pure parts (no I/O): tested without a network ----------------- */

/* A whole HTTP/1.x response in buf[0..len): 0 and the body (decoded if
 * chunked) at *body, *blen (within buf: chunks are joined in place), or
 * -1 and *why ("malformed", "status"; *status says which). eof: the peer
 * closed, so a body without a length ends here; without eof an
 * incomplete response returns 1 (read more). */
int kproxy_response(char *buf, size_t len, int eof, int *status, char **body, size_t *blen,
                    const char **why);
/* From a /metrics body: git_version of kubernetes_build_info into ver
 * (0, or -1: absent or not a plain version string), and whether a
 * conntrack reconciler metric is present. */
int kproxy_build_info(const char *body, size_t len, char *ver, size_t cap, int *reconciler_metric);
/* The verdict for a version (NULL: unknown) and what the metrics show. */
void kproxy_judge(const char *version, int reconciler_metric, struct kproxy_info *out);

/* ---- the audit in the poll loop ----------------------------------- */

struct kproxy;
/* No I/O yet: the first read starts at kproxy_wake(), then one every
 * `every` ns. NULL: no memory. */
struct kproxy *kproxy_open(const struct sockaddr_storage *addr, uint64_t every);
void kproxy_close(struct kproxy *k);
/* The socket to poll (-1: none) and for what (POLLIN or POLLOUT). */
int kproxy_fd(const struct kproxy *k, short *events);
/* When it must be woken without I/O: UINT64_MAX, nothing due. */
uint64_t kproxy_deadline(const struct kproxy *k);
/* Advances the state machine: I/O ready (revents) or time due. Logs
 * event=kube_proxy on the first answer and on a change of version,
 * event=kube_proxy_unavailable once until an answer comes again. */
void kproxy_wake(struct kproxy *k, short revents, uint64_t now);
/* The last verdict for metrics: 0 none yet, 1 *out filled. */
int kproxy_last(const struct kproxy *k, struct kproxy_info *out);

#endif
