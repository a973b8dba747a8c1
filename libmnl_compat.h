/* libmnl_compat.h - what a static musl link of Debian's libmnl.a needs.
 *
 * The only libmnl.a that comes as a package here (Debian 13's) was built
 * against glibc. Its nlmsg.o, which we need for mnl_nlmsg_put_header(),
 * also holds mnl_nlmsg_fprintf(), compiled with _FORTIFY_SOURCE and
 * glibc's ctype macros: it refers to __fprintf_chk and __ctype_b_loc,
 * which musl does not have. We never print messages with libmnl, but
 * the link needs the symbols, so here they are, implemented for real.
 * Included by nl.c only in the musl build (-DLIBMNL_GLIBC_COMPAT). */
#ifndef LIBMNL_COMPAT_H
#define LIBMNL_COMPAT_H

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* With main.c's small formatter (no musl printf in the binary): the
 * lines mnl_nlmsg_fprintf() writes are short, and it uses only the
 * conversions vfmt() has (%s %c %d %u %x, widths, '0' and '-'). */
size_t vfmt(char *buf, size_t cap, const char *f, va_list ap);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t n;
	(void)flag;                 /* fortify level: no checks to add */
	va_start(ap, fmt);
	n = vfmt(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n >= sizeof line)
		n = sizeof line - 1;
	return fwrite(line, 1, n, f) == n ? (int)n : -1;
}

/* glibc's classification table: 384 entries for -128..255, bit layout
 * of glibc's <ctype.h> on little-endian machines (_ISbit). */
const unsigned short **__ctype_b_loc(void);
const unsigned short **__ctype_b_loc(void)
{
	static unsigned short table[384];
	static const unsigned short *ptr;
	if (!ptr) {
		for (int c = 0; c < 256; c++) {
			unsigned bits = 0;
			static int (*const fn[12])(int) = {
				isupper, islower, isalpha, isdigit, isxdigit, isspace,
				isprint, isgraph, isblank, iscntrl, ispunct, isalnum,
			};
			for (unsigned b = 0; b < 12; b++)
				if (fn[b](c))
					bits |= b < 8 ? (1u << b) << 8 : (1u << b) >> 8;
			table[128 + c] = (unsigned short)bits;
		}
		ptr = table + 128;
	}
	return &ptr;
}

/* The same nlmsg.o holds mnl_nlmsg_batch_start(), which calls malloc()
 * and free(): linking them pulls in musl's whole allocator (8 KiB). No
 * path of ours allocates (the tester, scan and the metrics server use
 * static buffers and mmap), so this small, correct allocator - one
 * mmap(2) per block, its size kept in front - stands in for it. */
void *malloc(size_t n);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);

#define BLOCK_HDR 16                 /* keeps the block 16-byte aligned */

void *malloc(size_t n)
{
	size_t total = n + BLOCK_HDR;
	if (total < n)
		return NULL;
	char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, &total, sizeof total);
	return p + BLOCK_HDR;
}

void free(void *p)
{
	size_t total;
	if (!p)
		return;
	memcpy(&total, (char *)p - BLOCK_HDR, sizeof total);
	munmap((char *)p - BLOCK_HDR, total);
}

void *calloc(size_t n, size_t size)
{
	if (size && n > (size_t)-1 / size)
		return NULL;
	return malloc(n * size);          /* mmap'd memory is zeroed */
}

void *realloc(void *p, size_t n)
{
	size_t total;
	void *q = malloc(n);
	if (!q || !p)
		return q;
	memcpy(&total, (char *)p - BLOCK_HDR, sizeof total);
	memcpy(q, p, total - BLOCK_HDR < n ? total - BLOCK_HDR : n);
	free(p);
	return q;
}

#endif
