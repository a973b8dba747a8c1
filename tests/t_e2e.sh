#!/bin/sh
# t_e2e.sh - the tester against the lab: real namespaces, real NAT rules
# (iptables and nftables), real DNS servers (dnsmasq, unbound), and
# conntrack-tools as the independent oracle. Each scenario is a subshell
# with its own lab, removed on exit even when a check fails.
#
#   sudo ./test.sh e2e                       all scenarios
#   sudo E2E_ONLY="window heal" ./test.sh e2e  some scenarios (healthy window
#                                      monitor heal noreply stopped decoys nocap);
#                                      the others are SKIPs: not green
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"

FILTER_VAR=E2E_ONLY     # (lib.sh: scenario)

# tester LOG ARGS...: run the tester in the node namespace in the
# background. Not through a shell function: `ip netns exec` execs the
# tester, so $! is the tester itself and signals reach it.
tester() { log=$1; shift; ip netns exec "$NS_NODE" "$BIN" "$@" >"$log" 2>&1 & TPID=$!; }
# stop_tester: SIGTERM it and wait; sets RC. The tester runs inside
# `ip netns exec`, which execs it, so the PID is the tester's own.
stop_tester() { kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; RC=$?; }
# sport_of LOG: our socket's source port, from the start line
sport_of() { $LC field "$1" start src | sed 's/.*://'; }
# mask the countdown timeout so two readings of one entry compare equal
mask() { sed -E 's/^([a-z]+ +[0-9]+) [0-9]+ /\1 T /'; }
now_ms() { date +%s%3N; }
# sv LOG KEY: KEY of the last stats line
sv() { grep 'event=stats' "$1" | tail -n 1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

# ---- healthy rules: only answers, every mode x family x server --------
if scenario healthy; then
for mode in iptables nftables; do for dns in dnsmasq unbound; do (
	lab_up --mode $mode --dns $dns || { fail "healthy $mode/$dns: lab_up"; exit 0; }
	for fam in 4 6; do
		if [ $fam = 4 ]; then srv=$VIP4 typ=A ans=$ANSWER4; else srv="[$VIP6]" typ=AAAA ans=$ANSWER6; fi
		L=$OUT/healthy-$mode-$dns-$fam.log
		lab_node "$BIN" -d "$srv" -t $typ -c 5 -i 100ms -w 1s -v >"$L" 2>&1; rc=$?
		n=$($LC count "$L" reply addr="$ans")
		errs=$(grep -c 'level=error' "$L")
		if [ $rc = 0 ] && [ "$n" = 5 ] && [ "$errs" = 0 ] && grep -q 'event=stats.* answered=5 ' "$L"; then
			pass "healthy $mode/$dns/IPv$fam: 5 answers ($ans), exit 0, no error line"
		else
			fail "healthy $mode/$dns/IPv$fam" "rc=$rc answers=$n errors=$errs $(grep -m1 level=error "$L")"
		fi
	done
); done; done
fi

# ---- a restart window: blackhole named, failures continue after -------
window_scenario() {   # MODE DNS FAMILY
	mode=$1 dns=$2 fam=$3
	lab_up --mode "$mode" --dns "$dns" || { fail "window $*: lab_up"; return; }
	if [ "$fam" = 4 ]; then srv=$VIP4 vip=$VIP4 node=$NODE4 typ=A; else srv="[$VIP6]" vip=$VIP6 node=$NODE6 typ=AAAA; fi
	L=$OUT/window-$mode-$dns-$fam.log
	tester "$L" -d "$srv" -t $typ -i 200ms -w 500ms
	sleep 1
	lab_window 1 1 0 || fail "window $*: lab_window"
	closed=$(now_ms)
	sleep 2.5                       # the rules are complete again
	sport=$(sport_of "$L")
	# A second client on another fixed port sent nothing in the window.
	lab_client 40053 "$fam" 5 0.1 0.5 >"$OUT/window-client-$mode-$dns-$fam.txt" 2>&1; crc=$?
	# The oracle: conntrack's own view of our flow.
	ct=$(lab_ct -L -p udp --orig-port-src "$sport" --orig-port-dst 53 2>/dev/null | grep "src=$node ")
	late=$($LC after "$L" timeout "$closed" cause=blackhole)
	n_bh=$($LC count "$L" blackhole)
	# Our blackhole line prints the entry as `conntrack -G` does.
	ours=$($LC field "$L" blackhole entry | mask)
	theirs=$(lab_ct -G -p udp -s "$node" -d "$vip" --sport "$sport" --dport 53 2>/dev/null | mask)
	# The fix command it printed really heals the flow.
	fix=$($LC field "$L" blackhole fix)
	lab_node sh -c "$fix" >/dev/null 2>&1
	sleep 1.2
	stop_tester
	if [ "$n_bh" = 1 ] && [ "$late" -ge 3 ]; then
		pass "window $mode/$dns/IPv$fam: event=blackhole once, $late timeouts cause=blackhole after the rules were back"
	else
		fail "window $mode/$dns/IPv$fam: blackhole and continued failures" "blackholes=$n_bh late_timeouts=$late"
	fi
	case $ct in
	*"dst=$vip sport=$sport dport=53 [UNREPLIED] src=$vip dst=$node sport=53 dport=$sport"*)
		pass "window $mode/$dns/IPv$fam: conntrack -L shows our flow [UNREPLIED] src=VIP, no DNAT" ;;
	*) fail "window $mode/$dns/IPv$fam: conntrack oracle" "got: $ct" ;;
	esac
	# (both empty would compare equal: a missing line is not a match)
	if [ -n "$ours" ] && [ "$ours" = "$theirs" ]; then
		pass "window $mode/$dns/IPv$fam: blackhole entry= is conntrack -G's line"
	else
		fail "window $mode/$dns/IPv$fam: blackhole entry= is conntrack -G's line" "got '$ours', want '$theirs' (sport '$sport')"
	fi
	expect_eq "window $mode/$dns/IPv$fam: another fixed-port client keeps working" "$crc" 0
	if [ "$($LC count "$L" recovered cause=blackhole)" -ge 1 ]; then
		pass "window $mode/$dns/IPv$fam: the printed fix command heals it (event=recovered)"
	else
		fail "window $mode/$dns/IPv$fam: fix command heals" "fix='$fix' $(tail -n 2 "$L")"
	fi
	if [ "$RC" = 3 ] && grep -q 'event=stats' "$L" && grep -q 'event=stop.*reason=SIGTERM' "$L"; then
		pass "window $mode/$dns/IPv$fam: SIGTERM prints stats and stop; exit 3 (a blackhole was seen)"
	else
		fail "window $mode/$dns/IPv$fam: exit status" "rc=$RC"
	fi
}
if scenario window; then lab_each window_scenario; fi

