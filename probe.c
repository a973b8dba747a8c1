/* probe.c - one query on a short-lived socket, to learn whether a new
 * flow to the VIP is DNAT'd right now (see probe.h). */
#define _GNU_SOURCE
#include "probe.h"
#include "opts.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

void probe_init(struct probe *p)
{
	memset(p, 0, sizeof *p);
	p->fd = -1;
}

int probe_fd(const struct probe *p) { return p->fd; }

int probe_finish(struct probe *p, struct nl *nl)
{
	int err = 0;
	if (p->fd < 0)
		return 0;
	if (p->have_entry && nl)
		err = nl_delete(nl, &p->e);
	close(p->fd);
	p->fd = -1;
	p->have_entry = 0;
	p->done = 1;
	return err == -ENOENT ? 0 : err;   /* gone already: nothing left */
}

/* The probe's socket: same source address as ours, a fresh port,
 * connected to the server. Its flow's original tuple goes into t. */
static int probe_socket(const struct sockaddr_storage *src, const struct sockaddr_storage *server,
                        struct ct_tuple *t)
{
	struct sockaddr_storage me = *src, got;
	socklen_t len = sizeof got;
	struct ct_tuple mine;
	if (me.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&me)->sin6_port = 0;
	else
		((struct sockaddr_in *)&me)->sin_port = 0;
	int fd = socket(server->ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)&me, sa_len(&me)) < 0 ||
	    connect(fd, (const struct sockaddr *)server, sa_len(server)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	sockaddr_to_tuple(server, t);
	sockaddr_to_tuple(&got, &mine);
	t->src = mine.dst;
	t->sport = mine.dport;
	return fd;
}

enum probe_verdict probe_send(struct probe *p, struct nl *nl, const struct sockaddr_storage *src,
                              const struct sockaddr_storage *server, const uint8_t *query,
                              size_t qlen, uint64_t now, uint64_t wait_ns, int *err)
{
	struct ct_tuple t;
	probe_finish(p, nl);
	*err = 0;
	p->done = p->answered = p->send_failed = 0;
	p->rtt = 0;
	p->qlen = qlen <= sizeof p->q ? qlen : 0;
	memcpy(p->q, query, p->qlen);
	p->sent = now;
	if ((p->fd = probe_socket(src, server, &t)) < 0 || send(p->fd, query, qlen, 0) < 0) {
		*err = -errno;
		p->send_failed = 1;
		probe_finish(p, nl);
		return PROBE_FAILED;
	}
	p->until = now + wait_ns;
	/* The entry was confirmed as the packet left: it is there now. */
	if ((*err = nl_get(nl, &t, &p->e)) < 0) {
		probe_finish(p, nl);
		return PROBE_FAILED;
	}
	p->have_entry = 1;
	return ct_is_dnat(&p->e) ? PROBE_DNAT : PROBE_NO_DNAT;
}

int probe_poll(struct probe *p, struct nl *nl, int readable, uint64_t now)
{
	int got = 0;
	if (p->fd < 0)
		return 0;
	for (int i = 0; readable && i < 16 && !got; i++) {
		uint8_t buf[4096];
		struct dns_reply r;
		ssize_t n = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			got = 1;        /* an ICMP error: refused, not answered */
		} else if (dns_parse_reply(buf, (size_t)n, p->q, p->qlen, &r) == DNS_OK) {
			got = p->answered = 1;
			p->rtt = now - p->sent;
		}                   /* else not an answer to us: keep waiting */
	}
	if (got || now >= p->until)
		return probe_finish(p, nl);
	return 0;
}

void probe_backend(const struct ct_entry *e, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	ss->ss_family = e->reply.family;
	if (e->reply.family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_addr = e->reply.src.v6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(e->reply.sport);
	} else {
		((struct sockaddr_in *)ss)->sin_addr = e->reply.src.v4;
		((struct sockaddr_in *)ss)->sin_port = htons(e->reply.sport);
	}
}
