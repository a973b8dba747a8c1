#!/bin/sh
# image.sh - the FROM scratch image (Dockerfile.scratch) built with podman,
# for machines with no Docker engine and no registry (what `make image`
# and `make image-save` run).
#
#   scripts/image.sh build [amd64|arm64]   -> localhost/dns-blackhole-tester:VERSION (amd64)
#                                             localhost/dns-blackhole-tester:VERSION-arm64
#   scripts/image.sh save [amd64|arm64]    -> build/dns-blackhole-tester-VERSION-ARCH.oci.tar
#   scripts/image.sh deps                  only install podman/buildah/runc
#   scripts/image.sh base                  only provide docker.io/library/debian:bookworm
#   scripts/image.sh base-key              the base cache's key, and what it is made of
#   scripts/image.sh base-tar FILE         the base's root as a tar (cached or debootstrapped)
#
# VERSION comes from the environment (the Makefile passes its own).
# PODMAN_STORE=DIR uses a private podman store (DIR/root, DIR/run) instead
# of podman's normal one: the tests do, so they neither need nor change
# what is in the machine's store.
#
#  1. podman, buildah and runc are installed with apt if missing.
#  2. Dockerfile.scratch's build stage is FROM debian:bookworm, and no
#     registry may be reachable: unless the store has that image already,
#     it is made here with debootstrap --variant=minbase from the mirror in
#     this machine's own apt sources (never written in the repo), with
#     those sources copied in, and `podman import`ed under that name.
#     The debootstrapped root is kept as a tar in a cache outside the
#     clone (DBT_CACHE, default /var/cache/dns-blackhole-tester; empty:
#     no cache), named by a key over everything that makes it: suite,
#     variant, mirror, the apt sources copied in, debootstrap's version,
#     the host's dpkg architecture, this function's own text. Any of
#     those changed, or the tar older than DBT_CACHE_DAYS (7: the
#     archive itself moves on), and debootstrap runs again.
#  3. podman build --pull=never --isolation chroot --network host (apt in
#     the build stage; nothing is created in the host's network).
#     arm64: --platform linux/arm64 makes the image's config say arm64;
#     the build stage stays linux/amd64 and cross-compiles (TARGETARCH).
# The build context is a copy of what git tracks (and untracked files git
# does not ignore) less Dockerfile.scratch.dockerignore: never build/,
# which holds the tests' private store.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NAME=localhost/dns-blackhole-tester
BASE=docker.io/library/debian:bookworm
VERSION=${VERSION:-0.1.0}

usage() { echo "usage: scripts/image.sh build|save [amd64|arm64] | deps | base | base-key | base-tar FILE" >&2; exit 2; }
cmd=${1:-}; arch=${2:-amd64}
[ "$cmd" = base-tar ] && { file=${2:-}; [ -n "$file" ] || usage; arch=amd64; }
case $cmd in build|save|deps|base|base-key|base-tar) ;; -h|--help) sed -n '2,38p' "$0"; exit 0 ;; *) usage ;; esac
case $arch in amd64|arm64) ;; *) echo "image: unknown arch '$arch'" >&2; usage ;; esac

if [ "$arch" = amd64 ]; then tag=$NAME:$VERSION; else tag=$NAME:$VERSION-$arch; fi

podman_() {
	if [ -n "${PODMAN_STORE:-}" ]; then
		podman --root "$PODMAN_STORE/root" --runroot "$PODMAN_STORE/run" "$@"
	else
		podman "$@"
	fi
}

deps() {
	missing=
	for p in podman buildah runc; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "image: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# podman's packages would start services where an init system runs:
	# policy-rc.d keeps them from starting (as scripts/test-deps.sh does).
	pol=/usr/sbin/policy-rc.d made=
	if [ ! -e $pol ]; then printf '#!/bin/sh\nexit 101\n' >$pol; chmod +x $pol; made=1; fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null || rc=$?
	[ -z "$made" ] || rm -f $pol
	return "${rc:-0}"
}

# The mirror of this machine's own Debian sources (deb822 or one-line).
mirror() {
	m=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$m" ] || m=$(awk '/^deb / && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$m" ] || { echo "image: no Debian mirror in this machine's apt sources" >&2; return 1; }
	echo "$m"
}

sources() {
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		echo /etc/apt/sources.list.d/debian.sources
	else
		echo /etc/apt/sources.list
	fi
}

# What the debootstrapped base is made of, one line each; its sha256 is
# the cache key (base_key).
base_inputs() {
	echo "suite=bookworm variant=minbase mirror=${IMAGE_MIRROR:-$(mirror)}"
	echo "debootstrap=$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null)"
	echo "arch=$(dpkg --print-architecture)"
	echo "sources=$(sha256sum <"$(sources)" | cut -c1-64)"
	echo "recipe=$(sed -n '/^debootstrap_root() {$/,/^}$/p' "$top/scripts/image.sh" | sha256sum | cut -c1-64)"
}
base_key() { base_inputs | sha256sum | cut -c1-16; }

