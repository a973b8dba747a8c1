/* tests/ct_data_test.c - the ctnetlink parsers and the node watch's
 * classic BPF filter on messages the kernel really sent, and on crafted
 * ones. Needs no root and no conntrack: it reads tests/data/ct (or
 * $CT_TEST_DATA), made by tests/ct_capture.sh in a lab namespace.
 *
 *   events.bin / events.conntrack   NEW and DESTROY event messages, and
 *                                   `conntrack -E -o id` for the same events
 *   dump.bin / dump.conntrack       one table dump, and `conntrack -L -o id`
 *                                   run right after it
 *
 * 1. ct_event_next (watch) and ct_parse_msg (nl.c) on every message: the
 *    kind, every field conntrack printed (ct_format's line, compared
 *    with conntrack's), the ID, the timeout (a dump's may be a second or
 *    two older than conntrack's own read).
 * 2. every prefix of every message given to both parsers in a heap
 *    block of exactly that length (ASan aborts on a read past it).
 * 3. ct_filter_build's program attached (SO_ATTACH_FILTER) to one end
 *    of an AF_UNIX datagram socketpair: the kernel runs it on every
 *    message sent from the other end, so what arrives is what it passed.
 *    Real events must pass or not as conntrack's own line says (UDP, the
 *    target's address and port, and no DESTROY of a DNAT'd flow: reply
 *    source other than the original destination), for several target
 *    sets; crafted messages probe each test the program makes.
 *
 * Each failed assertion prints a FAIL line; the last line is a summary;
 * the exit status is 1 if anything failed. Built with ASan+UBSan. */
#define _GNU_SOURCE
#include "ctfilter.h"
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int checks, failed;

static void expect(int ok, const char *fmt, ...)
{
	checks++;
	if (ok)
		return;
	failed++;
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

static const char *dir;

static uint8_t *slurp(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "ct_data_test: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *b = malloc(cap);
	size_t r;
	while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			b = realloc(b, cap *= 2);
	}
	fclose(f);
	if (!b)
		exit(2);
	*len = n;
	return b;
}

/* ---- conntrack's lines ----------------------------------------------- */

/* What a conntrack-tools line says, in the form compared. */
struct ctline {
	char kind[16];          /* "NEW", "DESTROY", "" for -L */
	char rest[512];         /* the line without kind, timeout, id, note */
	unsigned long id, timeout;
	int have_timeout;
	/* for the filter's expectation */
	char proto[8], dst[64], rsrc[64];
	unsigned dport;
};

/* Drops "[NEW] ", the " [USERSPACE] portid=..." note -E adds, " id=N"
 * and the timeout (third field, when it is a number); squeezes blanks. */
static int ctline_parse(const char *in, struct ctline *c)
{
	char tok[64][96];
	int n = 0;
	memset(c, 0, sizeof *c);
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", in);
	for (char *s = strtok(buf, " \n"); s && n < 64; s = strtok(NULL, " \n")) {
		if (!strcmp(s, "[USERSPACE]"))
			break;
		snprintf(tok[n++], sizeof tok[0], "%s", s);
	}
	int i = 0;
	if (n && tok[0][0] == '[') {
		snprintf(c->kind, sizeof c->kind, "%.*s", (int)strlen(tok[0]) - 2, tok[0] + 1);
		i = 1;
	}
	int field = 0, srcs = 0, dsts = 0;
	for (; i < n; i++, field++) {
		char *end;
		if (field == 2 && (c->timeout = strtoul(tok[i], &end, 10), *end == '\0')) {
			c->have_timeout = 1;
			continue;
		}
		if (!strncmp(tok[i], "id=", 3)) {
			c->id = strtoul(tok[i] + 3, NULL, 10);
			continue;
		}
		if (field == 0)
			snprintf(c->proto, sizeof c->proto, "%s", tok[i]);
		if (!strncmp(tok[i], "dst=", 4) && dsts++ == 0)
			snprintf(c->dst, sizeof c->dst, "%s", tok[i] + 4);
		if (!strncmp(tok[i], "src=", 4) && srcs++ == 1)
			snprintf(c->rsrc, sizeof c->rsrc, "%s", tok[i] + 4);
		if (!strncmp(tok[i], "dport=", 6) && !c->dport)
			c->dport = (unsigned)strtoul(tok[i] + 6, NULL, 10);
		size_t l = strlen(c->rest);
		snprintf(c->rest + l, sizeof c->rest - l, "%s%s", l ? " " : "", tok[i]);
	}
	return n > 0;
}

