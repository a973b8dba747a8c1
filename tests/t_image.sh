#!/bin/sh
# tests/t_image.sh - the container image, built and run for real with
# podman (Debian's podman 4.3.1, buildah, runc; no registry reachable).
#
#  build    `make image` and `make image ARCH=arm64` - the commands users
#           run - then `make image-save` for each: OCI archives in build/.
#  inspect  each archive read from its own blobs (tests/oci_inspect.py):
#           one layer holding the binary alone, byte-identical to the
#           release build; USER, ENTRYPOINT, OCI labels (version = the
#           Makefile's VERSION), architecture; sizes stated.
#  run      the amd64 image in the lab's node namespace with ds.yaml's
#           container security context turned into podman flags by
#           tests/ds2podman.py (read from ds.yaml, never retyped), ds.yaml's
#           args plus -d VIP (the container gets no resolv.conf naming the
#           lab's VIP) and -v (a line per query). The interval is the
#           default ds.yaml runs with: 1 s. It proves a blackhole from
#           inside the container (conntrack -L in the namespace is the
#           oracle), serves /metrics in the namespace, and stops on SIGTERM
#           within one tick.
#  kube     `podman kube play` of a Pod made from ds.yaml's pod template
#           (hostNetwork off, --network ns: the lab's node namespace).
#
# A private podman store, never the machine's: the run does not depend on
# what that holds and leaves nothing in it. The debian:bookworm base is
# made by debootstrap, as on a fresh machine, or imported from
# scripts/image.sh's cache of an earlier debootstrap under the key of the
# same inputs. The store is kept between runs beside that cache
# ($DBT_CACHE/image-store, default /var/cache/dns-blackhole-tester), so
# podman's layer cache serves the build stage's toolchain layer (apt
# packages, libmnl) to every run after the first; the stage's full build
# runs every time in tests/t_ship.sh. Our containers, pods and tags go at
# the start and the end; the whole store goes when the base's key changes
# or it outgrows 3 GiB. DBT_CACHE= (empty): a store in build/, wiped at
# the start and the end, every build from nothing. `make image` for users
# uses podman's
# normal store. Every podman run/kube play passes --network ns:LAB (never
# podman's default network, which would make a bridge and iptables chains
# in the host's namespace); builds use --network host for apt only.
#
# Run as root: sudo ./test.sh image. Installs what it needs with apt
# (podman, buildah, runc via scripts/image.sh; catatonit for kube play's
# infra container; python3-yaml; debootstrap).
# shellcheck disable=SC2016  # sh -c '...' - ARGS: expanded by that sh
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need_root
cd "$TOP" || exit 1
# shellcheck source=tests/lab.sh
. "$TOP/tests/lab.sh"

CACHE=${DBT_CACHE-/var/cache/dns-blackhole-tester}
STORE=${CACHE:+$CACHE/image-store}
STORE=${STORE:-$TOP/build/image-store}
TMP=$(mktemp -d /tmp/dbtimage.XXXXXX)
PY=/usr/bin/python3            # Debian's: python3-yaml is installed for it
CNAME=dbt-image-$$
PODYAML=$TMP/pod.yaml
NODE=lab-node-$$
# podman refuses a runroot longer than 50 characters (a scratch copy of
# the tree, as tests/mutate.sh makes, has a long path): it lives in $TMP.
# The kept store's database remembers its runroot and refuses another:
# one fixed path for it (short, on tmpfs, removed at the end as before).
RUNROOT=$TMP/run
[ -n "$CACHE" ] && RUNROOT=/run/dbt-image-run
export PODMAN_STORE="$STORE" PODMAN_RUNROOT="$RUNROOT"
# podman run's default ulimits cannot be set here (no CAP_SYS_RESOURCE):
# runc with none (ENGINEERING.md section 6).
printf '[containers]\ndefault_ulimits = []\n' >"$TMP/containers.conf"
export CONTAINERS_CONF="$TMP/containers.conf"
P() { podman --root "$STORE/root" --runroot "$RUNROOT" "$@"; }
PR() { P --runtime runc "$@"; }

