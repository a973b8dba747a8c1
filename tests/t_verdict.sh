#!/bin/sh
# t_verdict.sh - a blackhole is named only when proven, and the restart
# window itself is reported and measured (the tester and scan), in the
# lab: real kube-proxy rules in both modes, both families, real DNS
# servers; conntrack-tools is the oracle for "probes leave no trace".
#
#   sudo ./test.sh verdict
#   sudo VERDICT_ONLY="window direct" ./test.sh verdict    some scenarios:
#     window cleaned inside repeated direct scan
#
# The tester looks at its own entry a quarter interval after each query
# (at most 250 ms); an entry not DNAT'd and never replied is only suspect
# until a probe (a fresh socket, one query, a GET of its tuple) says
# whether a new flow to the VIP is DNAT'd now.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"
VC="$LAB_PY $TOP/tests/verdict.py"
W=$OUT/verdict
mkdir -p "$W"

FILTER_VAR=VERDICT_ONLY     # (lib.sh: scenario)
# (tester, stop_tester, now_ms: tests/lab.sh)
# window SECONDS FILE: one restart window, its three stamps appended to FILE
# (in: the window's ruleset was in; on a loaded machine putting it in has
# taken 600 ms, while the tester's queries were still DNAT'd)
window() {
	_o=$(now_ms); lab_rules window || return 1
	_i=$(now_ms)
	sleep "$1"
	_r=$(now_ms); lab_rules full || return 1
	echo "open $_o in $_i restore $_r close $(now_ms)" >>"$2"
}
# decoys_ok NAME: the 200 decoys put in by lab_decoys are all there, unchanged
decoys_ok() {
	if lab_decoys_check >"$W/decoys.bad"; then
		pass "$1: 200 decoys (other clients' flows, DNAT'd or not, UDP and TCP) unchanged"
	else
		fail "$1: decoys unchanged" "$(head -n 3 "$W/decoys.bad" | tr '\n' ' ')"
	fi
}
# no_trace NAME LOG: no conntrack entry of any probe of LOG is left
no_trace() {
	_f=$W/$(echo "$1" | tr '/ ' '__')
	lab_ct -L >"$_f.ct" 2>/dev/null
	if $VC probes "$2" "$_f.ct" >"$_f.probes"; then
		pass "$1: probes leave no trace ($(head -n1 "$_f.probes"))"
	else
		fail "$1: probes leave no trace" "$(head -n 3 "$_f.probes" | tr '\n' ' ')"
	fi
}

# ---- one window of known length: nat_missing inside, blackhole after ----
window_case() {   # MODE DNS FAMILY
	lab_up --mode "$1" --dns "$2" || { fail "window $*: lab_up"; return; }
	if [ "$3" = 4 ]; then srv=$VIP4 typ=A; else srv="[$VIP6]" typ=AAAA; fi
	n="window $1/$2/IPv$3"
	L=$W/window-$1-$2-$3.log WL=$W/window-$1-$2-$3.windows
	: >"$WL"
	lab_decoys 200 || { fail "$n: lab_decoys"; return; }
	# 150 ms timeout < 200 ms interval: one query a tick, so both ends of
	# the window are measured on the tick grid.
	tester "$L" -d "$srv" -t $typ -i 200ms -w 150ms -v
	sleep 1.2
	window 1.5 "$WL" || { fail "$n: lab_rules"; stop_tester; return; }
	sleep 1.5
	stop_tester
	if $VC windows "$L" "$WL" 200 >"$W/check"; then
		pass "$n: $(head -n1 "$W/check")"
	else
		fail "$n" "$(head -n 4 "$W/check" | tr '\n' ' ')"
	fi
	learned=$($LC count "$L" nat_learned via=entry)
	fix=$($LC field "$L" blackhole fix)
	if [ "$learned" = 1 ] && [ "$RC" = 3 ] && [ -n "$fix" ] &&
	   grep -q 'event=blackhole.* proof="udp .* src=fd00:244::2 \|event=blackhole.* proof="udp .* src=10.244.0.2 ' "$L"; then
		pass "$n: nat learned from our DNAT'd entry; the blackhole carries the probe's DNAT'd entry as proof and the fix; exit 3"
	else
		fail "$n: proof and exit" "learned=$learned rc=$RC fix='$fix' $(grep -m1 event=blackhole "$L" | cut -c1-300)"
	fi
	no_trace "$n" "$L"
	decoys_ok "$n"
}
if scenario window; then lab_each window_case; fi

