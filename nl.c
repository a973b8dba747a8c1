/* nl.c - ctnetlink (NFNL_SUBSYS_CTNETLINK) through libmnl.
 *
 * One socket, one buffer, no allocation per message. Every attribute
 * is validated before it is read (mnl_attr_validate), in the spirit of
 * libmnl's examples/netfilter/nfct-dump.c. */
#define _GNU_SOURCE
#include "nl.h"
#include "log.h"
#ifdef LIBMNL_GLIBC_COMPAT
#include "libmnl_compat.h"
#endif

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/netlink.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/* Not in the UAPI headers: the kernel's CTA_FILTER flag bits
 * (net/netfilter/nf_internals.h), stable since Linux 5.8. */
#define FILTER_F_IP_DST     (1u << 1)
#define FILTER_F_PROTO_NUM  (1u << 3)
#define FILTER_F_DST_PORT   (1u << 5)

/* Receive buffer: libmnl's MNL_SOCKET_DUMP_SIZE, big enough for the
 * kernel's dump batches even with 64 KiB pages. */
#define NL_BUF 32768

struct nl {
	struct mnl_socket *sock;
	unsigned portid;
	uint32_t seq, dump_seq;
	char buf[NL_BUF];
};

/* A real handle: two may be open at once (scan retries a broken dump on
 * a fresh one beside it). libmnl's socket helpers; our own checks on
 * what comes back (see transact). */
struct nl *nl_open(void)
{
	struct nl *nl = malloc(sizeof *nl);
	if (!nl)
		return NULL;
	nl->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		if (nl->sock)
			mnl_socket_close(nl->sock);
		free(nl);
		errno = e;
		return NULL;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	/* Never let the query loop hang on the kernel: bound each recv. */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return nl;
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	free(nl);
}

/* ---- building requests ------------------------------------------- */

static struct nlmsghdr *put_request(struct nl *nl, uint8_t type, uint16_t flags,
                                    uint8_t family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof *nfg);
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

/* Puts the fields of t selected by want (src/dst address, ports). */
enum { P_SRC = 1, P_DST = 2, P_SPORT = 4, P_DPORT = 8 };

static void put_tuple(struct nlmsghdr *nlh, uint16_t type,
                      const struct ct_tuple *t, unsigned want)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	int v6 = t->family == AF_INET6;
	size_t alen = v6 ? 16 : 4;
	if (want & P_SRC)
		mnl_attr_put(nlh, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, alen, t->src.b);
	if (want & P_DST)
		mnl_attr_put(nlh, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, alen, t->dst.b);
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->proto);
	if (want & P_SPORT)
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
	if (want & P_DPORT)
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

/* ---- parsing entries ---------------------------------------------- */

/* Validation table: expected type of each attribute we read. */
static int valid(const struct nlattr *a, enum mnl_attr_data_type t, size_t len)
{
	return len ? mnl_attr_validate2(a, t, len) : mnl_attr_validate(a, t);
}

struct table {
	const struct nlattr **tb;
	int max;
	int (*check)(const struct nlattr *a, int type);
};

static int table_cb(const struct nlattr *a, void *data)
{
	struct table *t = data;
	int type = mnl_attr_get_type(a);
	if (mnl_attr_type_valid(a, t->max) < 0)
		return MNL_CB_OK;              /* newer kernel: skip unknown */
	if (t->check(a, type) < 0)
		return MNL_CB_ERROR;
	t->tb[type] = a;
	return MNL_CB_OK;
}

static int check_ip(const struct nlattr *a, int type)
{
	switch (type) {
	case CTA_IP_V4_SRC: case CTA_IP_V4_DST:
		return valid(a, MNL_TYPE_BINARY, 4);
	case CTA_IP_V6_SRC: case CTA_IP_V6_DST:
		return valid(a, MNL_TYPE_BINARY, 16);
	}
	return 0;
}