static int read_lines(const char *name, struct ctline *out, int cap)
{
	size_t len;
	char *text = (char *)slurp(name, &len), *p = text;
	int n = 0;
	while (p < text + len && n < cap) {
		char *nl = memchr(p, '\n', (size_t)(text + len - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)l, p);
		if (ctline_parse(line, &out[n]))
			n++;
		p += l + 1;
	}
	free(text);
	return n;
}

/* ct_format's line for e, in the same form */
static void entry_line(const struct ct_entry *e, struct ctline *c)
{
	char buf[512];
	ct_format(e, buf, sizeof buf);
	ctline_parse(buf, c);
}

/* ---- 1. the parsers against conntrack ---------------------------------- */

#define MAXLINES 64

static void test_events(const uint8_t *bin, size_t len)
{
	static struct ctline want[MAXLINES];
	int nwant = read_lines("events.conntrack", want, MAXLINES), k = 0;
	expect(nwant >= 14, "events.conntrack: %d lines, want the capture's 14 or more", nwant);
	const uint8_t *p = bin;
	size_t left = len;
	struct ct_entry e;
	int kind;
	while ((kind = ct_event_next(&p, &left, &e)) != CT_EV_END) {
		expect(kind != CT_EV_OTHER, "event message %d is no conntrack event, or did not parse", k);
		if (kind == CT_EV_OTHER || k >= nwant) {
			k++;
			continue;
		}
		struct ctline got;
		entry_line(&e, &got);
		const struct ctline *w = &want[k];
		expect(!strcmp(w->kind, kind == CT_EV_NEW ? "NEW" : "DESTROY"),
		       "event %d: %s, conntrack -E says %s", k, kind == CT_EV_NEW ? "NEW" : "DESTROY", w->kind);
		expect(!strcmp(got.rest, w->rest), "event %d:\n  parsed   %s\n  conntrack %s", k, got.rest, w->rest);
		expect((e.have & CT_HAVE_ID) && e.id == w->id, "event %d: id %u, conntrack says %lu", k, e.id, w->id);
		expect(got.have_timeout == w->have_timeout && got.timeout == w->timeout,
		       "event %d: timeout %lu, conntrack says %lu", k, got.timeout, w->timeout);
		k++;
	}
	expect(k == nwant, "%d event messages, conntrack -E saw %d", k, nwant);
	expect(left == 0, "events.bin: %zu bytes left after the last message", left);
}

static void test_dump(const uint8_t *bin, size_t len)
{
	static struct ctline want[MAXLINES];
	int nwant = read_lines("dump.conntrack", want, MAXLINES), found = 0, msgs = 0, done = 0;
	expect(nwant >= 7, "dump.conntrack: %d lines, want the capture's 7 or more", nwant);
	size_t off = 0;
	while (off + sizeof(struct nlmsghdr) <= len) {
		struct nlmsghdr h;
		memcpy(&h, bin + off, sizeof h);
		if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off) {
			expect(0, "dump.bin: a message's length lies at %zu", off);
			break;
		}
		if (h.nlmsg_type == NLMSG_DONE) {
			done = 1;
			break;
		}
		/* in a heap block of exactly its length */
		uint8_t *m = malloc(h.nlmsg_len);
		memcpy(m, bin + off, h.nlmsg_len);
		struct ct_entry e;
		int r = ct_parse_msg(m, h.nlmsg_len, &e);
		expect(r == 0, "dump message %d: ct_parse_msg %d", msgs, r);
		free(m);
		msgs++;
		off += NLMSG_ALIGN(h.nlmsg_len);
		if (r)
			continue;
		struct ctline got;
		entry_line(&e, &got);
		int hit = 0;
		for (int i = 0; i < nwant; i++) {
			if (want[i].id != e.id)
				continue;
			hit = 1;
			found++;
			expect(!strcmp(got.rest, want[i].rest), "dump id %u:\n  parsed    %s\n  conntrack %s", e.id, got.rest, want[i].rest);
			/* conntrack -L read the table a moment after our dump */
			expect(got.have_timeout && got.timeout >= want[i].timeout && got.timeout <= want[i].timeout + 2,
			       "dump id %u: timeout %lu, conntrack -L said %lu just after", e.id, got.timeout, want[i].timeout);
		}
		expect(hit, "dump id %u: not in conntrack -L (%s)", e.id, got.rest);
	}
	expect(done, "dump.bin ends in NLMSG_DONE");
	expect(msgs == nwant && found == nwant, "dump: %d messages, %d matched, conntrack -L listed %d", msgs, found, nwant);
}

