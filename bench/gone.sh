#!/bin/sh
# bench/gone.sh - `sudo make bench` (and `sudo sh bench/gone.sh`): the node
# watch and the second kind, a backend gone (issue 19). In the namespace
# lab with two DNS backends (lab_up --backends 2; lab_rollout removes B);
# the host's own network and table are never touched. Prints a Markdown
# table.
#
#   1. Speed: 40 fixed-port clients (one query each 100 ms) on the DNS VIP,
#      about half DNAT'd to B, with 200,000 unrelated entries in the table
#      (a raw-socket flood to the gateway, UDP timeout raised);
#      --heal-node -i 200ms -w 300ms. Per run: ms from B's address gone to
#      the last of B's clients answered again (by A). GONE_RUNS (3) runs.
#   2. 2,000 clients stranded on one gone backend: 2,000 replied entries
#      DNAT'd to B (conntrack -I), the same 200,000 unrelated entries;
#      --heal-node -i 200ms -w 300ms --heal-rate 100000 (the default 100 a
#      second would make it 20 s by design). ms from B's address gone to
#      the last event=client_healed, and the tester's CPU (schedstat) over
#      that time.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
BIN=${BIN:-$TOP/dns-blackhole-tester}
RUNS=${GONE_RUNS:-3}
FILL=${GONE_FILL:-200000}
H=$TOP/build/bench/harness
W=$TOP/build/bench/gone
say() { printf 'bench-gone: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root: sudo make bench"; exit 1; }
[ -x "$BIN" ] || { say "no $BIN: make first"; exit 1; }
mkdir -p "$W" "$(dirname "$H")"
gcc -O2 -Wall -Wextra -std=gnu11 -o "$H" "$TOP/bench/harness.c" || exit 1
. "$TOP/tests/lab.sh"
NC="$LAB_PY $TOP/tests/node_clients.py"

cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }
# ms_of LOG EVENT: epoch ms of the last EVENT line
last_ms() {
	grep "event=$2 " "$1" | tail -n1 | sed -n 's/^ts=\([^ ]*\) .*/\1/p' |
		"$LAB_PY" -c 'import sys, datetime as d
for l in sys.stdin: print(int(d.datetime.strptime(l.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=d.timezone.utc).timestamp() * 1000))'
}
wait_file() { _i=0; while [ ! -e "$1" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done; }
setup() {
	lab_up --backends 2 >/dev/null || exit 1
	lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=600 net.netfilter.nf_conntrack_udp_timeout_stream=600
	lab_node "$H" flood 10.224.0.1 0 "$FILL" 10000 >/dev/null 2>&1
	n=$(lab_ct -C 2>/dev/null)
	say "table: $n entries"
}

speed_run() {
	setup
	C=$W/speed.clients L=$W/speed-$1.log
	rm -f "$C" "$W/ready"
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 200ms -w 300ms --heal-node --heal-rate 1000 >"$L" 2>&1 &
	tp=$!
	lab_node $NC --bind "$NODE4" --ports 22000-22039 --server "$VIP4" --interval 0.1 --duration 6 --log "$C" --ready "$W/ready" &
	cp=$!
	wait_file "$W/ready"; sleep 1
	lab_ct -L -p udp --orig-dst "$VIP4" 2>/dev/null | sed -n "s/.* sport=\(220[0-9][0-9]\) dport=53 .*src=$POD4C .*/\1/p" | sort -u >"$W/onb"
	lab_rollout
	r=$(date +%s%3N)
	sleep 3
	wait "$cp"
	kill -TERM "$tp"; wait "$tp"
	worst=$(awk -v t="$r" '$1 == "ok" && $3 > t && !($2 in f) { f[$2] = $3 - t } END { for (k in f) print k, f[k] }' "$C" |
		grep -F -w -f "$W/onb" | awk '{ print $2 }' | sort -n | tail -n1)
	echo "$(wc -l <"$W/onb") ${worst:-never} $(grep -c 'event=client_healed kind=gone_backend' "$L")"
	lab_down
}

bulk_run() {
	setup
	L=$W/bulk.log
	for i in $(seq 0 1999); do
		p=$((30000 + i))
		echo "-I -t 600 -u SEEN_REPLY,ASSURED -p udp -s $NODE4 -d $VIP4 --sport $p --dport 53 -r $POD4C -q $NODE4 --reply-port-src 53 --reply-port-dst $p --dst-nat $POD4C"
	done >"$W/bulk.load"
	lab_ct -R "$W/bulk.load" >/dev/null 2>&1
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 200ms -w 300ms --heal-node --heal-rate 100000 >"$L" 2>&1 &
	tp=$!
	sleep 2
	c0=$(cpu_ns "$tp")
	lab_rollout
	r=$(date +%s%3N)
	i=0
	while [ "$(grep -c 'event=client_healed kind=gone_backend' "$L")" -lt 2000 ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	c1=$(cpu_ns "$tp")
	kill -TERM "$tp"; wait "$tp"
	healed=$(grep -c 'event=client_healed kind=gone_backend' "$L")
	last=$(last_ms "$L" client_healed)
	echo "$healed $((last - r)) $(((c1 - c0) / 1000000))"
	lab_down
}

say "speed: $RUNS runs, 40 clients, $FILL unrelated entries"
: >"$W/speed.txt"
for k in $(seq 1 "$RUNS"); do speed_run "$k" >>"$W/speed.txt"; done
say "2,000 clients on one gone backend"
set -- $(bulk_run)
{
	echo "| run | clients on B | heals | last answered again / last heal after B gone | tester CPU |"
	echo "|---|---|---|---|---|"
	awk '{ printf "| speed %d: -i 200ms -w 300ms, %s unrelated entries | %s (active) | %s | %s ms | - |\n", NR, f, $1, $3, $2 }' f="$FILL" "$W/speed.txt"
	echo "| 2,000 stranded, $FILL unrelated entries, --heal-rate 100000 | 2000 (idle) | $1 | $2 ms | $3 ms |"
} | tee "$W/gone.md"
