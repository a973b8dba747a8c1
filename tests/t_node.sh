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
#     heal watch loss cidr dumped filter fuzz nocap
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

FILTER_VAR=NODE_ONLY     # (lib.sh: scenario)
# (tester, stop_tester, now_ms: tests/lab.sh)
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
		# Heals are rate-limited, so their order matters: newest first (a
		# client that still sends made its entry last). The clients made
		# theirs in port order, so the heals go from 22029 down.
		order=$(grep 'event=client_healed ' "$L" | sed -n 's/.* client=[^ ]* sport=\([0-9]*\) .*/\1/p' | tr '\n' ' ' | sed 's/ $//')
		if [ "$(echo "$order" | wc -w)" = 30 ] && echo "$order" | tr ' ' '\n' | grep . | sort -c -r -n 2>/dev/null; then
			pass "$n: healed newest first: ports ${order%% *}..${order##* }"
		else
			fail "$n: healed newest first" "order: $order"
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
if scenario heal; then
	( stuck_case heal iptables 4 )
	( stuck_case heal nftables 6 )
fi
if scenario watch; then
	( stuck_case watch nftables 4 )
	( stuck_case watch iptables 6 )
fi

# ---- event loss: a burst overflows a tiny socket buffer; a resync finds all
# The tester is stopped (SIGSTOP) while the window makes 30 stuck clients:
# their NEW events overflow a 1 KiB receive buffer (the kernel's minimum)
# and are lost. On SIGCONT it reads ENOBUFS, discards what is queued and
# dumps the table: every stuck client must come back from the dump.
if scenario loss; then (
	lab_up || { fail "loss: lab_up"; exit 0; }
	fam 4
	L=$W/loss.log C=$W/loss.clients
	rm -f "$C" "$W/ready"
	tester "$L" -d "$srv" -i 500ms -w 400ms --heal-node --event-buffer 1024
	sleep 1
	kill -STOP "$TPID"
	lab_rules window
	lab_node $NC --bind "$node" --ports 22000-22029 --server "$vip" --interval 0.1 \
		--duration 5 --log "$C" --ready "$W/ready" &
	cpid=$!
	wait_file "$W/ready"; sleep 0.5
	kill -CONT "$TPID"
	sleep 1
	r=$(now_ms)
	lab_rules full
	sleep 2.5
	wait $cpid
	stop_tester
	never=$(first_ok_after "$C" "$r" | grep -c never)
	tracked=$(grep 'event=node_resync reason=events_lost' "$L" | sed -n 's/.* tracked=\([0-9]*\).*/\1/p' | sort -n | tail -n1)
	if [ "$($LC count "$L" node_events_lost)" -ge 1 ] && [ "${tracked:-0}" -ge 30 ] &&
	   [ "$(once_each "$L" client_healed)" = "30 ports, 0 more than once" ] && [ "$never" = 0 ] &&
	   [ "$($LC after "$L" client_healed $((r - 1)))" = 30 ]; then
		pass "loss: ENOBUFS on a 1 KiB buffer -> a resync found ${tracked} tracked flows; all 30 clients healed once, after the return, and answered"
	else
		fail "loss" "lost=$($LC count "$L" node_events_lost) resync_tracked=$tracked healed: $(once_each "$L" client_healed) unanswered=$never"
	fi
); fi

