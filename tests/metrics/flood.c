/* tests/metrics/flood.c - a reply flood faster than the tester can drain.
 *
 *   flood ADDR PORT SECONDS
 *
 * A "DNS server" on ADDR:PORT that never answers: it waits for the
 * tester's first query, connects to its address, then sends it 12-byte
 * datagrams that answer nothing (wrong ID), 64 to a sendmmsg(2), for
 * SECONDS or until the tester is gone (ECONNREFUSED). Python's one
 * datagram a call is slower than the tester's one recv a pass, so the
 * socket emptied now and then and the starvation it tests never showed;
 * batched, the queue stays full. Prints "sent N". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, peer;
	socklen_t plen = sizeof peer;
	char q[512];
	static unsigned char junk[12] = {0xbe, 0xef, 0x81, 0x80};
	struct iovec iov = {junk, sizeof junk};
	struct mmsghdr m[BATCH];
	if (argc != 4 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
		fprintf(stderr, "usage: flood ADDR PORT SECONDS\n");
		return 2;
	}
	a.sin_port = htons((unsigned short)atoi(argv[2]));
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&peer, &plen) < 0 ||
	    connect(fd, (struct sockaddr *)&peer, plen) < 0) {
		perror("flood");
		return 1;
	}
	memset(m, 0, sizeof m);
	for (int i = 0; i < BATCH; i++) {
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	unsigned long long sent = 0;
	time_t end = time(NULL) + atoi(argv[3]);
	int refused = 0;
	while (time(NULL) < end && refused < 10) {
		int n = sendmmsg(fd, m, BATCH, MSG_DONTWAIT);
		if (n > 0)
			sent += (unsigned)n;
		else if (n < 0 && errno == ECONNREFUSED)
			refused++;
		while (recv(fd, q, sizeof q, MSG_DONTWAIT) > 0)
			;                     /* the tester's queries: never answered */
	}
	printf("sent %llu\n", sent);
	return 0;
}
