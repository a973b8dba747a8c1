/* dns_queries.h - the queries fuzz_dns answers, shared with dns_seed.c.
 *
 * A fuzz_dns input is one selector byte (input[0] % NQUERIES picks the
 * query below) followed by the reply datagram. dns_seed.c sends exactly
 * these queries (built by dns_build_query, same IDs) to real servers and
 * writes selector + reply, so captured replies pass the ID and question
 * checks and the fuzzer starts deep inside dns_parse_reply. */
#ifndef FUZZ_DNS_QUERIES_H
#define FUZZ_DNS_QUERIES_H

#include <stdint.h>

#define K8S "kubernetes.default.svc.cluster.local"

static const struct fuzz_query {
	const char *tag;      /* seed file name part */
	uint16_t id;
	const char *name;
	uint16_t qtype;
} fuzz_queries[] = {
	{"k8s-a",      0x1234, K8S, 1},                    /* the tester's default */
	{"k8s-aaaa",   0xbeef, K8S, 28},
	{"nx-a",       0x0001, "nope.default.svc.cluster.local", 1},   /* NXDOMAIN */
	{"case-a",     0x8000, "KUBERNETES.Default.svc.Cluster.Local.", 1}, /* 0x20 bits, final dot */
	{"k8s-txt",    0xffff, K8S, 16},                   /* NOERROR, no data */
	{"k8s-any",    0x4242, K8S, 255},                  /* A and AAAA together */
	{"alias-a",    0x0a0a, "alias.cluster.local", 1},  /* CNAME, then A */
	{"big-a",      0x7777, "big.cluster.local", 1},    /* > 512 bytes: TC */
	{"root-ns",    0x0000, ".", 2},                    /* the root name */
	{"long-a",     0x3c3c,                             /* 63-byte labels, 253 bytes */
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	 "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."
	 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", 1},
};

#define NQUERIES (sizeof fuzz_queries / sizeof *fuzz_queries)

#endif