# ---- --service-cidr: a non-DNS UDP Service, healed only after a DNAT'd flow
# The Service 10.0.0.40:5000 (an echo server on the pod's .3) has its own
# DNAT rule, missing during its own window. The tester never sends to a
# non-DNS Service, so its stuck clients wait - rules back or not - until
# some other client's new flow to it is seen DNAT'd.
# dumped: the same clients, stuck before the tester starts and its rule
# back by then, so the start resync's dump finds them. A dump is newer than
# the events still queued, so only a DNAT'd flow read after the event
# socket was next found empty proves them (fresh_by_order): the one fresh
# flow must, and nothing before it may.
cidr_case() {
	lab_up --mode iptables || { fail "$1: lab_up"; return; }
	fam 4
	L=$W/$1.log C=$W/$1.clients
	rm -f "$C" "$W/ready"
	lab_pod $NC --echo-server "$POD4B:5000" &
	rule="-d 10.0.0.40/32 -p udp --dport 5000 -j DNAT --to-destination $POD4B:5000"
	# shellcheck disable=SC2086
	lab_node iptables -t nat -I OUTPUT $rule
	[ "$1" = cidr ] && { tester "$L" -d "$srv" --service-cidr 10.0.0.0/24 -i 500ms -w 400ms --heal-node; sleep 1; }
	# shellcheck disable=SC2086
	lab_node iptables -t nat -D OUTPUT $rule
	lab_node $NC --bind "$node" --ports 23000-23002 --server 10.0.0.40 --server-port 5000 --mode echo \
		--interval 0.1 --duration 6 --log "$C" --ready "$W/ready" &
	cpid=$!
	wait_file "$W/ready"; sleep 0.5
	# shellcheck disable=SC2086
	lab_node iptables -t nat -I OUTPUT $rule
	[ "$1" = dumped ] && tester "$L" -d "$srv" --service-cidr 10.0.0.0/24 -i 500ms -w 400ms --heal-node
	sleep 1.5
	before=$($LC count "$L" client_healed vip=10.0.0.40:5000)
	stuck=$(lab_ct -L -p udp --orig-dst 10.0.0.40 2>/dev/null | grep -c 'sport=2300[0-2] dport=5000 \[UNREPLIED\] src=10.0.0.40 ')
	p=$(now_ms)
	lab_node $NC --bind "$node" --ports 23100-23100 --server 10.0.0.40 --server-port 5000 --mode echo --once >"$W/fresh" 2>&1
	sleep 1.5
	wait $cpid
	stop_tester
	never=$(first_ok_after "$C" "$p" | grep -c never)
	found=$(grep -c 'event=node_resync reason=start tracked=3 ' "$L")
	[ "$1" = cidr ] && found=1   # (its tester saw the clients' NEW events)
	if [ "$before" = 0 ] && [ "$stuck" = 3 ] && [ "$found" = 1 ] && [ "$never" = 0 ] &&
	   [ "$($LC after "$L" client_healed $((p - 1)) vip=10.0.0.40:5000)" = 3 ] &&
	   [ "$($LC count "$L" client_blackholed vip=10.0.0.40:5000)" = 3 ]; then
		pass "$1: 3 clients of a non-DNS Service (10.0.0.40:5000) $2 still stuck 1.5 s after its rule came back; healed once a new flow to it was seen DNAT'd; all answered"
	else
		fail "$1" "found_by_start_dump=$found healed_before_fresh_flow=$before stuck_then=$stuck healed_after=$($LC after "$L" client_healed $((p - 1)) vip=10.0.0.40:5000) unanswered=$never fresh=$(cat "$W/fresh")"
	fi
}
if scenario cidr; then ( cidr_case cidr "(seen by their events)" ); fi
if scenario dumped; then ( cidr_case dumped "(found by the start resync's dump)" ); fi

