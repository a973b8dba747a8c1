#!/bin/sh
# musl-cc-arm64.sh - a C compiler for static aarch64 musl binaries.
# The Makefile uses it as MUSLCC for `make ARCH=arm64`.
#
# It is what musl-gcc is for x86_64: the gcc for aarch64 (a cross gcc on
# an amd64 machine, the native one on arm64, both named
# aarch64-linux-gnu-gcc) driven by musl's specs file from Debian's
# musl-dev:arm64. That file swaps glibc for musl: -nostdinc and musl's
# aarch64 headers, musl's crt1/crti/crtn and libc.a, -nostdlib. The
# kernel UAPI headers (linux/, asm/) are not searched by it: the Makefile
# offers them with -isystem build/deps/arm64/include (scripts/deps.sh).
# Packages: scripts/cross-deps.sh.
specs=/usr/lib/aarch64-linux-musl/musl-gcc.specs
cc=${REALGCC:-aarch64-linux-gnu-gcc}
if [ ! -f "$specs" ] || ! command -v "$cc" >/dev/null 2>&1; then
	echo "musl-cc-arm64: $cc or $specs is missing: run scripts/cross-deps.sh (as root)" >&2
	exit 1
fi
exec "$cc" "$@" -specs "$specs"
