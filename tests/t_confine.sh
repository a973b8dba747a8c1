#!/bin/sh
# t_confine.sh - the binary confines itself once set up (confine.c): in a
# lab namespace, while it runs,
#   proc      /proc/PID/status: Seccomp 2 (filter), NoNewPrivs 1, CapEff,
#             CapPrm and CapBnd = CAP_NET_ADMIN alone, CapInh and CapAmb
#             empty; the start line says confine=seccomp; the loop, the
#             node watch, /metrics and SIGTERM all still work;
#   off       --unconfined: no filter, capabilities as they were,
#             confine=off on the start line;
#   scan      scan runs confined, and finds what it finds;
#   selftest  the test build (make build/selftest/ARCH/..., CONFINE_SELFTEST:
#             one call off the list right after confine) dies by SIGSYS
#             (signal 31), after a line naming the call - tester and scan;
#   podman    an image of the release binary run by podman/runc under
#             --security-opt seccomp=deploy/seccomp.json in the lab's node
#             namespace answers and heals as it does bare; the same profile
#             without "connect" stops it at set-up (the profile is in force).
#
#   sudo ./test.sh confine
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
PY=$LAB_PY
FILTER_VAR=CONFINE_ONLY
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
STB=$TOP/build/selftest/$ARCH/dns-blackhole-tester
NET_ADMIN=0000000000001000          # bit 12

# status PID KEY: a field of /proc/PID/status
status() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }

if scenario proc; then (
	S=proc D=$OUT/confine-proc
	lab_up || { fail "$S: lab_up"; exit 0; }
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 100ms -w 500ms --watch-node --heal-node \
		--metrics-addr 127.0.0.1:9797 >"$D.log" 2>&1 & T=$!
	sleep 1.5
	st="Seccomp=$(status $T Seccomp) NoNewPrivs=$(status $T NoNewPrivs)"
	caps="CapEff=$(status $T CapEff) CapPrm=$(status $T CapPrm) CapBnd=$(status $T CapBnd) CapInh=$(status $T CapInh) CapAmb=$(status $T CapAmb)"
	ip netns exec "$NS_NODE" "$PY" "$TOP/tests/metrics/flood.py" scrape http://127.0.0.1:9797/metrics 2 5 >"$D.scrape" 2>&1
	kill -TERM "$T"; wait "$T"; rc=$?
	expect_eq "$S: while running: $st" "$st" "Seccomp=2 NoNewPrivs=1"
	expect_eq "$S: capabilities: CAP_NET_ADMIN alone" "$caps" \
		"CapEff=$NET_ADMIN CapPrm=$NET_ADMIN CapBnd=$NET_ADMIN CapInh=0000000000000000 CapAmb=0000000000000000"
	sent=$(field "$D.log" stats sent) ans=$(field "$D.log" stats answered)
	if [ "$(field "$D.log" start confine)" = seccomp ] && [ "$(count_events "$D.log" node_resync)" -ge 1 ] &&
	   num "$sent" && [ "$sent" -ge 5 ] && [ "$ans" = "$sent" ] && grep -q "^served 2 of 2" "$D.scrape"; then
		pass "$S: confine=seccomp on the start line; $ans of $sent answered, node watch resynced, 2 of 2 scrapes served"
	else
		fail "$S: the loop works confined" "confine=$(field "$D.log" start confine) sent=$sent answered=$ans $(cat "$D.scrape") $(grep -m1 level=error "$D.log")"
	fi
	if [ $rc = 0 ] && [ "$(count_events "$D.log" stop)" = 1 ] && [ "$(count_events "$D.log" confine_violation)" = 0 ]; then
		pass "$S: SIGTERM: stop line, exit 0, no confine_violation"
	else
		fail "$S: SIGTERM while confined" "rc=$rc $(grep -m1 -e confine_violation -e level=error "$D.log")"
	fi
); fi

if scenario off; then (
	S=off D=$OUT/confine-off
	lab_up || { fail "$S: lab_up"; exit 0; }
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 100ms -w 500ms --unconfined >"$D.log" 2>&1 & T=$!
	sleep 1
	st="Seccomp=$(status $T Seccomp) CapBnd=$(status $T CapBnd)"
	kill -TERM "$T"; wait "$T"
	full=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
	expect_eq "$S: --unconfined leaves the process as it was" "$st" "Seccomp=0 CapBnd=$full"
	expect_eq "$S: the start line says confine=off" "$(field "$D.log" start confine)" off
); fi

if scenario scan; then (
	S=scan D=$OUT/confine-scan
	lab_up || { fail "$S: lab_up"; exit 0; }
	lab_client 40000 4 3 0.2 0.5 >/dev/null 2>&1
	ip netns exec "$NS_NODE" "$BIN" scan -d "$VIP4" >"$D.log" 2>&1; rc=$?
	ip netns exec "$NS_NODE" strace -f -qq -e trace=prctl -o "$D.strace" "$BIN" scan -d "$VIP4" >/dev/null 2>&1
	if [ $rc = 0 ] && [ "$(count_events "$D.log" scan_summary)" = 1 ] && grep -q 'PR_SET_SECCOMP, SECCOMP_MODE_FILTER.*= 0' "$D.strace" &&
	   [ "$(count_events "$D.log" confine_violation)" = 0 ]; then
		pass "$S: scan installs its filter (strace: PR_SET_SECCOMP = 0) and runs to its summary, exit 0"
	else
		fail "$S: scan confined" "rc=$rc $(grep -c PR_SET_SECCOMP "$D.strace") $(tail -n 2 "$D.log" | tr '\n' ' ')"
	fi
	ip netns exec "$NS_NODE" "$BIN" --unconfined scan -d "$VIP4" >"$D.off" 2>&1; rc=$?
	expect_eq "$S: --unconfined scan runs too (exit, summaries)" "$rc $(count_events "$D.off" scan_summary)" "0 1"
); fi

