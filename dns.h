/* dns.h - DNS wire format: build one query, check and parse one reply. */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_QUERY 300  /* 12 header + 255 name + 4: every query fits */

enum dns_result {
	DNS_OK = 0,
	DNS_ESHORT = -1,    /* ends before a field it announces */
	DNS_ENOTREPLY = -2, /* QR bit clear, or an opcode we did not send */
	DNS_EID = -3,       /* ID differs from our query's */
	DNS_EQUESTION = -4, /* question is not the one we asked */
	DNS_EFORMAT = -5,   /* bad name, compression loop, bad record */
};

struct dns_reply {
	uint16_t id;
	int rcode;          /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ... */
	int tc, aa, ra;     /* flags */
	unsigned ancount;   /* answer records announced (and present unless tc) */
	int addr_family;    /* AF_INET/AF_INET6 of the first A/AAAA, or 0 */
	uint8_t addr[16];
	uint32_t ttl;       /* of that record */
};

/* Checks a presentation-format name ("a.b.c", final dot optional).
 * Returns NULL if fine, else a short reason for the error message. */
const char *dns_check_name(const char *name);

/* Writes a query with recursion desired. Returns its length or -1. */
int dns_build_query(uint8_t *buf, size_t cap, uint16_t id,
                    const char *name, uint16_t qtype);

/* Checks that msg answers the query q, as dns_build_query() wrote it
 * (ID, QR, question echoed), and fills r. Every read is bounded by len.
 * Returns a dns_result. */
int dns_parse_reply(const uint8_t *msg, size_t len,
                    const uint8_t *q, size_t qlen, struct dns_reply *r);

const char *dns_result_str(int result);
const char *dns_rcode_str(int rcode);   /* "NOERROR", ...; "RCODE15" */

/* "A" -> 1, "AAAA" -> 28, "TYPE99" or "99" -> 99. Returns -1 if unknown. */
int dns_type_from_str(const char *s);
/* 1 -> "A"; unknown types are written as "TYPE<n>" into buf. */
const char *dns_type_str(uint16_t type, char *buf, size_t cap);

#endif
