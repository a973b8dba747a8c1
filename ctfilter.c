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

/* The fixed parts of the program are templates of 4 bytes an
 * instruction (every classic BPF opcode fits in a byte; so does every
 * constant but the few below 0xe0 stands for). Forward jumps to a label
 * are "ja LABEL" (a 32-bit offset, resolved once the program is whole):
 * a conditional jump only ever skips one or a few instructions, so its
 * 8-bit offsets are always in reach. */
enum { L_DROP, L_ACCEPT, L_V6, L_MATCH, NLABELS };
#define J(l) (0xe0 + (l))              /* k of "ja LABEL" */
#define K_NLATTR 0xf0                  /* k: SKF_AD_OFF + SKF_AD_NLATTR */
#define K_NEST 0xf1                    /* k: SKF_AD_OFF + SKF_AD_NLATTR_NEST */
#define K_ALL 0xf2                     /* k: 0xffffffff, the whole message */
#define LABEL_MARK 0x7fff0000u

#define LD_ATTRS {BPF_LD | BPF_IMM, 0, 0, NLMSG_HDRLEN + sizeof(struct nfgenmsg)}
#define IF_ZERO_DROP {BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0}, {BPF_JMP | BPF_JA, 0, 0, J(L_DROP)}
/* A = offset of attribute type among the top-level ones (FIND_TOP) or
 * inside the nest whose offset is M[from], kept in M[to]; a missing
 * attribute drops the message. */
#define FIND_TOP(type, to) LD_ATTRS, {BPF_LDX | BPF_IMM, 0, 0, type}, \
	{BPF_LD | BPF_W | BPF_ABS, 0, 0, K_NLATTR}, IF_ZERO_DROP, {BPF_ST, 0, 0, to}
#define FIND(from, type, to) {BPF_LD | BPF_MEM, 0, 0, from}, {BPF_LDX | BPF_IMM, 0, 0, type}, \
	{BPF_LD | BPF_W | BPF_ABS, 0, 0, K_NEST}, IF_ZERO_DROP, {BPF_ST, 0, 0, to}
#define LOAD_WORD(at, to) {BPF_LD | BPF_W | BPF_IND, 0, 0, NLA_HDRLEN + (at)}, {BPF_ST, 0, 0, to}

/* Scratch memory: M[0] family, M[1] CTA_TUPLE_ORIG, M[2] its
 * CTA_TUPLE_PROTO, M[3] destination port, M[4] CTA_TUPLE_IP, M[5..8]
 * the destination address, one 32-bit word each, M[9] spare. */
static const uint8_t prelude[][4] = {
	{BPF_LD | BPF_B | BPF_ABS, 0, 0, NLMSG_HDRLEN}, {BPF_ST, 0, 0, 0},   /* nfgen_family */
	FIND_TOP(CTA_TUPLE_ORIG, 1),
	FIND(1, CTA_TUPLE_PROTO, 2),
	FIND(2, CTA_PROTO_NUM, 9), {BPF_MISC | BPF_TAX, 0, 0, 0},
	{BPF_LD | BPF_B | BPF_IND, 0, 0, NLA_HDRLEN},
	{BPF_JMP | BPF_JEQ | BPF_K, 1, 0, IPPROTO_UDP}, {BPF_JMP | BPF_JA, 0, 0, J(L_DROP)},
	FIND(2, CTA_PROTO_DST_PORT, 9), {BPF_MISC | BPF_TAX, 0, 0, 0},
	{BPF_LD | BPF_H | BPF_IND, 0, 0, NLA_HDRLEN}, {BPF_ST, 0, 0, 3},   /* network order: the port */
	FIND(1, CTA_TUPLE_IP, 4),
	{BPF_LD | BPF_MEM, 0, 0, 0},
	{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, AF_INET6}, {BPF_JMP | BPF_JA, 0, 0, J(L_V6)},
	{BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AF_INET}, {BPF_JMP | BPF_JA, 0, 0, J(L_DROP)},
	FIND(4, CTA_IP_V4_DST, 9), {BPF_MISC | BPF_TAX, 0, 0, 0}, LOAD_WORD(0, 5),
};
static const uint8_t load_v6[][4] = {
	FIND(4, CTA_IP_V6_DST, 9), {BPF_MISC | BPF_TAX, 0, 0, 0},
	LOAD_WORD(0, 5), LOAD_WORD(4, 6), LOAD_WORD(8, 7), LOAD_WORD(12, 8),
};
/* A match. A DESTROY event passes only for a flow without IPS_DST_NAT:
 * the watch holds no other. A NEW event passes whatever it is: a DNAT'd
 * one is the proof that the VIP's rule is in place. nlmsg_type is in
 * host order: its low byte is the message type. */
