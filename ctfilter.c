/* ctfilter.c - the node watch's targets: the user-space match and the
 * in-kernel classic BPF filter that runs the same match on every
 * conntrack event (see ctfilter.h).
 *
 * The kernel has no event filter of its own for ctnetlink (CTA_FILTER
 * is for dumps): a socket filter is the only way to keep the events of
 * a busy node's other flows from waking us. The ancillary loads
 * SKF_AD_NLATTR (find attribute X among those starting at offset A) and
 * SKF_AD_NLATTR_NEST (find X inside the nest at offset A) walk the
 * message with the kernel's own bounds checks; both give 0 when the
 * attribute is not there, and a load past the end drops the message.
 * The idea is libnetfilter_conntrack's bsf.c; the program is our own. */
#define _GNU_SOURCE
#include "ctfilter.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the match in user space ---------------------------------------- */

static int prefix_eq(const uint8_t *a, const uint8_t *net, unsigned plen)
{
	unsigned whole = plen / 8, rest = plen % 8;
	if (memcmp(a, net, whole))
		return 0;
	return !rest || ((a[whole] ^ net[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

int ct_target_match(const struct ct_target *t, size_t n, const struct ct_tuple *o)
{
	if (o->proto != IPPROTO_UDP)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (t[i].family == o->family && (!t[i].port || t[i].port == o->dport) &&
		    prefix_eq(o->dst.b, t[i].addr.b, t[i].plen))
			return (int)i;
	return -1;
}

int ct_target_parse_cidr(const char *s, struct ct_target *t)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	char *end;
	memset(t, 0, sizeof *t);
	if (!slash || (size_t)(slash - s) >= sizeof host || !slash[1] ||
	    strspn(slash + 1, "0123456789") != strlen(slash + 1))
		return -1;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = 0;
	unsigned long plen = strtoul(slash + 1, &end, 10);
	if (inet_pton(AF_INET, host, t->addr.b) == 1)
		t->family = AF_INET;
	else if (inet_pton(AF_INET6, host, t->addr.b) == 1)
		t->family = AF_INET6;
	else
		return -1;
	if (plen > (t->family == AF_INET ? 32u : 128u))
		return -1;
	t->plen = (uint8_t)plen;
	for (unsigned i = 0; i < 16; i++)      /* clear the host bits */
		t->addr.b[i] &= i * 8 >= plen ? 0 : i * 8 + 8 <= plen ? 0xff : (0xff00 >> (plen % 8)) & 0xff;
	return 0;
}

void ct_target_format(const struct ct_target *t, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	int v6 = t->family == AF_INET6;
	ct_ntop(t->family, t->addr.b, a, sizeof a);
	if (t->plen != (v6 ? 128 : 32) || !t->port)
		snprintf(buf, cap, "%s/%u", a, t->plen);
	else
		snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", a, t->port);
}

int ct_event_next(const uint8_t **buf, size_t *len, struct ct_entry *e)
{
	struct nlmsghdr h;
	const uint8_t *m = *buf;
	size_t room = *len;
	if (room < sizeof h)
		return CT_EV_END;
	memcpy(&h, m, sizeof h);
	size_t l = h.nlmsg_len, step = NLMSG_ALIGN(l) < room ? NLMSG_ALIGN(l) : room;
	if (l < sizeof h || l > room)
		return CT_EV_END;
	*buf += step;
	*len -= step;
	if (NFNL_SUBSYS_ID(h.nlmsg_type) != NFNL_SUBSYS_CTNETLINK)
		return CT_EV_OTHER;
	int kind = NFNL_MSG_TYPE(h.nlmsg_type) == IPCTNL_MSG_CT_NEW ? CT_EV_NEW
	         : NFNL_MSG_TYPE(h.nlmsg_type) == IPCTNL_MSG_CT_DELETE ? CT_EV_DESTROY : CT_EV_OTHER;
	if (kind == CT_EV_OTHER || ct_parse_msg(m, room, e) < 0)
		return CT_EV_OTHER;
	return kind;
}

/* ---- the program ------------------------------------------------------ */

/* Forward jumps to these are written as "ja LABEL" (a 32-bit offset,
 * resolved once the program is whole); a conditional jump only ever
 * skips a few instructions, so its 8-bit offsets are always in reach. */
enum { L_DROP, L_MATCH, L_V6, L_ACCEPT, NLABELS };
#define LABEL_MARK 0x7fff0000u

struct prog {
	struct sock_filter *p;
	size_t n, cap;
	size_t at[NLABELS];
};

static void op(struct prog *g, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (g->n < g->cap)
		g->p[g->n] = (struct sock_filter){code, jt, jf, k};
	g->n++;
}

#define AD(x) ((uint32_t)(SKF_AD_OFF + (x)))
static void ja(struct prog *g, int label) { op(g, BPF_JMP | BPF_JA, 0, 0, LABEL_MARK + (uint32_t)label); }
static void label(struct prog *g, int l) { g->at[l] = g->n; }
/* if A == k: goto label */
static void jeq_to(struct prog *g, uint32_t k, int l)
{
	op(g, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, k);
	ja(g, l);
}
/* if A != k: goto label */
static void jne_to(struct prog *g, uint32_t k, int l)
{
	op(g, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, k);
	ja(g, l);
}

/* A = offset of attribute type inside the nest whose offset is in
 * M[from] (from < 0: among the top-level attributes), stored in M[to];
 * a missing attribute drops the message. */
static void find(struct prog *g, int from, uint32_t type, uint32_t to)
{
	if (from < 0)
		op(g, BPF_LD | BPF_IMM, 0, 0, NLMSG_HDRLEN + sizeof(struct nfgenmsg));
	else
		op(g, BPF_LD | BPF_MEM, 0, 0, (uint32_t)from);
	op(g, BPF_LDX | BPF_IMM, 0, 0, type);
	op(g, BPF_LD | BPF_W | BPF_ABS, 0, 0, AD(from < 0 ? SKF_AD_NLATTR : SKF_AD_NLATTR_NEST));
	jeq_to(g, 0, L_DROP);
	op(g, BPF_ST, 0, 0, to);
}

/* Scratch memory: M[0] family, M[1] CTA_TUPLE_ORIG, M[2] its
 * CTA_TUPLE_PROTO, M[3] destination port, M[4] CTA_TUPLE_IP, M[5..8]
 * the destination address, one 32-bit word each. */
static void prelude(struct prog *g)
{
	op(g, BPF_LD | BPF_B | BPF_ABS, 0, 0, NLMSG_HDRLEN);       /* nfgen_family */
	op(g, BPF_ST, 0, 0, 0);
	find(g, -1, CTA_TUPLE_ORIG, 1);
	find(g, 1, CTA_TUPLE_PROTO, 2);
	find(g, 2, CTA_PROTO_NUM, 9);
	op(g, BPF_MISC | BPF_TAX, 0, 0, 0);
	op(g, BPF_LD | BPF_B | BPF_IND, 0, 0, NLA_HDRLEN);
	jne_to(g, IPPROTO_UDP, L_DROP);
	find(g, 2, CTA_PROTO_DST_PORT, 9);
	op(g, BPF_MISC | BPF_TAX, 0, 0, 0);
	op(g, BPF_LD | BPF_H | BPF_IND, 0, 0, NLA_HDRLEN);          /* network order: the port */
	op(g, BPF_ST, 0, 0, 3);
	find(g, 1, CTA_TUPLE_IP, 4);
	op(g, BPF_LD | BPF_MEM, 0, 0, 0);
	jeq_to(g, AF_INET6, L_V6);
	jne_to(g, AF_INET, L_DROP);
}

/* The destination address's words into M[5..]. */
static void load_dst(struct prog *g, int v6)
{
	find(g, 4, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, 9);
	op(g, BPF_MISC | BPF_TAX, 0, 0, 0);
	for (uint32_t w = 0; w < (v6 ? 4u : 1u); w++) {
		op(g, BPF_LD | BPF_W | BPF_IND, 0, 0, NLA_HDRLEN + 4 * w);
		op(g, BPF_ST, 0, 0, 5 + w);
	}
}

/* One target: each check that fails jumps to the end of the block (the
 * next target); the last instruction is "ja MATCH". */
static void target_block(struct prog *g, const struct ct_target *t)
{
	struct sock_filter b[20];
	size_t n = 0;
	for (unsigned w = 0; w * 32 < t->plen; w++) {
		uint32_t net, mask = t->plen >= w * 32 + 32 ? 0xffffffffu : ~(0xffffffffu >> (t->plen - w * 32));
		memcpy(&net, t->addr.b + 4 * w, 4);
		b[n++] = (struct sock_filter){BPF_LD | BPF_MEM, 0, 0, 5 + w};
		if (mask != 0xffffffffu)
			b[n++] = (struct sock_filter){BPF_ALU | BPF_AND | BPF_K, 0, 0, mask};
		b[n++] = (struct sock_filter){BPF_JMP | BPF_JEQ | BPF_K, 0, 0xff, ntohl(net)};
	}
	if (t->port) {
		b[n++] = (struct sock_filter){BPF_LD | BPF_MEM, 0, 0, 3};
		b[n++] = (struct sock_filter){BPF_JMP | BPF_JEQ | BPF_K, 0, 0xff, t->port};
	}
	b[n++] = (struct sock_filter){BPF_JMP | BPF_JA, 0, 0, LABEL_MARK + L_MATCH};
	for (size_t i = 0; i < n; i++) {
		if (b[i].jf == 0xff)
			b[i].jf = (uint8_t)(n - i - 1);
		op(g, b[i].code, b[i].jt, b[i].jf, b[i].k);
	}
}

/* A DESTROY event passes only for a flow that is not DNAT'd: the watch
 * holds no other. A NEW event passes whatever it is: a DNAT'd one is
 * the proof that the VIP's rule is in place. */
static void epilogue(struct prog *g)
{
	/* nlmsg_type is host order: its low byte is the message type. */
	uint32_t type_at = 4 + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
	label(g, L_MATCH);
	op(g, BPF_LD | BPF_B | BPF_ABS, 0, 0, type_at);
	jne_to(g, IPCTNL_MSG_CT_DELETE, L_ACCEPT);
	op(g, BPF_LD | BPF_IMM, 0, 0, NLMSG_HDRLEN + sizeof(struct nfgenmsg));
	op(g, BPF_LDX | BPF_IMM, 0, 0, CTA_STATUS);
	op(g, BPF_LD | BPF_W | BPF_ABS, 0, 0, AD(SKF_AD_NLATTR));
	jeq_to(g, 0, L_ACCEPT);                          /* no status: user space decides */
	op(g, BPF_MISC | BPF_TAX, 0, 0, 0);
	op(g, BPF_LD | BPF_W | BPF_IND, 0, 0, NLA_HDRLEN);
	op(g, BPF_ALU | BPF_AND | BPF_K, 0, 0, IPS_DST_NAT);
	jeq_to(g, 0, L_ACCEPT);
	label(g, L_DROP);
	op(g, BPF_RET | BPF_K, 0, 0, 0);
	label(g, L_ACCEPT);
	op(g, BPF_RET | BPF_K, 0, 0, 0xffffffffu);
}

int ct_filter_build(const struct ct_target *t, size_t n, struct sock_filter *prog, size_t cap)
{
	struct prog g = {.p = prog, .cap = cap};
	prelude(&g);
	for (int v6 = 0; v6 <= 1; v6++) {
		if (v6)
			label(&g, L_V6);
		load_dst(&g, v6);
		for (size_t i = 0; i < n; i++)
			if ((t[i].family == AF_INET6) == v6)
				target_block(&g, &t[i]);
		ja(&g, L_DROP);
	}
	epilogue(&g);
	if (g.n > cap || g.n > BPF_MAXINSNS)
		return -1;
	for (size_t i = 0; i < g.n; i++)
		if (prog[i].code == (BPF_JMP | BPF_JA) && prog[i].k >= LABEL_MARK)
			prog[i].k = (uint32_t)(g.at[prog[i].k - LABEL_MARK] - i - 1);
	return (int)g.n;
}