# ---- a window that did not leave us stuck: kube-proxy 1.32+ cleans up ----
# Its conntrack reconciler deletes entries to the Service IP that no rule
# translates; emulated here by deleting them as the rules come back. Our
# next query then makes a new, DNAT'd entry: stuck=false, no blackhole.
if scenario cleaned; then (
	lab_up || { fail "cleaned: lab_up"; exit 0; }
	L=$W/cleaned.log WL=$W/cleaned.windows
	tester "$L" -d "$VIP4" -i 200ms -w 150ms -v
	sleep 1.2
	o=$(now_ms); lab_rules window; sleep 1.2
	# kube-proxy restores the rules and then deletes the VIP's UDP entries,
	# a few ms apart. A query in that gap really is blackholed (and proven
	# so), so the tester is frozen across both steps: the case under test
	# is a restore whose cleanup came first, not the race between them.
	kill -STOP "$TPID"
	lab_rules full && lab_ct -D -p udp --orig-dst "$VIP4" --dport 53 >/dev/null 2>&1
	kill -CONT "$TPID"
	echo "open $o close $(now_ms)" >"$WL"
	sleep 1.2
	stop_tester
	wm=$($LC field "$L" nat_restored window_ms)
	if [ "$($LC count "$L" nat_missing)" = 1 ] && [ "$($LC count "$L" nat_restored stuck=false)" = 1 ] &&
	   [ "$($LC count "$L" blackhole)" = 0 ] && [ "$($LC count "$L" timeout cause=blackhole)" = 0 ] && [ "$RC" = 0 ]; then
		pass "a window whose stale entry was cleaned up at restore: nat_missing, nat_restored stuck=false window_ms=$wm, no blackhole, exit 0"
	else
		fail "a window cleaned up at restore" "nat_missing=$($LC count "$L" nat_missing) restored=$(grep -m1 event=nat_restored "$L" | sed 's/.*server=[^ ]* //') blackholes=$($LC count "$L" blackhole) rc=$RC"
	fi
	no_trace "cleaned" "$L"
); fi

