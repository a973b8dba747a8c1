#!/bin/sh
# bench/run.sh - `sudo make bench`: every figure of the benchmarks issue,
# measured side by side in one run inside the namespace lab, written to
# bench/RESULTS.md (a Markdown table with the machine, kernel, date and
# command). About 11 minutes with the defaults.
#
# What it does, in order (all in the lab's node namespace; the host's own
# network and conntrack table are never touched):
#   1. lab_up (iptables mode, dnsmasq), UDP conntrack timeouts raised to
#      3600 s in the node namespace, 12 decoys (lab_decoys: one of them a
#      blackholed client of the IPv4 VIP, so `scan` has something to find).
#   2. Footprint: size of the stripped binary; start-up to the first query
#      on the wire (median of BENCH_STARTS launches: the child's clock just
#      before execve to the kernel's timestamp of the query leaving pod0);
#      peak RSS (VmHWM) after BENCH_RSS_CYCLES cycles at 10 ms (600 cycles
#      = 10 minutes at the default 1 s interval).
#   3. Tick accuracy: BENCH_TICKS cycles at 10 ms; each query's kernel
#      timestamp on pod0 against the grid anchored at the first query.
#   4. Detection latency: BENCH_DETECTS restart windows per setting, each
#      at a random phase; from the rules' return to the moment the tester's
#      event=blackhole line (proven by a DNAT'd probe) is read from its pipe.
#   5. BENCH_RUNS rounds over the table sizes in BENCH_SIZES (smallest,
#      largest, then the rest; odd rounds in reverse), so every size is
#      measured spread over the whole run, the smallest and the largest
#      always back to back, and other work on the machine falls on all
#      sizes alike. The table is filled by a raw-socket sender (harness
#      flood: one datagram per flow to the gateway, which drops it, so
#      each stays an [UNREPLIED] entry) and emptied band by band with
#      `conntrack -D --dport`. At each size, each round:
#        - the tester, BENCH_CYCLES cycles at 10 ms: CPU per cycle from
#          wait4's rusage (the tester's own user + system time), and each
#          cycle's own CPU (its CPU clock read mid-interval, while it sleeps);
#        - the original method: BENCH_ORIG_CYCLES cycles of one DNS query
#          plus one `conntrack -D -p udp --src NODE --sport P --dst-nat`;
#        - the tester's lookup alone: BENCH_GETS nl_get() calls in a tight
#          loop (bench/getloop.c, linking nl.c), CPU per lookup;
#        - `scan -d VIP` against `conntrack -L -p udp --orig-dst VIP
#          --dport 53` (and `scan --filter user`), BENCH_SCAN_RUNS each,
#          interleaved: wall and CPU;
#      and in the first round only, syscalls per cycle (strace -c of 250
#      cycles minus 50 cycles; strace slows what it traces, so it is never
#      part of a timing), one `conntrack -D` under strace -c, and at the
#      smallest size a perf profile of BENCH_CYCLES cycles (where the
#      CPU of a cycle goes).
#   6. bench/report.py turns build/bench/raw into the table.
#
# Knobs (environment): BENCH_SIZES="0 10000 50000 200000" BENCH_RUNS=10
# BENCH_CYCLES=1000 BENCH_ORIG_CYCLES=2 BENCH_SCAN_RUNS=1 BENCH_TICKS=10000
# BENCH_STARTS=21 BENCH_DETECTS=5 BENCH_RSS_CYCLES=600 BENCH_GETS=100000
# BENCH_OUT=bench/RESULTS.md BENCH_RAW=build/bench/raw
# (tests/t_bench.sh runs it on tiny sizes into build/, never over RESULTS.md.)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
BIN=${BIN:-$TOP/dns-blackhole-tester}
SIZES=${BENCH_SIZES:-"0 10000 50000 200000"}
RUNS=${BENCH_RUNS:-10}
CYCLES=${BENCH_CYCLES:-1000}
ORIG_CYCLES=${BENCH_ORIG_CYCLES:-2}
SCAN_RUNS=${BENCH_SCAN_RUNS:-1}
TICKS=${BENCH_TICKS:-10000}
STARTS=${BENCH_STARTS:-21}
DETECTS=${BENCH_DETECTS:-5}
RSS_CYCLES=${BENCH_RSS_CYCLES:-600}
OUTMD=${BENCH_OUT:-$TOP/bench/RESULTS.md}
RAW=${BENCH_RAW:-$TOP/build/bench/raw}
H=$TOP/build/bench/harness
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, conntrack): sudo make bench"
[ -x "$BIN" ] || die "no $BIN: build first (make)"
sh "$TOP/scripts/test-deps.sh" || die "installing packages failed"
mkdir -p "$(dirname "$H")" || exit 1
gcc -O2 -Wall -Wextra -std=gnu11 -o "$H" "$TOP/bench/harness.c" || die "building bench/harness.c failed"
# getloop links the tester's own nl.c with the libmnl.a `make` fetched.
G=$TOP/build/bench/getloop
D=$TOP/build/deps/$(dpkg --print-architecture 2>/dev/null || echo amd64)
rm -f "$G"
gcc -O2 -std=gnu11 -I"$TOP" -isystem "$D/include" -o "$G" "$TOP/bench/getloop.c" "$TOP/nl.c" "$TOP/log.c" "$D/lib/libmnl.a" ||
	say "building bench/getloop.c failed: no lookup-alone figures"
