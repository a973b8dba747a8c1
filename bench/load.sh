#!/bin/sh
# bench/load.sh - `sudo make bench` (and `sudo sh bench/load.sh`): the node
# watch under load (issue 21). In the namespace lab: the node makes
# LOAD_RATE (100,000) new UDP flows a second for LOAD_SECS (10) s to
# 10.0.128.1 (inside the watched --service-cidr 10.0.0.0/16; the gateway
# drops them), a raw-socket sender (bench/harness.c flood); UDP timeout
# 1 s there, so every flow also ends in a DESTROY event. In the middle a
# 1 s restart window strands 50 fixed-port clients on the DNS VIP. The
# tester runs --heal-node (default -i 1s), once with the default event
# buffer and once with --event-buffer 65536. Per run:
#   - stuck clients reported / healed (want 50 / 50), each once;
#   - skipped_ticks / sent (want <= 1%);
#   - SIGTERM sent mid-flood: ms from the kill to the stop line (its ts);
#   - peak RSS (VmHWM, want < 2 MiB);
#   - flows really sent and the rate reached, ENOBUFS lines, resyncs.
# Also used by tests/t_nodefault.sh (scenario load), which asserts on the
# same lines: LOAD_OUT=DIR writes one file per run there.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
BIN=${BIN:-$TOP/dns-blackhole-tester}
RATE=${LOAD_RATE:-100000}
SECS=${LOAD_SECS:-10}
H=$TOP/build/bench/harness
W=${LOAD_OUT:-$TOP/build/bench/load}
say() { printf 'bench-load: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
[ -x "$BIN" ] || { say "no $BIN: make first"; exit 1; }
mkdir -p "$W" "$(dirname "$H")"
gcc -O2 -Wall -Wextra -std=gnu11 -o "$H" "$TOP/bench/harness.c" || exit 1
. "$TOP/tests/lab.sh"
NC="$LAB_PY $TOP/tests/node_clients.py"
wait_file() { _i=0; while [ ! -e "$1" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done; }
ts_ms() {   # the ts= of a log line on stdin, as epoch ms
	sed -n 's/^ts=\([^ ]*\) .*/\1/p' | "$LAB_PY" -c 'import sys, datetime as d
for l in sys.stdin: print(int(d.datetime.strptime(l.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=d.timezone.utc).timestamp() * 1000))'
}
# healed_by LOG MS: wait until the 50 clients' heals are all in LOG, or
# until epoch MS (1 s before the flood ends, so SIGTERM still lands
# mid-flood). Not a fixed sleep: under the flood a resync can re-date a
# client late and its heal then comes a second later; if it never comes,
# the run says so (healed < 50), not the clock.
healed_by() {
	until [ "$(healed_ports "$1" | wc -l)" -ge 50 ] || [ "$(date +%s%3N)" -ge "$2" ]; do sleep 0.1; done
}
healed_ports() { ports_of client_healed "$1"; }
# lines_of EVENT LOG: the EVENT lines of the 50 clients; ports_of: their ports, once each
lines_of() { grep "event=$1 kind=no_dnat .* sport=220[0-4][0-9] " "$2"; }
ports_of() { lines_of "$1" "$2" | sed -n 's/.* client=[^ ]* sport=\([0-9]*\) .*/\1/p' | sort -u; }
stat_of() { grep 'event=stats ' "$1" | tail -n1 | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }

# run NAME TESTER-OPTIONS...: one line "key=value ..." into $W/NAME.res
run() {
	name=$1; shift
	lab_up >/dev/null || exit 1
	lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=1 net.netfilter.nf_conntrack_udp_timeout_stream=1
	L=$W/$name.log C=$W/$name.clients
	rm -f "$C" "$W/ready"
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" --service-cidr 10.0.0.0/16 --heal-node "$@" >"$L" 2>&1 &
	tp=$!
	sleep 1
	lab_node "$H" flood 10.0.128.1 0 $((RATE * SECS)) 7000 "$RATE" >"$W/$name.flood" 2>"$W/$name.flood.cpu" &
	fp=$!
	f0=$(date +%s%3N)
	sleep $((SECS / 2 - 1))
	lab_rules window
	lab_node $NC --bind "$NODE4" --ports 22000-22049 --server "$VIP4" --interval 0.1 --duration $((SECS / 2 + 1)) \
		--log "$C" --ready "$W/ready" &
	cp=$!
	wait_file "$W/ready"; sleep 1
	lab_rules full
	healed_by "$L" $((f0 + SECS * 1000 - 1000))
	hwm=$(sed -n 's/^VmHWM:[ \t]*\([0-9]*\) kB/\1/p' "/proc/$tp/status")
	k=$(date +%s%3N)
	kill -TERM "$tp"; wait "$tp"; rc=$?
	wait "$fp"; f1=$(date +%s%3N)
	wait "$cp"
	stop=$(grep 'event=stop ' "$L" | ts_ms)
	sent=$(cat "$W/$name.flood")
	bh=$(ports_of client_blackholed "$L" | wc -l)
	hl=$(healed_ports "$L" | wc -l)
	hlines=$(lines_of client_healed "$L" | wc -l)
	echo "name=$name rc=$rc reported=$bh healed=$hl heal_lines=$hlines ticks=$(stat_of "$L" sent) skipped=$(stat_of "$L" skipped_ticks) stop_ms=$((stop - k)) hwm_kb=$hwm flows=$sent secs_ms=$((f1 - f0)) lost=$(stat_of "$L" node_lost) resyncs=$(stat_of "$L" node_resyncs) events=$(stat_of "$L" node_events) interval_ms=${LOAD_IV_MS:-1000}" >"$W/$name.res"
	lab_down
}

say "$RATE flows/s for $SECS s into --service-cidr, 50 clients stuck in the middle"
run default
run evbuf64k --event-buffer 65536
{
	echo "| event buffer | flows sent (rate reached) | stuck reported / healed | skipped ticks / ticks | SIGTERM to stop line | peak RSS | ENOBUFS / resyncs |"
	echo "|---|---|---|---|---|---|---|"
	for f in "$W/default.res" "$W/evbuf64k.res"; do
		# shellcheck disable=SC2046
		eval $(cat "$f")
		awk -v n="$name" -v fl="$flows" -v ms="$secs_ms" -v r="$reported" -v h="$healed" -v s="$skipped" -v t="$ticks" \
			-v st="$stop_ms" -v hw="$hwm_kb" -v l="$lost" -v rs="$resyncs" 'BEGIN {
			printf "| %s | %d (%.0f/s) | %d / %d | %d / %d | %d ms | %d KiB | %d / %d |\n",
				n == "default" ? "default (4 MiB)" : "65536", fl, fl / (ms / 1000), r, h, s, t, st, hw, l, rs }'
	done
} | tee "$W/load.md"
