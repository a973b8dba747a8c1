#!/bin/sh
# demo.sh - `sudo make demo`: the kube-proxy DNS blackhole
# (kubernetes/kubernetes#126468), reproduced, detected and healed in
# network namespaces on this machine, narrated. Under a minute. Act 2: a
# CoreDNS rollout strands a client on a backend that is gone.
#
# DEMO_LOGS=DIR keeps what the tester logged and what conntrack showed at
# each step (DIR/act1, DIR/act2) for tests/t_demo.sh to check.
#
# Nothing touches the host's network: the lab (tests/lab.sh) builds a node,
# a CoreDNS pod and a gateway as namespaces linked only to each other, and
# removes them on exit, Ctrl-C included.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/dns-blackhole-tester
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces): sudo make demo" >&2; exit 1; }
[ -x "$BIN" ] || { echo "demo: build first: make" >&2; exit 1; }
sh "$TOP/scripts/test-deps.sh" || exit 1

if [ -t 1 ]; then B=$(printf '\033[1m') D=$(printf '\033[2m') R=$(printf '\033[0m'); else B= D= R=; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$R"; }
note() { printf '    %s\n' "$*"; }
# show the tester's log lines written since the last call, shortened
SEEN=0
show() {
	sleep "${1:-0}"
	n=$(wc -l <"$LOG")
	[ "$n" -gt "$SEEN" ] && sed -n "$((SEEN + 1)),${n}p" "$LOG" | cut -c 1-"${COLS:-220}" | sed "s/^/    $D/; s/\$/$R/"
	SEEN=$n
}
fld() { /usr/bin/python3 "$TOP/tests/logcheck.py" field "$LOG" "$1" "$2"; }

. "$TOP/tests/lab.sh"
T0=$(date +%s)
say "Building a node in network namespaces: node, CoreDNS pod (dnsmasq), gateway"
lab_up --mode iptables --dns dnsmasq || exit 1
note "node $NODE4, pod $POD4 (dnsmasq), kube-dns Service VIP $VIP4:53 (owned by nobody)"
note "kube-proxy (iptables mode): KUBE-SERVICES -> KUBE-SVC -> DNAT $VIP4:53 to $POD4:53"

LOG=$LAB_DIR/tester.log
say "Starting the tester on the node: one UDP socket, a query every 500 ms"
ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 500ms -w 1s -v >"$LOG" 2>&1 &
TPID=$!
show 1.2
SPORT=$(fld start src | sed 's/.*://')
note "every answer is DNAT'd to the pod; the tester deletes its own DNAT'd entry each cycle,"
note "so each query goes through kube-proxy's rules again (that is how a restart gets hit)."

say "kube-proxy restarts: its new rules do not have kube-dns yet (the other Service's rules stay)"
lab_rules window
note "nat rules naming $VIP4 now: $(lab_node iptables -t nat -S | grep -c "$VIP4") (the $APIVIP4:443 Service keeps its DNAT)"
show 1.0
ENTRY=$(lab_ct -L -p udp --orig-port-src "$SPORT" 2>/dev/null)
note "a query sent into the window created this conntrack entry - straight to the VIP, no NAT:"
note "  $ENTRY"
note "the tester does not call that a blackhole yet: a probe (a fresh socket, one query) is not"
note "DNAT'd either, so the VIP has no rule right now - event=nat_missing, the restart window itself."

say "kube-proxy finishes: the kube-dns rules are back"
lab_rules full
note "but the tester keeps its socket, so its queries keep matching that entry, skip NAT, and die at the gateway."
note "now a probe IS DNAT'd while our entry is not: that is the proof (event=blackhole, proof=), and the"
note "window is measured (event=nat_restored window_ms=, stuck=true):"
show 3.2
note "a client on another fixed port that sent nothing during the window is answered:"
lab_client 40053 4 2 0.1 0.5 | sed 's/^/      /'
note "conntrack-tools, the independent witness, still shows:"
lab_ct -L -p udp --orig-dst "$VIP4" --dport 53 2>/dev/null | grep UNREPLIED | sed 's/^/      /'

