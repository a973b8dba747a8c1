/* tester.c - the tester's state, its cycle and loop, outage accounting.
 *
 * The data flows one way:
 *   flow_look()    (flow.c) one GET of our exact tuple, a probe when it
 *                  is suspect, what they prove -> the query's struct look,
 *                  applied to the flow's state there and only there;
 *   cycle()        send, wait (looking once meanwhile), read -> a struct
 *                  result;
 *   note_result()  the one place a result changes the query counters
 *                  and the outage, and logs it.
 * The metrics endpoint reads the counters through a view (metrics.h). */
#define _GNU_SOURCE
#include "tester.h"
#include "confine.h"
#include "dns.h"
#include "log.h"
#include "flow.h"
#include "kproxy.h"
#include "metrics.h"
#include "nl.h"
#include "view.h"
#include "watch.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATS_EVERY (60 * NS_PER_S)

volatile sig_atomic_t stop_signal;

/* How a query ended. */
enum outcome { OUT_STOPPED, OUT_ANSWER, OUT_REFUSED, OUT_RECV_ERROR, OUT_SEND_ERROR, OUT_TIMEOUT };

struct result {
	enum outcome outcome;
	uint64_t elapsed;             /* the reply's rtt, or how long we waited */
	int err;                      /* errno of a send or receive error */
	struct dns_reply reply;
	struct look look;             /* what the looks at our entry found */
	int gave_up;                  /* ended at the look: no answer could come */
	int rejected;                 /* send's EPERM came with an ICMP refusal: a REJECT rule */
};

struct tester {
	const struct opts *o;
	const sigset_t *wait_mask;
	struct flow f;                /* our socket, entry and what they prove */
	struct metrics *m;            /* NULL: no --metrics-addr */
	struct watch *w;              /* NULL: no --watch-node */
	struct kproxy *kp;            /* the kube-proxy audit: NULL until the node view */
	struct kproxy_info kpi;       /* its last verdict, for the view */
	struct stuck_client *stuck;   /* o->stuck_max, for the view */
	uint8_t query[DNS_MAX_QUERY];
	size_t qlen;
	uint16_t ids[32];             /* query IDs, one getrandom(2) per 32 */
	size_t ids_left;
	int fatal;                    /* errno that ended the loop, or 0 */
	struct counters st;
	struct vip_gauge vips[METRICS_VIPS];  /* the watch's, for a scrape */
	/* the current outage episode */
	int out_open;
	uint64_t out_start, out_failed;
	enum cause out_cause;
	/* where we run (view.h), and the DNS-level proof outside the node view */
	struct view_learn vl;
	unsigned run;                 /* ours unanswered, a fresh socket answered: in a row */
	int fresh_out;                /* a fresh socket was sent after our last unanswered query */
	int unseen;                   /* proven at the DNS level: until ours is answered */
	int own_gone;                 /* no entry of ours: the next query is a new flow */
};

/* ---- outage accounting -------------------------------------------- */

static void outage_failed(struct tester *t, enum cause c)
{
	if (!t->out_open) {
		t->out_open = 1;
		t->out_start = now_ns();
		t->out_failed = 0;
		t->out_cause = c;
	}
	t->out_failed++;
	int bh = c == CAUSE_BLACKHOLE || c == CAUSE_GONE_BACKEND;
	if (bh || (t->out_cause != CAUSE_BLACKHOLE && t->out_cause != CAUSE_GONE_BACKEND))
		t->out_cause = c;             /* a blackhole names the episode */
}

static void outage_answered(struct tester *t)
{
	t->f.bh_active = 0;
	if (!t->out_open)
		return;
	uint64_t len = now_ns() - t->out_start;
	if (len > t->st.longest_outage_ns)
		t->st.longest_outage_ns = len;
	struct line l;
	flow_begin(&t->f, &l, "info", "recovered");
	log_kvu(&l, "outage_ms", len / NS_PER_MS);
	log_kvu(&l, "failed", t->out_failed);
	log_kv(&l, "cause", cause_names[t->out_cause]);
	log_end(&l);
	t->out_open = 0;
}