# Our containers and pod, then the store (nothing of it may stay
# mounted: unmount what is ours, under $STORE, before removing it).
# shellcheck disable=SC2317  # (called by the trap)
image_cleanup() {
	if command -v podman >/dev/null && [ -d "$STORE" ]; then
		[ -s "$PODYAML" ] && PR kube down "$PODYAML" >/dev/null 2>&1
		PR rm -f "$CNAME" >/dev/null 2>&1
		PR pod rm -f dns-blackhole-tester >/dev/null 2>&1
	fi
	store_wipe
	# podman (cgroupfs manager) makes libpod_parent/{conmon,libpod-ID} in
	# each cgroup hierarchy. If this run made them, the empty ones go
	# (rmdir refuses a cgroup that holds a process or a child).
	if [ -z "$CG0" ]; then
		for h in /sys/fs/cgroup/*/libpod_parent; do
			[ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	fi
	rm -rf "$TMP"
}
# store_wipe: nothing of the store stays mounted; what is ours in it goes
# (tags localhost/dns-blackhole-tester:*), the store itself too when it is
# not the kept one, or "all" is asked.
store_wipe() {
	if [ -n "$CACHE" ] && [ "${1:-}" != all ] && [ -d "$STORE/root" ]; then
		P images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/dns-blackhole-tester:' |
			while read -r t; do P rmi -f "$t" >/dev/null 2>&1; done
	fi
	awk -v s="$STORE/" -v r="$RUNROOT/" 'index($2, s) == 1 || index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	if [ -z "$CACHE" ] || [ "${1:-}" = all ]; then rm -rf "$STORE"; fi
	rm -rf "$RUNROOT"
}
CG0=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null)
trap image_cleanup EXIT
trap 'exit 1' INT TERM HUP

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
want=
for p in python3 python3-yaml catatonit debootstrap conntrack file; do
	installed "$p" || want="$want $p"
done
if [ -n "$want" ]; then
	echo "t_image: installing$want" >&2
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $want >/dev/null ||
		fail "install$want" "apt-get failed"
fi

VERSION=$(make -s --no-print-directory --eval 'image-version: ; @echo $(VERSION)' image-version)
# The ts= of a log line, as epoch milliseconds.
ts_ms() { sed -n 's/^ts=\([^ ]*\) .*/\1/p' | head -n 1 | xargs -r -I{} date -d {} +%s%3N; }

# ---- build: make image, both arches ---------------------------------------

scenario build
key=$(sh scripts/image.sh base-key | head -n 1)
# The kept store goes whole when its base was made under another key (a
# new debootstrap's base must not meet layers cached on the old one) or
# it outgrew its bound; else only what is ours.
# A store podman cannot open (another runroot, a half-written database)
# goes too. The log says which, and why.
why=
if [ -n "$CACHE" ]; then
	had=$(cat "$STORE/base.key" 2>/dev/null) mib=$(du -sm "$STORE" 2>/dev/null | cut -f1)
	if [ ! -d "$STORE/root" ]; then why="none yet"
	elif [ "$had" != "$key" ]; then why="its base's key was '$had', not $key"
	elif [ "${mib:-0}" -gt 3072 ]; then why="$mib MiB, over 3072"
	elif ! P images -q >"$TMP/images.err" 2>&1; then why="podman cannot open it: $(tail -n 1 "$TMP/images.err")"
	fi
fi
if [ -n "$CACHE" ] && [ -z "$why" ]; then
	echo "   image store $STORE kept: base key $key, $mib MiB"
	store_wipe
else
	echo "   image store $STORE made anew: ${why:-DBT_CACHE is empty}"
	store_wipe all
fi
mkdir -p "$STORE"
# The base first (debootstrap, or the cache's tar under its current key:
# scripts/image.sh), then both arches' builds side by side, each a full
# podman build of Dockerfile.scratch on that one base.
t0=$(date +%s)
VERSION=$VERSION PODMAN_STORE=$STORE sh scripts/image.sh base >"$OUT/image-base.log" 2>&1; brc=$?
bsecs=$(($(date +%s) - t0))
grep -q "^image: docker.io/library/debian:bookworm imported" "$OUT/image-base.log" && echo "$key" >"$STORE/base.key"
for arch in amd64 arm64; do
	(t0=$(date +%s); make -s image ARCH=$arch >"$OUT/image-build-$arch.log" 2>&1; echo "$? $(($(date +%s) - t0))" >"$TMP/build-$arch.rc") &
done
wait
for arch in amd64 arm64; do
	read -r rc secs <"$TMP/build-$arch.rc"
	if [ "$brc" = 0 ] && [ "$rc" = 0 ]; then
		# podman's own words for a step it took from the layer cache
		tc=built; grep -A1 'RUN sh scripts/build.sh --toolchain' "$OUT/image-build-$arch.log" | grep -q -- '--> Using cache' && tc="from the cache"
		cc=built; grep -A1 'RUN rm -rf build' "$OUT/image-build-$arch.log" | grep -q -- '--> Using cache' && cc="from the cache (same sources)"
		pass "make image ARCH=$arch ($secs s, beside the other arch's; the base took $bsecs s before them; the toolchain layer $tc, the compile step $cc)"
	else
		fail "make image ARCH=$arch" "base rc=$brc: $(tail -n 2 "$OUT/image-base.log" | tr '\n' ' ') build rc=$rc: $(tail -n 3 "$OUT/image-build-$arch.log" | tr '\n' ' ')"
	fi
done
# The base came from debootstrap, now or in an earlier run whose tar the
# cache keeps under the key of today's inputs, imported into this store
# now or in an earlier run under the same key (the store's base.key);
# never from a registry.
check "debian:bookworm base made by debootstrap (now, or cached under key $key) and imported into the store under that key" \
	sh -c '{ grep -q "^image: docker.io/library/debian:bookworm imported\( from the cache, [^ ]*-$3.tar\)\? (" "$1" ||
	         { ! grep -q imported "$1" && [ "$(cat "$2/base.key" 2>/dev/null)" = "$3" ]; }; } &&
	       podman --root "$2/root" --runroot "$4" image exists docker.io/library/debian:bookworm' - "$OUT/image-base.log" "$STORE" "$key" "$RUNROOT"