static int check_proto(const struct nlattr *a, int type)
{
	switch (type) {
	case CTA_PROTO_NUM: case CTA_PROTO_ICMP_TYPE: case CTA_PROTO_ICMP_CODE:
	case CTA_PROTO_ICMPV6_TYPE: case CTA_PROTO_ICMPV6_CODE:
		return valid(a, MNL_TYPE_U8, 0);
	case CTA_PROTO_SRC_PORT: case CTA_PROTO_DST_PORT:
	case CTA_PROTO_ICMP_ID: case CTA_PROTO_ICMPV6_ID:
		return valid(a, MNL_TYPE_U16, 0);
	}
	return 0;
}

static int check_nested(const struct nlattr *a, int type)
{
	(void)type;
	return valid(a, MNL_TYPE_NESTED, 0);
}

static int check_tcp(const struct nlattr *a, int type)
{
	return type == CTA_PROTOINFO_TCP_STATE ? valid(a, MNL_TYPE_U8, 0) : 0;
}

static int check_counters(const struct nlattr *a, int type)
{
	return type == CTA_COUNTERS_PACKETS ? valid(a, MNL_TYPE_U64, 0) : 0;
}

static int check_top(const struct nlattr *a, int type)
{
	switch (type) {
	case CTA_TUPLE_ORIG: case CTA_TUPLE_REPLY: case CTA_PROTOINFO: case CTA_COUNTERS_REPLY:
		return valid(a, MNL_TYPE_NESTED, 0);
	case CTA_STATUS: case CTA_ID: case CTA_TIMEOUT: case CTA_MARK: case CTA_USE:
		return valid(a, MNL_TYPE_U32, 0);
	case CTA_ZONE:
		return valid(a, MNL_TYPE_U16, 0);
	}
	return 0;
}

static int parse_nested(const struct nlattr *nest, const struct nlattr **tb, int max,
                        int (*check)(const struct nlattr *, int))
{
	struct table t = {tb, max, check};
	memset(tb, 0, sizeof(*tb) * ((size_t)max + 1));
	return mnl_attr_parse_nested(nest, table_cb, &t) < 0 ? -EINVAL : 0;
}

static int parse_tuple(const struct nlattr *nest, struct ct_tuple *t)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1],
		*pr[CTA_PROTO_MAX + 1];
	memset(t, 0, sizeof *t);
	if (parse_nested(nest, tb, CTA_TUPLE_MAX, check_nested) < 0 ||
	    !tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO] ||
	    parse_nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX, check_ip) < 0 ||
	    parse_nested(tb[CTA_TUPLE_PROTO], pr, CTA_PROTO_MAX, check_proto) < 0)
		return -EINVAL;
	if (ip[CTA_IP_V4_SRC] && ip[CTA_IP_V4_DST]) {
		t->family = AF_INET;
		memcpy(t->src.b, mnl_attr_get_payload(ip[CTA_IP_V4_SRC]), 4);
		memcpy(t->dst.b, mnl_attr_get_payload(ip[CTA_IP_V4_DST]), 4);
	} else if (ip[CTA_IP_V6_SRC] && ip[CTA_IP_V6_DST]) {
		t->family = AF_INET6;
		memcpy(t->src.b, mnl_attr_get_payload(ip[CTA_IP_V6_SRC]), 16);
		memcpy(t->dst.b, mnl_attr_get_payload(ip[CTA_IP_V6_DST]), 16);
	} else {
		return -EINVAL;
	}
	if (!pr[CTA_PROTO_NUM])
		return -EINVAL;
	t->proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	if (pr[CTA_PROTO_SRC_PORT])
		t->sport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]));
	if (pr[CTA_PROTO_DST_PORT])
		t->dport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]));
	int v6 = t->family == AF_INET6;
	const struct nlattr *ty = pr[v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE];
	const struct nlattr *co = pr[v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE];
	const struct nlattr *id = pr[v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID];
	if (ty)
		t->icmp_type = mnl_attr_get_u8(ty);
	if (co)
		t->icmp_code = mnl_attr_get_u8(co);
	if (id)
		t->sport = ntohs(mnl_attr_get_u16(id));
	return 0;
}