static void log_stats(const struct tester *t, const char *event)
{
	const struct counters *s = &t->st;
	uint64_t longest = s->longest_outage_ns, now = now_ns();
	if (t->out_open && now - t->out_start > longest)
		longest = now - t->out_start;
	struct line l;
	flow_begin(&t->f, &l, "info", event);
	for (size_t i = 0; i < ncounter_fields; i++)
		log_kvu(&l, counter_fields[i].stat, counter_value(s, &counter_fields[i]));
	log_kvu(&l, "longest_outage_ms", longest / NS_PER_MS);
	log_kv(&l, "blackholed_now", t->f.bh_active ? "true" : "false");
	if (logcfg.dropped)
		log_kvu(&l, "log_lines_dropped", logcfg.dropped);
	if (logcfg.cut)
		log_kvu(&l, "log_lines_cut", logcfg.cut);
	log_end(&l);
}

/* ---- waiting: the one place the loop sleeps ------------------------ */

enum wait { WAIT_STOP = -1, WAIT_DEADLINE = 0, WAIT_READABLE = 1 };

/* The watch's VIP:ports for a page: those with clients stuck first,
 * so that a table larger than a page never hides one. */
static size_t view_vips(struct tester *t)
{
	char name[sizeof t->vips[0].name];
	uint64_t stuck[2];
	size_t n = 0;
	int r;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; n < METRICS_VIPS && (r = watch_vip(t->w, i, name, sizeof name, stuck)) >= 0; i++)
			if (r && (stuck[0] + stuck[1] > 0) == !pass) {
				memcpy(t->vips[n].name, name, sizeof name);
				memcpy(t->vips[n++].stuck, stuck, sizeof stuck);
			}
	return n;
}

static void view(struct tester *t, struct metrics_view *v)
{
	v->c = &t->st;
	v->server = t->f.server_s;
	v->src = t->f.src_s;
	v->blackholed = t->f.bh_active;
	v->outage_ns = t->out_open ? now_ns() - t->out_start : 0;
	v->watching = t->w != NULL;
	v->nvips = t->w ? view_vips(t) : 0;
	v->vips = t->vips;
	v->kproxy = t->kp && kproxy_last(t->kp, &t->kpi) ? &t->kpi : NULL;
	v->stuck = t->stuck;
	/* --stuck-clients-max 0: no array, every stuck flow counted as left out */
	v->nstuck = t->w ? watch_stuck_clients(t->w, t->stuck, t->o->stuck_max, &v->stuck_omitted) : 0;
}

/* The kube-proxy audit runs in the node view only (verdict.h): this
 * namespace is where kube-proxy's rules translate flows to the server. */
static void audit_when_node_view(struct tester *t)
{
	if (t->kp || t->f.view != VIEW_NODE || t->o->kproxy_off)
		return;
	t->kp = kproxy_open(&t->o->kproxy, t->o->kproxy_every);
}

/* Sleeps until deadline (monotonic) or until fd is readable (fd >= 0),
 * serving a probe in flight and metrics clients meanwhile. A ppoll
 * failure other than EINTR (it cannot recover by itself) stops the loop
 * with t->fatal set. */