/* ---- 2. every prefix -------------------------------------------------- */

static void test_prefixes(const uint8_t *bin, size_t len, const char *what)
{
	const uint8_t *p = bin;
	size_t left = len;
	int msgs = 0, short_ok = 0;
	while (left >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, p, sizeof h);
		if (h.nlmsg_len < sizeof h || h.nlmsg_len > left)
			break;
		for (size_t cut = 0; cut < h.nlmsg_len; cut++) {
			uint8_t *m = malloc(cut ? cut : 1);
			memcpy(m, p, cut);
			struct ct_entry e;
			/* the header still says the whole length: a lie both must catch */
			if (ct_parse_msg(m, cut, &e) == 0)
				short_ok++;
			const uint8_t *q = m;
			size_t l = cut;
			int k = ct_event_next(&q, &l, &e);
			expect(k == CT_EV_END || k == CT_EV_OTHER, "%s message %d cut to %zu bytes: ct_event_next gave %d",
			       what, msgs, cut, k);
			free(m);
		}
		msgs++;
		p += NLMSG_ALIGN(h.nlmsg_len) < left ? NLMSG_ALIGN(h.nlmsg_len) : left;
		left -= NLMSG_ALIGN(h.nlmsg_len) < left ? NLMSG_ALIGN(h.nlmsg_len) : left;
	}
	expect(short_ok == 0, "%s: ct_parse_msg accepted %d cut messages", what, short_ok);
	expect(msgs > 0, "%s: no message to cut", what);
}

/* ---- 3. the BPF filter ------------------------------------------------ */

struct filter {
	int tx, rx;
};

static int filter_open(struct filter *f, const struct ct_target *t, size_t n)
{
	static struct sock_filter prog[4096];
	int len = ct_filter_build(t, n, prog, sizeof prog / sizeof *prog);
	expect(len > 0, "ct_filter_build: %d", len);
	int sv[2];
	if (len <= 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
		return -1;
	struct sock_fprog fp = {.len = (unsigned short)len, .filter = prog};
	int r = setsockopt(sv[1], SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp);
	expect(r == 0, "SO_ATTACH_FILTER: %s (the kernel's verifier refused the program)", strerror(errno));
	f->tx = sv[0];
	f->rx = sv[1];
	return r;
}

static void filter_close(struct filter *f)
{
	close(f->tx);
	close(f->rx);
}

/* 1 if the message came through, 0 if the filter dropped it */
static int filter_passes(struct filter *f, const void *m, size_t len)
{
	static uint8_t buf[1 << 16];
	if (send(f->tx, m, len, 0) != (ssize_t)len) {
		expect(0, "send to the socketpair: %s", strerror(errno));
		return -1;
	}
	ssize_t r = recv(f->rx, buf, sizeof buf, MSG_DONTWAIT);
	if (r < 0 && errno != EAGAIN)
		expect(0, "recv from the socketpair: %s", strerror(errno));
	if (r >= 0)
		expect((size_t)r == len && !memcmp(buf, m, len), "a message passed, but cut or changed (%zd of %zu bytes)", r, len);
	return r >= 0;
}

static struct ct_target target(const char *addr, unsigned plen, uint16_t port)
{
	struct ct_target t;
	memset(&t, 0, sizeof t);
	t.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	inet_pton(t.family, addr, t.addr.b);
	t.plen = (uint8_t)plen;
	t.port = port;
	return t;
}

/* Written apart from ctfilter.c's match: the address from conntrack's
 * text, compared bit by bit to the target's. */
static int line_matches(const struct ctline *c, const struct ct_target *t, size_t n)
{
	if (strcmp(c->proto, "udp"))
		return 0;
	uint8_t a[16];
	int fam = strchr(c->dst, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, c->dst, a) != 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].family != fam || (t[i].port && t[i].port != c->dport))
			continue;
		unsigned b = 0;
		while (b < t[i].plen && !(((a[b / 8] ^ t[i].addr.b[b / 8]) >> (7 - b % 8)) & 1))
			b++;
		if (b == t[i].plen)
			return 1;
	}
	return 0;
}