static const uint8_t epilogue[][4] = {
	{BPF_LD | BPF_B | BPF_ABS, 0, 0, 4 + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)},
	{BPF_JMP | BPF_JEQ | BPF_K, 1, 0, IPCTNL_MSG_CT_DELETE}, {BPF_JMP | BPF_JA, 0, 0, J(L_ACCEPT)},
	LD_ATTRS, {BPF_LDX | BPF_IMM, 0, 0, CTA_STATUS}, {BPF_LD | BPF_W | BPF_ABS, 0, 0, K_NLATTR},
	{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0}, {BPF_JMP | BPF_JA, 0, 0, J(L_ACCEPT)},  /* no status: user space decides */
	{BPF_MISC | BPF_TAX, 0, 0, 0}, {BPF_LD | BPF_W | BPF_IND, 0, 0, NLA_HDRLEN},
	{BPF_ALU | BPF_AND | BPF_K, 0, 0, IPS_DST_NAT},
	{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0}, {BPF_JMP | BPF_JA, 0, 0, J(L_ACCEPT)},
	{BPF_RET | BPF_K, 0, 0, 0},                                            /* L_DROP */
	{BPF_RET | BPF_K, 0, 0, K_ALL},                                        /* L_ACCEPT */
};
#define EPI_DROP (sizeof epilogue / sizeof *epilogue - 2)

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

static void copy(struct prog *g, const uint8_t (*t)[4], size_t n)
{
	static const uint32_t special[] = {
		(uint32_t)(SKF_AD_OFF + SKF_AD_NLATTR), (uint32_t)(SKF_AD_OFF + SKF_AD_NLATTR_NEST), 0xffffffffu,
	};
	for (size_t i = 0; i < n; i++) {
		uint32_t k = t[i][3];
		op(g, t[i][0], t[i][1], t[i][2], k >= K_NLATTR ? special[k - K_NLATTR] : k >= J(0) ? LABEL_MARK + k - J(0) : k);
	}
}

/* One target: each check that fails skips to the end of the block (the
 * next target); the block ends in "ja MATCH", at index ja. */
static void target_block(struct prog *g, const struct ct_target *t)
{
	unsigned words = (t->plen + 31u) / 32, part = t->plen % 32;
	size_t ja = g->n + words * 2 + !!part + (t->port ? 2 : 0);
	for (unsigned w = 0; w < words; w++) {
		uint32_t net;
		memcpy(&net, t->addr.b + 4 * w, 4);
		op(g, BPF_LD | BPF_MEM, 0, 0, 5 + w);
		if (part && w == words - 1)
			op(g, BPF_ALU | BPF_AND | BPF_K, 0, 0, ~(0xffffffffu >> part));
		op(g, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(ja - g->n), ntohl(net));
	}
	if (t->port) {
		op(g, BPF_LD | BPF_MEM, 0, 0, 3);
		op(g, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(ja - g->n), t->port);
	}
	op(g, BPF_JMP | BPF_JA, 0, 0, LABEL_MARK + L_MATCH);
}

int ct_filter_build(const struct ct_target *t, size_t n, struct sock_filter *prog, size_t cap)
{
	struct prog g = {.p = prog, .cap = cap};
	copy(&g, prelude, sizeof prelude / sizeof *prelude);
	for (int v6 = 0; v6 <= 1; v6++) {
		if (v6) {
			g.at[L_V6] = g.n;
			copy(&g, load_v6, sizeof load_v6 / sizeof *load_v6);
		}
		for (size_t i = 0; i < n; i++)
			if ((t[i].family == AF_INET6) == v6)
				target_block(&g, &t[i]);
		op(&g, BPF_JMP | BPF_JA, 0, 0, LABEL_MARK + L_DROP);
	}
	g.at[L_MATCH] = g.n;
	g.at[L_DROP] = g.n + EPI_DROP;
	g.at[L_ACCEPT] = g.n + EPI_DROP + 1;
	copy(&g, epilogue, sizeof epilogue / sizeof *epilogue);
	if (g.n > cap || g.n > BPF_MAXINSNS)
		return -1;
	for (size_t i = 0; i < g.n; i++)
		if (prog[i].code == (BPF_JMP | BPF_JA) && prog[i].k >= LABEL_MARK)
			prog[i].k = (uint32_t)(g.at[prog[i].k - LABEL_MARK] - i - 1);
	return (int)g.n;
}
