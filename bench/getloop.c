/* bench/getloop.c - the tester's own conntrack lookup, alone, in a loop:
 * N times nl_get() (nl.c, the very code the tester runs each cycle) of
 * one UDP tuple, and the CPU it took per lookup (getrusage).
 *
 *   getloop SRC SPORT DST DPORT N
 *
 * Prints "<us per GET> <GETs that found the entry>". A tight loop has no
 * sleep, no DNS and no scheduling in it, so it shows what the table size
 * does to the lookup itself, with far less noise than a whole cycle.
 * Built by bench/run.sh with gcc against nl.c and the build's libmnl.a. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static double cpu_us(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fputs("usage: getloop SRC SPORT DST DPORT N\n", stderr);
		return 2;
	}
	struct ct_tuple t = {.family = AF_INET, .proto = IPPROTO_UDP,
	                     .sport = (uint16_t)atoi(argv[2]), .dport = (uint16_t)atoi(argv[4])};
	long n = atol(argv[5]);
	if (inet_pton(AF_INET, argv[1], &t.src.v4) != 1 || inet_pton(AF_INET, argv[3], &t.dst.v4) != 1 || n <= 0) {
		fputs("getloop: bad address or count\n", stderr);
		return 2;
	}
	struct nl *nl = nl_open();
	if (!nl) {
		perror("getloop: nl_open");
		return 1;
	}
	struct ct_entry e;
	long found = 0;
	double t0 = cpu_us();
	for (long i = 0; i < n; i++)
		found += nl_get(nl, &t, &e) == 0;
	printf("%.3f %ld\n", (cpu_us() - t0) / (double)n, found);
	nl_close(nl);
	return 0;
}