# ---- a tester started inside a window knows nothing, then proves it -----
if scenario inside; then for fam in 4 6; do (
	lab_up --mode nftables || { fail "inside IPv$fam: lab_up"; exit 0; }
	if [ $fam = 4 ]; then srv=$VIP4 typ=A; else srv="[$VIP6]" typ=AAAA; fi
	L=$W/inside-$fam.log
	lab_rules window || { fail "inside: lab_rules"; exit 0; }
	tester "$L" -d "$srv" -t $typ -i 200ms -w 150ms -v
	sleep 1.2
	during_bh=$($LC count "$L" blackhole) during_nm=$($LC count "$L" nat_missing)
	during_nr=$($LC count "$L" timeout cause=no_reply)
	restore=$(now_ms)
	lab_rules full || { fail "inside: lab_rules full"; exit 0; }
	sleep 1
	stop_tester
	early=$($LAB_PY -c '
import sys; sys.path.insert(0, sys.argv[3])
from logcheck import parse
print(sum(1 for l in parse(sys.argv[1]) if l["event"] == "blackhole" and l["_ms"] < int(sys.argv[2])))' "$L" "$restore" "$TOP/tests")
	if [ "$during_bh" = 0 ] && [ "$during_nm" = 0 ] && [ "$during_nr" -ge 3 ] && [ "$early" = 0 ] &&
	   [ "$($LC count "$L" nat_learned via=probe)" = 1 ] && [ "$($LC count "$L" blackhole)" = 1 ] &&
	   [ "$($LC count "$L" nat_restored)" = 0 ] && [ "$RC" = 3 ] && grep -q 'event=start.* nat=unknown' "$L"; then
		pass "started inside a window, IPv$fam: nat=unknown, $during_nr timeouts cause=no_reply and nothing claimed while the rules were absent; after: nat learned from the probe, blackhole proven, exit 3"
	else
		fail "started inside a window, IPv$fam" "during: blackholes=$during_bh nat_missing=$during_nm no_reply=$during_nr; early=$early learned=$($LC count "$L" nat_learned) bh=$($LC count "$L" blackhole) rc=$RC"
	fi
	no_trace "inside IPv$fam" "$L"
); done; fi

# ---- 20 windows of random length, --heal: each reported, measured, proven
if scenario repeated; then (
	lab_up || { fail "repeated: lab_up"; exit 0; }
	L=$W/repeated.log WL=$W/repeated.windows
	: >"$WL"
	lab_decoys 200 || { fail "repeated: lab_decoys"; exit 0; }
	tester "$L" -d "$VIP4" -i 100ms -w 80ms --heal -v
	sleep 0.8
	ok=0
	for i in $(seq 20); do
		len=$(awk -v s="$i" 'BEGIN { srand(s * 7919); printf "%.2f", 0.3 + rand() * 0.9 }')
		gap=$(awk -v s="$i" 'BEGIN { srand(s * 104729); printf "%.2f", 0.6 + rand() * 0.4 }')
		window "$len" "$WL" && ok=$((ok + 1))
		sleep "$gap"
	done
	stop_tester
	expect_eq "repeated: 20 windows made" "$ok $(wc -l <"$WL")" "20 20"
	if $VC windows "$L" "$WL" 100 --heal >"$W/check"; then
		pass "20 windows of random length (--heal): $(head -n1 "$W/check"), $($LC count "$L" healed) healed"
	else
		fail "20 windows of random length" "$(head -n 5 "$W/check" | tr '\n' ' ')"
	fi
	expect_eq "repeated: every proven blackhole healed" "$($LC count "$L" healed)" "$($LC count "$L" blackhole)"
	no_trace "repeated" "$L"
	decoys_ok "repeated"
); fi

# ---- real servers, no NAT: slow, silent, down: never a blackhole --------
direct_case() {   # KIND FAMILY
	lab_up || { fail "direct $*: lab_up"; return; }
	if [ "$2" = 4 ]; then srv=$POD4 typ=A; else srv="[$POD6]" typ=AAAA; fi
	n="direct $1 server, IPv$2"
	L=$W/direct-$1-$2.log
	case $1 in
	slow)
		lab_dns_stop
		rm -f "$W/slow.ready"
		lab_pod "$LAB_PY" "$TOP/tests/faults/hostile_dns.py" --bind "$POD4" --bind "$POD6" \
			--mode slow --delay 0.6 --log "$W/slow.q" --ready "$W/slow.ready" &
		i=0; while [ ! -e "$W/slow.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		args="-c 4 -i 1s -w 2s" want_rc=0 ;;
	silent)
		lab_pod iptables -I INPUT -p udp --dport 53 -j DROP
		lab_pod ip6tables -I INPUT -p udp --dport 53 -j DROP
		args="-c 4 -i 300ms -w 250ms" want_rc=1 ;;
	down)
		lab_pod sysctl -q -w net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
		lab_dns_stop
		args="-c 4 -i 300ms -w 250ms" want_rc=1 ;;
	esac
	# shellcheck disable=SC2086
	lab_node "$BIN" -d "$srv" -t $typ $args -v >"$L" 2>&1; rc=$?
	claims=$(( $($LC count "$L" blackhole) + $($LC count "$L" nat_missing) ))
	case $1 in
	slow) outcome=$($LC count "$L" reply) want_out=4 what="4 answers after 0.6 s" ;;
	silent) outcome=$($LC count "$L" timeout cause=no_reply) want_out=4 what="4 timeouts cause=no_reply" ;;
	down) outcome=$($LC count "$L" refused cause=refused) want_out=4 what="4 refused (ICMP)" ;;
	esac
	probes=$($LC count "$L" probe)
	if [ "$rc" = "$want_rc" ] && [ "$claims" = 0 ] && [ "$outcome" = "$want_out" ] &&
	   [ "$($LC count "$L" nat_learned)" = 0 ] && { [ "$1" = down ] || [ "$probes" -ge 1 ]; }; then
		pass "$n: $what, $probes probe(s) not DNAT'd, no blackhole or nat_missing claimed, exit $rc"
	else
		fail "$n" "rc=$rc (want $want_rc) claims=$claims outcome=$outcome (want $want_out) probes=$probes $(grep -m2 'level=error' "$L" | cut -c1-200)"
	fi
	[ "$1" = down ] || no_trace "$n" "$L"
}
if scenario direct; then
	for kind in slow silent down; do for fam in 4 6; do
		( direct_case $kind $fam )
	done; done
fi