static void parse_tcp_state(const struct nlattr *nest, struct ct_entry *e)
{
	const struct nlattr *pi[CTA_PROTOINFO_MAX + 1], *tcp[CTA_PROTOINFO_TCP_MAX + 1];
	if (parse_nested(nest, pi, CTA_PROTOINFO_MAX, check_nested) < 0 ||
	    !pi[CTA_PROTOINFO_TCP] ||
	    parse_nested(pi[CTA_PROTOINFO_TCP], tcp, CTA_PROTOINFO_TCP_MAX, check_tcp) < 0 ||
	    !tcp[CTA_PROTOINFO_TCP_STATE])
		return;
	e->tcp_state = mnl_attr_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
	e->have |= CT_HAVE_TCP_STATE;
}

static uint32_t be32_attr(const struct nlattr *a) { return ntohl(mnl_attr_get_u32(a)); }

/* The reply direction's packet count, where the kernel keeps one
 * (nf_conntrack_acct): a count that still moves is a flow answered. */
static void parse_counters(const struct nlattr *nest, struct ct_entry *e)
{
	const struct nlattr *c[CTA_COUNTERS_MAX + 1];
	if (parse_nested(nest, c, CTA_COUNTERS_MAX, check_counters) < 0 || !c[CTA_COUNTERS_PACKETS])
		return;
	e->reply_packets = be64toh(mnl_attr_get_u64(c[CTA_COUNTERS_PACKETS]));
	e->have |= CT_HAVE_COUNTERS;
}

/* Parses an entry from a message whose header and length are known good. */
static int parse_entry(const struct nlmsghdr *nlh, struct ct_entry *e)
{
	const struct nlattr *tb[CTA_MAX + 1] = {0};
	struct table t = {tb, CTA_MAX, check_top};
	memset(e, 0, sizeof *e);
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), table_cb, &t) < 0)
		return -EINVAL;
	if (!tb[CTA_TUPLE_ORIG] || parse_tuple(tb[CTA_TUPLE_ORIG], &e->orig) < 0)
		return -EINVAL;
	if (tb[CTA_TUPLE_REPLY]) {
		if (parse_tuple(tb[CTA_TUPLE_REPLY], &e->reply) < 0)
			return -EINVAL;
		e->have |= CT_HAVE_REPLY;
	}
	static const struct { int attr; unsigned bit; size_t off; } u32s[] = {
		{CTA_STATUS, CT_HAVE_STATUS, offsetof(struct ct_entry, status)},
		{CTA_ID, CT_HAVE_ID, offsetof(struct ct_entry, id)},
		{CTA_TIMEOUT, CT_HAVE_TIMEOUT, offsetof(struct ct_entry, timeout)},
		{CTA_MARK, CT_HAVE_MARK, offsetof(struct ct_entry, mark)},
		{CTA_USE, CT_HAVE_USE, offsetof(struct ct_entry, use)},
	};
	for (size_t i = 0; i < sizeof u32s / sizeof *u32s; i++) {
		if (!tb[u32s[i].attr])
			continue;
		uint32_t v = be32_attr(tb[u32s[i].attr]);
		memcpy((char *)e + u32s[i].off, &v, sizeof v);
		e->have |= u32s[i].bit;
	}
	if (tb[CTA_ZONE]) {
		e->zone = ntohs(mnl_attr_get_u16(tb[CTA_ZONE]));
		e->have |= CT_HAVE_ZONE;
	}
	if (tb[CTA_PROTOINFO])
		parse_tcp_state(tb[CTA_PROTOINFO], e);
	if (tb[CTA_COUNTERS_REPLY])
		parse_counters(tb[CTA_COUNTERS_REPLY], e);
	return 0;
}