GETS=${BENCH_GETS:-100000}
for n in $SIZES; do case $n in ''|*[!0-9]*) die "BENCH_SIZES: '$n' is not a number" ;; esac; done
SIZES=$(for n in $SIZES; do echo "$n"; done | sort -n -u | tr '\n' ' ')

rm -rf "$RAW"
mkdir -p "$RAW" || exit 1
T0=$(date +%s)

# ---- the machine, and who else is using it --------------------------
load() { cut -d' ' -f1-3 /proc/loadavg; }
busy() {   # processes using >= 20% of a CPU right now (not ours)
	ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 20 { printf "%s%s (%.0f%%)", s, $2, $1; s = ", " }'
}
{
	echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "cores $(nproc)"
	echo "mem_mib $(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
	echo "kernel $(uname -sr)"
	echo "os $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "virt $(systemd-detect-virt 2>/dev/null || echo unknown)"
	echo "commit $(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "conntrack $(conntrack --version 2>&1 | head -n1)"
	if [ -n "${MAKELEVEL:-}" ]; then cmd="sudo make bench"; else cmd="sudo sh bench/run.sh"; fi
	envs=$(env | grep '^BENCH_' | sort | tr '\n' ' ')
	echo "command ${envs}${cmd}"
	echo "load_start $(load)"
	echo "knobs sizes=$(echo $SIZES | tr ' ' ,) gets=${BENCH_GETS:-100000} runs=$RUNS cycles=$CYCLES orig_cycles=$ORIG_CYCLES scan_runs=$SCAN_RUNS ticks=$TICKS starts=$STARTS detects=$DETECTS rss_cycles=$RSS_CYCLES"
	echo "busy_start $(busy)"
} >"$RAW/meta.txt"

# ---- the lab ---------------------------------------------------------
# Decoys outlive the whole run (the default 600 s could end mid-run).
LAB_DECOY_TIMEOUT=3600
. "$TOP/tests/lab.sh"
lab_up --mode iptables --dns dnsmasq || die "lab_up failed"
N=$NS_NODE
# Per-namespace sysctls: the flood's entries must live through the run.
ip netns exec "$N" sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=3600 \
	net.netfilter.nf_conntrack_udp_timeout_stream=3600 || die "raising UDP timeouts failed"
echo "ct_max $(ip netns exec "$N" sysctl -n net.netfilter.nf_conntrack_max)" >>"$RAW/meta.txt"
echo "ct_buckets $(ip netns exec "$N" sysctl -n net.netfilter.nf_conntrack_buckets)" >>"$RAW/meta.txt"
lab_decoys 12 || die "lab_decoys failed"
# The entry getloop looks up: shaped like the tester's own (NODE:39999 to
# the VIP, DNAT'd to the pod, replied), and left alone by everything else.
ip netns exec "$N" conntrack -I -p udp -s "$NODE4" -d "$VIP4" --sport 39999 --dport 53 -t 3600 \
	-u SEEN_REPLY -r "$POD4" -q "$NODE4" --reply-port-src 53 --reply-port-dst 39999 >/dev/null 2>&1 ||
	die "inserting getloop's entry failed"

ct_count() { ip netns exec "$N" conntrack -C 2>/dev/null; }

# ---- 2. footprint ------------------------------------------------------
say "footprint: binary size, start-up x$STARTS, peak RSS after $RSS_CYCLES cycles"
stat -c %s "$BIN" >"$RAW/size.txt"
file -b "$BIN" >"$RAW/file.txt" 2>/dev/null
size -A "$BIN" >"$RAW/sections.txt" 2>/dev/null
i=0
while [ $i -lt "$STARTS" ]; do
	ip netns exec "$N" "$H" stamp -i pod0 -p 53 -n 1 -t 5 -- "$BIN" -d "$VIP4" >"$RAW/start.$i" ||
		say "start-up run $i: no query seen"
	i=$((i + 1))