# ---- the BPF filter against the kernel ---------------------------------
# conntrack -I makes NEW events, -D DESTROY events, of flows we choose;
# one real query through the rules makes a DNAT'd flow as the kernel
# does (IPS_DST_NAT set: conntrack -I --dst-nat sets only the _DONE bits,
# so the filter, which reads that bit, lets such a DESTROY by and user
# space, which also compares the tuples, drops it). With the in-kernel
# filter exactly the 7 that must pass reach user space
# (node_events_total); with --watch-filter user, all 16 do.
scrape() {
	lab_node "$LAB_PY" -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:'"$1"'/metrics").read().decode())' |
		sed -n 's/^dns_blackhole_tester_node_events_total{.*} \([0-9]*\)$/\1/p'
}
inject() {   # BASE: flows BASE+1..BASE+12
	b=$1
	I() { lab_ct -I -t 600 "$@" >/dev/null 2>&1 || echo "conntrack -I $*" >>"$W/inject.err"; }
	# must pass: UDP to VIP4:53 (unreplied, and DNAT'd), to [VIP6]:53, into the CIDR
	I -u UNSET -p udp -s $NODE4 -d $VIP4 --sport $((b + 1)) --dport 53 -r $VIP4 -q $NODE4 --reply-port-src 53 --reply-port-dst $((b + 1))
	lab_node "$LAB_PY" "$TOP/tests/client.py" --bind $NODE4 --port $((b + 2)) --server $VIP4 >/dev/null 2>&1 ||
		echo "query from port $((b + 2)) not answered" >>"$W/inject.err"
	I -u SEEN_REPLY -p udp -s $NODE4 -d $VIP4 --sport $((b + 12)) --dport 53 -r $POD4 -q $NODE4 --reply-port-src 53 --reply-port-dst $((b + 12)) --dst-nat $POD4
	I -u UNSET -p udp -s $NODE6 -d $VIP6 --sport $((b + 3)) --dport 53 -r $VIP6 -q $NODE6 --reply-port-src 53 --reply-port-dst $((b + 3))
	I -u UNSET -p udp -s $NODE4 -d 10.0.1.77 --sport $((b + 4)) --dport 1234 -r 10.0.1.77 -q $NODE4 --reply-port-src 1234 --reply-port-dst $((b + 4))
	# must not: TCP to the VIP, other port, other VIP (both families), outside the CIDR
	I -u UNSET -p tcp -s $NODE4 -d $VIP4 --sport $((b + 5)) --dport 53 -r $VIP4 -q $NODE4 --reply-port-src 53 --reply-port-dst $((b + 5)) --state SYN_SENT
	I -u UNSET -p udp -s $NODE4 -d $VIP4 --sport $((b + 6)) --dport 5353 -r $VIP4 -q $NODE4 --reply-port-src 5353 --reply-port-dst $((b + 6))
	I -u UNSET -p udp -s $NODE4 -d 10.0.0.20 --sport $((b + 7)) --dport 53 -r 10.0.0.20 -q $NODE4 --reply-port-src 53 --reply-port-dst $((b + 7))
	I -u UNSET -p udp -s $NODE6 -d $VIP6 --sport $((b + 8)) --dport 5353 -r $VIP6 -q $NODE6 --reply-port-src 5353 --reply-port-dst $((b + 8))
	I -u UNSET -p udp -s $NODE6 -d fd00:96::b --sport $((b + 9)) --dport 53 -r fd00:96::b -q $NODE6 --reply-port-src 53 --reply-port-dst $((b + 9))
	I -u UNSET -p udp -s $NODE4 -d 10.0.2.1 --sport $((b + 10)) --dport 53 -r 10.0.2.1 -q $NODE4 --reply-port-src 53 --reply-port-dst $((b + 10))
	I -u UNSET -p tcp -s $NODE6 -d $VIP6 --sport $((b + 11)) --dport 53 -r $VIP6 -q $NODE6 --reply-port-src 53 --reply-port-dst $((b + 11)) --state SYN_SENT
	# DESTROY: of the unreplied one and of the -I --dst-nat one (must
	# pass), of the real DNAT'd one and of the other port (must not)
	for p in 1 12 2 6; do lab_ct -D -p udp -s $NODE4 --sport $((b + p)) >/dev/null 2>&1; done
}
if scenario filter; then (
	lab_up || { fail "filter: lab_up"; exit 0; }
	rm -f "$W/inject.err"
	for mode in kernel user; do
		port=$((9790 + ${#mode}))
		tester "$W/filter-$mode.log" -d $VIP4 -d "[$VIP6]" --service-cidr 10.0.1.0/24 -i 60s --watch-node \
			--watch-filter $mode --metrics-addr 127.0.0.1:$port
		sleep 1
		e0=$(scrape $port)
		if [ $mode = kernel ]; then inject 25000; else inject 25100; fi
		sleep 0.5
		e1=$(scrape $port)
		stop_tester
		eval "delta_$mode=\$((e1 - e0))"
	done
	# shellcheck disable=SC2154
	if [ ! -s "$W/inject.err" ] && [ "$delta_kernel" = 7 ] && [ "$delta_user" -ge 16 ]; then
		pass "filter: of 12 NEW and 4 DESTROY events, exactly the 7 that must pass reach user space through the in-kernel BPF filter ($delta_user without it)"
	else
		fail "filter" "kernel: $delta_kernel (want 7), user: $delta_user (want >= 16) $(head -n 2 "$W/inject.err" 2>/dev/null)"
	fi
	# The tester's own DNS flow and the 5 events all went through the
	# user-space recheck: the unreplied VIP4 flow was proven stuck by the
	# DNAT'd one after it, then cleared by its DESTROY.
	L=$W/filter-kernel.log
	if [ "$($LC count "$L" client_blackholed sport=25001)" = 1 ] && [ "$($LC count "$L" client_cleared sport=25001)" = 1 ] &&
	   [ "$($LC count "$L" client_blackholed)" = 1 ]; then
		pass "filter: the events that passed are rechecked in user space: one client proven stuck (sport 25001) and then cleared by its DESTROY"
	else
		fail "filter: user-space recheck" "$(grep -m3 'client_' "$L" | cut -c1-200)"
	fi
); fi

# ---- fuzz: the event parser and the filter builder ----------------------
if scenario fuzz; then
	# t_fuzz builds every target (fuzz_event too) in another lane: one
	# make at a time, or this one runs a binary the other is still writing
	if flock "$TOP/build/.fuzz-build.lock" make -C "$TOP" -s build/fuzz/fuzz_event >"$OUT/fuzz-event-build.log" 2>&1; then
		line=$(sh "$TOP/tests/fuzz/run.sh" "${FUZZ_SMOKE_SECONDS:-10}" event)
		case $line in
		"fuzz_event: ok, "*) pass "$line" ;;
		*) fail "fuzz_event runs without a finding" "$line" ;;
		esac
	else
		fail "fuzz_event builds" "$(tail -n 3 "$OUT/fuzz-event-build.log" | tr '\n' ' ')"
	fi
fi

# ---- no CAP_NET_ADMIN: one warning, and the tester goes on --------------
if scenario nocap; then (
	lab_up || { fail "nocap: lab_up"; exit 0; }
	L=$W/nocap.log
	lab_node capsh --drop=cap_net_admin -- -c "exec '$BIN' -d $VIP4 -c 3 -i 100ms --heal-node" >"$L" 2>&1; rc=$?
	warns=$(grep -c 'level=warn' "$L")
	if [ "$rc" = 0 ] && [ "$warns" = 1 ] && grep -q 'event=conntrack_unavailable.*the node is not watched' "$L" &&
	   [ "$(grep -c 'event=node_watch' "$L")" = 0 ] && grep -q 'event=stats.* answered=3 ' "$L"; then
		pass "nocap: --heal-node without CAP_NET_ADMIN: one warning (conntrack_unavailable: the node is not watched), 3 answers, exit 0"
	else
		fail "nocap" "rc=$rc warns=$warns $(grep -m2 'level=warn\|level=error' "$L" | cut -c1-200)"
	fi
); fi