/* Is every message in buf[0..len) inside it, aligned end included?
 * libmnl's mnl_nlmsg_ok() compares lengths as int, so a nlmsg_len of
 * 2^31 or more would pass it and send mnl_attr_parse() far past the
 * buffer; and it walks attributes up to the aligned length. */
static int batch_ok(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nlh = (const void *)p;
		size_t l = nlh->nlmsg_len;
		if (l < sizeof(struct nlmsghdr) || MNL_ALIGN(l) > len)
			return 0;
		p += MNL_ALIGN(l);
		len -= MNL_ALIGN(l);
	}
	return len == 0;
}

int ct_parse_msg(const void *msg, size_t len, struct ct_entry *e)
{
	const struct nlmsghdr *nlh = msg;
	if (len < sizeof *nlh)
		return -EINVAL;
	size_t l = nlh->nlmsg_len;             /* size_t: no overflow below */
	if (l < mnl_nlmsg_size(sizeof(struct nfgenmsg)) || MNL_ALIGN(l) > len)
		return -EINVAL;
	return parse_entry(nlh, e);
}

/* ---- request / response ------------------------------------------- */

struct collect {
	struct ct_entry *e;        /* GET: the one entry */
	int found;
	const struct ct_dump_filter *f;
	int (*cb)(const struct ct_entry *, void *);
	void *arg;
	int cb_ret;
	int single;                /* GET without ACK: one message answers */
	int msgs;                  /* entry messages seen */
};

static int matches(const struct ct_dump_filter *f, const struct ct_entry *e)
{
	if (!f)
		return 1;
	if (e->orig.proto != f->proto)
		return 0;
	for (size_t i = 0; i < f->ndst; i++) {
		const struct ct_tuple *d = &f->dst[i];
		size_t alen = d->family == AF_INET6 ? 16 : 4;
		if (e->orig.family == d->family && e->orig.dport == d->dport &&
		    !memcmp(e->orig.dst.b, d->dst.b, alen))
			return 1;
	}
	return 0;
}

static int data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct collect *c = data;
	struct ct_entry tmp, *e = c->e ? c->e : &tmp;
	c->msgs++;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
		return MNL_CB_OK;
	if (parse_entry(nlh, e) < 0)
		return MNL_CB_OK;              /* skip what we cannot read */
	c->found++;
	if (c->cb && matches(c->f, e)) {
		c->cb_ret = c->cb(e, c->arg);
		if (c->cb_ret < 0)
			return MNL_CB_STOP;
	}
	return MNL_CB_OK;
}

/* An answer to an earlier request (a GET we stopped reading after its
 * entry, a dump given up): its sequence number is not ours. Only these
 * are skipped; an error the kernel answers to this request is returned. */
static int stale(const void *buf, size_t len, uint32_t seq)
{
	const struct nlmsghdr *nlh = buf;
	return len >= sizeof *nlh && nlh->nlmsg_seq != seq;
}

/* Sends the request in nl->buf and reads until the ACK or DONE.
 * Returns 0 or -errno (the kernel's error, or a socket error). */
static int transact(struct nl *nl, struct collect *c)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)nl->buf;
	uint32_t seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		/* libmnl's recv refuses a batch cut short by the buffer
		 * (ENOSPC): a cut batch is never parsed. */
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof nl->buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : errno == ENOSPC ? -EMSGSIZE : -errno;
		/* libmnl's mnl_nlmsg_ok() compares lengths as int: check
		 * every length ourselves before it walks them. */
		if (!batch_ok(nl->buf, (size_t)n))
			return -EBADMSG;           /* lengths that lie: read nothing */
		if (stale(nl->buf, (size_t)n, seq))
			continue;
		int ret = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, data_cb, c);
		if (ret == MNL_CB_STOP || (ret > 0 && c->single && c->msgs))
			return c->cb_ret < 0 ? c->cb_ret : 0;
		if (ret < 0)
			return -errno;             /* the kernel's own error */
	}
}