check "the builds reused that base (no debootstrap in either)" sh -c '! grep -q debootstrap "$1" "$2"' - "$OUT/image-build-amd64.log" "$OUT/image-build-arm64.log"
# The key follows its inputs: another mirror, another key (a stale tar
# is never imported for it).
expect_eq "the base cache's key changes with the mirror" \
	"$(IMAGE_MIRROR=http://mirror.invalid/debian sh scripts/image.sh base-key | head -n 1 | grep -cvx "$key")" 1
expect_eq "tags: localhost/dns-blackhole-tester:$VERSION and :$VERSION-arm64" \
	"$(P images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/dns-blackhole-tester:' | sort | tr '\n' ' ')" \
	"localhost/dns-blackhole-tester:$VERSION localhost/dns-blackhole-tester:$VERSION-arm64 "
for arch in amd64 arm64; do
	ar=build/dns-blackhole-tester-$VERSION-$arch.oci.tar
	rm -f "$ar"
	if make -s image-save ARCH=$arch >"$OUT/image-save-$arch.log" 2>&1 && [ -s "$ar" ]; then
		pass "make image-save ARCH=$arch: $ar ($(wc -c <"$ar") bytes)"
	else
		fail "make image-save ARCH=$arch" "$(tail -n 2 "$OUT/image-save-$arch.log" | tr '\n' ' ')"
	fi
done

# ---- inspect: the archives, from their blobs ------------------------------

scenario inspect
# The release binaries to compare with: amd64 is test.sh's `make`; arm64
# is built the same way (scripts/build.sh, as the image's build stage).
sh scripts/build.sh --out "$TMP/dist" amd64 arm64 >"$OUT/image-dist.log" 2>&1 ||
	fail "scripts/build.sh amd64 arm64 (the binaries to compare with)" "$(tail -n 2 "$OUT/image-dist.log" | tr '\n' ' ')"
src=$(git remote get-url origin 2>/dev/null || echo unknown)
for arch in amd64 arm64; do
	ar=build/dns-blackhole-tester-$VERSION-$arch.oci.tar
	I=$TMP/oci-$arch.txt X=$TMP/layer-$arch
	mkdir -p "$X"
	"$PY" tests/oci_inspect.py "$ar" "$X" >"$I" 2>&1 || echo "error=$(tail -n 1 "$I")" >>"$I"
	v() { sed -n "s/^$1=//p" "$I" | head -n 1; }
	[ $arch = amd64 ] && ref=localhost/dns-blackhole-tester:$VERSION || ref=localhost/dns-blackhole-tester:$VERSION-$arch
	expect_eq "$arch: archive names $ref, config says linux/$arch" "$(v ref) $(v os)/$(v arch)" "$ref linux/$arch"
	expect_eq "$arch: podman's store says $arch too" "$(P image inspect --format '{{.Os}}/{{.Architecture}}' "$ref" 2>&1)" "linux/$arch"
	# exactly one layer, and in it the binary alone: root-owned, 0755
	bsz=$(wc -c <"$TMP/dist/$arch/dns-blackhole-tester")
	expect_eq "$arch: one layer, holding only dns-blackhole-tester (regular file, 0755, 0:0, $bsz bytes)" \
		"$(v layers)|$(grep '^member=' "$I" | tr '\n' '|')" "1|member=file 100755 0:0 $bsz dns-blackhole-tester|"
	check "$arch: the layer's binary is byte-identical to scripts/build.sh's $arch build" \
		cmp "$X/dns-blackhole-tester" "$TMP/dist/$arch/dns-blackhole-tester"
	d=$(file -b "$X/dns-blackhole-tester")
	want=$( [ $arch = arm64 ] && echo 'ARM aarch64' || echo x86-64)
	case $d in *"$want"*"statically linked"*) pass "$arch: file says $want, statically linked" ;; *) fail "$arch: file says $want, statically linked" "$d" ;; esac
	expect_eq "$arch: USER 65534:65534, ENTRYPOINT [\"/dns-blackhole-tester\"], no CMD" \
		"$(v user) $(v entrypoint) $(v cmd)" '65534:65534 ["/dns-blackhole-tester"] null'
	expect_eq "$arch: OCI labels: version is the Makefile's ($VERSION), title, source, licenses" \
		"$(v label.org.opencontainers.image.version)|$(v label.org.opencontainers.image.title)|$(v label.org.opencontainers.image.source)|$(v label.org.opencontainers.image.licenses)" \
		"$VERSION|dns-blackhole-tester|$src|NOASSERTION"
	check "$arch: OCI label description names kubernetes#126468" sh -c 'grep -q "^label.org.opencontainers.image.description=.*kubernetes/kubernetes#126468" "$1"' - "$I"
	# The history the builder wrote: one step made a layer, a COPY (of
	# the build stage's binary); no step ran anything in the image.
	expect_eq "$arch: history: one step made a layer, a COPY; no RUN step" \
		"$(grep -c '^history=layer ' "$I") $(grep '^history=layer ' "$I" | grep -c ' COPY ') $(grep '^history=' "$I" | grep -vc '#(nop)')" "1 1 0"
	# The layer is the binary plus tar's headers and padding: under 4 KiB more.
	lt=$(v layer_tar) lg=$(v layer_gz)
	if num "$lt" "$lg" && [ "$lt" -ge "$bsz" ] && [ $((lt - bsz)) -lt 4096 ]; then
		pass "$arch: size: binary $bsz bytes, layer $lt bytes as tar, $lg gzipped; podman says $(P image inspect --format '{{.Size}}' "$ref") bytes"
	else
		fail "$arch: layer size within 4 KiB of the binary" "binary $bsz, layer tar '$lt', gz '$lg'"
	fi
	cat "$I" >"$OUT/image-inspect-$arch.txt"
