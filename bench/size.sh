#!/bin/sh
# bench/size.sh - what each link choice costs in bytes of the stripped
# amd64 binary (goal: under 64 KiB). Builds the tester the way the
# Makefile does, then with one choice undone at a time:
#   libmnl's unwind tables kept
#   -z relro           (a no-op at run time in a static musl binary, no
#                       loader applies it; it only moves the data segment)
#   -z separate-code   (rodata out of the executable segment, each segment
#                       padded to a page: ld's amd64 default)
# and a floor: every musl function that still pulls in a sizeable object
# (strerror's table, inet_pton, the stdio write path under libmnl's
# fwrite) replaced by a do-nothing stub. Those builds do not work: they
# are measured, never shipped.
#
#   sh bench/size.sh        (after `make`; needs musl-gcc)
set -eu
cd "$(dirname "$0")/.."
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
D=build/deps/$ARCH
W=build/size
[ -f "$D/lib/libmnl-nounwind.a" ] || { echo "size: run make first (needs $D)" >&2; exit 1; }
mkdir -p "$W"
cat >"$W/stubs.c" <<'EOF'
/* Stubs with libc's signatures; they do nothing. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
char *strerror(int e) { (void)e; return ""; }
int inet_pton(int af, const char *restrict s, void *restrict a) { (void)af; (void)s; (void)a; return 0; }
size_t fwrite(const void *restrict p, size_t s, size_t n, FILE *restrict f) { (void)p; (void)s; (void)f; return n; }
EOF
# the Makefile's flags (BASE, CFLAGS, STATIC), warnings aside
CF="-std=c11 -DVERSION=\"0.1.0\" -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fstack-protector-strong -Os -DLIBMNL_GLIBC_COMPAT -isystem $D/include"
LF="-static -Wl,--gc-sections -s -Wl,-z,noexecstack"
build() {   # NAME LINK_FLAGS LIBMNL EXTRA_SOURCES LABEL
	# shellcheck disable=SC2086
	musl-gcc $CF -o "$W/$1" main.c nl.c dns.c $4 $LF $2 "$D/lib/$3" 2>"$W/$1.err" ||
		{ cat "$W/$1.err" >&2; exit 1; }
	printf '%-62s %7d bytes\n' "$5" "$(stat -c %s "$W/$1")"
}
SHIP="-Wl,-z,norelro -Wl,-z,noseparate-code"
build shipped "$SHIP" libmnl-nounwind.a "" "as shipped (norelro, noseparate-code, libmnl without .eh_frame)"
build unwind "$SHIP" libmnl.a "" "with libmnl's unwind tables"
build relro "-Wl,-z,relro,-z,now -Wl,-z,noseparate-code" libmnl-nounwind.a "" "with -z relro,-z now"
build separate "-Wl,-z,norelro -Wl,-z,separate-code" libmnl-nounwind.a "" "with -z separate-code"
build floor "$SHIP" libmnl-nounwind.a "$W/stubs.c" "floor: strerror, inet_pton, fwrite stubbed out"
cmp -s "$W/shipped" dns-blackhole-tester && echo "(as shipped = ./dns-blackhole-tester, byte for byte)"
echo "goal: < 65536 bytes"