# ---- scan: the same proof per VIP ----------------------------------------
if scenario scan; then (
	lab_up || { fail "scan: lab_up"; exit 0; }
	S=$W/scan
	lab_rules window || { fail "scan: lab_rules"; exit 0; }
	# Three fixed-port clients stuck by the window (their first query
	# made an entry to the VIP itself), and one healthy DNAT'd flow from
	# before it still in the table (what makes the VIP a Service's).
	lab_rules full && lab_client 30990 4 1 0.1 1 >/dev/null 2>&1
	lab_rules window
	for p in 30991 30992 30993; do lab_client $p 4 1 0.1 0.2 >/dev/null 2>&1; done
	lab_ct -L >"$S-before.ct" 2>/dev/null
	lab_node "$BIN" scan -d "$VIP4" --fix >"$S-window.log" 2>&1; rc=$?
	lab_ct -L >"$S-after.ct" 2>/dev/null
	kept=$(for p in 30991 30992 30993; do grep -c "sport=$p dport=53 \[UNREPLIED\] src=$VIP4 " "$S-after.ct"; done | tr -d '\n')
	if [ "$rc" = 0 ] && [ "$($LC count "$S-window.log" nat_missing)" = 3 ] &&
	   [ "$($LC count "$S-window.log" blackholed)" = 0 ] && [ "$($LC count "$S-window.log" scan_deleted)" = 0 ] &&
	   grep -q 'event=scan_vip.* nat=missing' "$S-window.log" && [ "$kept" = 111 ]; then
		pass "scan inside a window: VIP nat=missing, 3 entries reported nat_missing, --fix deleted nothing (conntrack -L still has all 3), exit 0"
	else
		fail "scan inside a window" "rc=$rc nat_missing=$($LC count "$S-window.log" nat_missing) blackholed=$($LC count "$S-window.log" blackholed) kept=$kept $(grep -m1 scan_vip "$S-window.log")"
	fi
	# A server that is not a Service VIP (the pod's own address): no flow
	# to it is DNAT'd, so nothing is listed, whatever its entries look like.
	lab_node "$BIN" scan -d "$POD4" >"$S-direct.log" 2>&1; rc=$?
	if [ "$rc" = 0 ] && grep -q 'event=scan_vip.* nat=none' "$S-direct.log" &&
	   [ "$(grep -c 'event=blackholed\|event=nat_missing' "$S-direct.log")" = 0 ]; then
		pass "scan of a -d that is not NAT'd: says nat=none, lists nothing, exit 0"
	else
		fail "scan of a -d that is not NAT'd" "rc=$rc $(grep -m2 'scan_vip\|blackholed' "$S-direct.log" | cut -c1-200)"
	fi
	# The rules back: the same three are proven and --fix deletes exactly them.
	lab_rules full
	lab_node "$BIN" scan -d "$VIP4" --fix >"$S-back.log" 2>&1; rc=$?
	lab_ct -L >"$S-back.ct" 2>/dev/null
	listed=$(grep 'event=blackholed' "$S-back.log" | sed -n 's/.* client=[^ ]* sport=\([0-9]*\) .*/\1/p' | sort | tr '\n' ' ')
	gone=$(for p in 30991 30992 30993; do grep -c "sport=$p dport=53 \[UNREPLIED\] src=$VIP4 " "$S-back.ct"; done | tr -d '\n')
	if [ "$rc" = 3 ] && [ "$listed" = "30991 30992 30993 " ] && [ "$gone" = 000 ] &&
	   [ "$($LC count "$S-back.log" scan_deleted)" = 3 ] && grep -q 'event=blackholed.* proof="udp .* src=10.244.0.2 ' "$S-back.log" &&
	   grep -q 'event=scan_vip.* nat=in_place' "$S-back.log"; then
		pass "scan with the rules back: the 3 stuck clients proven (proof= the probe's DNAT'd entry) and deleted, exit 3"
	else
		fail "scan with the rules back" "rc=$rc listed='$listed' left=$gone deleted=$($LC count "$S-back.log" scan_deleted)"
	fi
	# Each scan's probe is gone too (its reply awaited, its entry deleted).
	for f in window direct back; do
		sed -n 's/.*event=scan_vip.* probe="udp *17 [0-9]* src=[^ ]* dst=[^ ]* sport=\([0-9]*\) .*/\1/p' "$S-$f.log"
	done >"$S.ports"
	left=0
	while read -r p; do
		[ -n "$p" ] && grep -q "sport=$p dport=53 \|sport=53 dport=$p " "$S-back.ct" && left=$((left + 1))
	done <"$S.ports"
	if [ -s "$S.ports" ] && [ "$left" = 0 ]; then
		pass "scan: its $(wc -l <"$S.ports") probes leave no entry behind"
	else
		fail "scan: probes leave no trace" "ports=$(tr '\n' ' ' <"$S.ports") left=$left"
	fi
); fi