done

# ---- the lab ---------------------------------------------------------------

lab_up || { fail "lab_up"; exit 0; }
# lab_up owns the traps: ours must run before it tears the lab down (a
# container in its namespace must be gone first).
# shellcheck disable=SC2154  # (_rc is set by the trap itself)
trap '_rc=$?; image_cleanup; lab_down; exit $_rc' EXIT
trap 'image_cleanup; lab_down; exit 1' INT TERM HUP

# The host's own namespace, as podman must leave it: no bridge, no chains.
host_net() { { ip -o link show | awk -F': ' '{print $2}' | grep -E '^(cni-|podman|veth)' ; nft list ruleset 2>/dev/null | grep -E 'CNI-|NETAVARK|podman'; } | sort; }
HOSTNET0=$(host_net)

# stat_of PID: the kernel's view of a process, one line.
stat_of() {
	awk '/^(Uid|Gid|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):/ {printf "%s%s ", $1, $2}' "/proc/$1/status" 2>/dev/null
	awk '$5 == "/" {split($6, o, ","); printf "root:%s ", o[1]}' "/proc/$1/mountinfo" 2>/dev/null
	[ "$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$NS_NODE")" ] && printf 'netns:lab'
}
# What ds.yaml's securityContext asks of the kernel: uid/gid 0, only
# CAP_NET_ADMIN (bit 12) effective and bounding, no_new_privs, a seccomp
# filter, a read-only root; the lab's node namespace.
KERNEL_WANT="Uid:0 Gid:0 CapEff:0000000000001000 CapBnd:0000000000001000 CapAmb:0000000000000000 NoNewPrivs:1 Seccomp:2 root:ro netns:lab"

