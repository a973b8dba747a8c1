/* nl.h - the few ctnetlink operations the tester needs, over libmnl. */
#ifndef NL_H
#define NL_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

union ct_addr {
	struct in_addr v4;
	struct in6_addr v6;
	uint8_t b[16];
};

struct ct_tuple {
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint8_t proto;           /* IPPROTO_UDP, IPPROTO_TCP, ... */
	union ct_addr src, dst;
	uint16_t sport, dport;   /* host byte order (icmp: id in sport) */
	uint8_t icmp_type, icmp_code;
};

/* Which optional attributes an entry carried. */
enum {
	CT_HAVE_STATUS = 1 << 0, CT_HAVE_ID = 1 << 1, CT_HAVE_TIMEOUT = 1 << 2,
	CT_HAVE_MARK = 1 << 3, CT_HAVE_USE = 1 << 4, CT_HAVE_ZONE = 1 << 5,
	CT_HAVE_TCP_STATE = 1 << 6, CT_HAVE_REPLY = 1 << 7,
	CT_HAVE_COUNTERS = 1 << 8,     /* the kernel counts packets (nf_conntrack_acct) */
};

struct ct_entry {
	struct ct_tuple orig, reply;
	uint32_t status;         /* IPS_* bits */
	uint32_t id, timeout, mark, use;
	uint16_t zone;
	uint8_t tcp_state;
	uint64_t reply_packets;  /* CT_HAVE_COUNTERS: packets in the reply direction */
	unsigned have;           /* CT_HAVE_* */
};

struct nl;                   /* opaque: socket plus its one buffer */

/* Opens a NETLINK_NETFILTER socket. Returns NULL and sets errno. */
struct nl *nl_open(void);
void nl_close(struct nl *nl);

/* Looks up the entry whose original tuple is t (one GET, no dump).
 * Returns 0, or -errno: -ENOENT none, -EPERM no CAP_NET_ADMIN, ... */
int nl_get(struct nl *nl, const struct ct_tuple *t, struct ct_entry *e);
/* The same in a conntrack zone (0 is the default zone). */
int nl_get_zone(struct nl *nl, const struct ct_tuple *t, uint16_t zone, struct ct_entry *e);

/* Deletes e, guarded by its ID: if the entry with e's tuple is no
 * longer the one we read (other CTA_ID), the kernel refuses with
 * -ENOENT and nothing is deleted. Returns 0 or -errno. */
int nl_delete(struct nl *nl, const struct ct_entry *e);

/* Filter for nl_dump: an entry passes if its original destination is
 * one of dst[] (address and port) and its protocol is proto. */
struct ct_dump_filter {
	uint8_t proto;
	size_t ndst;
	const struct ct_tuple *dst;   /* family, dst, dport used */
	int kernel;                   /* 1: ask the kernel to filter */
};

/* Dumps the table (both families), calling cb for each entry that
 * passes f (f may be NULL). Filtering happens in the kernel where
 * f->kernel is set and the kernel supports CTA_FILTER, and is always
 * rechecked here. cb returns 0 to go on, <0 to stop with that value.
 * Returns 0 or -errno; -EINTR/-EAGAIN style failures are retried by
 * the caller. *kernel_filtered tells which path was taken. */
int nl_dump(struct nl *nl, const struct ct_dump_filter *f,
            int (*cb)(const struct ct_entry *, void *), void *arg,
            int *kernel_filtered);

/* An unfiltered dump (both families) read from the caller's poll loop, a
 * few batches at a time, so that a big table never holds the loop:
 * nl_dump_begin() sends the request; nl_dump_more() reads at most
 * batches batches that are there (never waits), calling cb for each
 * entry, and returns 1 (more to come), 0 (done) or -errno (cb's own
 * negative value included). nl_fd() is the socket to poll. The handle is
 * for that dump only: close it when done or given up. */
int nl_dump_begin(struct nl *nl);
int nl_dump_more(struct nl *nl, int (*cb)(const struct ct_entry *, void *), void *arg, int batches);
int nl_fd(const struct nl *nl);

/* Parses one ctnetlink entry message of len bytes (bounds-checked:
 * safe on arbitrary bytes). Returns 0 or -EINVAL. */
int ct_parse_msg(const void *msg, size_t len, struct ct_entry *e);

/* Writes e the way `conntrack -L` prints it, cut to cap (always
 * terminated). Returns the length of the whole line, as snprintf does. */
int ct_format(const struct ct_entry *e, char *buf, size_t cap);

/* An IPv4 or IPv6 address as glibc's inet_ntop (and so conntrack -L)
 * writes it; buf of INET6_ADDRSTRLEN holds any. Returns buf. */
const char *ct_ntop(int family, const void *addr, char *buf, size_t cap);

/* True if tuple matches entry's original direction exactly. */
int ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b);

/* Entry is DNAT'd: IPS_DST_NAT, or reply source is not the original
 * destination (someone else answers for the address we sent to). */
int ct_is_dnat(const struct ct_entry *e);
int ct_seen_reply(const struct ct_entry *e);

#endif
