#!/bin/sh
# bench/size.sh - what other build choices would cost in bytes of the
# stripped amd64 binary (budget: under 160 KiB; arm64 under 192 KiB).
# Builds the tester the way the Makefile does (-O2, unwind tables kept,
# -fstack-protector-strong, -z norelro, -z separate-code), then with one
# choice changed at a time. None of these is shipped for its bytes: the
# Makefile says why each flag it uses is there.
#   -Os / -Oz instead of -O2
#   -flto
#   without unwind tables (-fno-asynchronous-unwind-tables: perf and gdb
#                       could no longer walk the shipped binary's stack)
#   -fstack-protector  (canaries only in functions with a char buffer)
#   -z relro           (a no-op at run time in a static musl binary: no
#                       loader applies it)
#   -z noseparate-code (headers, code and rodata in one executable
#                       segment: rodata mapped executable)
#   not stripped
#
#   sh bench/size.sh        (after `make`; needs musl-gcc)
set -eu
cd "$(dirname "$0")/.."
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
D=build/deps/$ARCH
W=build/size
[ -f "$D/lib/libmnl.a" ] || { echo "size: run make first (needs $D)" >&2; exit 1; }
mkdir -p "$W"
SRCS=$(sed -n 's/^SRCS *:= *//p' Makefile)
VERSION=$(sed -n 's/^VERSION *?= *//p' Makefile)
# the Makefile's flags (BASE, CFLAGS, STATIC), warnings aside
CF="-std=c11 -DVERSION=\"$VERSION\" -ffunction-sections -fdata-sections -DLIBMNL_GLIBC_COMPAT -isystem $D/include"
SP=-fstack-protector-strong OPT=-O2 EXTRA= STRIP=-s
RELRO=-Wl,-z,norelro SEP=-Wl,-z,separate-code
build() {   # NAME LABEL
	# shellcheck disable=SC2086
	musl-gcc $CF $SP $OPT $EXTRA -o "$W/$1" $SRCS -static -Wl,--gc-sections $STRIP -Wl,-z,noexecstack \
		$RELRO $SEP "$D/lib/libmnl.a" 2>"$W/$1.err" || { cat "$W/$1.err" >&2; exit 1; }
	printf '%-62s %7d bytes\n' "$2" "$(stat -c %s "$W/$1")"
}
build shipped "as shipped (-O2, unwind tables, norelro, separate-code)"
OPT=-Os build os "with -Os instead of -O2"
OPT=-Oz build oz "with -Oz instead of -O2"
EXTRA=-flto build lto "with -flto"
EXTRA=-fno-asynchronous-unwind-tables build nounwind "without unwind tables"
SP=-fstack-protector build sp "with -fstack-protector (not -strong)"
RELRO="-Wl,-z,relro,-z,now" build relro "with -z relro,-z now"
SEP=-Wl,-z,noseparate-code build joined "with -z noseparate-code (rodata executable)"
STRIP= build unstripped "not stripped"
cmp -s "$W/shipped" dns-blackhole-tester && echo "(as shipped = ./dns-blackhole-tester, byte for byte)"
echo "budget: < 163840 bytes (amd64), < 196608 bytes (arm64)"