# debootstrap_root DIR: the base's root file system in DIR
debootstrap_root() {
	debootstrap --variant=minbase bookworm "$1" "${IMAGE_MIRROR:-$(mirror)}" >"$1.log" 2>&1 ||
		{ tail -n 5 "$1.log" >&2; rm -f "$1.log"; echo "image: debootstrap failed" >&2; return 1; }
	rm -f "$1.log"
	# Sources as the debian:bookworm image has them (deb822), this
	# machine's own; no package cache.
	rm -f "$1/etc/apt/sources.list"
	case $(sources) in
	*.sources) cp "$(sources)" "$1/etc/apt/sources.list.d/" ;;
	*) cp "$(sources)" "$1/etc/apt/" ;;
	esac
	rm -rf "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*_*
}

# base_tar FILE: the base's root file system as a tar in FILE: the
# cache's copy when it holds one under today's key, else a debootstrap
# (then kept in the cache). Sets FROM_CACHE to the cached tar used, or "".
base_tar() {
	dpkg-query -W -f='${Status}' debootstrap 2>/dev/null | grep -q 'ok installed' ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
	cache=${DBT_CACHE-/var/cache/dns-blackhole-tester}
	key=$(base_key)
	tarball=${cache:+$cache/base-bookworm-$key.tar}
	FROM_CACHE=
	if [ -n "$tarball" ] && [ -s "$tarball" ] &&
	   [ -z "$(find "$tarball" -mtime +"${DBT_CACHE_DAYS:-7}" 2>/dev/null)" ]; then
		cp "$tarball" "$1.tmp" && mv "$1.tmp" "$1" || return 1
		FROM_CACHE=$tarball
		echo "image: base key $key: $(base_inputs | tr '\n' ' ')" >&2
		return 0
	fi
	root=$(mktemp -d "${TMPDIR:-/tmp}/dbt-bookworm.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	echo "image: debootstrap --variant=minbase bookworm" >&2
	debootstrap_root "$root" || return 1
	tar -C "$root" -c . >"$1.tmp" && mv "$1.tmp" "$1" || return 1
	rm -rf "$root"
	trap - EXIT
	if [ -n "$tarball" ] && mkdir -p "$cache" 2>/dev/null; then
		# older keys' tars go; the new one appears whole (mv), never half-written
		rm -f "$cache"/base-bookworm-*.tar
		cp "$1" "$tarball.tmp" && mv "$tarball.tmp" "$tarball" &&
			echo "image: base cached as $tarball (key $key)" >&2
	fi
	return 0
}

base() {
	if podman_ image exists "$BASE"; then return 0; fi
	echo "image: no $BASE in podman's store" >&2
	t0=$(date +%s)
	t=$(mktemp "${TMPDIR:-/tmp}/dbt-base.XXXXXX")
	base_tar "$t" || { rm -f "$t" "$t.tmp"; return 1; }
	podman_ import --quiet - "$BASE" <"$t" >/dev/null || { rm -f "$t"; return 1; }
	rm -f "$t"
	echo "image: $BASE imported${FROM_CACHE:+ from the cache, $FROM_CACHE} ($(($(date +%s) - t0)) s)" >&2
}

# The build context: what git would commit, less the .dockerignore.
context() {
	ctx=$1
	rm -rf "$ctx" && mkdir -p "$ctx"
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard --exclude-from=Dockerfile.scratch.dockerignore |
			xargs -0 cp --parents -t "$ctx"
	else
		tar -c --exclude-vcs --exclude=./build --exclude=./dns-blackhole-tester --exclude=./tests/out . |
			tar -C "$ctx" -x
	fi
}

build() {
	deps
	base
	ctx=$top/build/image-context-$arch     # (one per arch: builds may run side by side)
	context "$ctx"
	t0=$(date +%s)
	echo "image: podman build $tag (linux/$arch)" >&2
	src=$(git remote get-url origin 2>/dev/null || echo unknown)
	podman_ build --pull=never --isolation chroot --network host \
		--platform "linux/$arch" --build-arg TARGETARCH="$arch" \
		--build-arg VERSION="$VERSION" --build-arg SOURCE="$src" \
		-f "$ctx/Dockerfile.scratch" -t "$tag" "$ctx"
	rm -rf "$ctx"
	echo "image: $tag built in $(($(date +%s) - t0)) s: $(podman_ image inspect --format '{{.Size}}' "$tag") bytes" >&2
}

save() {
	deps
	podman_ image exists "$tag" || build
	out=$top/build/dns-blackhole-tester-$VERSION-$arch.oci.tar
	mkdir -p "$top/build"
	rm -f "$out"
	podman_ save --format oci-archive -o "$out" "$tag"
	echo "image: $out ($(wc -c <"$out") bytes): skopeo copy oci-archive:$out docker://REGISTRY/dns-blackhole-tester:$VERSION${tag##*"$VERSION"}" >&2
}

case $cmd in
deps) deps ;;
base) deps; base ;;
base-key) base_key; base_inputs ;;
base-tar) base_tar "$file" ;;
build) build ;;
save) save ;;
esac
