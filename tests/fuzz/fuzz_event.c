/* fuzz_event.c - libFuzzer target for the node watch's event parsing and
 * its filter builder (ctfilter.c).
 *
 * Input: the first byte picks how many targets (0-33) the rest of the
 * first 21 * n bytes describe (family, prefix length, port, address);
 * what follows is one receive's worth of event messages. Checks:
 *  - ct_event_next() walks the batch with the bytes copied to the very
 *    end of a page followed by a PROT_NONE page (a read past the end
 *    faults even in uninstrumented libmnl), always moves forward, never
 *    claims more than it was given, and gives NEW/DESTROY only with an
 *    entry of a real family; ct_target_match() answers in range;
 *  - every entry parsed is judged as the node watch judges it (verdict.h)
 *    for both kinds, the rest of the observation taken from the input:
 *    a kind is only ever claimed for a UDP entry, gone_backend only for
 *    a DNAT'd one and no_dnat only for one neither DNAT'd nor answered;
 *    reply counters are only read where the kernel sent them;
 *  - ct_filter_build() writes a program the kernel would accept: length
 *    within BPF_MAXINSNS, every jump landing inside it, only scratch
 *    words 0-15, and every path ending in a RET (it only jumps forward,
 *    so the last instruction must be one). */
#define _GNU_SOURCE
#include "ctfilter.h"
#include "verdict.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION (1 << 16)
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_event: invariant broken: %s\n", #c); abort(); } } while (0)

static uint8_t *region;

static size_t targets(const uint8_t *d, size_t n, struct ct_target *t)
{
	size_t k = n ? d[0] % 34 : 0, i = 0;
	for (; i < k && 1 + 21 * (i + 1) <= n; i++) {
		const uint8_t *p = d + 1 + 21 * i;
		t[i].family = p[0] & 1 ? AF_INET6 : AF_INET;
		t[i].plen = (uint8_t)(p[1] % (t[i].family == AF_INET6 ? 129 : 33));
		t[i].port = (uint16_t)(p[2] << 8 | p[3]);
		memcpy(t[i].addr.b, p + 4, 16);
		if (t[i].family == AF_INET)
			memset(t[i].addr.b + 4, 0, 12);
	}
	return i;
}

static void check_program(const struct ct_target *t, size_t n)
{
	static struct sock_filter p[4096];
	int len = ct_filter_build(t, n, p, sizeof p / sizeof *p);
	CHECK(len > 0 && len <= BPF_MAXINSNS);
	CHECK(BPF_CLASS(p[len - 1].code) == BPF_RET);
	for (int i = 0; i < len; i++) {
		uint16_t c = p[i].code;
		if (BPF_CLASS(c) == BPF_JMP) {
			size_t far = BPF_OP(c) == BPF_JA ? p[i].k : (p[i].jt > p[i].jf ? p[i].jt : p[i].jf);
			CHECK(i + 1 + far < (size_t)len);
		}
		if (BPF_CLASS(c) == BPF_ST || (BPF_CLASS(c) == BPF_LD && BPF_MODE(c) == BPF_MEM))
			CHECK(p[i].k < BPF_MEMWORDS);
	}
}

/* The entry as the node watch would observe it; the observations it
 * cannot read from the entry come from salt. */
static void judge(const struct ct_entry *e, uint32_t salt)
{
	struct obs o = {
		.proto = e->orig.proto, .port_ok = salt & 1, .dnat = (uint8_t)ct_is_dnat(e),
		.replied = (uint8_t)ct_seen_reply(e), .nat_known = salt >> 1 & 1, .asks_dns = salt >> 2 & 1,
		.reply_moving = salt >> 3 & 1 && (e->have & CT_HAVE_COUNTERS), .fresh = salt >> 4 & 3,
		.fresh_same = salt >> 6 & 1, .backend_silent = salt >> 7 & 3, .backend_recent = salt >> 9 & 1,
	};
	struct vout v = verdict_of(&o);
	CHECK(v.why && v.v <= V_UNPROVEN && v.kind <= K_UNSEEN && v.act <= VA_HEAL);
	CHECK((v.v == V_STRANDED) == (v.act == VA_HEAL));
	if (v.v == V_STRANDED) {
		CHECK(e->orig.proto == IPPROTO_UDP && o.port_ok);
		CHECK(v.kind == (o.dnat ? K_GONE_BACKEND : K_NO_DNAT));
		CHECK(o.dnat ? !o.reply_moving && o.asks_dns : !o.replied);
	}
	CHECK((e->have & CT_HAVE_COUNTERS) || !e->reply_packets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ct_target t[34];
	struct ct_entry e;
	long pg = sysconf(_SC_PAGESIZE);
	if (!region) {
		region = mmap(NULL, REGION + (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(region != MAP_FAILED && mprotect(region + REGION, (size_t)pg, PROT_NONE) == 0);
	}
	size_t nt = targets(data, size, t), used = size ? 1 + 21 * nt : 0;
	check_program(t, nt);
	size_t len = (size - used) & ~(size_t)3;      /* a receive: 4-aligned, ends at the guard */
	if (len > REGION)
		len = REGION;
	const uint8_t *p = region + REGION - len;
	memcpy(region + REGION - len, data + used, len);
	int kind;
	while ((kind = ct_event_next(&p, &len, &e)) != CT_EV_END) {
		CHECK(p <= region + REGION);
		CHECK(len == (size_t)(region + REGION - p));
		if (kind == CT_EV_OTHER)
			continue;
		CHECK(kind == CT_EV_NEW || kind == CT_EV_DESTROY);
		CHECK(e.orig.family == AF_INET || e.orig.family == AF_INET6);
		int m = ct_target_match(t, nt, &e.orig);
		CHECK(m >= -1 && m < (int)nt);
		judge(&e, (uint32_t)(len * 2654435761u) ^ e.id);
	}
	return 0;
}
