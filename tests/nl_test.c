/* nl_test - runs one nl.c operation against the kernel's conntrack
 * table and prints the result, so that tests/t_nl.sh can compare it
 * with what conntrack-tools prints for the same entries. It asserts
 * nothing about the kernel itself: the shell script owns the checks.
 *
 *   nl_test get       PROTO SRC DST SPORT DPORT       ct_format() of the entry
 *   nl_test info      PROTO SRC DST SPORT DPORT       id=N dnat=0|1 seen_reply=0|1 mark=N
 *   nl_test delete    PROTO SRC DST SPORT DPORT       read the entry, delete it guarded by its ID
 *   nl_test delete    PROTO SRC DST SPORT DPORT ID    delete guarded by ID, read earlier
 *   nl_test unguarded PROTO SRC DST SPORT DPORT       nl_delete of an entry with no ID
 *   nl_test formatcap PROTO SRC DST SPORT DPORT       ct_format() at every buffer size
 *   nl_test dump all                                  every entry, one line each
 *   nl_test dump kernel|user PROTO VIP:PORT...        the entries nl_dump's filter passes
 *
 * PROTO is udp or tcp, addresses are IPv4 or IPv6, VIP:PORT reads
 * 10.0.0.10:53 or [fd00::10]:53. When an nl.c call fails, the errno's
 * name (ENOENT, EPERM, ...) is printed on stdout and the exit code is 1;
 * exit code 2 means nl_test itself was used wrongly or broke.
 * dump also writes "kernel_filtered=0|1 entries=N" on stderr. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Big enough for any line ct_format writes (two IPv6 tuples and all). */
#define LINE 512

static int usage(void)
{
	fputs("usage: nl_test get|info|delete|unguarded|formatcap PROTO SRC DST SPORT DPORT [ID]\n"
	      "       nl_test dump all | dump kernel|user PROTO VIP:PORT...\n", stderr);
	return 2;
}

/* The shell compares names, not numbers: errno values are per-arch. */
static int print_errno(int err)
{
	static const struct { int e; const char *name; } names[] = {
		{ENOENT, "ENOENT"}, {EPERM, "EPERM"}, {EINVAL, "EINVAL"},
		{EEXIST, "EEXIST"}, {EBUSY, "EBUSY"}, {EINTR, "EINTR"},
		{ETIMEDOUT, "ETIMEDOUT"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {ENOSPC, "ENOSPC"},
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (names[i].e == -err) {
			puts(names[i].name);
			return 1;
		}
	}
	printf("errno=%d\n", -err);
	return 1;
}

/* A delete's outcome: "ok", or the errno's name. */
static int print_result(int err)
{
	if (err < 0)
		return print_errno(err);
	puts("ok");
	return 0;
}

static int parse_u32(const char *s, unsigned long max, unsigned long *v)
{
	char *end;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *v <= max ? 0 : -1;
}

static int parse_proto(const char *s, uint8_t *proto)
{
	if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else
		return -1;
	return 0;
}

/* Fills family and a from text; -1 if it is no IPv4 or IPv6 address. */
static int parse_addr(const char *s, uint8_t *family, union ct_addr *a)
{
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, s, &a->v4) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a->v6) == 1)
		*family = AF_INET6;
	else
		return -1;
	return 0;
}

/* argv: PROTO SRC DST SPORT DPORT, the original direction of an entry. */
static int parse_tuple(char **argv, struct ct_tuple *t)
{
	uint8_t fdst;
	unsigned long sport, dport;
	memset(t, 0, sizeof *t);
	if (parse_proto(argv[0], &t->proto) < 0 ||
	    parse_addr(argv[1], &t->family, &t->src) < 0 ||
	    parse_addr(argv[2], &fdst, &t->dst) < 0 || fdst != t->family ||
	    parse_u32(argv[3], 65535, &sport) < 0 || parse_u32(argv[4], 65535, &dport) < 0)
		return -1;
	t->sport = (uint16_t)sport;
	t->dport = (uint16_t)dport;
	return 0;
}

/* "10.0.0.10:53" or "[fd00::10]:53": a filter destination. */
static int parse_vip(const char *arg, struct ct_tuple *d)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(arg, ':');
	unsigned long port;
	if (!colon || (size_t)(colon - arg) >= sizeof host)
		return -1;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	char *h = host;
	if (h[0] == '[') {
		size_t n = strlen(h);
		if (n < 2 || h[n - 1] != ']')
			return -1;
		h[n - 1] = '\0';
		h++;
	}
	memset(d, 0, sizeof *d);
	if (parse_addr(h, &d->family, &d->dst) < 0 || parse_u32(colon + 1, 65535, &port) < 0)
		return -1;
	d->dport = (uint16_t)port;
	return 0;
}

static int print_entry(const struct ct_entry *e, void *arg)
{
	char line[LINE];
	int n = ct_format(e, line, sizeof line);
	if (n < 0 || (size_t)n >= sizeof line) {
		fprintf(stderr, "nl_test: ct_format returned %d for a %zu-byte buffer\n", n, sizeof line);
		return -ENOSPC;
	}
	puts(line);
	(*(size_t *)arg)++;
	return 0;
}