# ---- --monitor keeps the DNAT'd entry; default mode deletes it --------
if scenario monitor; then (
	lab_up || { fail "monitor: lab_up"; exit 0; }
	L=$OUT/monitor.log
	tester "$L" -d "$VIP4" -s "$NODE4:40111" -i 100ms --monitor -v
	sleep 0.5
	id1=$(lab_ct -L -p udp --orig-port-src 40111 -o id 2>/dev/null | sed -n 's/.*id=\([0-9]*\).*/\1/p')
	sleep 1
	id2=$(lab_ct -L -p udp --orig-port-src 40111 -o id 2>/dev/null | sed -n 's/.*id=\([0-9]*\).*/\1/p')
	stop_tester
	if [ -n "$id1" ] && [ "$id1" = "$id2" ] && [ "$($LC count "$L" conntrack_deleted)" = 0 ] &&
	   [ "$($LC count "$L" reply)" -ge 10 ]; then
		pass "--monitor: our DNAT'd entry survives across 10+ cycles (same id $id1), nothing deleted"
	else
		fail "--monitor keeps the entry" "id1=$id1 id2=$id2 deleted=$($LC count "$L" conntrack_deleted)"
	fi
	# Default mode: conntrack -E is the witness of every deletion.
	L=$OUT/delete.log
	lab_ct -E -e DESTROY -p udp --orig-port-src 40112 >"$OUT/delete-events.txt" 2>/dev/null & EPID=$!
	sleep 0.3
	lab_node "$BIN" -d "$VIP4" -s "$NODE4:40112" -i 100ms -c 10 -v >"$L" 2>&1; rc=$?
	sleep 0.3; kill "$EPID" 2>/dev/null; wait "$EPID" 2>/dev/null
	destroyed=$(grep -c 'sport=40112' "$OUT/delete-events.txt")
	if [ $rc = 0 ] && [ "$destroyed" = 10 ] && [ "$($LC count "$L" conntrack_deleted)" = 10 ]; then
		pass "default mode: our DNAT'd entry deleted every cycle (conntrack -E saw 10 DESTROY for 10 queries)"
	else
		fail "default mode deletes each cycle" "rc=$rc destroy_events=$destroyed logged=$($LC count "$L" conntrack_deleted)"
	fi
); fi