# metrics OUT: GET /metrics on ds.yaml's port from inside the node namespace
# (body to OUT; the status line on stdout).
metrics() { ip netns exec "$NS_NODE" "$PY" tests/metrics/scrape.py get http://127.0.0.1:9797/metrics "$1"; }

# ---- run: the amd64 image with ds.yaml's security context -----------------

scenario run
# The flags, derived: what ds2podman says, and that it follows ds.yaml
# (a ds.yaml with other values gives other flags; an unknown field is refused).
"$PY" tests/ds2podman.py flags ds.yaml --node-name "$NODE" >"$TMP/flags" 2>"$TMP/flags.why"
expect_eq "ds2podman: ds.yaml's securityContext and env as podman flags" "$(tr '\n' ' ' <"$TMP/flags")" \
	"--user=0:0 --security-opt=no-new-privileges --read-only --read-only-tmpfs=false --cap-drop=ALL --cap-add=NET_ADMIN --env=NODE_NAME=$NODE "
sed 's/runAsUser: 0/runAsUser: 4242/; s/add: \["NET_ADMIN"\]/add: ["NET_RAW"]/; s/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/; s/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' \
	ds.yaml >"$TMP/ds-mut.yaml"
expect_eq "ds2podman follows ds.yaml: another uid, capability, writable root, escalation allowed give other flags" \
	"$("$PY" tests/ds2podman.py flags "$TMP/ds-mut.yaml" --node-name n 2>/dev/null | tr '\n' ' ')" \
	"--user=4242:0 --cap-drop=ALL --cap-add=NET_RAW --env=NODE_NAME=n "
sed 's/^\( *\)readOnlyRootFilesystem: true/&\n\1procMount: Unmasked/' ds.yaml >"$TMP/ds-unk.yaml"
"$PY" tests/ds2podman.py flags "$TMP/ds-unk.yaml" --node-name n >/dev/null 2>"$TMP/unk.err"; rc=$?
check "ds2podman refuses a securityContext field it does not know (procMount): exit $rc" \
	sh -c 'test "$1" != 0 && grep -q procMount "$2"' - "$rc" "$TMP/unk.err"
sed 's/^/    /' "$TMP/flags.why"

# shellcheck disable=SC2046
set -- $(cat "$TMP/flags")
dsargs=$("$PY" tests/ds2podman.py args ds.yaml | tr '\n' ' ')
echo "    podman --runtime runc run -d --network ns:/run/netns/$NS_NODE $* IMAGE $dsargs -d $VIP4 -v"
# shellcheck disable=SC2086
PR run -d --name "$CNAME" --network "ns:/run/netns/$NS_NODE" "$@" \
	"localhost/dns-blackhole-tester:$VERSION" $dsargs -d "$VIP4" -v >"$TMP/run.out" 2>&1
expect_eq "podman run (in the lab's node namespace) started the container" "$?" 0
LOG=$OUT/image-run.log
k=0
until PR logs "$CNAME" 2>/dev/null | grep -q 'event=reply '; do
	k=$((k + 1)); [ $k -lt 50 ] || break; sleep 0.1
done
cpid=$(P inspect --format '{{.State.Pid}}' "$CNAME" 2>/dev/null)
expect_eq "the kernel's view of the container's process (/proc/$cpid)" "$(stat_of "$cpid")" "$KERNEL_WANT"
# ds.yaml says NET_RAW is not needed: the process has no CAP_NET_RAW
# (bit 13) in any set, and yet its queries were answered and it read and
# deleted its own conntrack entry.
k=0
until PR logs "$CNAME" 2>/dev/null | grep -q 'event=conntrack_deleted '; do
	k=$((k + 1)); [ $k -lt 50 ] || break; sleep 0.1
done
n=0 raw=0
for c in $(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ { print $2 }' "/proc/$cpid/status" 2>/dev/null); do
	n=$((n + 1)); [ $((0x$c & 8192)) = 0 ] || raw=$((raw + 1))
done
raw=$n:$raw
check "without CAP_NET_RAW (bit 13 in none of 5 sets: $raw): queries answered, own entry read and deleted" \
	sh -c 'test "$1" = 5:0 && PODMAN_LOGS=$(eval "$2 logs $3" 2>&1) &&
	       printf "%s\n" "$PODMAN_LOGS" | grep -q "event=reply .*rcode=NOERROR" &&
	       printf "%s\n" "$PODMAN_LOGS" | grep -q "event=conntrack_deleted "' - "$raw" \
	"podman --root $STORE/root --runroot $RUNROOT --runtime runc" "$CNAME"
expect_eq "podman inspect: CapAdd, EffectiveCaps, ReadonlyRootfs, User, SecurityOpt, NetworkMode as derived" \
	"$(P inspect --format '{{.HostConfig.CapAdd}} {{.EffectiveCaps}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.HostConfig.SecurityOpt}} {{.HostConfig.NetworkMode}}' "$CNAME" 2>&1)" \
	"[CAP_NET_ADMIN] [CAP_NET_ADMIN] true 0:0 [no-new-privileges] ns:/run/netns/$NS_NODE"
PR logs "$CNAME" >"$LOG" 2>&1
check "start line: node=$NODE, conntrack=on, node_watch=watch, metrics=0.0.0.0:9797, interval=1s" \
	sh -c 'l=$(grep "event=start " "$1") && for w in "node=$2" conntrack=on node_watch=watch metrics=0.0.0.0:9797 interval=1s; do
		case " $l " in *" $w "*) ;; *) exit 1 ;; esac; done' - "$LOG" "$NODE"