static void test_filter_real(const uint8_t *bin, size_t len)
{
	static struct ctline want[MAXLINES];
	int nwant = read_lines("events.conntrack", want, MAXLINES);
	struct ct_target sets[][2] = {
		{target("10.0.0.10", 32, 53), target("fd00:96::a", 128, 53)},
		{target("10.0.0.10", 32, 53), target("10.0.0.10", 32, 53)},
		{target("10.0.0.0", 24, 0), target("fd00:96::", 64, 54)},
		{target("fd00:96::", 120, 0), target("10.0.0.11", 32, 53)},
	};
	const char *names[] = {"VIP4:53 VIP6:53", "VIP4:53", "10.0.0.0/24 fd00:96::/64:54", "fd00:96::/120 10.0.0.11:53"};
	for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
		struct filter f;
		if (filter_open(&f, sets[s], 2) < 0)
			continue;
		const uint8_t *p = bin;
		size_t left = len;
		int k = 0, passed = 0, dropped = 0;
		while (left >= sizeof(struct nlmsghdr) && k < nwant) {
			struct nlmsghdr h;
			memcpy(&h, p, sizeof h);
			if (h.nlmsg_len < sizeof h || h.nlmsg_len > left)
				break;
			const struct ctline *c = &want[k];
			int dnat = strcmp(c->rsrc, c->dst) != 0;
			int must = line_matches(c, sets[s], 2) && !(!strcmp(c->kind, "DESTROY") && dnat);
			int got = filter_passes(&f, p, h.nlmsg_len);
			expect(got == must, "filter [%s], event %d (%s %s): %s, must %s", names[s], k, c->kind, c->rest,
			       got ? "passed" : "dropped", must ? "pass" : "not pass");
			got ? passed++ : dropped++;
			size_t step = NLMSG_ALIGN(h.nlmsg_len) < left ? NLMSG_ALIGN(h.nlmsg_len) : left;
			p += step;
			left -= step;
			k++;
		}
		expect(k == nwant, "filter [%s]: %d events sent, %d captured", names[s], k, nwant);
		printf("filter [%s]: %d real events passed, %d dropped\n", names[s], passed, dropped);
		filter_close(&f);
	}
}

/* A crafted event: what differs from a UDP NEW to 10.0.0.10:53. */
struct craft {
	const char *name;
	int must_pass;
	uint8_t nfgen_family, msg, proto, ip_family;
	const char *dst;
	uint16_t dport;
	int status;              /* -1: no CTA_STATUS */
	int no_orig, cut;        /* no CTA_TUPLE_ORIG; bytes cut off the end */
};

static size_t craft(const struct craft *c, uint8_t *buf, size_t cap)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | c->msg;
	h->nlmsg_flags = c->msg == IPCTNL_MSG_CT_NEW ? NLM_F_CREATE | NLM_F_EXCL : 0;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof *g);
	g->nfgen_family = c->nfgen_family;
	g->version = NFNETLINK_V0;
	struct nlattr *tuple = mnl_attr_nest_start(h, c->no_orig ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG);
	struct nlattr *ip = mnl_attr_nest_start(h, CTA_TUPLE_IP);
	uint8_t a[16] = {0}, s[16] = {0};
	int v6 = c->ip_family == AF_INET6;
	inet_pton(c->ip_family, c->dst, a);
	inet_pton(c->ip_family, v6 ? "fd00:224::8" : "10.224.0.8", s);
	mnl_attr_put(h, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, v6 ? 16 : 4, s);
	mnl_attr_put(h, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, v6 ? 16 : 4, a);
	mnl_attr_nest_end(h, ip);
	struct nlattr *pr = mnl_attr_nest_start(h, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(h, CTA_PROTO_NUM, c->proto);
	mnl_attr_put_u16(h, CTA_PROTO_SRC_PORT, htons(40000));
	mnl_attr_put_u16(h, CTA_PROTO_DST_PORT, htons(c->dport));
	mnl_attr_nest_end(h, pr);
	mnl_attr_nest_end(h, tuple);
	if (c->status >= 0)
		mnl_attr_put_u32(h, CTA_STATUS, htonl((uint32_t)c->status));
	(void)cap;
	return h->nlmsg_len - (size_t)c->cut;
}