static enum wait wait_for(struct tester *t, int fd, uint64_t deadline)
{
	struct pollfd p[3 + FLOW_FDS + METRICS_FDS], *pw = p + 1 + FLOW_FDS, *pk = pw + 1, *pm = pk + 1;
	for (;;) {
		if (stop_signal || t->fatal)
			return WAIT_STOP;
		audit_when_node_view(t);
		uint64_t now = now_ns(), until = deadline;
		if (t->kp && now >= kproxy_deadline(t->kp))
			kproxy_wake(t->kp, 0, now);
		flow_wake(&t->f, NULL, now);       /* a probe or an ask whose time is up */
		if (t->w && now >= watch_deadline(t->w))
			watch_tick(t->w, now);
		if (now >= deadline)
			return WAIT_DEADLINE;
		p[0] = (struct pollfd){.fd = fd, .events = POLLIN};   /* fd -1: ignored */
		flow_pollfds(&t->f, p + 1, &until);
		*pw = (struct pollfd){.fd = t->w ? watch_fd(t->w) : -1, .events = POLLIN};
		if (t->w && watch_deadline(t->w) < until)
			until = watch_deadline(t->w);
		short kev = 0;
		*pk = (struct pollfd){.fd = t->kp ? kproxy_fd(t->kp, &kev) : -1, .events = kev};
		if (t->kp && kproxy_deadline(t->kp) < until)
			until = kproxy_deadline(t->kp);
		size_t nm = t->m ? metrics_pollfds(t->m, pm, now, &until) : 0;
		uint64_t left = until > now ? until - now : 0;
		struct timespec ts = {(time_t)(left / NS_PER_S), (long)(left % NS_PER_S)};
		int r = ppoll(p, (nfds_t)(pm - p) + nm, &ts, t->wait_mask);
		if (r < 0 && errno != EINTR)
			t->fatal = errno;
		if (r <= 0)
			continue;                 /* EINTR or a deadline: recheck */
		/* Events first: a probe's own NEW event is read while the
		 * probe is still ours to recognise. */
		if (pw->revents)
			watch_read(t->w, now_ns());
		if (pk->revents)
			kproxy_wake(t->kp, pk->revents, now_ns());
		flow_wake(&t->f, p + 1, now_ns());
		/* Scrapes before the reply: a flood of datagrams that are not
		 * our answer keeps the query socket readable on every pass,
		 * and returning first would starve them for good. */
		if (nm) {
			struct metrics_view v;
			view(t, &v);
			metrics_serve(t->m, pm, nm, &v);
		}
		if (fd >= 0 && (p[0].revents & (POLLIN | POLLERR)))
			return WAIT_READABLE;
	}
}

/* ---- one cycle ---------------------------------------------------- */

enum rx { RX_NONE, RX_ANSWER, RX_REFUSED, RX_ERROR, RX_BAD };

/* One datagram (or error) from the socket. RX_BAD: it does not answer
 * our query, *why says how, *bytes its size. RX_ERROR: *err is errno. */