if scenario selftest; then (
	S=selftest D=$OUT/confine-selftest
	if ! make -C "$TOP" -s "build/selftest/$ARCH/dns-blackhole-tester" >"$D.build" 2>&1; then
		fail "$S: build the CONFINE_SELFTEST binary" "$(tail -n 2 "$D.build" | tr '\n' ' ')"; exit 0
	fi
	lab_up || { fail "$S: lab_up"; exit 0; }
	nr=$(printf '#include <sys/syscall.h>\nSYS_getuid\n' | cc -E -P - | tail -n 1)
	ip netns exec "$NS_NODE" "$STB" -d "$VIP4" -i 100ms -w 500ms -c 3 >"$D.log" 2>&1; rc=$?
	ip netns exec "$NS_NODE" "$STB" scan -d "$VIP4" >"$D.scan" 2>&1; src=$?
	expect_eq "$S: tester: dies by SIGSYS (exit 128+31); scan too" "$rc $src" "159 159"
	if [ "$(field "$D.log" confine_violation syscall)" = "$nr" ] && [ "$(field "$D.scan" confine_violation syscall)" = "$nr" ] &&
	   [ "$(count_events "$D.log" start)" = 0 ]; then
		pass "$S: one line first, event=confine_violation syscall=$nr (getuid), before any start line"
	else
		fail "$S: the violation line" "$(cat "$D.log" "$D.scan" | head -c 400)"
	fi
); fi

if scenario podman; then (
	S=podman D=$OUT/confine-podman
	if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
		fail "$S: podman and runc" "not installed (scripts/image.sh installs them)"; exit 0
	fi
	STORE=$TOP/build/confine-store TMP=$(mktemp -d /tmp/dbtconf.XXXXXX)
	printf '[containers]\ndefault_ulimits = []\n' >"$TMP/containers.conf"
	export CONTAINERS_CONF="$TMP/containers.conf"
	P() { podman --root "$STORE/root" --runroot "$STORE/run" "$@"; }
	# The image as Dockerfile.scratch's last stage makes it (t_image checks
	# that its one layer is this release binary, byte for byte).
	mkdir -p "$TMP/ctx" && cp "$BIN" "$TMP/ctx/" &&
	printf 'FROM scratch\nCOPY dns-blackhole-tester /dns-blackhole-tester\nUSER 65534:65534\nENTRYPOINT ["/dns-blackhole-tester"]\n' >"$TMP/ctx/Containerfile"
	trap 'P rm -a -f >/dev/null 2>&1; P rmi -a -f >/dev/null 2>&1; rm -rf "$TMP" "$STORE"; lab_down' EXIT
	lab_up || { fail "$S: lab_up"; exit 0; }
	trap 'P rm -a -f >/dev/null 2>&1; P rmi -a -f >/dev/null 2>&1; rm -rf "$TMP" "$STORE"; lab_down' EXIT
	if ! P build --pull=never --isolation chroot --network host -t localhost/dbt-confine:test "$TMP/ctx" >"$D.build" 2>&1; then
		fail "$S: podman build" "$(tail -n 2 "$D.build" | tr '\n' ' ')"; exit 0
	fi
	run() {   # PROFILE LOG: the container, as ds.yaml runs it, in the lab's node namespace
		P --runtime runc run --rm --network "ns:/run/netns/$NS_NODE" --user 0 --cap-drop ALL --cap-add NET_ADMIN \
			--read-only --security-opt no-new-privileges --security-opt "seccomp=$1" \
			localhost/dbt-confine:test -d "$VIP4" -i 100ms -w 500ms -c 10 >"$2" 2>&1
	}
	run "$TOP/deploy/seccomp.json" "$D.log"; rc=$?
	ans=$(field "$D.log" stats answered)
	if [ $rc = 0 ] && [ "$ans" = 10 ] && [ "$(field "$D.log" start confine)" = seccomp ] && [ "$(field "$D.log" start conntrack)" = on ]; then
		pass "$S: under deploy/seccomp.json: 10 of 10 answered, conntrack=on, confine=seccomp, exit 0"
	else
		fail "$S: the image under deploy/seccomp.json" "rc=$rc answered=$ans $(head -c 300 "$D.log")"
	fi
	"$PY" -c 'import json,sys; p=json.load(open(sys.argv[1])); [s["names"].remove("connect") for s in p["syscalls"] if "connect" in s["names"]]; json.dump(p,open(sys.argv[2],"w"))' \
		"$TOP/deploy/seccomp.json" "$TMP/noconnect.json"
	run "$TMP/noconnect.json" "$D.noconnect"; rc=$?
	if [ $rc = 2 ] && [ "$(count_events "$D.noconnect" start)" = 0 ] &&
	   grep -q "^dns-blackhole-tester: connect $VIP4:53: Operation not permitted" "$D.noconnect"; then
		pass "$S: the same profile without connect: connect fails EPERM, exit 2 at set-up: the profile is in force"
	else
		fail "$S: profile in force" "rc=$rc $(head -c 200 "$D.noconnect")"
	fi
); fi
