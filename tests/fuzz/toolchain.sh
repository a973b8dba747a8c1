#!/bin/sh
# tests/fuzz/toolchain.sh [CC] - makes sure clang and its libFuzzer runtime
# are installed (as Debian packages), then proves it by linking a trivial
# fuzz target. A fresh CI machine has neither; scripts/test-deps.sh is
# not ours to extend, so the fuzz build asks for them itself.
set -eu
cc=${1:-clang}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
updated=
install() {
	[ "$(id -u)" = 0 ] || { echo "fuzz: need root to install $*" >&2; exit 1; }
	echo "fuzz: installing $*" >&2
	export DEBIAN_FRONTEND=noninteractive
	[ -n "$updated" ] || { apt-get update -q >/dev/null; updated=1; }
	apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

command -v "$cc" >/dev/null 2>&1 || install clang
# clang-N's libFuzzer (libclang_rt.fuzzer*.a) is in libclang-rt-N-dev.
ver=$("$cc" --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n1)
[ -n "$ver" ] || { echo "fuzz: cannot tell $cc's version" >&2; exit 1; }
installed "libclang-rt-$ver-dev" || install "libclang-rt-$ver-dev"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$tmp/t.c"
"$cc" -fsanitize=fuzzer,address,undefined -o "$tmp/t" "$tmp/t.c" ||
	{ echo "fuzz: $cc cannot link a libFuzzer target" >&2; exit 1; }
"$tmp/t" -runs=1 >/dev/null 2>&1 || { echo "fuzz: a trivial libFuzzer target does not run" >&2; exit 1; }