done

ip netns exec "$N" "$BIN" -d "$VIP4" -i 10ms >"$RAW/rss.log" 2>&1 &
tpid=$!
sleep "$(awk -v n="$RSS_CYCLES" 'BEGIN { printf "%.2f", n * 0.01 + 0.05 }')"
grep -E '^(VmHWM|VmRSS|VmPeak|RssAnon|RssFile):' "/proc/$tpid/status" >"$RAW/rss.txt"
kill -TERM "$tpid"
wait "$tpid"

# ---- 3. tick accuracy --------------------------------------------------
say "ticks: $TICKS cycles at 10 ms ($((TICKS / 100)) s)"
echo "load_ticks $(load)" >>"$RAW/meta.txt"
ip netns exec "$N" "$H" stamp -i pod0 -p 53 -n "$TICKS" -t $((TICKS / 100 + 30)) -- \
	"$BIN" -d "$VIP4" -i 10ms -w 1s -c "$TICKS" >"$RAW/ticks.txt" || say "ticks: fewer queries seen than sent"

# ---- 4. detection latency ------------------------------------------------
# One trial: a fresh tester, a restart window of 1.5 s opened at a random
# phase of its grid. A blackhole is proven only once the rules are back
# (a probe DNAT'd while our entry is not), so the latency runs from the
# rules' return (stamped just before they go back) to the moment the
# tester's event=blackhole line is read; the fix command the tester
# printed then clears the blackholed entry it left.
detect() {   # NAME INTERVAL TIMEOUT TRIAL
	f=$RAW/detect.$1.$4
	ip netns exec "$N" "$H" stamp -i gw0 -p 53 -n 1 -l event=blackhole -t 20 -- \
		"$BIN" -d "$VIP4" -i "$2" -w "$3" >"$f" &
	hpid=$!
	sleep "$(awk -v s="$(date +%N)" 'BEGIN { srand(s); printf "%.3f", 1 + rand() * 1.5 }')"
	lab_rules window
	sleep 1.5
	echo "restore $(date +%s%N)" >"$RAW/restore.$1.$4"
	lab_rules full
	wait "$hpid" || say "detect $1 trial $4: no blackhole seen"
	fix=$(sed -n 's/.* fix="\([^"]*\)".*/\1/p' "$f")
	[ -n "$fix" ] && ip netns exec "$N" sh -c "$fix" >/dev/null 2>&1
}
say "detection: $DETECTS windows at 1 s / 2 s and at 200 ms / 500 ms"
i=0
while [ $i -lt "$DETECTS" ]; do
	detect default 1s 2s $i
	detect fast 200ms 500ms $i
	i=$((i + 1))
done

# ---- 5. against the table size, in rounds ---------------------------------
# The table is filled in bands: band k holds the flows between sizes k-1
# and k, to destination ports 10000 + 10k + j (64,000 flows a port), so a
# band can be removed again with `conntrack -D --dport`. Rounds go up the
# sizes and back down (serpentine), one tester run per size per round:
# each size is measured spread over the whole run, so load that comes and
# goes (other work on the machine) falls on every size alike.
nsz=$(echo $SIZES | wc -w)
size_at() { echo $SIZES | awk -v k="$1" '{ print $(k + 1) }'; }
below() { if [ "$1" -gt 0 ]; then size_at $(($1 - 1)); else echo 0; fi; }
LEVEL=-1
band_add() {   # K
	from=$(below "$1") to=$(size_at "$1")
	[ "$to" -gt "$from" ] || return 0
	t=$(date +%s%N)
	ip netns exec "$N" "$H" flood "$GW4" "$from" "$to" $((10000 + 10 * $1)) >/dev/null || die "flood failed"
	echo "$((to - from)) $(( ($(date +%s%N) - t) / 1000000 ))" >>"$RAW/flood.txt"
}
band_del() {   # K
	from=$(below "$1") to=$(size_at "$1")
	j=0
	while [ $((j * 64000)) -lt $((to - from)) ]; do
		ip netns exec "$N" conntrack -D -p udp --orig-dst "$GW4" --dport $((10000 + 10 * $1 + j)) >/dev/null 2>&1
		j=$((j + 1))
	done
}
set_level() {   # K: the table holds exactly sizes[K] flood entries
	while [ "$LEVEL" -lt "$1" ]; do LEVEL=$((LEVEL + 1)); band_add "$LEVEL"; done
	while [ "$LEVEL" -gt "$1" ]; do band_del "$LEVEL"; LEVEL=$((LEVEL - 1)); done
}