SRC=$(field "$LOG" start src)
SPORT=${SRC##*:}

# kube-proxy restarting: 2.5 s without the kube-dns rules (two or three
# queries meet it), then the rules back; the container's flow stays on
# its stale entry, and the tester proves it within a few ticks.
if ! { lab_rules window && sleep 2.5 && lab_rules full; }; then fail "lab_rules window, then full"; fi
k=0
until PR logs "$CNAME" 2>/dev/null | grep -q 'event=blackhole '; do
	k=$((k + 1)); [ $k -lt 100 ] || break; sleep 0.1
done
PR logs "$CNAME" >"$LOG" 2>&1
check "event=blackhole from inside the container: own entry not DNAT'd, proof= a probe DNAT'd to $POD4" \
	sh -c 'grep "event=blackhole " "$1" | grep -q "src=$2 .*entry=\"udp .*src=$3 dst=$4 sport=$5 dport=53 \[UNREPLIED\] src=$4 dst=$3 sport=53 dport=$5 .*proof=\"udp .* dport=53 \(\[UNREPLIED\] \)\?src=$6 dst=$3 sport=53 "' \
	- "$LOG" "$SRC" "$NODE4" "$VIP4" "$SPORT" "$POD4"
# As the DaemonSet (--watch-node), the tester deletes its own entry once
# its blackhole is proven and logged (event=healed): it must not page
# about itself for ever. Its next query is answered (event=recovered);
# the oracle, the node namespace's table read by conntrack-tools: no
# entry of that flow goes to the VIP itself any more (the DNAT'd ones it
# makes now are deleted each cycle, as the default mode does).
k=0
until PR logs "$CNAME" 2>/dev/null | grep -q 'event=recovered '; do
	k=$((k + 1)); [ $k -lt 50 ] || break; sleep 0.1
done
lab_ct -L -p udp --orig-port-src "$SPORT" >"$TMP/ct" 2>/dev/null
PR logs "$CNAME" >"$LOG" 2>&1
check "event=healed then event=recovered; conntrack -L in the node namespace: no entry of $NODE4:$SPORT goes to the VIP itself" \
	sh -c 'grep -q "event=healed .*sport=$4 dport=53 \[UNREPLIED\] src=$3" "$1" && grep -q "event=recovered " "$1" &&
		! grep -q "sport=$4 dport=53 .*src=$3 dst=$2 sport=53 dport=$4" "$5"' - "$LOG" "$NODE4" "$VIP4" "$SPORT" "$TMP/ct"

st=$(metrics "$TMP/m.prom" 2>"$TMP/m.err")
bh=$(grep "^dns_blackhole_tester_blackholes_total{server=\"$VIP4:53\",src=\"$SRC\",node=\"$NODE\",kind=\"no_dnat\"} " "$TMP/m.prom" | awk '{print $NF}')
sent=$(grep "^dns_blackhole_tester_queries_sent_total{server=\"$VIP4:53\",src=\"$SRC\",node=\"$NODE\"} " "$TMP/m.prom" | awk '{print $NF}')
if num "$bh" "$sent" && [ "$bh" -ge 1 ] && [ "$sent" -ge 3 ] && case $st in "200 "*) true ;; *) false ;; esac; then
	pass "GET /metrics at 127.0.0.1:9797 in the node namespace ($st): blackholes_total $bh, queries_sent_total $sent, node=\"$NODE\""
else
	fail "GET /metrics in the node namespace: blackholes_total >= 1 with node=\"$NODE\"" "status '$st' bh='$bh' sent='$sent' $(head -c 200 "$TMP/m.err")"
fi

# SIGTERM, "within one tick". The signal is sent early in a tick, 100 to
# 400 ms after it (the ticks are on the grid the start line's ts= begins:
# once healed, the tester logs nothing a tick), so the next tick is at
# least 600 ms away: a tester that only stopped at its next tick would log
# its stop that late, so the bound is half the 1 s tick, 500 ms. The
# signal goes to the container's process by its host PID (kill(1), as
# the runtime's own kill would send it): `podman kill` starts in 40 ms on
# a quiet machine but took 500 ms beside the suite's other lanes, and its
# start-up is no part of the tester's answer. The latency is the stop
# line's own ts= against the wall clock read just before the kill. The
# whole stop, until `podman wait` returns, is held to ds.yaml's
# terminationGracePeriodSeconds, after which a kubelet would SIGKILL.
grace=$("$PY" -c 'import sys, yaml
print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])' ds.yaml)
tstart=$(grep 'event=start ' "$LOG" | ts_ms)
cpid=$(PR inspect --format '{{.State.Pid}}' "$CNAME" 2>/dev/null)
k=0
while [ $k -lt 40 ]; do
	t0=$(now_ms); phase=$(((t0 - ${tstart:-0}) % 1000))
	[ "$phase" -ge 100 ] && [ "$phase" -lt 400 ] && break
	k=$((k + 1)); sleep 0.05
done
t0=$(now_ms)
# (no PID from inspect: podman kill stops it all the same, and the check fails)
case $cpid in ''|0|*[!0-9]*) cpid=; PR kill --signal TERM "$CNAME" >/dev/null 2>&1 ;; *) kill -TERM "$cpid" ;; esac
rc=$(PR wait "$CNAME" 2>&1)
t1=$(now_ms)
PR logs "$CNAME" >"$LOG" 2>&1
tstop=$(grep 'event=stop ' "$LOG" | ts_ms)
phase=$(((t0 - ${tstart:-0}) % 1000))
expect_eq "SIGTERM: exit 3 (a blackhole was seen: the finding survives the stop), stats then stop reason=SIGTERM" \
	"$rc $(grep -o 'event=[a-z_]*' "$LOG" | tail -n 2 | tr '\n' ' ')$(field "$LOG" stop reason)" "3 event=stats event=stop SIGTERM"
if [ -n "$cpid" ] && num "$tstop" "$tstart" && [ $((tstop - t0)) -lt 500 ] && [ "$phase" -lt 500 ] && [ $((t1 - t0)) -lt $((grace * 1000)) ]; then
	pass "SIGTERM $phase ms into a tick (to host PID ${cpid:-?}): stop logged $((tstop - t0)) ms after the kill (< 500 ms, half the 1 s tick); podman wait back after $((t1 - t0)) ms (< ${grace} s grace)"