int nl_get(struct nl *nl, const struct ct_tuple *t, struct ct_entry *e)
{
	return nl_get_zone(nl, t, 0, e);
}

int nl_get_zone(struct nl *nl, const struct ct_tuple *t, uint16_t zone, struct ct_entry *e)
{
	/* No NLM_F_ACK: the kernel answers a GET with the entry alone, or
	 * with an error; one receive per lookup (this runs every cycle). */
	struct nlmsghdr *nlh = put_request(nl, IPCTNL_MSG_CT_GET, 0, t->family);
	put_tuple(nlh, CTA_TUPLE_ORIG, t, P_SRC | P_DST | P_SPORT | P_DPORT);
	if (zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(zone));
	struct collect c = {.e = e, .single = 1};
	int ret = transact(nl, &c);
	/* The kernel finds a tuple in either direction: an entry whose
	 * reply tuple is t is not the flow we asked about. */
	if (ret == 0 && (!c.found || !ct_tuple_equal(&e->orig, t)))
		ret = -ENOENT;
	return ret;
}

int nl_delete(struct nl *nl, const struct ct_entry *e)
{
	if (!(e->have & CT_HAVE_ID))
		return -EINVAL;                /* never delete unguarded */
	struct nlmsghdr *nlh = put_request(nl, IPCTNL_MSG_CT_DELETE, NLM_F_ACK,
	                                   e->orig.family);
	put_tuple(nlh, CTA_TUPLE_ORIG, &e->orig, P_SRC | P_DST | P_SPORT | P_DPORT);
	if (e->have & CT_HAVE_ZONE)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	mnl_attr_put_u32(nlh, CTA_ID, htonl(e->id));
	struct collect c = {0};
	return transact(nl, &c);
}

/* One dump of one family; with kernel filtering, of one destination. */
static int dump_once(struct nl *nl, uint8_t family, const struct ct_tuple *dst,
                     uint8_t proto, struct collect *c)
{
	struct nlmsghdr *nlh = put_request(nl, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family);
	if (dst) {
		struct ct_tuple t = *dst;
		/* Measured on Linux 6.18: CTA_FILTER's IPv6 address match is
		 * inverted (it returns every entry except the matching one;
		 * IPv4 is right). So for IPv6 the kernel matches protocol and
		 * port only, and matches() checks the address. */
		uint32_t flags = FILTER_F_PROTO_NUM | FILTER_F_DST_PORT;
		unsigned want = P_DPORT;
		if (family == AF_INET) {
			flags |= FILTER_F_IP_DST;
			want |= P_DST;
		}
		t.proto = proto;
		put_tuple(nlh, CTA_TUPLE_ORIG, &t, want);
		struct nlattr *f = mnl_attr_nest_start(nlh, CTA_FILTER);
		mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, flags);
		mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
		mnl_attr_nest_end(nlh, f);
	}
	return transact(nl, c);
}

/* Did an earlier kernel-filtered dump already return dst[i]'s entries?
 * IPv4 dumps are per address and port; IPv6 dumps are per port (the
 * address is checked here), so one covers every IPv6 VIP on its port. */
static int covered(const struct ct_dump_filter *f, size_t i)
{
	const struct ct_tuple *d = &f->dst[i];
	for (size_t j = 0; j < i; j++) {
		const struct ct_tuple *e = &f->dst[j];
		if (e->family == d->family && e->dport == d->dport &&
		    (d->family == AF_INET6 || !memcmp(e->dst.b, d->dst.b, 4)))
			return 1;
	}
	return 0;
}

