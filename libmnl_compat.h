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

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	va_list ap;
	(void)flag;                 /* fortify level: no checks to add */
	va_start(ap, fmt);
	int n = vfprintf(f, fmt, ap);
	va_end(ap);
	return n;
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

#endif
