/* dns.c - DNS wire format (RFC 1035) by hand: one query out, one reply in.
 *
 * Every read of reply bytes goes through a bounds check against the
 * datagram's length; names are followed through compression pointers
 * with a hop limit and an expanded-length limit, so a hostile reply
 * can neither read outside the buffer nor loop. */
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum { HDR = 12, MAX_NAME_WIRE = 255, MAX_LABEL = 63, MAX_HOPS = 64 };
enum { T_A = 1, T_AAAA = 28, C_IN = 1 };

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

const char *dns_check_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 1 && name[0] == '.')
		return NULL;                       /* the root */
	if (len > 0 && name[len - 1] == '.')
		len--;                             /* final dot is optional */
	if (len == 0)
		return "empty name";
	if (len > 253)
		return "name longer than 253 bytes";
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.') {
			if (++label > MAX_LABEL)
				return "label longer than 63 bytes";
			continue;
		}
		if (label == 0)
			return "empty label";
		label = 0;
	}
	return label ? NULL : "empty label";
}

/* Writes name as length-prefixed labels. Returns bytes written or -1. */
static int encode_name(uint8_t *out, size_t cap, const char *name)
{
	size_t n = 0;
	const char *p = name;
	if (dns_check_name(name))
		return -1;
	while (*p && !(p[0] == '.' && p[1] == '\0')) {
		size_t l = strcspn(p, ".");
		if (n + 1 + l + 1 > cap)
			return -1;
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == '.')
			p++;
	}
	if (n + 1 > cap)
		return -1;
	out[n++] = 0;
	return (int)n;
}

int dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name,
                    uint16_t qtype)
{
	if (cap < HDR + 4)
		return -1;
	memset(buf, 0, HDR);
	put16(buf, id);
	buf[2] = 0x01;          /* QR=0 opcode=QUERY RD=1 */
	put16(buf + 4, 1);      /* QDCOUNT */
	int n = encode_name(buf + HDR, cap - HDR - 4, name);
	if (n < 0)
		return -1;
	uint8_t *q = buf + HDR + n;
	put16(q, qtype);
	put16(q + 2, C_IN);
	return HDR + n + 4;
}

/* Expands the name at *off into out (uncompressed wire form, at most
 * 255 bytes) and moves *off past it in the record. Returns the
 * expanded length, DNS_ESHORT if the message ends inside the name, or
 * DNS_EFORMAT on anything malformed. */
static int read_name(const uint8_t *msg, size_t len, size_t *off, uint8_t *out)
{
	size_t p = *off, n = 0, end = 0;
	int hops = 0;
	for (;;) {
		if (p >= len)
			return DNS_ESHORT;
		uint8_t c = msg[p];
		if ((c & 0xc0) == 0xc0) {          /* compression pointer */
			if (p + 1 >= len)
				return DNS_ESHORT;
			if (++hops > MAX_HOPS)
				return DNS_EFORMAT;
			size_t target = (size_t)(c & 0x3f) << 8 | msg[p + 1];
			if (!end)
				end = p + 2;
			if (target >= p)           /* only backwards: no loops */
				return DNS_EFORMAT;
			p = target;
			continue;
		}
		if (c & 0xc0)                      /* 0x40/0x80: reserved */
			return DNS_EFORMAT;
		if (n + 1 + c > MAX_NAME_WIRE)
			return DNS_EFORMAT;
		if (p + 1 + c > len)
			return DNS_ESHORT;
		memcpy(out + n, msg + p, 1 + (size_t)c);
		n += 1 + (size_t)c;
		p += 1 + (size_t)c;
		if (c == 0)
			break;
	}
	*off = end ? end : p;
	return (int)n;
}

/* Compares two wire-form names, ASCII case-insensitively (RFC 4343). */
static int name_equal(const uint8_t *a, int alen, const uint8_t *b, int blen)
{
	if (alen != blen)
		return 0;
	for (int i = 0; i < alen; i++)
		if (tolower(a[i]) != tolower(b[i]))
			return 0;
	return 1;
}