int nl_dump(struct nl *nl, const struct ct_dump_filter *f,
            int (*cb)(const struct ct_entry *, void *), void *arg,
            int *kernel_filtered)
{
	struct collect c = {.f = f, .cb = cb, .arg = arg};
	*kernel_filtered = 0;
	if (f && f->kernel) {
		int ret = 0;
		for (size_t i = 0; i < f->ndst && ret == 0; i++)
			if (!covered(f, i))
				ret = dump_once(nl, f->dst[i].family, &f->dst[i], f->proto, &c);
		/* Old kernels refuse or ignore CTA_FILTER: the recheck in
		 * matches() keeps the ignore case right; on refusal, and
		 * only if nothing was reported yet, dump unfiltered. */
		if (ret == 0) {
			*kernel_filtered = 1;
			return 0;
		}
		if ((ret != -EOPNOTSUPP && ret != -EINVAL) || c.found)
			return ret;
		c.found = 0;
	}
	return dump_once(nl, AF_UNSPEC, NULL, 0, &c);
}

int nl_fd(const struct nl *nl) { return mnl_socket_get_fd(nl->sock); }

int nl_dump_begin(struct nl *nl)
{
	struct nlmsghdr *nlh = put_request(nl, IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC);
	nl->dump_seq = nlh->nlmsg_seq;
	return mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

int nl_dump_more(struct nl *nl, int (*cb)(const struct ct_entry *, void *), void *arg, int batches)
{
	struct collect c = {.cb = cb, .arg = arg};
	for (int i = 0; i < batches; i++) {
		ssize_t n = recv(mnl_socket_get_fd(nl->sock), nl->buf, sizeof nl->buf, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 1 : -errno;
		if ((size_t)n > sizeof nl->buf)
			return -EMSGSIZE;          /* a batch cut short is never parsed */
		if (!batch_ok(nl->buf, (size_t)n))
			return -EBADMSG;
		if (stale(nl->buf, (size_t)n, nl->dump_seq))
			continue;
		int ret = mnl_cb_run(nl->buf, (size_t)n, nl->dump_seq, nl->portid, data_cb, &c);
		if (c.cb_ret < 0)
			return c.cb_ret;
		if (ret == MNL_CB_STOP)
			return 0;                  /* NLMSG_DONE */
		if (ret < 0)
			return -errno;
	}
	return 1;
}

/* ---- reading entries ---------------------------------------------- */

int ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b)
{
	size_t alen = a->family == AF_INET6 ? 16 : 4;
	return a->family == b->family && a->proto == b->proto &&
	       a->sport == b->sport && a->dport == b->dport &&
	       !memcmp(a->src.b, b->src.b, alen) && !memcmp(a->dst.b, b->dst.b, alen);
}

int ct_seen_reply(const struct ct_entry *e)
{
	return !!(e->status & IPS_SEEN_REPLY);
}

int ct_is_dnat(const struct ct_entry *e)
{
	size_t alen = e->orig.family == AF_INET6 ? 16 : 4;
	if (e->status & IPS_DST_NAT)
		return 1;
	if (!(e->have & CT_HAVE_REPLY))
		return 0;
	return memcmp(e->reply.src.b, e->orig.dst.b, alen) != 0 ||
	       e->reply.sport != e->orig.dport;
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	case IPPROTO_SCTP: return "sctp";
	case IPPROTO_DCCP: return "dccp";
	case IPPROTO_GRE: return "gre";
	case IPPROTO_UDPLITE: return "udplite";
	}
	return "unknown";
}

static const char *tcp_state_name(uint8_t s)
{
	static const char *const names[] = {
		"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
		"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
	};
	return s < sizeof names / sizeof *names ? names[s] : "UNKNOWN";
}

/* Zero groups from group i on. */
static int zero_run(const unsigned w[8], int i)
{
	int n = 0;
	while (i + n < 8 && !w[i + n])
		n++;
	return n;
}

