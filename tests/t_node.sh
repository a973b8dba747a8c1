#!/bin/sh
# t_node.sh - the node watch (--watch-node, --heal-node): every client on
# the node stuck on a stale entry is reported once and, with --heal-node,
# healed once the VIP's rule is proven back - never before, and nothing
# else in the table changes. In the lab: real kube-proxy rules in both
# modes and both families, real DNS servers, real conntrack events;
# conntrack-tools is the oracle for "nothing else changed".
#
#   sudo ./test.sh node
#   sudo NODE_ONLY="heal filter" ./test.sh node      some scenarios:
#     heal watch loss cidr filter fuzz nocap
#
# Ports: healthy flows 21000-21199, stuck clients 22000-22029, echo
# clients 23000-23002, decoys 24000-24099, filter probes 25001-25011: all
# below the ephemeral range, so the tester's own socket and probes
# (ephemeral) are told apart by port alone.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"
NC="$LAB_PY $TOP/tests/node_clients.py"
W=$OUT/node
mkdir -p "$W"

want() {
	[ -z "${NODE_ONLY:-}" ] && return 0
	case " $NODE_ONLY " in *" $1 "*) return 0 ;; esac
	skip "node: $1" "filtered by NODE_ONLY"
	return 1
}
now_ms() { date +%s%3N; }
tester() { _l=$1; shift; ip netns exec "$NS_NODE" "$BIN" "$@" >"$_l" 2>&1 & TPID=$!; }
stop_tester() { kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; RC=$?; }
wait_file() { _i=0; while [ ! -e "$1" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done; [ -e "$1" ]; }
# fam 4|6: the family's addresses into node= vip= srv= qt=
fam() {
	if [ "$1" = 4 ]; then node=$NODE4 vip=$VIP4 srv=$VIP4 qt=A pod=$POD4 podb=$POD4B vip2=10.0.0.20
	else node=$NODE6 vip=$VIP6 srv="[$VIP6]" qt=AAAA pod=$POD6 podb=$POD6B vip2=fd00:96::14; fi
}

# The table as conntrack-tools prints it, without what time changes
# (timeout, use=) and without flows from ephemeral ports (the tester's
# own socket and its probes, which come and go by design).
table() {
	lab_ct -L 2>/dev/null | _lab_canon | awk '{
		for (i = 1; i <= NF; i++) if ($i ~ /^sport=/) { split($i, s, "="); break }
		if (s[2] + 0 < 32768) print }' | sort
}

# decoys: 20 of each kind the watch must leave alone, in the family of
# fam(): TCP to the VIP, UDP to the VIP on another port, UDP to another
# VIP, UNREPLIED UDP to a real address, DNAT'd replied UDP to the VIP.
decoys() {
	for i in $(seq 0 19); do
		p=$((24000 + i)) q=$((24020 + i)) r=$((24040 + i)) s=$((24060 + i)) u=$((24080 + i))
		echo "-I -t 600 -u UNSET -p tcp -s $node -d $vip --sport $p --dport 53 -r $vip -q $node --reply-port-src 53 --reply-port-dst $p --state SYN_SENT"
		echo "-I -t 600 -u UNSET -p udp -s $node -d $vip --sport $q --dport 5353 -r $vip -q $node --reply-port-src 5353 --reply-port-dst $q"
		echo "-I -t 600 -u UNSET -p udp -s $node -d $vip2 --sport $r --dport 53 -r $vip2 -q $node --reply-port-src 53 --reply-port-dst $r"
		echo "-I -t 600 -u UNSET -p udp -s $node -d $podb --sport $s --dport 53 -r $podb -q $node --reply-port-src 53 --reply-port-dst $s"
		echo "-I -t 600 -u SEEN_REPLY -p udp -s $node -d $vip --sport $u --dport 53 -r $pod -q $node --reply-port-src 53 --reply-port-dst $u --dst-nat $pod"
	done >"$W/decoys.load"
	lab_ct -R "$W/decoys.load" >/dev/null 2>&1
}

# first_ok_after LOG MS: per client port, ms from MS to its first answer
# after MS ("never" if none); one line per port.
first_ok_after() {
	awk -v t="$2" '$1 == "ok" && $3 > t && !($2 in f) { f[$2] = $3 - t }
		$1 == "sent" { p[$2] = 1 }
		END { for (k in p) print k, (k in f ? f[k] : "never") }' "$1" | sort -n
}
# events_per_port LOG EVENT: "N" distinct ports, each seen how often
once_each() {
	grep "event=$2 " "$1" | sed -n 's/.* client=[^ ]* sport=\([0-9]*\) .*/\1/p' | sort | uniq -c |
		awk '{ n++; if ($1 != 1) bad++ } END { printf "%d ports, %d more than once", n, bad }'
}