static enum rx recv_one(struct tester *t, struct dns_reply *r, int *err, const char **why, size_t *bytes)
{
	uint8_t buf[4096];
	ssize_t n;
	while ((n = recv(t->f.fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return RX_NONE;
		*err = errno;                 /* an ICMP error for our flow */
		return errno == ECONNREFUSED ? RX_REFUSED : RX_ERROR;
	}
	*bytes = (size_t)n;
	if ((size_t)n > sizeof buf) {
		*why = "oversized";
		return RX_BAD;
	}
	int rc = dns_parse_reply(buf, (size_t)n, t->query, t->qlen, r);
	if (rc == DNS_OK)
		return RX_ANSWER;
	*why = dns_result_str(rc);
	return RX_BAD;
}

/* A datagram that does not answer us: counted; in a flood, one line a
 * cycle (every one with --verbose). */
static void note_unexpected(struct tester *t, int *logged, const char *why, size_t bytes)
{
	t->st.unexpected++;
	if (*logged && !logcfg.verbose)
		return;
	struct line l;
	flow_begin(&t->f, &l, "warn", "unexpected_reply");
	log_kv(&l, "reason", why);
	log_kvu(&l, "bytes", bytes);
	log_end(&l);
	*logged = 1;
}

/* Query IDs from getrandom(2), 32 at a time: one syscall per 32 cycles. */
static uint16_t random_id(struct tester *t)
{
	if (!t->ids_left) {
		if (getrandom(t->ids, sizeof t->ids, GRND_NONBLOCK) != (ssize_t)sizeof t->ids) {
			/* No getrandom (old kernel, strict seccomp): the clock's low bits. */
			uint64_t n = now_ns();
			return (uint16_t)(n ^ n >> 16 ^ n >> 32);
		}
		t->ids_left = sizeof t->ids / sizeof *t->ids;
	}
	return t->ids[--t->ids_left];
}

/* How long after sending to look at our entry if no reply has come:
 * soon enough to name a blackhole within one interval, late enough
 * that a healthy server has answered and set SEEN_REPLY. */
static uint64_t look_delay(const struct opts *o)
{
	uint64_t d = (o->interval < o->timeout ? o->interval : o->timeout) / 4;
	return d > 250 * NS_PER_MS ? 250 * NS_PER_MS : d;
}

/* Waits for the answer to the query sent at sent_at, looking at our
 * entry once meanwhile; fills r. */
static void await_reply(struct tester *t, uint64_t sent_at, struct result *r)
{
	uint64_t deadline = sent_at + t->o->timeout, look_at = sent_at + look_delay(t->o);
	int looked = t->f.nl == NULL, logged = 0;
	const char *why = NULL;
	size_t bytes = 0;
	for (;;) {
		enum wait w = wait_for(t, t->f.fd, looked ? deadline : look_at);
		if (w == WAIT_STOP)
			return;                   /* stopping: this query does not count */
		if (w == WAIT_DEADLINE && !looked) {
			looked = 1;
			flow_look(&t->f, 0, &r->look);
			/* Blackholed or in a restart window: this query went to
			 * the VIP untranslated, and nobody owns a VIP; no answer
			 * can come. Give it up now so that the next tick is on
			 * time: the window is then measured, and the blackhole
			 * proven, to one interval whatever the timeout. */
			r->gave_up = r->look.healed || r->look.blackholed || r->look.nat_missing;
			if (!r->gave_up)
				continue;
		}
		r->elapsed = now_ns() - sent_at;
		if (w == WAIT_DEADLINE) {
			r->outcome = OUT_TIMEOUT;
			return;
		}
		switch (recv_one(t, &r->reply, &r->err, &why, &bytes)) {
		case RX_ANSWER: r->outcome = OUT_ANSWER; return;
		case RX_REFUSED: r->outcome = OUT_REFUSED; return;
		case RX_ERROR: r->outcome = OUT_RECV_ERROR; return;
		case RX_BAD: note_unexpected(t, &logged, why, bytes); break;
		case RX_NONE: break;
		}
	}
}

static void log_reply(const struct tester *t, const struct dns_reply *r, uint64_t rtt)
{
	char addr[INET6_ADDRSTRLEN] = "", tbuf[16];
	struct line l;
	int bad = r->rcode != 0;
	if (!logcfg.verbose && !bad)
		return;
	if (r->addr_family)
		ct_ntop(r->addr_family, r->addr, addr, sizeof addr);
	flow_begin(&t->f, &l, bad ? "warn" : "info", "reply");
	log_kvu(&l, "seq", t->st.sent);
	log_kvu(&l, "id", r->id);
	log_kv(&l, "rcode", dns_rcode_str(r->rcode));
	log_kv(&l, "type", dns_type_str(t->o->qtype, tbuf, sizeof tbuf));
	log_kvu(&l, "answers", r->ancount);
	if (*addr)
		log_kv(&l, "addr", addr);
	if (r->tc)
		log_kv(&l, "truncated", "true");
	log_kv_ms(&l, "rtt_ms", rtt);
	log_end(&l);
}

static void log_failure(struct tester *t, const char *event, enum cause c,
                        const struct result *r, const char *err)
{
	char entry[512];
	struct line l;
	flow_begin(&t->f, &l, "error", event);
	log_kvu(&l, "seq", t->st.sent);
	log_kv(&l, "cause", r->rejected ? "rejected" : cause_names[c]);
	if (r->elapsed)
		log_kv_ms(&l, "waited_ms", r->elapsed);
	if (err)
		log_kv(&l, r->rejected ? "explain" : "err", err);
	if (r->look.healed)                    /* given up early: entry deleted */
		log_kv(&l, "healed", "true");
	else if (r->gave_up)
		log_kv(&l, "gave_up", "true");
	if (r->look.state != CT_UNKNOWN && r->look.state != CT_NONE) {
		ct_format(&r->look.e, entry, sizeof entry);
		log_kv(&l, "entry", entry);
	}
	log_end(&l);
	outage_failed(t, c);
}

/* Why a query timed out, from what the looks and the probe proved. A
 * stale entry with no proof either way is a server that did not answer
 * (a server never seen NAT'd is taken as direct). */
static enum cause timeout_cause(const struct result *r)
{
	if (r->look.blackholed)
		return r->look.kind == K_GONE_BACKEND ? CAUSE_GONE_BACKEND : CAUSE_BLACKHOLE;
	if (r->look.nat_missing)
		return CAUSE_NAT_MISSING;
	switch (r->look.state) {
	case CT_DNAT: case CT_DIRECT: case CT_STALE: return CAUSE_NO_REPLY;
	case CT_NONE: return CAUSE_NO_ENTRY;
	default: return CAUSE_UNKNOWN;
	}
}

/* The one place a query's result changes counters and the outage. */
static void note_result(struct tester *t, const struct result *r)
{
	char why[160];
	enum cause c;
	switch (r->outcome) {
	case OUT_STOPPED:
		return;
	case OUT_ANSWER:
		t->st.answered++;
		hist_add(&t->st.latency, lat_bounds, NLAT, r->elapsed);
		log_reply(t, &r->reply, r->elapsed);
		outage_answered(t);
		return;
	case OUT_REFUSED:
		t->st.refused++;
		log_failure(t, "refused", CAUSE_REFUSED, r, "connection refused (ICMP port unreachable)");
		return;
	case OUT_RECV_ERROR:
		t->st.recv_errors++;
		log_failure(t, "recv_error", CAUSE_RECV, r, strerror(r->err));
		return;
	case OUT_SEND_ERROR:
		if (r->rejected) {
			t->st.refused++;
			log_failure(t, "refused", CAUSE_REFUSED, r, "a REJECT rule refused the query: "
			            "a Service with no endpoints (kube-proxy rejects queries to its VIP until one is ready)");
			return;
		}
		c = r->err == ECONNREFUSED ? CAUSE_REFUSED : CAUSE_SEND;
		if (c == CAUSE_REFUSED)
			t->st.refused++;
		else
			t->st.send_errors++;
		snprintf(why, sizeof why, "%s%s", strerror(r->err), r->err == EPERM ?
		         " (netfilter dropped it: conntrack table full, or a DROP/REJECT rule)" : "");
		log_failure(t, c == CAUSE_REFUSED ? "refused" : "send_failed", c, r, why);
		return;
	case OUT_TIMEOUT:
		c = t->unseen ? CAUSE_BLACKHOLE : timeout_cause(r);
		t->st.timeouts++;
		t->st.timeouts_by[c]++;
		log_failure(t, "timeout", c, r, NULL);
		return;
	}
}

/* ---- the DNS-level proof, where this table cannot show the entry -- */

/* Proven at the DNS level (verdict_dns): said once an episode, with the
 * fresh socket's answer as the proof and the command to run where the
 * entry is (the node): our own address and port, as the node sees them. */
static void note_unseen(struct tester *t, const struct vout *v)
{
	struct flow *f = &t->f;
	char fix[256], s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], proof[200];
	struct line l;
	f->seen_blackhole = 1;
	f->st->blackholes++;
	ct_ntop(f->tuple.family, f->tuple.src.b, s, sizeof s);
	ct_ntop(f->tuple.family, f->tuple.dst.b, d, sizeof d);
	snprintf(fix, sizeof fix, "conntrack -D%s -p udp -s %s --sport %u -d %s --dport %u",
	         f->tuple.family == AF_INET6 ? " -f ipv6" : "", s, f->tuple.sport, d, f->tuple.dport);
	snprintf(proof, sizeof proof, "each time our socket was left unanswered, a fresh socket to the same server "
	         "was answered (the last from port %u, in %.1f ms)", f->probe.e.orig.sport, (double)f->probe.rtt / 1e6);
	flow_begin(f, &l, "error", "blackhole");
	log_kv(&l, "view", view_names[f->view]);
	log_kv(&l, "kind", strand_names[v->kind]);
	log_kvu(&l, "unanswered", t->run);
	log_kvu(&l, "fresh_sport", f->probe.e.orig.sport);
	log_kv_ms(&l, "fresh_rtt_ms", f->probe.rtt);
	log_kv(&l, "proof", proof);
	log_kv(&l, "explain", v->why);
	log_kv(&l, "fix", fix);
	log_end(&l);
}

/* Outside the node view a stale entry that holds our flow is in another
 * namespace's table: it is proven only by our socket going unanswered
 * while a fresh socket to the same server is answered, time after time.
 * The fresh socket is the flow's probe slot (the look's own probe, if
 * it sent one), sent once our query is over unanswered, and judged at
 * the end of the next cycle: it has had that whole cycle to be answered. */
static void dns_run(struct tester *t, const struct result *r)
{
	struct flow *f = &t->f;
	int err;
	if (f->view == VIEW_NODE) {           /* the table there proves it (flow.c) */
		t->run = 0;
		t->fresh_out = 0;
		return;
	}
	if (t->fresh_out) {
		t->fresh_out = 0;
		probe_finish(&f->probe, f->nl);   /* still unanswered: it does not count */
		t->run = f->probe.answered ? t->run + 1 : 0;
	}
	if (r->outcome != OUT_TIMEOUT) {      /* answered, or not a silence */
		t->run = 0;
		t->unseen &= r->outcome != OUT_ANSWER;
		return;
	}
	const struct vout v = verdict_dns(t->run);
	if (v.v == V_STRANDED) {
		if (!t->unseen)
			note_unseen(t, &v);
		t->unseen = f->bh_active = 1;
	}
	if (r->look.probed) {                 /* the look's probe is that fresh socket */
		t->fresh_out = 1;
		return;
	}
	/* Where this table tracks flows to the server, the fresh flow's
	 * entry is read and deleted with it: a probe leaves no trace. */
	struct nl *nl = f->view == VIEW_POD || f->view == VIEW_UNTRACKED ? NULL : f->nl;
	if (probe_send(&f->probe, nl, &f->src, &f->o->server, f->query, f->qlen, now_ns(),
	               f->o->timeout, &err) != PROBE_FAILED) {
		t->fresh_out = 1;
		f->st->probes++;
		f->last_probe = f->probe.e.orig;  /* the node watch leaves it to us */
	}
}

/* A send's EPERM is netfilter dropping the packet. A REJECT rule also
 * answers it with an ICMP error that the socket holds as send() returns
 * (the local REJECT delivers it at once): a Service without endpoints,
 * not a full table. Reading SO_ERROR clears it for the next send. */
static int rejected(int fd)
{
	int e = 0;
	socklen_t len = sizeof e;
	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == ECONNREFUSED;
}

static void cycle(struct tester *t)
{
	struct result r;
	memset(&r, 0, sizeof r);
	r.look.state = CT_UNKNOWN;
	/* The query is encoded once at start; each cycle gets a fresh ID. */
	uint16_t id = random_id(t);
	t->query[0] = (uint8_t)(id >> 8);
	t->query[1] = (uint8_t)id;
	r.look.sent_at = now_ns();
	uint64_t mark = t->w ? watch_mark(t->w) : 0;   /* the event clock as ours leaves */
	int fresh = t->own_gone;
	int sent = send(t->f.fd, t->query, t->qlen, 0) >= 0;
	t->st.sent++;
	if (!sent) {
		struct result after = r;
		r.outcome = OUT_SEND_ERROR;   /* the line names no entry */
		r.err = errno;
		r.rejected = r.err == EPERM && rejected(t->f.fd);
		note_result(t, &r);
		flow_look(&t->f, 1, &after.look);   /* a DNAT'd entry is still deleted */
		dns_run(t, &r);
		return;
	}
	await_reply(t, r.look.sent_at, &r);
	/* Our entry once the query is over: answered, or given up (the
	 * entry is known when --heal has just deleted it). An unanswered
	 * one DNAT'd is judged there: its backend may be gone. */
	r.look.unanswered = r.outcome != OUT_ANSWER;
	if (r.outcome != OUT_STOPPED && !r.look.healed)
		flow_look(&t->f, 1, &r.look);
	/* A new flow of ours, DNAT'd: the fresh flow that proves the
	 * server's other clients met by a missing rule (watch.h). */
	if (t->w && fresh && r.look.state == CT_DNAT)
		watch_own_dnat(t->w, mark);
	t->own_gone = r.look.action == ACT_DELETED && !r.look.action_err;   /* gone: the next is new */
	if (r.outcome != OUT_STOPPED)         /* the query left: its look shows where we run */
		view_note(&t->vl, &t->f, r.look.state);
	note_result(t, &r);
	if (r.outcome != OUT_STOPPED)
		dns_run(t, &r);
}

/* ---- set-up and the loop ------------------------------------------ */
static void log_start(const struct tester *t)
{
	static const char *const modes[] = {"delete", "monitor", "heal"};
	char iv[32], to[32], tbuf[16], a[64];
	const char *node = getenv("NODE_NAME");
	struct line l;
	fmt_duration(t->o->interval, iv, sizeof iv);
	fmt_duration(t->o->timeout, to, sizeof to);
	flow_begin(&t->f, &l, "info", "start");
	log_kv(&l, "version", VERSION);
	log_kv(&l, "name", t->o->name);
	log_kv(&l, "type", dns_type_str(t->o->qtype, tbuf, sizeof tbuf));
	log_kv(&l, "interval", iv);
	log_kv(&l, "timeout", to);
	log_kv(&l, "mode", t->f.nl ? modes[t->o->mode] : "no-conntrack");
	log_kv(&l, "conntrack", t->f.nl ? "on" : "off");
	log_kv(&l, "node_watch", !t->o->watch_node ? "off" : !t->o->heal_node ? "watch" : t->o->dry_run ? "dry_run" : "heal");
	log_kv(&l, "nat", "unknown");         /* learned from the first DNAT'd flow */
	log_kv(&l, "view", view_names[t->f.view]);   /* learned from the first look: event=view */
	log_kv(&l, "confine", confine_state());
	if (t->o->count)
		log_kvu(&l, "count", t->o->count);
	if (node && *node)
		log_kv(&l, "node", node);
	if (t->m) {
		fmt_addr(&t->o->metrics, a, sizeof a);
		log_kv(&l, "metrics", a);
	}
	log_kvu(&l, "pid", (uint64_t)getpid());
	log_end(&l);
}

static void log_stop(const struct tester *t)
{
	struct line l;
	if (t->fatal) {
		flow_begin(&t->f, &l, "error", "fatal");
		log_kv(&l, "op", "ppoll");
		log_kv(&l, "err", strerror(t->fatal));
		log_end(&l);
	}
	flow_begin(&t->f, &l, "info", "stop");
	log_kv(&l, "reason", t->fatal ? "error" : stop_signal == SIGINT ? "SIGINT"
	                    : stop_signal ? "SIGTERM" : "count");
	log_end(&l);
}

/* The node watch, after the first query: it needs conntrack (without
 * it the conntrack_unavailable line has said so, once), and the view
 * that query showed (a pod's namespace has nothing to watch), learned
 * without one more netlink request. */
static void start_watch(struct tester *t)
{
	char why[160];
	if (!t->o->watch_node || !t->f.nl || watch_view_off(&t->f))
		return;
	if (!(t->w = watch_open(&t->f, &t->st, why, sizeof why)))
		log_note("warn", "node_watch_unavailable", "reason", why);
	if (t->w && t->o->stuck_max)
		t->stuck = calloc(t->o->stuck_max, sizeof *t->stuck);
}

/* Cycles on an absolute tick grid until the count or a signal. */
static void loop(struct tester *t)
{
	uint64_t t0 = now_ns(), k = 0, next_stats = t0 + STATS_EVERY, iv = t->o->interval;
	while (wait_for(t, -1, t0 + k * iv) != WAIT_STOP) {
		cycle(t);
		if (k == 0)
			start_watch(t);
		if (t->o->count && t->st.sent >= t->o->count)
			break;
		/* Next tick on the absolute grid; skip the ones we overran. */
		uint64_t now = now_ns(), next = k + 1;
		if (now > t0 + next * iv)
			next = (now - t0) / iv + 1;
		t->st.skipped_ticks += next - k - 1;
		k = next;
		if (now >= next_stats) {
			log_stats(t, "stats");
			next_stats += STATS_EVERY * ((now - next_stats) / STATS_EVERY + 1);
		}
	}
}

static int exit_status(const struct tester *t)
{
	if (t->f.seen_blackhole)
		return EXIT_BLACKHOLE;
	if (t->fatal || (!stop_signal && t->st.answered < t->st.sent))
		return EXIT_FAILED;
	return EXIT_OK;
}

/* Everything the loop needs: the socket, the query, metrics, conntrack. */
static int setup(struct tester *t, char *why, size_t cap)
{
	const char *err;
	char a[64];
	fmt_addr(&t->o->server, t->f.server_s, sizeof t->f.server_s);
	if (flow_open(&t->f) < 0)
		return -1;
	int qlen = dns_build_query(t->query, sizeof t->query, 0, t->o->name, t->o->qtype);
	if (qlen < 0) {                   /* opts checked the name: never */
		err_line("cannot encode a query for '%s'", t->o->name);
		return -1;
	}
	t->qlen = (size_t)qlen;
	t->f.query = t->query;
	t->f.qlen = t->qlen;
	/* Wake-ups within a microsecond of the tick, not the default 50. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
	if (t->o->have_metrics && !(t->m = metrics_open(&t->o->metrics, &err))) {
		fmt_addr(&t->o->metrics, a, sizeof a);
		err_line("cannot serve metrics on %s: %s", a, err);
		return -1;
	}
	if (!t->o->no_conntrack)
		t->f.nl = flow_conntrack(&t->f, why, cap);
	return 0;
}

int tester_run(const struct opts *o, const sigset_t *wait_mask)
{
	struct tester *t = calloc(1, sizeof *t);
	char why[160] = "";
	int rc = EXIT_USAGE;
	if (!t) {
		err_line("out of memory");
		return EXIT_FAILED;
	}
	t->own_gone = 1;              /* a new socket: its first query is a new flow */
	t->o = o;
	t->wait_mask = wait_mask;
	t->f.o = o;
	t->f.st = &t->st;
	t->f.fd = -1;
	probe_init(&t->f.probe);
	probe_init(&t->f.ask);
	view_learn_init(&t->vl);
	if (setup(t, why, sizeof why) == 0 && confine() == 0) {
		log_start(t);
		if (*why)
			flow_lost(&t->f, why);
		loop(t);
		log_stats(t, "stats");
		log_stop(t);
		rc = exit_status(t);
	}
	probe_finish(&t->f.probe, t->f.nl);
	probe_finish(&t->f.ask, t->f.nl);
	watch_close(t->w);
	kproxy_close(t->kp);
	free(t->stuck);
	nl_close(t->f.nl);
	metrics_close(t->m);
	if (t->f.fd >= 0)
		close(t->f.fd);
	free(t);
	return rc;
}
