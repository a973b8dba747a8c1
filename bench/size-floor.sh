#!/bin/sh
# bench/size-floor.sh - how small could the static binary get by dropping
# libc pieces? Builds the tester the way the Makefile does, then again with
# musl's stdio formatting, gmtime_r, inet_ntop, getopt_long and strtol*
# replaced by do-nothing stubs (the result does not work: it is only
# measured, never shipped), with and without -z separate-code. The answer
# says whether the 64 KiB goal can be met by rewriting libc calls alone.
#
#   sh bench/size-floor.sh        (after `make`; needs musl-gcc)
set -eu
cd "$(dirname "$0")/.."
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
D=build/deps/$ARCH
W=build/size-floor
[ -f "$D/lib/libmnl.a" ] || { echo "size-floor: run make first (needs $D)" >&2; exit 1; }
mkdir -p "$W"
cat >"$W/stubs.c" <<'EOF'
/* Stubs with the libc signatures: each replaces a musl object that
 * would otherwise be linked. They do nothing. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int vsnprintf(char *restrict b, size_t n, const char *restrict f, va_list ap) { (void)f; (void)ap; if (n) *b = 0; return 0; }
int snprintf(char *restrict b, size_t n, const char *restrict f, ...) { (void)f; if (n) *b = 0; return 0; }
int vfprintf(FILE *restrict o, const char *restrict f, va_list ap) { (void)o; (void)f; (void)ap; return 0; }
int fprintf(FILE *restrict o, const char *restrict f, ...) { (void)o; (void)f; return 0; }
int printf(const char *restrict f, ...) { (void)f; return 0; }
int fputs(const char *restrict s, FILE *restrict o) { (void)s; (void)o; return 0; }
struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict tm) { (void)t; return tm; }
const char *inet_ntop(int af, const void *restrict a, char *restrict s, socklen_t l) { (void)af; (void)a; (void)l; return s; }
int getopt_long(int c, char *const *v, const char *o, const struct option *l, int *i) { (void)c; (void)v; (void)o; (void)l; (void)i; return -1; }
long strtol(const char *restrict s, char **restrict e, int b) { (void)s; (void)e; (void)b; return 0; }
unsigned long strtoul(const char *restrict s, char **restrict e, int b) { (void)s; (void)e; (void)b; return 0; }
unsigned long long strtoull(const char *restrict s, char **restrict e, int b) { (void)s; (void)e; (void)b; return 0; }
EOF
# the Makefile's flags (BASE, CFLAGS, STATIC), warnings aside
CF="-std=c11 -DVERSION=\"0.1.0\" -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fstack-protector-strong -Os -DLIBMNL_GLIBC_COMPAT -isystem $D/include"
LF="-static -Wl,--gc-sections -s -Wl,-z,noexecstack -Wl,-z,relro,-z,now"
build() {   # NAME EXTRA_SOURCES EXTRA_LDFLAGS
	# shellcheck disable=SC2086
	musl-gcc $CF -o "$W/$1" main.c nl.c dns.c $2 $LF $3 "$D/lib/libmnl.a" 2>"$W/$1.err" ||
		{ cat "$W/$1.err" >&2; exit 1; }
	printf '%-58s %7d bytes\n' "$4" "$(stat -c %s "$W/$1")"
}
build as-shipped "" "" "as shipped (-z separate-code)"
build noseparate "" "-Wl,-z,noseparate-code" "-z noseparate-code"
build stubbed "$W/stubs.c" "" "libc stubbed out (separate-code)"
build stubbed-nosep "$W/stubs.c" "-Wl,-z,noseparate-code" "libc stubbed out, -z noseparate-code"
echo "goal: < 65536 bytes"
