#!/bin/sh
# bench/watch.sh - `sudo make bench-watch`: what the node watch costs on a
# busy node, and how fast it heals. In the namespace lab (the host's own
# network and conntrack table are never touched). Prints a Markdown table.
#
#   1. CPU: the node creates BENCH_WATCH_RATE (20,000) new non-DNS UDP
#      flows a second for BENCH_WATCH_SECS (20) s - a raw-socket sender
#      (bench/harness.c flood) to the gateway, which drops them; UDP
#      timeout 5 s in the node namespace, so the table holds ~100k entries
#      and every flow also ends in a DESTROY event. Measured side by side:
#        - the tester alone (no --watch-node): its CPU (schedstat, ns);
#        - --watch-node with the in-kernel filter;
#        - --watch-node --watch-filter user (every event to user space);
#        - `conntrack -L` once a second (what a polling watcher does):
#          the CPU of those runs (wait4), over the same seconds.
#      For the two watch runs, node_events_total before and after (from
#      /metrics): how many events reached user space. The sender's own CPU
#      is shown too: the kernel creates and filters events in its context.
#   2. Heal time: BENCH_WATCH_HEALS (5) times, 30 fixed-port clients stuck
#      by a restart window at a random phase of the tester's grid,
#      --heal-node -i 1s (the default interval): ms from the rules' return
#      to the last event=client_healed. The proof is the first DNAT'd new
#      flow to the VIP after the return: the tester's next query, or its
#      probe when its own flow was caught in the window too.
#
#   3. One sweep of a "UDP cleaner" on a table with 30 stuck clients and
#      healthy flows: what it deletes besides them.
#
#   sudo make bench-watch
#   sudo BENCH_WATCH_SECS=10 BENCH_WATCH_HEALS=3 sh bench/watch.sh
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
BIN=${BIN:-$TOP/dns-blackhole-tester}
SECS=${BENCH_WATCH_SECS:-20}
RATE=${BENCH_WATCH_RATE:-20000}
HEALS=${BENCH_WATCH_HEALS:-5}
H=$TOP/build/bench/harness
W=$TOP/build/bench/watch
say() { printf 'bench-watch: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root: sudo make bench-watch"; exit 1; }
[ -x "$BIN" ] || { say "no $BIN: make first"; exit 1; }
mkdir -p "$W" "$(dirname "$H")"
gcc -O2 -Wall -Wextra -std=gnu11 -o "$H" "$TOP/bench/harness.c" || exit 1
. "$TOP/tests/lab.sh"
NC="$LAB_PY $TOP/tests/node_clients.py"
lab_up || exit 1
lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=5 net.netfilter.nf_conntrack_udp_timeout_stream=5

cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }
events() {
	lab_node "$LAB_PY" -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:9799/metrics").read().decode())' |
		sed -n 's/^dns_blackhole_tester_node_events_total{.*} \([0-9]*\)$/\1/p'
}
# flood: RATE flows a second for SECS s, to ports far from anything
# watched; prints "sent user_us sys_us" of the sender.
FROM=0
flood() {
	n=$((RATE * SECS))
	out=$(lab_node "$H" flood "$GW4" "$FROM" $((FROM + n)) 10000 "$RATE" 2>"$W/flood.err")
	FROM=$((FROM + n))
	echo "$out $(cat "$W/flood.err")"
}
# pct NS WALL_NS: NS of CPU as a percentage of one core over WALL_NS
pct() { awk -v ns="$1" -v w="$2" 'BEGIN { printf "%.3f", ns / w * 100 }'; }

# tester_run NAME ARGS...: one row
tester_row() {
	name=$1; shift
	# ip netns exec execs the tester: $! is its pid
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 1s --metrics-addr 127.0.0.1:9799 "$@" >"$W/$name.log" 2>&1 &
	tp=$!
	sleep 2
	e0=$(events); c0=$(cpu_ns "$tp"); w0=$(date +%s%N)
	set -- $(flood)
	c1=$(cpu_ns "$tp"); w1=$(date +%s%N); e1=$(events)
	kill -TERM "$tp"; wait "$tp"
	ev=$((${e1:-0} - ${e0:-0}))
	printf '| %s | %s | %s | %s | %s |\n' "$name" "$(pct $((c1 - c0)) $((w1 - w0)))" "$ev" \
		"$1" "$(pct $((($2 + $3) * 1000)) $((w1 - w0)))"
}

poll_row() {
	: >"$W/poll.ru"
	( i=0; while [ $i -lt "$SECS" ]; do
		lab_node "$H" rusage -o "$W/poll.ru" -- conntrack -L >/dev/null 2>&1
		sleep 1; i=$((i + 1)); done ) &
	pp=$!
	w0=$(date +%s%N)
	set -- $(flood)
	w1=$(date +%s%N)
	wait "$pp"
	ns=$(awk '{ s += $2 } END { print s * 1000 }' "$W/poll.ru")
	printf '| %s | %s | %s | %s | %s |\n' "conntrack -L once a second ($(wc -l <"$W/poll.ru") runs)" \
		"$(pct "$ns" $((w1 - w0)))" "all (a dump)" "$1" "$(pct $((($2 + $3) * 1000)) $((w1 - w0)))"
}

