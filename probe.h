/* probe.h - is a VIP's DNAT rule in place right now?
 *
 * A probe is a second, short-lived UDP socket on a fresh ephemeral port
 * (from the same source address as the flow it vouches for), one DNS
 * query, and one GET of its exact tuple right after the send: the entry
 * exists once the packet has left, and its reply tuple says whether a
 * new flow to the VIP is DNAT'd now. The socket stays open until the
 * reply has come (or the wait is over), so the reply lands on it and not
 * on a fresh conntrack entry; then the probe's entry is deleted, guarded
 * by its CTA_ID, and the socket closed: a probe leaves no trace. */
#ifndef PROBE_H
#define PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns.h"
#include "nl.h"

enum probe_verdict {
	PROBE_FAILED,            /* no verdict: the send or the GET failed */
	PROBE_DNAT,              /* a new flow to the VIP is DNAT'd: the rule is there */
	PROBE_NO_DNAT,           /* a new flow goes to the VIP itself: no rule */
};

struct probe {
	int fd;                  /* -1: none in flight */
	uint64_t until;          /* monotonic ns: stop waiting for its reply */
	struct ct_entry e;       /* its entry, as read right after the send */
	int have_entry;
	uint64_t sent;           /* when its query left */
	uint8_t q[DNS_MAX_QUERY];   /* its query, to check a reply against */
	size_t qlen;
	/* The outcome, kept once the probe is finished, until the next send:
	 * a probe to a VIP answered proves a fresh flow is served; a probe
	 * straight to a backend (server = the backend's address) unanswered
	 * is one strike against it (verdict.h). */
	int done;                /* finished: answered, refused, or given up */
	int answered;            /* a DNS reply to its query came (any rcode) */
	uint64_t rtt;            /* ... after this long */
	/* PROBE_FAILED at the socket or the send, not at netlink: a send's
	 * EPERM is netfilter dropping the packet (a DROP rule, a full
	 * table), never a lost capability. */
	int send_failed;
};

void probe_init(struct probe *p);

/* Sends one probe from src's address (any port) to server and reads its
 * entry into p->e. A probe still in flight is finished first. wait_ns:
 * how long to keep the socket for the reply. *err: the -errno of what
 * failed (PROBE_FAILED; p->send_failed says whether the socket or the
 * send failed rather than netlink), else 0. */
enum probe_verdict probe_send(struct probe *p, struct nl *nl, const struct sockaddr_storage *src,
                              const struct sockaddr_storage *server, const uint8_t *query,
                              size_t qlen, uint64_t now, uint64_t wait_ns, int *err);

/* For the poll set: the socket (-1: none) and the time to give up. */
int probe_fd(const struct probe *p);

/* After poll: drains the reply if readable and finishes the probe once
 * it came or p->until has passed. Returns 0, or the delete's -errno. */
int probe_poll(struct probe *p, struct nl *nl, int readable, uint64_t now);

/* Deletes the probe's entry (guarded) and closes its socket, now; the
 * outcome (done, answered, rtt, e) stays readable until the next send.
 * Returns 0, or the delete's -errno (-ENOENT, already gone, is 0). */
int probe_finish(struct probe *p, struct nl *nl);

/* The backend an entry goes to: its reply's source address and port. */
void probe_backend(const struct ct_entry *e, struct sockaddr_storage *ss);

#endif
