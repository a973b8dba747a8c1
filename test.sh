#!/bin/sh
# test.sh - the whole test suite. Run as root on Debian/Ubuntu:
#
#   sudo ./test.sh               every group
#   sudo ./test.sh e2e dns       only tests/t_e2e.sh and tests/t_dns.sh
#
# It installs its own packages, builds, runs each tests/t_*.sh group and
# ends with "N passed, M failed" (", K skipped" if any). Every network test
# runs in namespaces it creates and removes; the host's own network is
# never touched.
#
# Green (exit 0) means every check ran and passed: no FAIL, no SKIP, and
# each group's scenarios recorded exactly the number of results that
# tests/checks.txt gives them (tests/counts.sh). A filter variable
# (E2E_ONLY, SCAN_ONLY, FAULTS_ONLY, METRICS_ONLY, SOAK_CYCLES) turns what
# it leaves out into SKIP lines, so a filtered run is never green. Naming
# groups on the command line runs only those, and says so.
#
# Lanes. Groups share nothing but the kernel: each makes its own
# namespaces (lab.sh names them after its PID) and here gets its own
# results file and output folder, build/groups/GROUP/{results.txt,out,log},
# so LANES of them (default 7: much of the suite waits on real time, not
# on the CPU; rules, view and verdict hold a lane for minutes on a few
# CPU-seconds each, and with 5 lanes both cores were still idle 12% of
# the run) run side by side, the longest first (the last run's times,
# build/groups/*/time, decide the order; on a fresh clone,
# tests/times.txt). Each group's log is printed
# whole when it ends, its results are held to tests/checks.txt on their
# own, and build/results.txt is all of them merged in group order.
# fleet compares the root namespace (links, addresses, routes,
# iptables, nft) before and after. No group changes it: the lab groups,
# rules, plugin, cli and ship make their links inside namespaces they
# made (`ip -n NS link add`, or `netns` on both ends: the kernel creates
# each end in its namespace, never in the root one), so fleet runs in a
# lane beside them, and any group that did leak into the root namespace
# while it runs is caught too. Only image runs a tool that could (podman,
# whose own names it checks for: cni-*, podman*, veth*, CNI-/NETAVARK
# chains): CHAIN="image+fleet" (the default) runs the two one after the
# other in one lane, so they never overlap. ALONE="fleet" runs a group
# before the lanes, nothing beside it. With sanitize in the run, e2e runs
# once, inside it,
# under ASan+UBSan: its results are the e2e group's (held to e2e's
# counts) and sanitize checks them for reports; `./test.sh e2e` alone
# runs it with the static binary. LANES=1 runs one group at a time.
set -u
TOP=$(cd "$(dirname "$0")" && pwd)
cd "$TOP"
G=$TOP/build/groups
export TOP RESULTS="$TOP/build/results.txt" OUT="$TOP/build/out"
mkdir -p build "$OUT" "$G"
: >"$RESULTS"
LANES=${LANES:-7}
ALONE=${ALONE-}
CHAIN=${CHAIN-image+fleet}

if [ "$(id -u)" != 0 ]; then
	echo "test.sh: needs root (network namespaces, conntrack): sudo ./test.sh" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
case $LANES in ''|*[!0-9]*|0) echo "test.sh: LANES is a number >= 1" >&2; echo "0 passed, 1 failed"; exit 1 ;; esac

sh scripts/test-deps.sh || { echo "test.sh: installing test packages failed"; echo "0 passed, 1 failed"; exit 1; }
# -j2: the host builds (sanitizers, unit tests) are a dozen separate
# compiles; one after the other they took 33 s of the run, 18 s two at a
# time. The release build first: it fetches the deps the host builds use.
if ! make -s -j2 >"$OUT/build.log" 2>&1 || ! make -s -j2 host >>"$OUT/build.log" 2>&1; then
	cat "$OUT/build.log"
	echo "test.sh: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
