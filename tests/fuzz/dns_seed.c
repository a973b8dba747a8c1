/* dns_seed.c - capture real DNS replies as fuzz_dns seeds.
 *
 *   dns_seed ADDR PORT PREFIX DIR
 *
 * Sends every query of dns_queries.h (built by dns.c's own
 * dns_build_query, with the table's ID) over UDP to ADDR:PORT and
 * writes DIR/PREFIX-TAG: the selector byte, then the reply datagram as
 * received. Used by make-seeds.sh inside a private network namespace. */
#define _GNU_SOURCE
#include "dns.h"
#include "dns_queries.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: dns_seed ADDR PORT PREFIX DIR\n");
		return 2;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "dns_seed: bad address %s\n", argv[1]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("dns_seed: socket");
		return 1;
	}
	int failed = 0;
	for (size_t i = 0; i < NQUERIES; i++) {
		const struct fuzz_query *fq = &fuzz_queries[i];
		uint8_t q[DNS_MAX_QUERY], r[1 + 65536];
		int qlen = dns_build_query(q, sizeof q, fq->id, fq->name, fq->qtype);
		ssize_t n = -1;
		for (int try = 0; try < 3 && n < 0; try++) {
			if (send(fd, q, (size_t)qlen, 0) != qlen) {
				perror("dns_seed: send");
				return 1;
			}
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, 1000) == 1)
				n = recv(fd, r + 1, sizeof r - 1, 0);
		}
		if (n < 0) {
			fprintf(stderr, "dns_seed: %s:%s: no reply to %s\n", argv[1], argv[2], fq->tag);
			failed = 1;
			continue;
		}
		r[0] = (uint8_t)i;
		struct dns_reply rep;
		int rc = dns_parse_reply(r + 1, (size_t)n, q, (size_t)qlen, &rep);
		char path[4096];
		snprintf(path, sizeof path, "%s/%s-%s", argv[4], argv[3], fq->tag);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(r, 1, (size_t)n + 1, f) != (size_t)n + 1 || fclose(f)) {
			perror(path);
			return 1;
		}
		printf("%s: %zd bytes, %s, rcode %s, tc %d, ancount %u\n", path, n,
		       dns_result_str(rc), dns_rcode_str(rep.rcode), rep.tc, rep.ancount);
	}
	close(fd);
	return failed;
}