say "Healing: scan finds every blackholed flow to the VIP on the node, --fix deletes exactly those"
lab_node "$BIN" scan -d "$VIP4" --fix | tee "$LAB_DIR/scan.log" | cut -c 1-"${COLS:-220}" | sed "s/^/    $D/; s/\$/$R/"
# A query sent just before the delete went down the old entry and waits
# out its timeout (1 s); the next is answered: until event=recovered, 4 s
# at most.
i=0; while ! grep -q 'event=recovered' "$LOG" && [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
show 0.2
kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; RC=$?
show 0

say "A real DNS server that is slow is never called a blackhole"
note "the pod's own address (no NAT), a server answering after 0.6 s, a 250 ms first look:"
lab_dns_stop
lab_pod "$LAB_PY" "$TOP/tests/faults/hostile_dns.py" --bind "$POD4" --mode slow --delay 0.6 \
	--log "$LAB_DIR/slow.q" --ready "$LAB_DIR/slow.ready" &
i=0; while [ ! -e "$LAB_DIR/slow.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
SLOW=$LAB_DIR/slow.log
ip netns exec "$NS_NODE" "$BIN" -d "$POD4" -c 2 -i 1s -w 2s -v >"$SLOW" 2>&1; SRC=$?
cut -c 1-"${COLS:-220}" "$SLOW" | grep -v 'event=stats' | sed "s/^/    $D/; s/\$/$R/"
note "the probe was not DNAT'd and nothing to this server ever was: it is taken as direct, nothing is claimed."

# ------------------------------------------------------------ act 2
# A CoreDNS rollout strands a client: a UDP entry DNAT'd to a backend that
# is gone. Its figures are kept for the summary; its files (the tester's
# log, conntrack as seen at each step, the phase times) go to DEMO_LOGS.
act2() {
	say "Act 2: a CoreDNS rollout strands a client"
	lab_down
	lab_up --mode iptables --dns dnsmasq --backends 2 || exit 1
	A2=$LAB_DIR/act2
	mkdir -p "$A2"
	note "the same node, now with two CoreDNS pods: A $POD4 and B $POD4C (dnsmasq on each)"
	note "kube-proxy load-balances $VIP4:53 over both, per new flow:"
	lab_node iptables -t nat -S | grep -e '-m statistic' -e 'KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.4' |
		grep udp -i | sed 's/^/      /'
	# A source port whose flow kube-proxy sent to B (one in two is).
	P2=
	for p in $(seq 41100 41163); do
		lab_client "$p" 4 1 0 0.5 >/dev/null &&
			lab_ct -L -p udp --orig-src "$NODE4" --sport "$p" 2>/dev/null | grep -q "src=$POD4C " && { P2=$p; break; }
	done
	[ -n "$P2" ] || { echo "demo: no port went to B in 64 tries" >&2; exit 1; }
	LOG2=$A2/tester.log
	say "A client that keeps its port: the tester in --monitor mode on $NODE4:$P2, a query every 200 ms"
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -s "$NODE4:$P2" --monitor -i 200ms -w 300ms -v >"$LOG2" 2>&1 &
	TPID2=$!
	LOG=$LOG2 SEEN=0
	show 1.0
	lab_ct -L -p udp --orig-src "$NODE4" --sport "$P2" >"$A2/ct-before.txt" 2>/dev/null
	note "its conntrack entry is DNAT'd to B:"
	sed 's/^/      /' "$A2/ct-before.txt"

	say "The rollout: kube-proxy drops B from the VIP, pod B goes away (its address too)"
	echo "rollout $(date +%s%3N)" >"$A2/phases"
	lab_rollout || exit 1
	note "nat rules naming $POD4C now: $(lab_node iptables -t nat -S | grep -c "$POD4C")"
	show 2.5
	note "fresh sockets to the same VIP are answered (kube-proxy sends them to A):"
	for i in 1 2 3; do lab_client 0 4 1 0 0.5; done | tee "$A2/fresh.txt" | sed 's/^/      /'
	lab_ct -L -p udp --orig-src "$NODE4" --orig-dst "$VIP4" 2>/dev/null >"$A2/ct-stuck.txt"
	note "conntrack-tools, the witness: the tester's entry still points at B, whose address is gone:"
	grep "sport=$P2 " "$A2/ct-stuck.txt" | sed 's/^/      /'
	note "nobody deletes it, and each query the tester sends keeps it alive."
	note "the tester proved it (B silent when asked straight, twice; fresh flows answered by A):"
	grep 'event=blackhole ' "$LOG2" | sed 's/^/      /' 

	say "Healing: delete that one entry (conntrack -D -p udp --orig-src $NODE4 --sport $P2 --orig-dst $VIP4)"
	echo "heal $(date +%s%3N)" >>"$A2/phases"
	lab_ct -D -p udp --orig-src "$NODE4" --sport "$P2" --orig-dst "$VIP4" 2>&1 | sed 's/^/      /'
	show 1.5
	lab_ct -L -p udp --orig-src "$NODE4" --sport "$P2" >"$A2/ct-after.txt" 2>/dev/null
	note "its next query made a new entry, DNAT'd to A:"
	sed 's/^/      /' "$A2/ct-after.txt"
	kill -TERM "$TPID2" 2>/dev/null; wait "$TPID2"; RC2=$?
	echo "exit $RC2" >>"$A2/phases"
	show 0
	[ -n "${DEMO_LOGS:-}" ] && mkdir -p "$DEMO_LOGS/act2" && cp "$A2"/* "$DEMO_LOGS/act2/"
	A2_TO=$(($(/usr/bin/python3 "$TOP/tests/logcheck.py" after "$LOG2" timeout "$(sed -n 's/^rollout //p' "$A2/phases")") -
		$(/usr/bin/python3 "$TOP/tests/logcheck.py" after "$LOG2" timeout "$(sed -n 's/^heal //p' "$A2/phases")")))
	A2_FRESH=$(grep -c '^ok ' "$A2/fresh.txt")
}

BH=$(/usr/bin/python3 "$TOP/tests/logcheck.py" count "$LOG" blackhole)
NM=$(/usr/bin/python3 "$TOP/tests/logcheck.py" count "$LOG" nat_missing)
WMS=$(fld nat_restored window_ms)
SBH=$(/usr/bin/python3 "$TOP/tests/logcheck.py" count "$SLOW" blackhole)
SANS=$(/usr/bin/python3 "$TOP/tests/logcheck.py" count "$SLOW" reply)
LATE=$(/usr/bin/python3 "$TOP/tests/logcheck.py" count "$LOG" timeout cause=blackhole)
REC=$(fld recovered outage_ms)
# Act 1's files, for tests/t_demo.sh (the lab folder goes with lab_down).
if [ -n "${DEMO_LOGS:-}" ]; then
	mkdir -p "$DEMO_LOGS/act1"
	cp "$LOG" "$SLOW" "$LAB_DIR/scan.log" "$DEMO_LOGS/act1/" && echo "$ENTRY" >"$DEMO_LOGS/act1/ct-window.txt" &&
		printf 'exit %s\nslow_exit %s\n' "$RC" "$SRC" >"$DEMO_LOGS/act1/phases"
fi
act2
cat <<SUMMARY

${B}Summary${R} ($(($(date +%s) - T0)) s)
  reproduced   a query sent while kube-dns had no DNAT rule created
               ${ENTRY:-<no entry seen>}
  window       event=nat_missing: $NM while the rules were gone; event=nat_restored window_ms=${WMS:-?}
  detected     event=blackhole: $BH, proven by a DNAT'd probe once the rules were back (entry, proof, the conntrack -D to run)
  persisted    $LATE queries timed out with cause=blackhole after the rules were back
  unaffected   another fixed-port client on the same node was answered
  healed       scan --fix deleted the entry (guarded by its conntrack ID); event=recovered after ${REC:-?} ms
  exit status  $RC (3 = a blackhole was proven)
  slow server  $SANS answers after 0.6 s, blackholes claimed: $SBH, exit $SRC
 act 2, a CoreDNS rollout strands a client
  stranded     the tester's entry stayed DNAT'd to $POD4C after it was gone; $A2_TO queries timed out
  unaffected   $A2_FRESH of 3 fresh sockets answered by $POD4
  healed       conntrack -D of that one entry; its next entry went to $POD4; tester exit $RC2
  the tester:  $BIN  ($(stat -c %s "$BIN") bytes, static)
SUMMARY