say "CPU: $RATE new UDP flows/s for $SECS s, per row"
{
	echo "| run | tester CPU (% of one core) | events that reached user space | new flows sent | sender CPU (%) |"
	echo "|---|---|---|---|---|"
	tester_row "tester, no --watch-node"
	tester_row "--watch-node, in-kernel filter" --watch-node
	tester_row "--watch-node --watch-filter user" --watch-node --watch-filter user
	poll_row
} | tee "$W/cpu.md"

say "heal time: $HEALS windows, 30 clients each"
lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=30 net.netfilter.nf_conntrack_udp_timeout_stream=120
: >"$W/heal.ms"
for i in $(seq "$HEALS"); do
	L=$W/heal-$i.log
	rm -f "$W/ready"
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" --heal-node >"$L" 2>&1 &
	tp=$!
	# the window at a random phase of the tester's 1 s grid
	sleep "$(awk -v s="$i" 'BEGIN { srand(s * 7919); printf "%.2f", 1.1 + rand() }')"
	lab_rules window
	# fresh ports each run: a port of the last run still has its DNAT'd entry
	lab_node $NC --bind "$NODE4" --ports $((22000 + 100 * i))-$((22029 + 100 * i)) --server "$VIP4" --interval 0.1 --duration 4 \
		--log "$W/heal.clients" --ready "$W/ready" &
	cp=$!
	while [ ! -e "$W/ready" ]; do sleep 0.05; done
	sleep 0.5
	r=$(date +%s%3N)
	lab_rules full
	sleep 2.5
	wait "$cp"
	kill -TERM "$tp"; wait "$tp"
	"$LAB_PY" -c '
import sys; sys.path.insert(0, sys.argv[3])
from logcheck import parse
h = [l["_ms"] for l in parse(sys.argv[1]) if l["event"] == "client_healed"]
print(len(h), max(h) - int(sys.argv[2]) if h else -1)' "$L" "$r" "$TOP/tests" >>"$W/heal.ms"
	sleep 0.5
done
awk '{ n[NR] = $2; c[NR] = $1 } END {
	printf "| heal time, rules back -> last of 30 clients healed (-i 1s) | %d runs: ", NR
	for (i = 1; i <= NR; i++) printf "%s%d ms (%d healed)", (i > 1 ? ", " : ""), n[i], c[i]
	print " |" }' "$W/heal.ms" | tee "$W/heal.md"

# 3. One sweep of a "UDP cleaner" (every [UNREPLIED] UDP entry deleted, as
# the cleaner DaemonSets do on a timer) on a table holding 30 stuck
# clients, 200 healthy DNAT'd flows and 60 healthy one-way flows (to a
# real address, to the VIP on another port, to another VIP): what it
# deletes besides the stuck clients. (--heal-node on the same kinds of
# table deletes exactly the stuck clients: tests/t_node.sh's oracle.)
say "a UDP cleaner's sweep on the same kind of table"
rm -f "$W/ready"
for i in $(seq 0 19); do
	for d in "$POD4B 53" "$VIP4 5353" "10.0.0.20 53"; do
		set -- $d
		p=$((24000 + i + 20 * ${#2} + ${#1}))
		echo "-I -t 600 -u UNSET -p udp -s $NODE4 -d $1 --sport $p --dport $2 -r $1 -q $NODE4 --reply-port-src $2 --reply-port-dst $p"
	done
done >"$W/oneway.load"
lab_ct -R "$W/oneway.load" >/dev/null 2>&1
lab_node $NC --bind "$NODE4" --ports 21000-21199 --server "$VIP4" --once >/dev/null 2>&1
lab_rules window
lab_node $NC --bind "$NODE4" --ports 23000-23029 --server "$VIP4" --interval 0.1 --duration 3 \
	--log "$W/sweep.clients" --ready "$W/ready" &
cp=$!
while [ ! -e "$W/ready" ]; do sleep 0.05; done
sleep 0.5
lab_rules full
lab_ct -L -p udp 2>/dev/null | grep -c . >"$W/sweep.before"
lab_ct -L -p udp 2>/dev/null | awk '/UNREPLIED/ {
	for (i = 1; i <= NF; i++) { split($i, kv, "="); if (!(kv[1] in f)) f[kv[1]] = kv[2] }
	print f["src"], f["dst"], f["sport"], f["dport"]; delete f }' >"$W/sweep.list"
while read -r s d sp dp; do
	lab_ct -D -p udp -s "$s" -d "$d" --sport "$sp" --dport "$dp" >/dev/null 2>&1
done <"$W/sweep.list"
wait "$cp"
stuck=$(awk '$3 >= 23000 && $3 <= 23029' "$W/sweep.list" | wc -l)
other=$(($(wc -l <"$W/sweep.list") - stuck))
echo "| one UDP-cleaner sweep, rules back ($(cat "$W/sweep.before") UDP entries) | deleted $((stuck + other)): $stuck stuck clients and $other healthy one-way flows |" | tee "$W/sweep.md"
