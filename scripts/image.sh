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

usage() { echo "usage: scripts/image.sh build|save [amd64|arm64] | deps | base" >&2; exit 2; }
cmd=${1:-}; arch=${2:-amd64}
case $cmd in build|save|deps|base) ;; -h|--help) sed -n '2,29p' "$0"; exit 0 ;; *) usage ;; esac
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

base() {
	if podman_ image exists "$BASE"; then return 0; fi
	dpkg-query -W -f='${Status}' debootstrap 2>/dev/null | grep -q 'ok installed' ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
	m=$(mirror)
	root=$(mktemp -d "${TMPDIR:-/tmp}/dbt-bookworm.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	echo "image: no $BASE in podman's store: debootstrap --variant=minbase bookworm" >&2
	t0=$(date +%s)
	debootstrap --variant=minbase bookworm "$root" "$m" >"$root.log" 2>&1 ||
		{ tail -n 5 "$root.log" >&2; rm -f "$root.log"; echo "image: debootstrap failed" >&2; return 1; }
	rm -f "$root.log"
	# Sources as the debian:bookworm image has them (deb822), this
	# machine's own; no package cache.
	rm -f "$root/etc/apt/sources.list"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
	else
		cp /etc/apt/sources.list "$root/etc/apt/"
	fi
	rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*_*
	tar -C "$root" -c . | podman_ import --quiet - "$BASE" >/dev/null
	rm -rf "$root"
	trap - EXIT
	echo "image: $BASE imported ($(($(date +%s) - t0)) s)" >&2
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
	ctx=$top/build/image-context
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
build) build ;;
save) save ;;
esac