# ---- 30 clients stuck by a window; --heal-node or --watch-node ----------
# The tester's interval is 500 ms: "answered within two intervals of the
# rules' return" is then 1 s, well above the 2-core machine's jitter.
stuck_case() {   # heal|watch MODE FAMILY
	lab_up --mode "$2" || { fail "$1 $2 IPv$3: lab_up"; return; }
	fam "$3"
	n="$1 $2/IPv$3"
	L=$W/$1-$2-$3.log C=$W/$1-$2-$3.clients
	rm -f "$C" "$W/ready"
	decoys
	lab_node $NC --bind "$node" --ports 21000-21199 --server "$vip" --qtype $qt --once >"$W/healthy" 2>&1 ||
		{ fail "$n: 200 healthy flows" "$(cat "$W/healthy")"; return; }
	tester "$L" -d "$srv" -t $qt -i 500ms -w 400ms --$1-node
	sleep 1
	lab_rules window
	lab_node $NC --bind "$node" --ports 22000-22029 --server "$vip" --qtype $qt --interval 0.1 \
		--duration 5 --log "$C" --ready "$W/ready" &
	cpid=$!
	wait_file "$W/ready"; sleep 0.5
	table >"$W/before"
	r=$(now_ms)
	lab_rules full
	sleep 3
	table >"$W/after"
	wait $cpid
	stop_tester
	first_ok_after "$C" "$r" >"$W/first"
	worst=$(awk '{ if ($2 == "never") print "never"; else print $2 }' "$W/first" | sort -n | tail -n1)
	never=$(grep -c never "$W/first")
	early=$(($($LC count "$L" client_healed) - $($LC after "$L" client_healed $((r - 1)))))
	bh=$(once_each "$L" client_blackholed) healed=$(once_each "$L" client_healed)
	if [ "$1" = heal ]; then
		# Nothing else changed: the table minus the clients' flows is the
		# same, and each client's entry is now DNAT'd (a new one).
		grep -v ' sport=220[0-2][0-9] ' "$W/before" >"$W/b"; grep -v ' sport=220[0-2][0-9] ' "$W/after" >"$W/a"
		dnat=$(grep -c "sport=220[0-2][0-9] dport=53 src=$pod " "$W/after")
		if [ "$bh" = "30 ports, 0 more than once" ] && [ "$healed" = "30 ports, 0 more than once" ] &&
		   [ "$never" = 0 ] && [ "$worst" -le 1000 ] && [ "$early" = 0 ]; then
			pass "$n: 30 stuck clients reported and healed once each, after the rules' return; all answered within ${worst} ms (bound: 2 intervals, 1000 ms)"
		else
			fail "$n: heal" "blackholed: $bh; healed: $healed; unanswered=$never worst=${worst}ms healed_before_return=$early"
		fi
		if cmp -s "$W/b" "$W/a" && [ "$dnat" = 30 ] && [ "$(wc -l <"$W/b")" -ge 300 ]; then
			pass "$n: conntrack -L before/after: $(wc -l <"$W/b") other entries (100 decoys, 200 healthy DNAT'd flows) unchanged; the 30 clients DNAT'd now"
		else
			fail "$n: nothing else changed" "dnat=$dnat others=$(wc -l <"$W/b") $(diff "$W/b" "$W/a" | head -n 4 | tr '\n' ' ')"
		fi
	else
		if [ "$bh" = "30 ports, 0 more than once" ] && [ "$($LC count "$L" client_healed)" = 0 ] &&
		   [ "$never" = 30 ] && cmp -s "$W/before" "$W/after"; then
			pass "$n: --watch-node reports each of 30 stuck clients once, deletes nothing (conntrack -L unchanged, $(wc -l <"$W/before") entries; the clients stay stuck)"
		else
			fail "$n: watch only" "blackholed: $bh; healed lines=$($LC count "$L" client_healed) unanswered=$never $(diff "$W/before" "$W/after" | head -n 3 | tr '\n' ' ')"
		fi
	fi
	lab_down
}
if want heal; then
	( stuck_case heal iptables 4 )
	( stuck_case heal nftables 6 )
fi
if want watch; then
	( stuck_case watch nftables 4 )
	( stuck_case watch iptables 6 )
fi