measure() {   # ROUND K
	size=$(size_at "$2")
	d=$RAW/size.$size
	mkdir -p "$d"
	set_level "$2"
	echo "$1 $(ct_count) $(load)" >>"$d/count.txt"
	say "round $(($1 + 1))/$RUNS, size $size: tester ($CYCLES cycles), original ($ORIG_CYCLES), scan ($SCAN_RUNS)"
	ip netns exec "$N" "$H" cycles -o "$d/ours.txt" -c "$d/cycles.txt" -i pod0 -p 53 -I 10 -n "$CYCLES" -- \
		"$BIN" -d "$VIP4" -i 10ms -w 1s -c "$CYCLES" >/dev/null 2>&1
	ip netns exec "$N" "$H" orig -o "$d/orig.txt" -n "$ORIG_CYCLES" -s "$NODE4" -d "$VIP4" -i 10
	[ -x "$G" ] && ip netns exec "$N" "$G" "$NODE4" 39999 "$VIP4" 53 "$GETS" >>"$d/get.txt"
	i=0
	while [ $i -lt "$SCAN_RUNS" ]; do
		ip netns exec "$N" "$H" rusage -o "$d/scan.txt" -- "$BIN" scan -d "$VIP4" >/dev/null 2>&1
		ip netns exec "$N" "$H" rusage -o "$d/ctl.txt" -- conntrack -L -p udp --orig-dst "$VIP4" --dport 53 >/dev/null 2>&1
		ip netns exec "$N" "$H" rusage -o "$d/scanuser.txt" -- "$BIN" scan --filter user -d "$VIP4" >/dev/null 2>&1
		i=$((i + 1))
	done
	[ "$1" = 0 ] || return 0
	# First round only: syscalls (strace slows what it traces, so it is
	# never part of a timing), and what scan and conntrack -L print; at
	# the smallest size, where a cycle's CPU goes (perf, if it works here).
	if [ "$2" = 0 ] && perf stat -e task-clock true >/dev/null 2>&1; then
		ip netns exec "$N" perf record -q -e cpu-clock -F 20000 -g -o "$d/perf.data" -- \
			"$BIN" -d "$VIP4" -i 10ms -w 1s -c "$CYCLES" >/dev/null 2>&1 &&
		perf report -i "$d/perf.data" --children --sort sym --stdio -g none >"$d/perf.sym" 2>/dev/null &&
		perf report -i "$d/perf.data" --no-children --sort dso --stdio -g none >"$d/perf.dso" 2>/dev/null
		rm -f "$d/perf.data"
	fi
	for c in 50 250; do
		ip netns exec "$N" strace -f -c -o "$d/strace.$c" "$BIN" -d "$VIP4" -i 10ms -w 1s -c $c >/dev/null 2>&1
	done
	ip netns exec "$N" strace -f -c -o "$d/strace.orig" conntrack -D -p udp --src "$NODE4" --sport 1 --dst-nat >/dev/null 2>&1
	ip netns exec "$N" "$BIN" scan -d "$VIP4" >"$d/scan.out" 2>&1
	ip netns exec "$N" conntrack -L -p udp --orig-dst "$VIP4" --dport 53 >"$d/ctl.out" 2>/dev/null
}

# The order within a round: smallest, largest, then the rest up; odd
# rounds the reverse. The smallest and the largest size (the pair the
# flatness goal compares) are always measured back to back.
order=0
[ "$nsz" -gt 1 ] && order="0 $((nsz - 1))"
k=1
while [ $k -lt $((nsz - 1)) ]; do order="$order $k"; k=$((k + 1)); done
rorder=$(for k in $order; do echo "$k"; done | sed -n '1!G;h;$p' | tr '\n' ' ')
r=0
while [ $r -lt "$RUNS" ]; do
	if [ $((r % 2)) = 0 ]; then o=$order; else o=$rorder; fi
	for k in $o; do measure $r "$k"; done
	r=$((r + 1))
done

{
	echo "load_end $(load)"
	echo "busy_end $(busy)"
	echo "seconds $(($(date +%s) - T0))"
} >>"$RAW/meta.txt"
lab_down
$PY "$TOP/bench/report.py" "$RAW" "$OUTMD" || die "report failed"
say "wrote $OUTMD ($(($(date +%s) - T0)) s)"