/* ct_format promises snprintf's contract: at every capacity the same
 * return value (the full length), and the longest prefix that fits,
 * NUL-terminated. Each call gets a heap buffer of exactly cap bytes so
 * that ASan catches a write past it. Prints "ok LEN" or the first
 * capacity that breaks the contract. */
static int format_caps(const struct ct_entry *e)
{
	char full[LINE];
	int len = ct_format(e, full, sizeof full);
	if (len < 0 || (size_t)len != strlen(full)) {
		printf("cap=%zu returned %d, wrote %zu chars\n", sizeof full, len, strlen(full));
		return 1;
	}
	for (size_t cap = 0; cap <= (size_t)len + 1; cap++) {
		char *buf = malloc(cap ? cap : 1);
		if (!buf)
			return 2;
		int n = ct_format(e, buf, cap);
		/* What snprintf would leave: cap - 1 chars at most, then NUL. */
		size_t fits = cap == 0 ? 0 : cap - 1 < (size_t)len ? cap - 1 : (size_t)len;
		int prefix_ok = cap == 0 || (strlen(buf) == fits && !strncmp(buf, full, fits));
		if (n != len || !prefix_ok) {
			printf("cap=%zu returned %d (want %d), wrote \"%s\"\n", cap, n, len,
			       cap ? buf : "");
			free(buf);
			return 1;
		}
		free(buf);
	}
	printf("ok %d\n", len);
	return 0;
}

static int dump(struct nl *nl, int argc, char **argv)
{
	struct ct_tuple dst[64];
	struct ct_dump_filter f = {0};
	size_t entries = 0;
	int kernel_filtered = -1;
	int ret;
	if (argc == 1 && !strcmp(argv[0], "all")) {
		ret = nl_dump(nl, NULL, print_entry, &entries, &kernel_filtered);
	} else {
		if (argc < 2 || (strcmp(argv[0], "kernel") && strcmp(argv[0], "user")) ||
		    parse_proto(argv[1], &f.proto) < 0 || argc - 2 > 64)
			return usage();
		f.kernel = !strcmp(argv[0], "kernel");
		for (int i = 2; i < argc; i++)
			if (parse_vip(argv[i], &dst[f.ndst++]) < 0)
				return usage();
		f.dst = dst;
		ret = nl_dump(nl, &f, print_entry, &entries, &kernel_filtered);
	}
	/* stdout carries entries only: the summary goes to stderr. */
	fprintf(stderr, "kernel_filtered=%d entries=%zu\n", kernel_filtered, entries);
	return ret < 0 ? print_errno(ret) : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	struct ct_tuple t;
	struct ct_entry e;
	int is_dump = !strcmp(cmd, "dump");
	if (!is_dump && (argc < 7 || argc > 8 || parse_tuple(argv + 2, &t) < 0))
		return usage();
	if (!is_dump && argc == 8 && strcmp(cmd, "delete"))
		return usage();

	struct nl *nl = nl_open();
	if (!nl) {
		perror("nl_test: nl_open");
		return 2;
	}
	int rc;
	if (is_dump) {
		rc = dump(nl, argc - 2, argv + 2);
		goto out;
	}
	if (argc == 8) {
		/* delete with an ID read earlier (by conntrack -L -o id, or by
		 * us before the entry was replaced): no fresh GET, so that
		 * nl_delete alone meets the kernel, as in the tester when an
		 * entry changes between its read and its delete. */
		unsigned long id;
		if (parse_u32(argv[7], 0xffffffffUL, &id) < 0) {
			rc = usage();
			goto out;
		}
		memset(&e, 0, sizeof e);
		e.orig = t;
		e.id = (uint32_t)id;
		e.have = CT_HAVE_ID;
		rc = print_result(nl_delete(nl, &e));
		goto out;
	}
	int err = nl_get(nl, &t, &e);
	if (err < 0) {
		rc = print_errno(err);
		goto out;
	}
	if (!strcmp(cmd, "get")) {
		size_t n = 0;
		rc = print_entry(&e, &n) < 0 ? 2 : 0;
	} else if (!strcmp(cmd, "info")) {
		printf("id=%u dnat=%d seen_reply=%d mark=%u\n", e.id, ct_is_dnat(&e),
		       ct_seen_reply(&e), e.mark);
		rc = 0;
	} else if (!strcmp(cmd, "delete")) {
		rc = print_result(nl_delete(nl, &e));
	} else if (!strcmp(cmd, "unguarded")) {
		/* As if the kernel had sent no CTA_ID: nl_delete must refuse. */
		e.have &= ~(unsigned)CT_HAVE_ID;
		rc = print_result(nl_delete(nl, &e));
	} else if (!strcmp(cmd, "formatcap")) {
		rc = format_caps(&e);
	} else {
		rc = usage();
	}
out:
	nl_close(nl);
	return rc;
}