/* Reads one resource record at *off; keeps the first A/AAAA. */
static int read_rr(const uint8_t *msg, size_t len, size_t *off,
                   struct dns_reply *r)
{
	uint8_t owner[MAX_NAME_WIRE];
	int rc = read_name(msg, len, off, owner);
	if (rc < 0)
		return rc;
	if (len - *off < 10)
		return DNS_ESHORT;
	const uint8_t *h = msg + *off;
	uint16_t type = get16(h), class = get16(h + 2), rdlen = get16(h + 8);
	uint32_t ttl = get32(h + 4);
	*off += 10;
	if (len - *off < rdlen)
		return DNS_ESHORT;
	if (!r->addr_family && class == C_IN &&
	    ((type == T_A && rdlen == 4) || (type == T_AAAA && rdlen == 16))) {
		r->addr_family = type == T_A ? AF_INET : AF_INET6;
		memcpy(r->addr, msg + *off, rdlen);
		r->ttl = ttl;
	} else if ((type == T_A && rdlen != 4) || (type == T_AAAA && rdlen != 16)) {
		return DNS_EFORMAT;
	}
	*off += rdlen;
	return DNS_OK;
}

int dns_parse_reply(const uint8_t *msg, size_t len, const uint8_t *q,
                    size_t qlen, struct dns_reply *r)
{
	memset(r, 0, sizeof *r);
	if (len < HDR || qlen < HDR + 5)
		return DNS_ESHORT;
	r->id = get16(msg);
	if (!(msg[2] & 0x80) || (msg[2] & 0x78) != (q[2] & 0x78))
		return DNS_ENOTREPLY;
	if (r->id != get16(q))
		return DNS_EID;
	r->aa = !!(msg[2] & 0x04);
	r->tc = !!(msg[2] & 0x02);
	r->ra = !!(msg[3] & 0x80);
	r->rcode = msg[3] & 0x0f;
	r->ancount = get16(msg + 6);

	/* The question must echo ours: one entry, same name, type, class. */
	if (get16(msg + 4) != 1)
		return DNS_EQUESTION;
	/* q is dns_build_query()'s: its name is plain labels, no pointers,
	 * between the header and the type and class. */
	uint8_t got[MAX_NAME_WIRE];
	size_t off = HDR, wlen = qlen - HDR - 4;
	int glen = read_name(msg, len, &off, got);
	if (glen < 0)
		return glen;
	if (len - off < 4)
		return DNS_ESHORT;
	if (!name_equal(got, glen, q + HDR, (int)wlen) || memcmp(msg + off, q + HDR + wlen, 4))
		return DNS_EQUESTION;
	off += 4;

	for (unsigned i = 0; i < r->ancount; i++) {
		int rc = read_rr(msg, len, &off, r);
		if (rc == DNS_OK)
			continue;
		if (r->tc && rc == DNS_ESHORT) { /* truncated: keep what came */
			r->ancount = i;
			break;
		}
		return rc;
	}
	return DNS_OK;
}

const char *dns_result_str(int result)
{
	switch (result) {
	case DNS_OK: return "ok";
	case DNS_ESHORT: return "truncated_message";
	case DNS_ENOTREPLY: return "not_a_reply";
	case DNS_EID: return "id_mismatch";
	case DNS_EQUESTION: return "question_mismatch";
	case DNS_EFORMAT: return "malformed";
	}
	return "unknown";
}

/* prefix and v in decimal ("TYPE65", "RCODE23"), cut to cap: the one
 * number this file prints, without stdio. */
static const char *number_after(const char *prefix, unsigned v, char *buf, size_t cap)
{
	char d[8], *p = d + sizeof d;
	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	if (cap) {
		size_t n = 0;
		for (const char *s = prefix; *s && n + 1 < cap; s++)
			buf[n++] = *s;
		for (; *p && n + 1 < cap; p++)
			buf[n++] = *p;
		buf[n] = '\0';
	}
	return buf;
}

/* Every value of the header's 4-bit RCODE (without EDNS, all there is). */
static const char *const rcodes[16] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
	"RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
};

const char *dns_rcode_str(int rcode)
{
	return rcode >= 0 && rcode < 16 ? rcodes[rcode] : "RCODE?";
}

static const struct { const char *name; uint16_t type; } types[] = {
	{"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12},
	{"MX", 15}, {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {"ANY", 255},
};

int dns_type_from_str(const char *s)
{
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (!strcasecmp(s, types[i].name))
			return types[i].type;
	if (!strncasecmp(s, "TYPE", 4))
		s += 4;
	if (!*s || strlen(s) > 5)
		return -1;
	long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

const char *dns_type_str(uint16_t type, char *buf, size_t cap)
{
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (types[i].type == type)
			return types[i].name;
	return number_after("TYPE", type, buf, cap);
}
