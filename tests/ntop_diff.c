/* ntop_diff.c - prints, for a fixed set of 262,000 IPv6 addresses, what
 * nl.c's ct_ntop() and this libc's inet_ntop() make of each: one line,
 * "CT_NTOP INET_NTOP". Built twice, with musl (what ships) and with glibc
 * (what conntrack-tools prints with); tests/t_nl.sh holds the musl build's
 * ct_ntop against glibc's inet_ntop, line by line. The addresses: every
 * pattern of zero and non-zero groups with a few values, ::ffff:a.b.c.d and
 * ::a.b.c.d forms, and runs of zeros at random (an LCG of our own, so both
 * builds make the same ones). */
#include "nl.h"

#include <arpa/inet.h>
#include <stdio.h>

static unsigned long lcg = 3;

static unsigned next(void)
{
	lcg = lcg * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)(lcg >> 33);
}

static void show(const unsigned char a[16])
{
	char mine[INET6_ADDRSTRLEN], libc[INET6_ADDRSTRLEN];
	ct_ntop(AF_INET6, a, mine, sizeof mine);
	if (!inet_ntop(AF_INET6, a, libc, sizeof libc))
		snprintf(libc, sizeof libc, "?");
	printf("%s %s\n", mine, libc);
}

int main(void)
{
	static const unsigned vals[] = {1, 0xffff, 0xa, 0x1234};
	unsigned char a[16];
	for (int pat = 0; pat < 256; pat++)
		for (int v = 0; v < 4; v++) {
			for (int w = 0; w < 8; w++) {
				unsigned x = (pat >> w & 1) ? vals[(v + w) % 4] : 0;
				a[2 * w] = (unsigned char)(x >> 8);
				a[2 * w + 1] = (unsigned char)x;
			}
			show(a);
		}
	for (int i = 0; i < 261000; i++) {
		for (int w = 0; w < 8; w++) {
			unsigned x = next() % 3 ? 0 : next() & (next() % 2 ? 0xffff : 0xf);
			if (i % 7 == 0 && w == 5)
				x = 0xffff;            /* ::ffff:a.b.c.d and its neighbours */
			a[2 * w] = (unsigned char)(x >> 8);
			a[2 * w + 1] = (unsigned char)x;
		}
		show(a);
	}
	return 0;
}