static void test_filter_crafted(void)
{
	struct ct_target t[] = {target("10.0.0.10", 32, 53), target("fd00:96::a", 128, 53), target("10.96.0.0", 12, 0)};
	const uint8_t N = IPCTNL_MSG_CT_NEW, D = IPCTNL_MSG_CT_DELETE, U = IPPROTO_UDP, V4 = AF_INET, V6 = AF_INET6;
	const struct craft cases[] = {
		{"udp NEW to 10.0.0.10:53", 1, V4, N, U, V4, "10.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 10.0.0.10:54 (other port)", 0, V4, N, U, V4, "10.0.0.10", 54, IPS_CONFIRMED, 0, 0},
		{"tcp NEW to 10.0.0.10:53", 0, V4, N, IPPROTO_TCP, V4, "10.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 10.0.0.11:53 (other address)", 0, V4, N, U, V4, "10.0.0.11", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 11.0.0.10:53 (first byte differs)", 0, V4, N, U, V4, "11.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW, DNAT'd, to 10.0.0.10:53", 1, V4, N, U, V4, "10.0.0.10", 53, IPS_CONFIRMED | IPS_DST_NAT, 0, 0},
		{"udp DESTROY, not DNAT'd", 1, V4, D, U, V4, "10.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp DESTROY, DNAT'd", 0, V4, D, U, V4, "10.0.0.10", 53, IPS_CONFIRMED | IPS_DST_NAT, 0, 0},
		{"udp DESTROY without CTA_STATUS (user space decides)", 1, V4, D, U, V4, "10.0.0.10", 53, -1, 0, 0},
		{"udp NEW with only a reply tuple", 0, V4, N, U, V4, "10.0.0.10", 53, IPS_CONFIRMED, 1, 0},
		{"udp NEW, AF_INET6 header over an IPv4 tuple", 0, V6, N, U, V4, "10.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW, unknown nfgen family over an IPv4 tuple", 0, 7, N, U, V4, "10.0.0.10", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to [fd00:96::a]:53", 1, V6, N, U, V6, "fd00:96::a", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to [fd00:96::b]:53", 0, V6, N, U, V6, "fd00:96::b", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to [fd01:96::a]:53 (first word differs)", 0, V6, N, U, V6, "fd01:96::a", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to [fd00:96::a]:5353", 0, V6, N, U, V6, "fd00:96::a", 5353, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 10.100.3.4:8080 (inside 10.96.0.0/12, any port)", 1, V4, N, U, V4, "10.100.3.4", 8080, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 10.112.0.1:53 (just past 10.96.0.0/12)", 0, V4, N, U, V4, "10.112.0.1", 53, IPS_CONFIRMED, 0, 0},
		{"udp NEW to 10.0.0.10:53, its tuple cut short (status gone, address cut)", 0, V4, N, U, V4, "10.0.0.10", 53, -1, 0, 30},
	};
	struct filter f;
	if (filter_open(&f, t, 3) < 0)
		return;
	int passed = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		uint8_t buf[512];
		size_t len = craft(&cases[i], buf, sizeof buf);
		int got = filter_passes(&f, buf, len);
		expect(got == cases[i].must_pass, "crafted: %s: %s, must %s", cases[i].name, got ? "passed" : "dropped",
		       cases[i].must_pass ? "pass" : "not pass");
		passed += got;
		/* what passes, user space must parse and match the same way */
		if (got && !cases[i].cut) {
			const uint8_t *q = buf;
			size_t l = len;
			struct ct_entry e;
			int k = ct_event_next(&q, &l, &e);
			expect(k == (cases[i].msg == N ? CT_EV_NEW : CT_EV_DESTROY), "crafted: %s: ct_event_next %d", cases[i].name, k);
			expect(k < 0 || ct_target_match(t, 3, &e.orig) >= 0, "crafted: %s: passed the filter, not ct_target_match", cases[i].name);
		}
	}
	printf("filter, crafted: %d of %zu passed\n", passed, sizeof cases / sizeof *cases);
	filter_close(&f);
}

int main(void)
{
	dir = getenv("CT_TEST_DATA");
	if (!dir)
		dir = "tests/data/ct";
	size_t elen, dlen;
	uint8_t *ev = slurp("events.bin", &elen), *dump = slurp("dump.bin", &dlen);
	test_events(ev, elen);
	test_dump(dump, dlen);
	test_prefixes(ev, elen, "event");
	test_prefixes(dump, dlen, "dump");
	test_filter_real(ev, elen);
	test_filter_crafted();
	free(ev);
	free(dump);
	printf("ct_data_test: %d checks, %d failed\n", checks, failed);
	return failed != 0;
}
