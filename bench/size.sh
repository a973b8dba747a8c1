#!/bin/sh
# bench/size.sh - what each link choice costs in bytes of the stripped
# amd64 binary (budget: under 100 KiB). Builds the tester the way the
# Makefile does, then with one choice changed at a time:
#   without -flto
#   -Os instead of -Oz
#   libmnl's unwind tables kept (nothing unwinds C linked with musl)
#   -z relro           (a no-op at run time in a static musl binary: no
#                       loader applies it; it only pads the data segment)
#   -z noseparate-code (headers, code and rodata in one executable
#                       segment: smaller, but rodata mapped executable;
#                       not shipped)
#   -fstack-protector-strong (canaries in every function with any array
#                       or address-taken local; shipped: -fstack-protector,
#                       in every function with a char buffer of 8 bytes+)
#   -fpie code         (what Debian's gcc makes by default; the link is a
#                       fixed-address static executable all the same)
#   -z common-page-size=4096 (ld pads the file to start data on a page)
#   .comment kept       (the compilers' version strings)
#
#   sh bench/size.sh        (after `make`; needs musl-gcc)
set -eu
cd "$(dirname "$0")/.."
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
D=build/deps/$ARCH
W=build/size
[ -f "$D/lib/libmnl-nounwind.a" ] || { echo "size: run make first (needs $D)" >&2; exit 1; }
mkdir -p "$W"
SRCS=$(sed -n 's/^SRCS *:= *//p' Makefile)
VERSION=$(sed -n 's/^VERSION *?= *//p' Makefile)
# the Makefile's flags (BASE, CFLAGS, STATIC), warnings aside
CF="-std=c11 -DVERSION=\"$VERSION\" -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -DLIBMNL_GLIBC_COMPAT -isystem $D/include"
LF="-static -Wl,--gc-sections -s -Wl,-z,noexecstack"
SP=-fstack-protector PIE=-fno-pie CPS=-Wl,-z,common-page-size=2048 COMMENT=-R
LTO=-flto
OPT=-Oz
build() {   # NAME LINK_FLAGS LIBMNL LABEL
	# shellcheck disable=SC2086
	musl-gcc $CF $SP $PIE $OPT $LTO -o "$W/$1" $SRCS $LF $CPS $2 "$D/lib/$3" 2>"$W/$1.err" ||
		{ cat "$W/$1.err" >&2; exit 1; }
	[ "$COMMENT" = -R ] && objcopy -R .comment "$W/$1"
	printf '%-62s %7d bytes\n' "$4" "$(stat -c %s "$W/$1")"
}
build shipped "-Wl,-z,norelro" libmnl-nounwind.a "as shipped (-Oz, lto, no-pie, norelro, separate-code, libmnl without .eh_frame)"
LTO= build nolto "-Wl,-z,norelro" libmnl-nounwind.a "without -flto"
OPT=-Os build os "-Wl,-z,norelro" libmnl-nounwind.a "with -Os instead of -Oz"
build unwind "-Wl,-z,norelro" libmnl.a "with libmnl's unwind tables"
build relro "-Wl,-z,relro,-z,now" libmnl-nounwind.a "with -z relro,-z now"
build joined "-Wl,-z,norelro -Wl,-z,noseparate-code" libmnl-nounwind.a "with -z noseparate-code (rodata executable: not shipped)"
SP=-fstack-protector-strong build strong "-Wl,-z,norelro" libmnl-nounwind.a "with -fstack-protector-strong"
PIE=-fpie build pie "-Wl,-z,norelro" libmnl-nounwind.a "with -fpie code"
CPS= build cps "-Wl,-z,norelro" libmnl-nounwind.a "with ld's default common page size"
COMMENT= build comment "-Wl,-z,norelro" libmnl-nounwind.a "with .comment kept"
cmp -s "$W/shipped" dns-blackhole-tester && echo "(as shipped = ./dns-blackhole-tester, byte for byte)"
echo "budget: < 102400 bytes (amd64), < 131072 bytes (arm64)"