# ---- --heal recovers within two intervals of the rules coming back ----
if scenario heal; then (
	lab_up --mode nftables || { fail "heal: lab_up"; exit 0; }
	L=$OUT/heal.log
	tester "$L" -d "$VIP4" -i 200ms -w 1s --heal
	sleep 0.8
	lab_window 1 1 0 || fail "heal: lab_window"
	sleep 1.5
	stop_tester
	sport=$(sport_of "$L")
	rec=$($LC count "$L" recovered cause=blackhole)
	healed=$($LC count "$L" healed)
	# Within two intervals of the rules being back, counted in queries,
	# not in wall-clock ms (which a busy machine stretches): --heal deletes
	# only a proven blackhole, so the first query sent after the close is
	# the one whose probe proves it and is given up as healed=true; every
	# later one must be answered (send time = the failure line's ts -
	# waited_ms, 2 ms for ts rounding), and a recovery must follow the
	# window. The ms from close to recovery is reported.
	read -r lost first <<EOF2
$("$LAB_PY" -c '
import sys; sys.path.insert(0, sys.argv[3])
from logcheck import parse
o, c = (int(x) for x in open(sys.argv[2]).read().split()[1::2])
ls = parse(sys.argv[1])
lost = [l for l in ls if l["event"] in ("timeout", "refused", "send_failed")
        and l["_ms"] - float(l.get("waited_ms", 0)) > c + 2]
unhealed = [l for l in lost if l.get("healed") != "true"]
t = [l["_ms"] for l in ls if l["event"] == "recovered" and l["_ms"] >= o]
print(len(lost) + 10 * len(unhealed), max(0, t[0] - c) if t else "none")' "$L" "$LAB_DIR/windows.log" "$TOP/tests")
EOF2
	# (an empty port would list nothing and count 0 left: not a heal)
	if num "$sport" && [ "$sport" -gt 0 ]; then
		left=$(lab_ct -L -p udp --orig-port-src "$sport" 2>/dev/null | grep -c 'UNREPLIED.*src=10.0.0.10 ')
	else
		left="unknown (no source port in the start line: '$sport')"
	fi
	if [ "$healed" -ge 1 ] && [ "$rec" -ge 1 ] && [ "$first" != none ] && [ "$lost" -le 1 ] && [ "$left" = 0 ] &&
	   [ "$($LC count "$L" blackhole)" = "$healed" ]; then
		pass "--heal: healed $healed proven blackhole(s); of the queries sent after the rules were back only the one that proved it was given up (healed=true), so the next tick recovered (${first} ms after, interval 200 ms)"
	else
		fail "--heal recovers within two intervals of the rules' return" "healed=$healed recovered=$rec lost_after_close=$lost (10 per loss not healed=true) after_ms=$first blackholed_left=$left"
	fi
	expect_eq "--heal: exit 3 after a blackhole" "$RC" 3
); fi

# ---- the DNS pod stops answering: no_reply, then recovery, no blackhole
if scenario noreply; then (
	lab_up --dns unbound || { fail "noreply: lab_up"; exit 0; }
	L=$OUT/noreply.log
	tester "$L" -d "$VIP4" -i 200ms -w 300ms
	sleep 0.6
	# The pod is there but silent (a hung or deleted CoreDNS: no ICMP).
	lab_pod iptables -I INPUT -p udp --dport 53 -j DROP || fail "noreply: iptables -I in the pod"
	sleep 1.5
	lab_pod iptables -D INPUT -p udp --dport 53 -j DROP || fail "noreply: iptables -D in the pod"
	sleep 1
	stop_tester
	nr=$($LC count "$L" timeout cause=no_reply)
	if [ "$nr" -ge 2 ] && [ "$($LC count "$L" blackhole)" = 0 ] &&
	   [ "$($LC count "$L" recovered cause=no_reply)" = 1 ] && [ "$RC" = 0 ]; then
		pass "DNS pod silent: $nr timeouts cause=no_reply, then event=recovered, no blackhole, exit 0"
	else
		fail "DNS pod silent" "no_reply=$nr blackholes=$($LC count "$L" blackhole) rc=$RC $(grep -m2 'event=timeout' "$L")"
	fi
); fi

if scenario stopped; then (
	lab_up || { fail "stopped: lab_up"; exit 0; }
	L=$OUT/stopped.log
	tester "$L" -d "$VIP4" -i 200ms -w 300ms
	sleep 0.6
	lab_dns_stop || fail "stopped: lab_dns_stop"
	sleep 1.2
	lab_dns_start || fail "stopped: lab_dns_start"
	sleep 1
	stop_tester
	fails=$(( $($LC count "$L" refused) + $($LC count "$L" timeout cause=no_reply) ))
	if [ "$fails" -ge 2 ] && [ "$($LC count "$L" blackhole)" = 0 ] && [ "$($LC count "$L" recovered)" = 1 ]; then
		pass "DNS server killed and restarted: $fails failures (refused by ICMP or no_reply), recovered, no blackhole"
	else
		fail "DNS server killed and restarted" "fails=$fails blackholes=$($LC count "$L" blackhole) $(grep -m2 level=error "$L")"
	fi
); fi

# (20 restart windows of random length: tests/t_verdict.sh, "repeated".)

# ---- 1,000 decoys survive, unchanged ----------------------------------
if scenario decoys; then (
	lab_up || { fail "decoys: lab_up"; exit 0; }
	lab_decoys 1000 || { fail "decoys: lab_decoys"; exit 0; }
	runs=
	for mode in "" --heal --monitor; do
		# (wait for these two by PID: the lab's DNS server is a child too)
		# 30 queries (3 s): the 0.4 s window, begun 0.3 s in, is over long
		# before the last, even when a loaded machine is slow to restore it
		ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 100ms -w 300ms -c 30 $mode >"$OUT/decoys$mode.log" 2>&1 & p4=$!
		ip netns exec "$NS_NODE" "$BIN" -d "[$VIP6]" -i 100ms -w 300ms -c 30 $mode >"$OUT/decoys6$mode.log" 2>&1 & p6=$!
		sleep 0.3; lab_window 0.4 1 0 || runs="$runs lab_window${mode:+ $mode} failed;"
		wait $p4; r4=$?; wait $p6; r6=$?
		# Each run must have really run: 12 queries, each with an outcome,
		# a clean stop, and the window met: a blackhole proven once the
		# rules are back (exit 3) in the modes that delete their entry each
		# cycle; --monitor keeps its DNAT'd entry from before the window, so
		# all 12 are answered (exit 0). A tester that died at once (a usage error) touches no decoy
		# and would prove nothing.
		if [ "$mode" = --monitor ]; then wrc=0 wbh=0; else wrc=3 wbh=1; fi
		for f in 4:$r4 6:$r6; do
			lg=$OUT/decoys${f%%:*}$mode.log; [ "${f%%:*}" = 4 ] && lg=$OUT/decoys$mode.log
			s=$(sv "$lg" sent) a=$(sv "$lg" answered) t=$(sv "$lg" timeouts) r=$(sv "$lg" refused) e=$(sv "$lg" send_errors) b=$(sv "$lg" blackholes)
			if ! num "$s" "$a" "$t" "$r" "$e" "$b" || [ "${f#*:}" != $wrc ] || [ "$s" != 30 ] ||
			   [ $((a + t + r + e)) != 30 ] || { [ $wbh = 1 ] && [ "$b" -lt 1 ]; } || { [ $wbh = 0 ] && [ "$a" != 30 ]; } ||
			   ! grep -q 'event=stop' "$lg"; then
				runs="$runs IPv${f%%:*}${mode:+ $mode}: rc=${f#*:} sent=$s answered=$a timeouts=$t blackholes=$b $(grep -m1 -v event= "$lg" | head -c 100);"
			fi
		done
	done
	if [ -z "$runs" ]; then
		pass "decoys: all 6 runs (IPv4/IPv6 x default/--heal/--monitor) sent 30 queries, each with an outcome; default and --heal met the window (blackhole proven after it, exit 3), --monitor was answered 30/30 (exit 0)"
	else
		fail "decoys: the 6 tester runs really ran" "$runs"
	fi
	if lab_decoys_check >"$OUT/decoys.bad"; then
		pass "1,000 decoys (UDP/TCP, DNAT'd or not, both families) all still there, unchanged, after runs in every mode"
	else
		fail "decoys untouched" "$(head -n 3 "$OUT/decoys.bad" | tr '\n' ' ')"
	fi
); fi

# ---- without CAP_NET_ADMIN: says so once, keeps querying ---------------
if scenario nocap; then (
	lab_up || { fail "nocap: lab_up"; exit 0; }
	L=$OUT/nocap.log
	lab_node capsh --drop=cap_net_admin -- -c "exec '$BIN' -d $VIP4 -c 5 -i 100ms -v" >"$L" 2>&1; rc=$?
	if [ $rc = 0 ] && [ "$($LC count "$L" conntrack_unavailable)" = 1 ] &&
	   [ "$($LC count "$L" reply)" = 5 ] && [ "$($LC field "$L" start conntrack)" = off ]; then
		pass "no CAP_NET_ADMIN: one conntrack_unavailable line ($($LC field "$L" conntrack_unavailable reason)), 5 answers"
	else
		fail "no CAP_NET_ADMIN" "rc=$rc $(head -n 3 "$L")"
	fi
); fi