# Nothing the host builds did may leave the binary out of date: a group's
# make would relink it while the other lanes run it (seen: deps.sh touched
# its stamp on every call, and exec failed with "Permission denied").
if ! make -q; then
	echo "test.sh: the build left $(make -n | grep -c .) commands for a second make: it would rebuild during the run"
	echo "0 passed, 1 failed"
	exit 1
fi

if [ $# -gt 0 ]; then
	groups=$(for g in "$@"; do echo "$g"; done)
else
	groups=$(ls tests/t_*.sh | sed 's|tests/t_||; s|\.sh$||')
fi
has() { echo "$groups" | grep -qx "$1"; }
LIVE=
[ "$(echo "$groups" | wc -l)" = 1 ] && LIVE=1

# run_group NAME: one group into build/groups/NAME; its log stays there.
run_group() {
	_d=$G/$1
	rm -rf "$_d"; mkdir -p "$_d/out"; : >"$_d/results.txt"
	_t0=$(date +%s)
	times >"$_d/.times0"
	if [ ! -f "tests/t_$1.sh" ]; then
		echo "FAIL tests/t_$1.sh: no such test group" >>"$_d/results.txt"
		: >"$_d/log"
	else
		_env=
		# sanitize runs e2e (sanitized) into e2e's own results file
		if [ "$1" = sanitize ] && [ -n "$SAN_E2E" ]; then
			rm -rf "$G/e2e"; mkdir -p "$G/e2e/out"; : >"$G/e2e/results.txt"
			echo "(run by t_sanitize.sh under ASan+UBSan: its log is $G/sanitize/out/sanitize/e2e.out)" >"$G/e2e/log"
			_env="SAN_E2E_RESULTS=$G/e2e/results.txt SAN_E2E_OUT=$G/e2e/out"
		fi
		env $_env RESULTS="$_d/results.txt" OUT="$_d/out" GROUP="$1" sh "tests/t_$1.sh" >"$_d/log" 2>&1 &
		_p=$!
		# one group alone: its log as it is written
		[ -n "$LIVE" ] && echo "== tests/t_$1.sh"
		[ -n "$LIVE" ] && tail -n +1 -f --pid=$_p "$_d/log" 2>/dev/null &
		wait $_p || echo "FAIL tests/t_$1.sh: exited $?" >>"$_d/results.txt"
		wait
		hold "$1" "$_d"
	fi
	echo $(($(date +%s) - _t0)) >"$_d/time"
	times >"$_d/.times1"
	cpu_of "$_d/.times0" "$_d/.times1" >"$_d/cpu"
	if [ "$1" = sanitize ] && [ -n "$SAN_E2E" ]; then
		hold e2e "$G/e2e"
		grep -v '^SCENARIO ' "$G/e2e/results.txt" >>"$G/e2e/log"
		echo "(inside sanitize)" >"$G/e2e/time"
		say e2e
	fi
	say "$1"
}

# cpu_of T0 T1: CPU seconds (user + system) between two outputs of the
# shell's `times` (its second line: the waited-for children's), taken in
# the lane's own shell (not in a $(...), whose fork would count none).
cpu_of() {
	awk 'FNR == 2 { gsub(/[ms]/, " "); split($0, f, " "); t[++n] = f[1] * 60 + f[2] + f[3] * 60 + f[4] }
		END { printf "%d\n", t[2] - t[1] + 0.5 }' "$1" "$2"
}

# hold SUITE DIR: every scenario ran all its checks (tests/checks.txt)
hold() {
	sh tests/counts.sh "$1" "$2/results.txt" >"$2/counts.txt" 2>&1 ||
		sed "s/^/FAIL $1: expected checks: /" "$2/counts.txt" >>"$2/results.txt"
}

# say NAME: the group's log and its time, one group at a time
say() {
	until mkdir "$G/.say" 2>/dev/null; do sleep 0.1; done
	[ -n "$LIVE" ] || { echo "== tests/t_$1.sh"; cat "$G/$1/log"; }
	grep '^FAIL' "$G/$1/results.txt" | grep -vxF -f "$G/$1/log" 2>/dev/null
	_p=$(grep -c '^PASS' "$G/$1/results.txt") _f=$(grep -c '^FAIL' "$G/$1/results.txt")
	echo "   ($(cat "$G/$1/time") s: $1 $_p passed, $_f failed)" | sed 's/(inside sanitize) s/inside sanitize/'
	rmdir "$G/.say"
}

# lane: takes the next item of the queue until none is left; an item is
# one group or groups joined by + (run one after the other).
lane() {
	while :; do
		until mkdir "$G/.take" 2>/dev/null; do sleep 0.1; done
		_n=$(($(cat "$G/.next") + 1)); echo $_n >"$G/.next"
		rmdir "$G/.take"
		_item=$(sed -n "${_n}p" "$G/.queue")
		[ -n "$_item" ] || return 0
		for _g in $(echo "$_item" | tr + ' '); do run_group "$_g"; done
	done
}

# The queue: the longest first by the last run's time, else by
# tests/times.txt (a fresh clone has no last run), else as long.
est() {
	_s=0
	for _g in $(echo "$1" | tr + ' '); do
		_t=$(cat "$G/$_g/time" 2>/dev/null)
		case $_t in ''|*[!0-9]*) _t=$(awk -v g="$_g" '$1 == g { print $2 }' tests/times.txt) ;; esac
		case $_t in ''|*[!0-9]*) _t=600 ;; esac
		_s=$((_s + _t))
	done
	echo "$_s $1"
}
pool= SAN_E2E=
for g in $groups; do
	case " $ALONE " in *" $g "*) continue ;; esac
	pool="$pool $g"