/* An address as conntrack-tools prints it, which is glibc's inet_ntop.
 * musl's differs in two IPv6 forms (tests/ntop_diff.c holds a musl and a
 * glibc build against each other over 200,000 addresses): glibc keeps the
 * dotted tail of an IPv4-compatible ::a.b.c.d, and when a leading run of
 * zero groups is as long as a later one glibc compresses the first, musl
 * the later (its text is one ':' longer). Those two forms are written
 * here; every other address is libc's own inet_ntop. */
const char *ct_ntop(int family, const void *addr, char *buf, size_t cap)
{
	const uint8_t *a = addr;
	unsigned w[8] = {0};
	int lead = 0, later = 0;
	size_t n = 0;
	if (family == AF_INET6) {
		for (int i = 0; i < 8; i++)
			w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		lead = zero_run(w, 0);
		for (int i = lead + 1; i < 8; i++)
			if (zero_run(w, i) > later)
				later = zero_run(w, i);
	}
	if (cap)
		buf[0] = '\0';
	if (lead == 6 && w[6]) {
		text_add(buf, cap, &n, "::%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
	} else if (lead >= 2 && lead < 8 && later == lead) {
		text_add(buf, cap, &n, ":");
		for (int i = lead; i < 8; i++)
			text_add(buf, cap, &n, ":%x", w[i]);
	} else if (!inet_ntop(family, addr, buf, (socklen_t)cap)) {
		text_add(buf, cap, &n, "?");
	}
	return buf;
}

static void add_tuple(char *buf, size_t cap, size_t *n, const struct ct_tuple *t)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	text_add(buf, cap, n, "src=%s dst=%s ", ct_ntop(t->family, t->src.b, s, sizeof s),
	    ct_ntop(t->family, t->dst.b, d, sizeof d));
	switch (t->proto) {
	case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_SCTP:
	case IPPROTO_DCCP: case IPPROTO_UDPLITE:
		text_add(buf, cap, n, "sport=%u dport=%u ", t->sport, t->dport);
		break;
	case IPPROTO_ICMP: case IPPROTO_ICMPV6:
		text_add(buf, cap, n, "type=%u code=%u id=%u ", t->icmp_type, t->icmp_code, t->sport);
		break;
	}
}

int ct_format(const struct ct_entry *e, char *buf, size_t cap)
{
	size_t n = 0;
	if (cap)
		buf[0] = '\0';
	text_add(buf, cap, &n, "%-8s %u ", proto_name(e->orig.proto), e->orig.proto);   /* as conntrack */
	if (e->have & CT_HAVE_TIMEOUT)
		text_add(buf, cap, &n, "%u ", e->timeout);
	if (e->have & CT_HAVE_TCP_STATE)
		text_add(buf, cap, &n, "%s ", tcp_state_name(e->tcp_state));
	add_tuple(buf, cap, &n, &e->orig);
	if (!(e->status & IPS_SEEN_REPLY))
		text_add(buf, cap, &n, "[UNREPLIED] ");
	if (e->have & CT_HAVE_REPLY)
		add_tuple(buf, cap, &n, &e->reply);
	if (e->status & IPS_OFFLOAD)
		text_add(buf, cap, &n, e->status & IPS_HW_OFFLOAD ? "[HW_OFFLOAD] " : "[OFFLOAD] ");
	if (e->status & IPS_ASSURED)
		text_add(buf, cap, &n, "[ASSURED] ");
	if (e->have & CT_HAVE_MARK)
		text_add(buf, cap, &n, "mark=%u ", e->mark);
	if ((e->have & CT_HAVE_ZONE) && e->zone)
		text_add(buf, cap, &n, "zone=%u ", e->zone);
	if (e->have & CT_HAVE_USE)
		text_add(buf, cap, &n, "use=%u ", e->use);
	/* Every piece ends in a blank; conntrack-tools drops the last. */
	if (n > 0) {
		n--;
		if (n < cap)
			buf[n] = '\0';
	}
	return (int)n;
}
