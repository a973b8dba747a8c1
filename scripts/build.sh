#!/bin/sh
# build.sh - the one release build: what CI runs (tests/t_ship.sh) and
# what Dockerfile.scratch's build stage runs, the same script either way.
#
#   scripts/build.sh [--out DIR] [amd64|arm64 ...]     (default: amd64)
#   scripts/build.sh --toolchain [amd64|arm64 ...]     step 1 and libmnl only
#
# On a Debian bookworm machine (amd64; root, or with the packages there):
#  1. installs the build packages with apt (make, musl-tools, file; for
#     arm64 scripts/cross-deps.sh adds the aarch64 cross gcc and
#     musl-dev:arm64); libmnl comes from scripts/deps.sh via `make`;
#  2. runs `make ARCH=<arch>` for each arch asked for;
#  3. refuses a result that `file` does not call a statically linked
#     executable for that machine;
#  4. copies it to DIR/<arch>/dns-blackhole-tester (DIR default build/dist).
# VERSION in the environment (e.g. a docker --build-arg) names the build;
# otherwise the Makefile asks git. --toolchain stops after the packages and
# libmnl (scripts/deps.sh into build/deps/<arch>): Dockerfile.scratch runs
# it before it copies the sources in, so the toolchain is a layer of its
# own that a rebuild after a source change takes from the cache.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dist=$top/build/dist
arches=

usage() { echo "usage: scripts/build.sh [--out DIR | --toolchain] [amd64|arm64 ...]" >&2; exit 2; }
toolchain=
while [ $# -gt 0 ]; do
	case $1 in
	--out) if [ $# -lt 2 ] || [ -z "$2" ]; then usage; fi; dist=$2; shift 2 ;;
	--out=?*) dist=${1#--out=}; shift ;;
	--toolchain) toolchain=1; shift ;;
	amd64|arm64) arches="$arches $1"; shift ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	*) echo "build: unknown argument '$1'" >&2; usage ;;
	esac
done
[ -n "$arches" ] || arches=amd64
case $dist in /*) ;; *) dist=$(pwd)/$dist ;; esac

host=$(dpkg --print-architecture)
[ "$host" = amd64 ] || echo "build: note: build host is $host; only amd64 build hosts are tested" >&2

need=
for p in make musl-tools linux-libc-dev file; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	echo "build: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $need >/dev/null
fi

cd "$top"
# One build at a time in a tree: two (the suite's image and ship groups
# side by side) would write the same build/arm64 binary at once, and one
# read it empty. flock is util-linux's, in every Debian root.
mkdir -p build
if command -v flock >/dev/null; then
	exec 9>build/.build.lock
	flock 9
fi
if [ -n "$toolchain" ]; then
	for arch in $arches; do
		[ "$arch" = arm64 ] && sh scripts/cross-deps.sh
		sh scripts/deps.sh "$arch"
	done
	exit 0
fi
for arch in $arches; do
	case $arch in
	amd64) out=dns-blackhole-tester;               machine=x86-64 ;;
	arm64) out=build/arm64/dns-blackhole-tester;   machine="ARM aarch64"
	       sh scripts/cross-deps.sh ;;
	esac
	echo "build: make ARCH=$arch" >&2
	make -s ARCH="$arch"
	desc=$(file -b "$out")
	case $desc in
	*"$machine"*"statically linked"*) ;;
	*) echo "build: $out is not a static $machine executable: $desc" >&2; exit 1 ;;
	esac
	mkdir -p "$dist/$arch"
	cp "$out" "$dist/$arch/dns-blackhole-tester"
	echo "build: $dist/$arch/dns-blackhole-tester $(wc -c <"$out") bytes: $desc" >&2
done
