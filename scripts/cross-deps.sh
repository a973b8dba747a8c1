#!/bin/sh
# Installs, as Debian packages, what an aarch64 (arm64) build needs on a
# Debian bookworm build machine, and with --qemu what running that binary
# here needs. Idempotent: quiet and without apt calls when all is there.
#
#   scripts/cross-deps.sh            cross toolchain + musl for arm64
#   scripts/cross-deps.sh --qemu     the same, and qemu-aarch64-static
#
# What and why:
#   gcc-aarch64-linux-gnu       the cross compiler (an amd64 package)
#   linux-libc-dev-arm64-cross  arm64 kernel UAPI headers, in
#                               /usr/aarch64-linux-gnu/include/{linux,asm,...}
#                               (Arch: all, so it cannot clash with amd64's)
#   musl-dev:arm64              musl's aarch64 headers, crt*.o, libc.a and
#                               the specs file scripts/musl-cc-arm64.sh uses;
#                               it is Multi-Arch: same, so the arm64 copy
#                               sits beside amd64's musl-dev and changes
#                               nothing of the amd64 build. It needs arm64
#                               added as a foreign dpkg architecture.
#   qemu-user-static            qemu-aarch64-static for the tests
# Nothing is downloaded except through apt.
set -eu

qemu=0
for a in "$@"; do
	case $a in
	--qemu) qemu=1 ;;
	*) echo "cross-deps: unknown argument '$a' (want --qemu)" >&2; exit 2 ;;
	esac
done

pkgs="gcc-aarch64-linux-gnu linux-libc-dev-arm64-cross musl-dev:arm64"
[ $qemu = 1 ] && pkgs="$pkgs qemu-user-static"

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "cross-deps: missing$missing; run as root to install them" >&2
	exit 1
fi
host=$(dpkg --print-architecture)
if [ "$host" != arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "cross-deps: adding arm64 as a foreign dpkg architecture (for musl-dev:arm64)" >&2
	dpkg --add-architecture arm64
fi
echo "cross-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
