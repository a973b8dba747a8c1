/* ctfilter.h - which UDP flows the node watch cares about, as a match
 * in user space and as a classic BPF program the kernel runs on every
 * conntrack event before it reaches our socket.
 *
 * A target is an address prefix and a port (0: any port): a Service VIP
 * is a /32 (/128) and its port, a Service CIDR a prefix and any port. A
 * flow matches when it is UDP and its original destination matches one
 * target. The BPF program answers the same question from the event's
 * attributes (CTA_TUPLE_ORIG -> CTA_TUPLE_PROTO -> CTA_PROTO_NUM and
 * CTA_PROTO_DST_PORT, CTA_TUPLE_IP -> CTA_IP_V4_DST/CTA_IP_V6_DST), and
 * also drops DESTROY events of flows with IPS_DST_NAT: the watch only
 * ever holds entries that are not DNAT'd. (An entry made through
 * ctnetlink with a translated reply tuple may lack that bit; its DESTROY
 * passes, and user space, which also compares the tuples, drops it.)
 * Every event that passes is parsed and matched again in user space
 * (ct_target_match). */
#ifndef CTFILTER_H
#define CTFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#include "nl.h"

struct ct_target {
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint8_t plen;            /* prefix length: 32 / 128 for one address */
	uint16_t port;           /* host order; 0: any port */
	union ct_addr addr;      /* host bits are zero */
};

/* Index of the first target t[] that e's original tuple matches (UDP,
 * destination in the prefix, port equal or any), or -1. */
int ct_target_match(const struct ct_target *t, size_t n, const struct ct_tuple *orig);

/* Writes the program into prog[cap]. Returns its length, or -1 when it
 * would not fit (or have jumps out of reach: never for cap <= 4096). */
int ct_filter_build(const struct ct_target *t, size_t n, struct sock_filter *prog, size_t cap);

/* What one message of an event batch is. */
enum { CT_EV_END = -1, CT_EV_OTHER, CT_EV_NEW, CT_EV_DESTROY };
/* The next message of the batch buf[0..*len): CT_EV_NEW or CT_EV_DESTROY
 * with its entry in *e (parsed by nl.c's bounds-checked ct_parse_msg),
 * CT_EV_OTHER for one that is no conntrack event or does not parse,
 * CT_EV_END at the end or where a length lies (nothing past it is read).
 * *buf and *len move past the message. buf is 4-byte aligned. */
int ct_event_next(const uint8_t **buf, size_t *len, struct ct_entry *e);

/* "10.0.0.10:53", "[fd00::a]:53", "10.96.0.0/12" into buf. */
void ct_target_format(const struct ct_target *t, char *buf, size_t cap);

#endif