done
if has sanitize && has e2e; then SAN_E2E=1; pool=$(echo "$pool" | tr ' ' '\n' | grep -vx e2e); fi
# a chain's groups, when all are in the pool, are one item of it
for c in $CHAIN; do
	_in=$(echo "$c" | tr + '\n' | while read -r _g; do echo "$pool" | tr ' ' '\n' | grep -qx "$_g" && echo "$_g"; done)
	[ "$(echo "$_in" | wc -w)" -gt 1 ] || continue
	pool="$(echo "$pool" | tr ' ' '\n' | grep -vxF "$_in" | tr '\n' ' ') $(echo $_in | tr ' ' +)"
done

start=$(date +%s)
rm -rf "$G/.say" "$G/.take"
for g in $groups; do
	case " $ALONE " in *" $g "*) run_group "$g" ;; esac
done
if [ -n "$(echo $pool)" ]; then
	for item in $pool; do est "$item"; done | sort -rn | cut -d' ' -f2 >"$G/.queue"
	echo 0 >"$G/.next"
	i=0 pids=
	while [ $i -lt "$LANES" ]; do lane & pids="$pids $!"; i=$((i + 1)); done
	for p in $pids; do wait "$p"; done
fi

# merged in group order; e2e's results, when sanitize ran it, are e2e's
for g in $groups; do cat "$G/$g/results.txt" 2>/dev/null; done >"$RESULTS"
passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
skipped=$(grep -c '^SKIP' "$RESULTS")
echo
echo "time per group (s):$(for g in $groups; do printf ' %s %s' "$g" "$(cat "$G/$g/time" 2>/dev/null || echo -)"; done)"
echo "CPU per group (s):$(for g in $groups; do printf ' %s %s' "$g" "$(cat "$G/$g/cpu" 2>/dev/null || echo -)"; done)"
[ -n "$SAN_E2E" ] && echo "(e2e ran once, inside sanitize, under ASan+UBSan: its time is part of sanitize's)"
grep '^FAIL' "$RESULTS" || true
echo "suite took $(($(date +%s) - start)) s ($LANES lanes)"
if [ $# -gt 0 ]; then
	echo "partial run: groups $* only (of $(ls tests/t_*.sh | wc -l))"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
