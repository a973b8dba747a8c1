/* tests/faults/asan_canary.c - a program with one known bug per mode, built
 * with the tester's sanitizer flags. t_sanitize.sh runs it first, with the
 * same ASAN_OPTIONS/UBSAN_OPTIONS as the tester, to prove that a report
 * would be seen: a sanitizer check that sees nothing proves nothing unless
 * it is shown to see something.
 *
 *   asan_canary heap|ubsan|leak|clean
 *
 * heap writes one byte past a malloc'd block of a size known only at run
 * time (ASan's own finding: UBSan's object-size check would catch an
 * overflow of a block of constant size first). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "clean";
	volatile int big = INT_MAX;
	if (!strcmp(mode, "heap")) {
		size_t n = strlen(mode);
		char *p = malloc(n);
		memcpy(p, mode, n + 1);        /* the NUL lands one past the end */
		puts(p);
		free(p);
	} else if (!strcmp(mode, "ubsan")) {
		volatile int r = big + argc;   /* signed overflow */
		printf("%d\n", r);
	} else if (!strcmp(mode, "leak")) {
		void *volatile p = malloc(64);
		p = NULL;
		(void)p;
	}
	return 0;
}