else
	fail "SIGTERM: stop within one tick" "kill $phase ms into a tick, stop at +$((${tstop:-0} - t0)) ms, podman wait back at +$((t1 - t0)) ms (grace ${grace} s)"
fi
echo "    sigterm: stop +$((${tstop:-0} - t0)) ms, exited +$((t1 - t0)) ms" >>"$OUT/image-numbers.txt"
PR rm -f "$CNAME" >/dev/null 2>&1

# ---- kube: podman kube play of the DaemonSet's pod template ---------------

# podman 4.3.1 cannot play the template as it is, nor put a pod in a
# named namespace: what it says is recorded here (not checks), for the
# template with its ports (hostNetwork: true, podman in the lab's node
# namespace), without ports but with NODE_NAME from the downward API's
# spec.nodeName, then hostNetwork off under --network ns:LAB with
# containerPort kept, and with no ports.
scenario kube
for how in host-ports host-fieldref ns-ports ns; do
	case $how in
	host-ports) o=--keep-ports pre="nsenter --net=/run/netns/$NS_NODE" net='' what="hostNetwork true, ports kept, podman in the lab's node namespace" ;;
	host-fieldref) o=--keep-fieldref pre="nsenter --net=/run/netns/$NS_NODE" net='' what="hostNetwork true, no ports, NODE_NAME from fieldRef spec.nodeName" ;;
	ns-ports) o="--ns-mode --keep-ports" pre='' net="--network ns:/run/netns/$NS_NODE" what="hostNetwork false, containerPort kept, $net" ;;
	ns) o=--ns-mode pre='' net="--network ns:/run/netns/$NS_NODE" what="hostNetwork false, no ports, $net" ;;
	esac
	# shellcheck disable=SC2086
	"$PY" tests/ds2podman.py pod ds.yaml --node-name "$NODE-k" --image "localhost/dns-blackhole-tester:$VERSION" \
		--arg=-d --arg="$VIP4" --arg=-s --arg="$NODE4" $o >"$TMP/pod-$how.yaml" 2>/dev/null
	# shellcheck disable=SC2086
	(cd "$TMP" && $pre podman --root "$STORE/root" --runroot "$RUNROOT" --runtime runc kube play --build=false $net "$TMP/pod-$how.yaml") >"$OUT/image-kube-$how.log" 2>&1
	echo "    kube play ($what): exit $?: $(tail -n 1 "$OUT/image-kube-$how.log")" | tee -a "$OUT/image-numbers.txt"
	PR kube down "$TMP/pod-$how.yaml" >/dev/null 2>&1
done

# So the template runs with hostNetwork: true, without its ports and with
# NODE_NAME's value written in (the only changes but for image, nodeName
# and args), with podman itself in
# the lab's node namespace (nsenter --net; not ip netns exec, whose fresh
# /sys has no cgroup mounts for the pod's limits): "the host's network" is then
# that namespace, as the node's is for a DaemonSet. The interlock: the
# tester binds its socket to the lab node's address ($NODE4, -s), which
# the host's namespace does not have (checked first), so were it anywhere
# else it would exit at bind() without sending a packet.
"$PY" tests/ds2podman.py pod ds.yaml --node-name "$NODE-k" --image "localhost/dns-blackhole-tester:$VERSION" \
	--arg=-d --arg="$VIP4" --arg=-s --arg="$NODE4" --arg=-v >"$PODYAML" 2>"$TMP/pod.err"
check "Pod from ds.yaml's template: same pod and container spec but for image, nodeName, no ports, NODE_NAME's value, args (-d $VIP4 -s $NODE4 -v added)" \
	"$PY" -c 'import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]["spec"]["template"]
pod = yaml.safe_load(open(sys.argv[2]))
assert pod["kind"] == "Pod" and pod["metadata"]["labels"] == ds["metadata"]["labels"], "kind/labels"
a, b = ds["spec"], pod["spec"]
assert b.pop("nodeName") == sys.argv[3], "nodeName"
ca, cb = a.pop("containers"), b.pop("containers")
assert a == b, "pod spec differs"
assert len(ca) == len(cb) == 1, "one container"
ca, cb = ca[0], cb[0]
assert cb.pop("args") == ca.pop("args") + ["-d", sys.argv[4], "-s", sys.argv[5], "-v"], "args"
cb.pop("image"), ca.pop("image"), ca.pop("ports")
assert ca.pop("env") == [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}], "ds.yaml env"
assert cb.pop("env") == [{"name": "NODE_NAME", "value": sys.argv[3]}], "pod env"
assert ca == cb, "container spec differs"
' ds.yaml "$PODYAML" "$NODE-k" "$VIP4" "$NODE4"
expect_eq "the host's namespace has no $NODE4 (the -s interlock holds)" "$(ip -o addr show | grep -c " $NODE4/")" 0
# From $TMP: kube play looks in its working directory for a build context
# named like the image, and here ./dns-blackhole-tester is the binary
# ("stat .../dns-blackhole-tester/Containerfile: not a directory", even
# with --build=false).
(cd "$TMP" && nsenter --net="/run/netns/$NS_NODE" podman --root "$STORE/root" --runroot "$RUNROOT" --runtime runc \
	kube play --build=false "$PODYAML") >"$OUT/image-kube.log" 2>&1
