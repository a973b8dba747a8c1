#!/bin/sh
# Fetch what the build needs, as packages, into build/deps/<arch>/.
#
# Debian 12's libmnl-dev ships no libmnl.a; Debian 13's does. We fetch the
# trixie package without installing it (a private apt configuration whose
# sources are the system's own, suite changed to trixie), then unpack it with
# dpkg -x. The mirror comes from the system's sources file: no host name here.
#
#   scripts/deps.sh [amd64|arm64]     (default: the build machine's arch)
set -eu

arch=${1:-$(dpkg --print-architecture)}
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/deps/$arch
stamp=$out/.done

# Done already: the stamp is made newer than this script only if it is not
# (make is then content). Touched every time, it made every binary built on
# these deps out of date: `make host` (build/host/.deps runs this) left the
# release binary stale, and the next make anywhere in the tree relinked it
# while the suite's other lanes ran it ("Permission denied" on exec).
if [ -f "$stamp" ]; then
	[ "$stamp" -nt "$top/scripts/deps.sh" ] || touch "$stamp"
	exit 0
fi

need_pkg() {   # install Debian packages that are missing (build tools only)
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "deps: installing$missing" >&2
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
}

need_pkg musl-tools linux-libc-dev
# arm64: the cross gcc, musl-dev:arm64 and the arm64 UAPI headers.
if [ "$arch" = arm64 ]; then sh "$top/scripts/cross-deps.sh"; fi

apt=$top/build/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources" "$out"

src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ]; then
	# Keep only the main archive stanza, point it at trixie.
	awk 'BEGIN{RS="";ORS="\n\n"} !/security/' "$src" |
		sed -e 's/^Suites:.*/Suites: trixie/' \
		    -e "s/^Types:.*/Types: deb\nArchitectures: $arch/" >"$apt/sources/trixie.sources"
else
	# Old-style sources.list: take the first main mirror line.
	grep -m1 '^deb [^[]*debian ' /etc/apt/sources.list |
		awk -v a="$arch" '{print "deb [arch=" a "] " $2 " trixie main"}' >"$apt/sources/trixie.list"
fi

aptopts="-o Dir::Etc::SourceParts=$apt/sources -o Dir::Etc::SourceList=/dev/null \
 -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache \
 -o Dir::State::Status=/dev/null -o APT::Architecture=$arch \
 -o APT::Architectures::=$arch -o Debug::NoLocking=1"

echo "deps: fetching libmnl-dev ($arch, trixie)" >&2
# shellcheck disable=SC2086
apt-get $aptopts update -q >/dev/null
cd "$apt"
rm -f libmnl*.deb
# shellcheck disable=SC2086
apt-get $aptopts download -q "libmnl-dev:$arch" >/dev/null
for deb in libmnl-dev_*.deb; do dpkg -x "$deb" "$out/root"; done

lib=$(find "$out/root" -name libmnl.a | head -n1)
hdr=$(find "$out/root" -name libmnl.h | head -n1)
[ -n "$lib" ] && [ -n "$hdr" ] || { echo "deps: libmnl.a or libmnl.h missing in package" >&2; exit 1; }
mkdir -p "$out/lib" "$out/include/libmnl"
cp "$lib" "$out/lib/"
cp "$hdr" "$out/include/libmnl/"

# Kernel UAPI headers for musl-gcc, which does not search /usr/include.
# Offer linux/ asm-generic/ and the arch's asm/ alone, never glibc's headers.
ua=$out/include
if [ "$arch" = arm64 ]; then
	# linux-libc-dev-arm64-cross: the arm64 UAPI headers as one tree.
	x=/usr/aarch64-linux-gnu/include
	[ -d "$x/asm" ] || { echo "deps: $x/asm missing (linux-libc-dev-arm64-cross)" >&2; exit 1; }
	for d in linux asm asm-generic; do ln -sfn "$x/$d" "$ua/$d"; done
	touch "$stamp"
	exit 0
fi
multi=x86_64-linux-gnu
ln -sfn /usr/include/linux "$ua/linux"
ln -sfn /usr/include/asm-generic "$ua/asm-generic"
if [ -d "/usr/include/$multi/asm" ]; then
	ln -sfn "/usr/include/$multi/asm" "$ua/asm"
else
	ln -sfn "/usr/include/asm-generic" "$ua/asm"
fi
touch "$stamp"