rc=$?
if [ $rc = 0 ]; then
	pass "nsenter --net=/run/netns/$NS_NODE podman kube play (the template's hostNetwork: true)"
else
	fail "nsenter --net=/run/netns/$NS_NODE podman kube play (the template's hostNetwork: true)" "exit $rc: $(tail -n 2 "$OUT/image-kube.log" | tr '\n' ' ')"
fi
KC=dns-blackhole-tester-tester
k=0
until PR logs "$KC" 2>/dev/null | grep -q 'event=reply '; do
	k=$((k + 1)); [ $k -lt 50 ] || break; sleep 0.1
done
kpid=$(P inspect --format '{{.State.Pid}}' "$KC" 2>/dev/null)
expect_eq "kube play: the kernel's view of the pod's container (/proc/${kpid:-?})" "$(stat_of "${kpid:-0}")" "$KERNEL_WANT"
# ds.yaml's limits, as the kernel holds them (cgroup v1 here): the
# memory limit in bytes and the CPU quota per period, computed from ds.yaml.
want=$("$PY" -c 'import sys, yaml
c = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]["containers"][0]
lim = c["resources"]["limits"]
m, cpu = lim["memory"], lim["cpu"]
units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
mem = int(m[:-2]) * units[m[-2:]] if m[-2:] in units else int(m)
milli = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
print("memory=%d cpu=%d/100000" % (mem, milli * 100))' ds.yaml)
cg() { awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup" 2>/dev/null; }
got="memory=$(cat "/sys/fs/cgroup/memory$(cg "${kpid:-0}" memory)/memory.limit_in_bytes" 2>&1)"
got="$got cpu=$(cat "/sys/fs/cgroup/cpu$(cg "${kpid:-0}" cpu)/cpu.cfs_quota_us" 2>&1)/$(cat "/sys/fs/cgroup/cpu$(cg "${kpid:-0}" cpu)/cpu.cfs_period_us" 2>&1)"
expect_eq "kube play: ds.yaml's resources.limits in the container's cgroups ($want), and it answers within them (below)" "$got" "$want"
PR logs "$KC" >"$OUT/image-kube-run.log" 2>&1
check "kube play: node=$NODE-k (NODE_NAME), ds.yaml's args (metrics, watch), src=$NODE4, queries answered" \
	sh -c 'l=$(grep "event=start " "$1") && for w in "node=$2" conntrack=on node_watch=watch metrics=0.0.0.0:9797; do
		case " $l " in *" $w "*) ;; *) exit 1 ;; esac; done && echo "$l" | grep -q " src=$3:[0-9]* " &&
		grep -q "event=reply .*rcode=NOERROR" "$1"' - "$OUT/image-kube-run.log" "$NODE-k" "$NODE4"
st=$(metrics "$TMP/k.prom" 2>"$TMP/k.err")
ans=$(grep "^dns_blackhole_tester_queries_answered_total{server=\"$VIP4:53\",.*,node=\"$NODE-k\"} " "$TMP/k.prom" | awk '{print $NF}')
if num "$ans" && [ "$ans" -ge 1 ] && case $st in "200 "*) true ;; *) false ;; esac; then
	pass "kube play: GET /metrics in the node namespace: queries_answered_total $ans, node=\"$NODE-k\""
else
	fail "kube play: /metrics served in the node namespace" "status '$st' answered='$ans' $(head -c 200 "$TMP/k.err")"
fi
# ds.yaml's memory request against what the process really used: its
# peak RSS (VmHWM) while it ran under kube play, watching the node.
req=$("$PY" -c 'import sys, yaml
c = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]["containers"][0]
m = c["resources"]["requests"]["memory"]
units = {"Ki": 1, "Mi": 1 << 10, "Gi": 1 << 20}
print(int(m[:-2]) * units[m[-2:]] if m[-2:] in units else int(m) // 1024)' ds.yaml 2>&1)
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/${kpid:-0}/status" 2>/dev/null)
if num "$req" "$hwm" && [ "$hwm" -gt 0 ] && [ "$hwm" -le "$req" ]; then
	pass "kube play: the process's peak RSS (VmHWM $hwm KiB) is within ds.yaml's memory request ($req KiB)"
else
	fail "kube play: peak RSS within ds.yaml's memory request" "VmHWM '$hwm' KiB, request '$req' KiB"
fi
PR kube down "$PODYAML" >"$TMP/down" 2>&1
expect_eq "podman kube down: exit 0, no container or pod left" \
	"$?|$(P ps -a --format '{{.Names}}' | tr '\n' ' ')|$(P pod ps -q | tr '\n' ' ')" "0||"

expect_eq "the host's namespace: no podman bridge, veth or CNI chain appeared" "$(host_net)" "$HOSTNET0"
exit 0
