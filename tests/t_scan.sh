#!/bin/sh
# t_scan.sh - `scan` in the lab: real clients caught by a restart window
# (client.py and the tester itself, fixed ports, both families) among
# thousands of decoys and hand-made edge entries. The oracle is
# `conntrack -L -o id` read by tests/scan/oracle.py, never scan's own
# output. Each scenario is a subshell with its own lab.
#
#   sudo ./test.sh scan                     all scenarios
#   sudo SCAN_ONLY=caught ./test.sh scan    one of: caught edges usage
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
ORACLE=$TOP/tests/scan/oracle.py
OR() { /usr/bin/python3 "$ORACLE" "$@"; }

FILTER_VAR=SCAN_ONLY     # (lib.sh: scenario)
now_ms() { date +%s%3N; }

# scan LOG ARGS...: scan in the node namespace; sets SRC (exit status).
# stderr goes to LOG.err.
scan() { _l=$1; shift; ip netns exec "$NS_NODE" "$BIN" scan "$@" >"$_l" 2>"$_l.err"; SRC=$?; }
# snap FILE: the node's conntrack table, with ids (the oracle's input)
snap() { lab_ct -L -o id >"$1" 2>/dev/null; }
# summary LOG KEY
summary() { field "$1" scan_summary "$2"; }
# lines FILE: non-empty lines
lines() { grep -c . "$1" 2>/dev/null || true; }

# same NAME LOG CT PROTO VIP...: what LOG listed is exactly what the
# oracle computes from CT for PROTO and the VIPs (duplicates count).
same() {
	_n=$1 _log=$2 _ct=$3; shift 3
	OR expect "$_ct" "$@" >"$_log.want"
	OR listed "$_log" >"$_log.got"
	if [ "$(lines "$_log.want")" -gt 0 ] && cmp -s "$_log.want" "$_log.got"; then
		pass "$_n: $(lines "$_log.got") entries, exactly the oracle's set"
	elif [ "$(lines "$_log.want")" = 0 ]; then
		fail "$_n" "the oracle expects nothing: the test set-up is wrong"
	else
		fail "$_n" "want $(lines "$_log.want") got $(lines "$_log.got"): $(diff "$_log.want" "$_log.got" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
	fi
}

# none NAME LOG CT PROTO VIP...: the oracle finds entries of PROTO to the
# VIPs not DNAT'd and never replied, and LOG (exit SRC) claims none of
# them: a TCP entry is never stranded (verdict.c: a TCP client that is
# not answered gives up its port), so -p tcp lists nothing, exit 0.
none() {
	_n=$1 _log=$2 _ct=$3; shift 3
	OR expect "$_ct" "$@" >"$_log.want"
	OR listed "$_log" >"$_log.got"
	if [ "$(lines "$_log.want")" -gt 0 ] && [ "$(lines "$_log.got")" = 0 ] && [ "$SRC" = 0 ]; then
		pass "$_n: none of the $(lines "$_log.want") unreplied TCP entries without DNAT claimed, exit 0"
	else
		fail "$_n" "want none of $(lines "$_log.want") listed, got $(lines "$_log.got"), exit $SRC"
	fi
}

# services: the other VIPs and ports the scans below name are Services
# too, with a DNAT rule (to the pod's .3 / ::3, where nothing listens):
# scan calls an entry blackholed only where its probe proves the VIP's rule
# in place, and a VIP no flow to is DNAT'd is not a Service (t_verdict.sh).
# A table of its own, beside kube-proxy's: lab_rules leaves it alone.
services() {
	lab_node nft -f - <<-EOF || { fail "nft: the test's extra Services"; return 1; }
	table inet lab-services {
		chain out {
			type nat hook output priority -100; policy accept;
			ip daddr { 10.0.0.20, 10.0.0.30, 10.0.0.41, 10.0.0.42, 10.0.0.43 } udp dport 53 dnat ip to $POD4B
			ip6 daddr { fd00:96::14, fd00:96::1e } udp dport 53 dnat ip6 to $POD6B
			ip daddr $VIP4 udp dport { 5353, 9153 } dnat ip to $POD4B
			ip6 daddr $VIP6 udp dport { 5353, 9153 } dnat ip6 to $POD6B
		}
	}
	EOF
}
# before_dump SYSCALL SCAN_ARGS...: how many SYSCALL (sendto|recvmsg)
# calls a scan makes before its dump request (its probes come first), from
# a dry run without --fix under strace: fault injections count from there.
before_dump() {
	_sc=$1; shift
	ip netns exec "$NS_NODE" strace -f -qq -o "$OUT/scan-dry.strace" -e trace=sendto,recvmsg \
		"$BIN" scan "$@" >/dev/null 2>&1
	awk -v sc="$_sc" '/sendto\(.*NLM_F_DUMP/ { print n + 0; exit } index($0, sc "(") { n++ }' "$OUT/scan-dry.strace"
}

# ins PROTO SRC DST SPORT DPORT STATUS [conntrack -I options...]: one
# hand-made entry whose reply comes from DST itself (no DNAT).
ins() {
	_p=$1 _s=$2 _d=$3 _sp=$4 _dp=$5 _st=$6; shift 6
	[ "$_p" = tcp ] && set -- --state SYN_SENT "$@"
	lab_ct -I -p "$_p" -s "$_s" -d "$_d" --sport "$_sp" --dport "$_dp" -r "$_d" -q "$_s" \
		--reply-port-src "$_dp" --reply-port-dst "$_sp" -u "$_st" -t 300 "$@" >/dev/null 2>&1 ||
		{ fail "conntrack -I $_p $_s -> $_d $_sp/$_dp $*"; return 1; }
}

# Hand-made edge entries (source ports 31000 and up: no decoy, no client):
#   tcp to the VIP, unreplied, no DNAT (blackholed for -p tcp), both families
#   udp to the VIP, no DNAT but SEEN_REPLY (a VIP served locally): never listed
#   udp to the VIP, reply from the VIP's port 5353 (port NAT): never listed
#   udp to the VIP, unreplied, in conntrack zone 7 (blackholed), both families
#   the same tuple, unreplied, in zone 0 and zone 9 (two blackholed entries)
#   udp to 10.0.0.30 / fd00:96::1e (VIPs given to no -d by default), unreplied
extras() {
	ins tcp "$NODE4" "$VIP4" 31001 53 UNSET &&
	ins tcp "$NODE6" "$VIP6" 31001 53 UNSET &&
	ins udp "$NODE4" "$VIP4" 31002 53 SEEN_REPLY &&
	ins udp "$NODE6" "$VIP6" 31002 53 SEEN_REPLY &&
	{ lab_ct -I -p udp -s "$NODE4" -d "$VIP4" --sport 31006 --dport 53 -r "$VIP4" -q "$NODE4" \
		--reply-port-src 5353 --reply-port-dst 31006 -u UNSET -t 300 >/dev/null 2>&1 ||
		{ fail "conntrack -I udp $NODE4 -> $VIP4 31006/53, reply from port 5353"; false; }; } &&
	ins udp "$NODE4" "$VIP4" 31003 53 UNSET --zone 7 &&
	ins udp "$NODE6" "$VIP6" 31003 53 UNSET --zone 7 &&
	ins udp "$NODE4" "$VIP4" 31004 53 UNSET &&
	ins udp "$NODE4" "$VIP4" 31004 53 UNSET --zone 9 &&
	ins udp "$NODE4" 10.0.0.30 31008 53 UNSET &&
	ins udp "$NODE6" fd00:96::1e 31008 53 UNSET
}

# client PORT 4|6 COUNT INTERVAL TIMEOUT OUTFILE: client.py in the node
# namespace in the background (ip netns exec execs it: $! is the client).
client() {
	if [ "$2" = 4 ]; then set -- "$1" "$NODE4" "$VIP4" A "$ANSWER4" "$3" "$4" "$5" "$6"
	else set -- "$1" "$NODE6" "$VIP6" AAAA "$ANSWER6" "$3" "$4" "$5" "$6"; fi
	ip netns exec "$NS_NODE" "$LAB_PY" "$TOP/tests/client.py" --bind "$2" --port "$1" \
		--server "$3" --qtype "$4" --expect "$5" --count "$6" --interval "$7" --timeout "$8" >"$9" 2>&1 &
}

# ---- clients caught by a restart window, among thousands of decoys -----
caught_scenario() {   # MODE DECOYS
	mode=$1 ndecoys=$2 S="caught $1"
	D=$OUT/scan-$mode
	lab_up --mode "$mode" || { fail "$S: lab_up"; return; }
	t0=$(now_ms)
	lab_decoys "$ndecoys" || { fail "$S: lab_decoys $ndecoys"; return; }
	# (each failed insert says which; the missing checks fail the count)
	extras || { fail "$S: the hand-made edge entries (extras)"; return; }

	# Two long-lived clients whose entries are made (and DNAT'd) before
	# the window: they keep working through it and must never be listed.
	client 30031 4 16 0.25 0.5 "$D-live4.txt"; L4=$!
	client 30031 6 16 0.25 0.5 "$D-live6.txt"; L6=$!
	sleep 0.6
	# kube-proxy restarts: every client that sends its first query now is
	# caught - three client.py and one tester per family.
	lab_rules window || { fail "$S: lab_rules window"; return; }   # (the count fails the rest)
	pids=
	for p in 30001 30002 30003; do
		client $p 4 12 0.25 0.2 "$D-c$p.txt"; pids="$pids $!"
		client $((p + 10)) 6 12 0.25 0.2 "$D-c$((p + 10)).txt"; pids="$pids $!"
	done
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -s "$NODE4:30021" -i 200ms -w 500ms >"$D-t4.log" 2>&1 & T4=$!
	ip netns exec "$NS_NODE" "$BIN" -d "[$VIP6]" -s "[$NODE6]:30022" -i 200ms -w 500ms >"$D-t6.log" 2>&1 & T6=$!
	sleep 1.2
	lab_rules full || { fail "$S: lab_rules full"; return; }
	services || return
	# shellcheck disable=SC2086
	wait $pids $L4 $L6
	bad=
	for p in 30001 30002 30003 30011 30012 30013; do
		[ "$(grep -c '^timeout$' "$D-c$p.txt")" = 12 ] || bad="$bad $p:$(tr '\n' ',' <"$D-c$p.txt")"
	done
	if [ -z "$bad" ]; then
		pass "$S: 6 fixed-port clients (3 per family) caught by the window: all 12 queries timed out, also the ones sent after the rules were back"
	else
		fail "$S: clients caught by the window" "$bad"
	fi
	if [ "$(grep -c '^ok ' "$D-live4.txt")" = 16 ] && [ "$(grep -c '^ok ' "$D-live6.txt")" = 16 ]; then
		pass "$S: 2 clients DNAT'd before the window kept being answered (16/16 each)"
	else
		fail "$S: clients from before the window" "v4: $(sort "$D-live4.txt" | uniq -c | tr '\n' ' ') v6: $(sort "$D-live6.txt" | uniq -c | tr '\n' ' ')"
	fi

	# The table is still now (the testers stay blackholed, the clients
	# are done): the oracle is read before and after the scans and must
	# not have changed, or the comparisons below would be meaningless.
	snap "$D-pre.ct"
	OR expect "$D-pre.ct" udp "$VIP4" "[$VIP6]" >"$D-want.keys"
	n=$(lines "$D-want.keys")
	miss=
	for p in 30001 30002 30003 30021; do grep -q "^udp $NODE4 $p $VIP4 53 " "$D-want.keys" || miss="$miss $NODE4:$p"; done
	for p in 30011 30012 30013 30022; do grep -q "^udp $NODE6 $p $VIP6 53 " "$D-want.keys" || miss="$miss [$NODE6]:$p"; done
	expect_eq "$S: the oracle (conntrack -L) sees all 8 caught flows blackholed" "${miss:-none}" none

	scan "$D-k.log" -d "$VIP4" -d "[$VIP6]"
	same "$S: scan -d VIP4 -d [VIP6] lists every blackholed flow of $(lab_ct -C 2>/dev/null) entries" "$D-k.log" "$D-pre.ct" udp "$VIP4" "[$VIP6]"
	expect_eq "$S: exit 3 when found, summary filter=kernel blackholed=$n" \
		"$SRC $(summary "$D-k.log" filter) $(summary "$D-k.log" blackholed) $(summary "$D-k.log" deleted)" "3 kernel $n 0"
	scan "$D-u.log" -d "$VIP4" -d "[$VIP6]" --filter user
	OR listed "$D-u.log" >"$D-u.log.got"
	if [ -s "$D-u.log.got" ] && cmp -s "$D-k.log.got" "$D-u.log.got"; then
		pass "$S: --filter user (unfiltered dump) lists the same set as the kernel filter"
	else
		fail "$S: --filter user gives the same set" "$(diff "$D-k.log.got" "$D-u.log.got" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
	fi
	expect_eq "$S: --filter user: exit 3, summary says filter=user" "$SRC $(summary "$D-u.log" filter)" "3 user"
	scan "$D-k2.log" -d "$VIP4" -d "[$VIP6]" --filter kernel
	expect_eq "$S: --filter kernel: exit 3, summary says filter=kernel, same count" \
		"$SRC $(summary "$D-k2.log" filter) $(summary "$D-k2.log" blackholed)" "3 kernel $n"

	# Each family alone, and VIPs of both families beside decoy VIPs.
	scan "$D-4.log" -d "$VIP4"
	same "$S: scan -d VIP4 (IPv4 only)" "$D-4.log" "$D-pre.ct" udp "$VIP4"
	scan "$D-6.log" -d "[$VIP6]:53"
	same "$S: scan -d [VIP6]:53 (IPv6 only)" "$D-6.log" "$D-pre.ct" udp "[$VIP6]"
	vips="$VIP4 10.0.0.20 10.0.0.30 [$VIP6] [fd00:96::14] [fd00:96::1e]"
	for f in kernel user; do
		# shellcheck disable=SC2046
		scan "$D-m$f.log" --filter $f $(for v in $vips; do echo "-d $v"; done)
		# shellcheck disable=SC2086
		same "$S: six -d VIPs (3 per family), --filter $f" "$D-m$f.log" "$D-pre.ct" udp $vips
	done
	for f in kernel user; do
		scan "$D-p$f.log" --filter $f -d "$VIP4:5353" -d "[$VIP6]:5353"
		same "$S: -d VIP:5353 (another port), --filter $f" "$D-p$f.log" "$D-pre.ct" udp "$VIP4:5353" "[$VIP6]:5353"
		scan "$D-t$f.log" --filter $f -p tcp -d "$VIP4" -d "[$VIP6]"
		none "$S: -p tcp -d VIP4 -d [VIP6], --filter $f" "$D-t$f.log" "$D-pre.ct" tcp "$VIP4" "[$VIP6]"
		expect_eq "$S: -p tcp --filter $f summary proto=tcp" "$(summary "$D-t$f.log" proto)" tcp
		scan "$D-s$f.log" --filter $f -p tcp -d "$VIP4:9153" -d "[$VIP6]:9153"
		none "$S: -p tcp -d VIP:9153 (SYN_SENT decoys), --filter $f" "$D-s$f.log" "$D-pre.ct" tcp "$VIP4:9153" "[$VIP6]:9153"
	done
	# Never listed: the VIP served locally (SEEN_REPLY, no DNAT) and the
	# port-NAT'd entry, in any of the scans above.
	if grep -l 'sport=3100[26] ' "$D"-*.log >/dev/null 2>&1; then
		fail "$S: locally served / port-NAT'd entries are never listed" "$(grep -h 'sport=3100[26] ' "$D"-*.log | head -n 2)"
	else
		pass "$S: a VIP served locally (no DNAT, SEEN_REPLY) and a port-NAT'd entry are never listed"
	fi
	# The same VIP twice is one VIP.
	for f in kernel user; do
		scan "$D-dup$f.log" --filter $f -d "$VIP4" -d "$VIP4:53" -d "[$VIP6]" -d "[$VIP6]:53"
		same "$S: a VIP given twice (per family) lists each entry once, --filter $f" "$D-dup$f.log" "$D-pre.ct" udp "$VIP4" "[$VIP6]"
	done

	# Default VIP: resolv.conf's first nameserver, read in a private mount
	# namespace so the host's file is never touched.
	for v in "$VIP4" "$VIP6"; do
		printf 'search svc.cluster.local\nnameserver %s\nnameserver 10.0.0.99\n' "$v" >"$D-resolv.conf"
		ip netns exec "$NS_NODE" unshare -m sh -c "mount --bind '$D-resolv.conf' /etc/resolv.conf &&
			exec '$BIN' scan" >"$D-r.log" 2>"$D-r.log.err"
		case $v in *:*) vv="[$v]" ;; *) vv=$v ;; esac
		same "$S: no -d: the VIP is resolv.conf's first nameserver ($v)" "$D-r.log" "$D-pre.ct" udp "$vv"
	done
	printf 'search x\n' >"$D-resolv.conf"
	ip netns exec "$NS_NODE" unshare -m sh -c "mount --bind '$D-resolv.conf' /etc/resolv.conf &&
		exec '$BIN' scan" >"$D-r.log" 2>"$D-r.log.err"; rc=$?
	if [ $rc = 2 ] && [ ! -s "$D-r.log" ] && grep -q 'no nameserver' "$D-r.log.err"; then
		pass "$S: no -d and no nameserver in resolv.conf: exit 2, $(cat "$D-r.log.err")"
	else
		fail "$S: no -d and no nameserver" "rc=$rc $(head -c 200 "$D-r.log.err")"
	fi

	# JSON logs carry the same set.
	scan "$D-j.log" -d "$VIP4" -d "[$VIP6]" --log-format json
	if /usr/bin/python3 -c '
import json, sys
ls = open(sys.argv[1]).read().splitlines()
assert ls and all(json.loads(l)["event"] in ("scan_vip", "blackholed", "scan_summary") for l in ls)' "$D-j.log" 2>"$D-j.err"; then
		same "$S: --log-format json: one object a line, same set" "$D-j.log" "$D-pre.ct" udp "$VIP4" "[$VIP6]"
	else
		fail "$S: --log-format json" "$(tail -n 1 "$D-j.err")"
	fi

	# A dump cut short is retried from scratch and still reported whole:
	# strace makes the 3rd recv of the dump fail with ENOBUFS, once.
	for f in kernel user; do
		k=$(before_dump recvmsg --filter $f -d "$VIP4" -d "[$VIP6]")
		ip netns exec "$NS_NODE" strace -f -qq -o "$D-cut$f.strace" -e trace=recvmsg \
			-e inject=recvmsg:error=ENOBUFS:when=$((k + 3)) "$BIN" scan --filter $f -d "$VIP4" -d "[$VIP6]" >"$D-cut$f.log" 2>&1
		rc=$?
		OR listed "$D-cut$f.log" >"$D-cut$f.got"
		if [ $rc = 3 ] && grep -q 'INJECTED' "$D-cut$f.strace" && grep -q 'event=scan_retry' "$D-cut$f.log" &&
		   cmp -s "$D-cut$f.got" "$D-k.log.got"; then
			pass "$S: --filter $f: a dump cut by ENOBUFS is retried (scan_retry) and the whole set is listed"
		else
			fail "$S: --filter $f: a dump cut by ENOBUFS once is retried and reported whole" \
				"rc=$rc listed=$(lines "$D-cut$f.got")/$n $(grep -v 'event=blackholed' "$D-cut$f.log" | sed 's/^ts=[^ ]* //' | tr '\n' ' ' | head -c 400)"
		fi
	done

	# A kernel that refuses CTA_FILTER (EOPNOTSUPP, EINVAL: injected on the
	# filtered request): the automatic fallback, not --filter user.
	k=$(before_dump sendto -d "$VIP4" -d "[$VIP6]")
	for e in EOPNOTSUPP EINVAL; do
		ip netns exec "$NS_NODE" strace -f -qq -o "$D-ref$e.strace" -e trace=sendto \
			-e inject=sendto:error=$e:when=$((k + 1)) "$BIN" scan -d "$VIP4" -d "[$VIP6]" >"$D-ref$e.log" 2>&1
		rc=$?
		OR listed "$D-ref$e.log" >"$D-ref$e.got"
		if [ $rc = 3 ] && grep -q INJECTED "$D-ref$e.strace" && [ "$(summary "$D-ref$e.log" filter)" = user ] &&
		   cmp -s "$D-ref$e.got" "$D-k.log.got"; then
			pass "$S: the kernel refuses the filter ($e): falls back by itself, filter=user, same set"
		else
			fail "$S: fallback when the kernel refuses the filter ($e)" "rc=$rc filter=$(summary "$D-ref$e.log" filter) listed=$(lines "$D-ref$e.got")/$n"
		fi
	done

	snap "$D-pre2.ct"
	OR expect "$D-pre2.ct" udp "$VIP4" "[$VIP6]" >"$D-want2.keys"
	if [ -s "$D-want.keys" ] && cmp -s "$D-want.keys" "$D-want2.keys"; then
		pass "$S: the blackholed set did not change while scanning ($(lines "$D-want2.keys") entries)"
	else
		fail "$S: the blackholed set did not change while scanning" "$(diff "$D-want.keys" "$D-want2.keys" | head -n 3 | tr '\n' ' ')"
	fi

	# --fix: deletes exactly the listed set; everything else stays.
	scan "$D-fix.log" -d "$VIP4" -d "[$VIP6]" --fix
	snap "$D-post.ct"
	same "$S: scan --fix lists the same set" "$D-fix.log" "$D-pre2.ct" udp "$VIP4" "[$VIP6]"
	OR listed "$D-fix.log" scan_deleted >"$D-fix.deleted"
	if cmp -s "$D-fix.deleted" "$D-want2.keys" && [ "$SRC" = 3 ] &&
	   [ "$(summary "$D-fix.log" deleted)" = "$n" ] && [ "$(count_events "$D-fix.log" scan_gone)" = 0 ]; then
		pass "$S: --fix: scan_deleted for each of the $n, summary deleted=$n, exit 3"
	else
		fail "$S: --fix deletes every listed entry" "rc=$SRC deleted_lines=$(lines "$D-fix.deleted") summary=$(summary "$D-fix.log" deleted) gone=$(count_events "$D-fix.log" scan_gone)"
	fi
	if OR fixed "$D-pre2.ct" "$D-post.ct" "$D-want2.keys" >"$D-fixed.bad"; then
		pass "$S: --fix removed exactly the blackholed set; the other $(($(lines "$D-pre2.ct") - n)) entries (DNAT'd, other ports, TCP, other VIPs, local replies, zones) are untouched, same ids"
	else
		fail "$S: --fix removes exactly the set" "$(head -n 3 "$D-fixed.bad" | tr '\n' ' ')"
	fi
	# Every decoy is still there as inserted, except the "others'
	# blackholed flows" to the scanned VIPs, which --fix must delete.
	lab_decoys_check >"$D-decoys.check"
	sed -n 's/^missing: //p' "$D-decoys.check" | sort >"$D-decoys.missing"
	grep -E "^udp 17 src=[^ ]+ dst=($VIP4|$VIP6) sport=[0-9]+ dport=53 \[UNREPLIED\] src=($VIP4|$VIP6) " "$LAB_DIR/decoys.txt" | sort >"$D-decoys.bh"
	if cmp -s "$D-decoys.missing" "$D-decoys.bh" && ! grep -q '^changed' "$D-decoys.check" && [ -s "$D-decoys.bh" ]; then
		pass "$S: of $ndecoys decoys only the $(lines "$D-decoys.bh") blackholed ones to the VIP are gone; every other decoy is still there, unchanged"
	else
		fail "$S: decoys after --fix" "missing=$(lines "$D-decoys.missing") want=$(lines "$D-decoys.bh") $(grep -m2 '^changed' "$D-decoys.check")"
	fi
	scan "$D-after.log" -d "$VIP4" -d "[$VIP6]"
	expect_eq "$S: a scan after --fix finds nothing: exit 0, level=info, blackholed=0" \
		"$SRC $(count_events "$D-after.log" blackholed) $(grep -c 'level=info event=scan_summary.* blackholed=0 ' "$D-after.log")" "0 0 1"

	# The healed clients' next queries (same ports) are answered.
	pids=
	for p in 30001 30002 30003; do
		client $p 4 3 0.1 0.5 "$D-h$p.txt"; pids="$pids $!"
		client $((p + 10)) 6 3 0.1 0.5 "$D-h$((p + 10)).txt"; pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids
	bad=
	for p in 30001 30002 30003 30011 30012 30013; do
		[ "$(grep -c '^ok ' "$D-h$p.txt")" = 3 ] || bad="$bad $p:$(tr '\n' ',' <"$D-h$p.txt")"
	done
	expect_eq "$S: after --fix the 6 caught client ports are answered again (3/3 each)" "${bad:-all ok}" "all ok"
	sleep 0.5
	kill -TERM "$T4" "$T6" 2>/dev/null
	wait "$T4"; r4=$?
	wait "$T6"; r6=$?
	if [ "$(count_events "$D-t4.log" recovered)" = 1 ] && [ "$(count_events "$D-t6.log" recovered)" = 1 ] &&
	   grep -q 'event=recovered.*cause=blackhole' "$D-t4.log" && grep -q 'event=recovered.*cause=blackhole' "$D-t6.log" &&
	   [ "$r4 $r6" = "3 3" ]; then
		pass "$S: both caught testers (ours, IPv4 and IPv6) log recovered cause=blackhole after --fix; exit 3"
	else
		fail "$S: caught testers recover" "rc=$r4/$r6 recovered=$(count_events "$D-t4.log" recovered)/$(count_events "$D-t6.log" recovered)"
	fi
	echo "   ($S: $(($(now_ms) - t0)) ms)" >&2
}
if scenario caught; then
	(caught_scenario iptables 3000)
	(caught_scenario nftables 1000)
fi

# ---- edges: failures, races, capabilities ------------------------------
if scenario edges; then (
	S=edges D=$OUT/scan-edges
	lab_up || { fail "$S: lab_up"; exit 0; }
	services || exit 0
	# A VIP served locally (10.0.0.40: answered by the node itself).
	ins udp "$NODE4" 10.0.0.40 31002 53 SEEN_REPLY || exit 0
	ins udp "$NODE6" fd00:96::28 31002 53 SEEN_REPLY || exit 0
	scan "$D-local.log" -d 10.0.0.40 -d "[fd00:96::28]"
	expect_eq "$S: only a locally served VIP's entries (no DNAT, SEEN_REPLY): exit 0, nothing listed, examined=2" \
		"$SRC $(count_events "$D-local.log" blackholed) $(summary "$D-local.log" examined)" "0 0 2"
	scan "$D-none.log" -d 10.0.0.99 --fix
	# shellcheck disable=SC2046
	scan "$D-16.log" $(for i in $(seq 1 16); do echo "-d 10.0.1.$i"; done)
	expect_eq "$S: 16 VIPs (the most) are accepted: exit 0" "$SRC $(count_events "$D-16.log" scan_summary)" "0 1"
	expect_eq "$S: nothing to find, with --fix: exit 0, level=info summary" \
		"$SRC $(grep -c 'level=info event=scan_summary' "$D-none.log")" "0 1"

	# A deletion that fails: exit 1, scan_delete_failed, the rest deleted.
	for p in 31011 31012 31013 31014; do ins udp "$NODE4" 10.0.0.41 $p 53 UNSET || exit 0; done
	# --filter user: after the probe, sendto #k+1 is the dump, then a GET
	# and a DELETE per entry: #k+5 is the second entry's DELETE; it fails.
	k=$(before_dump sendto --filter user -d 10.0.0.41)
	ip netns exec "$NS_NODE" strace -f -qq -o "$D-delfail.strace" -e trace=sendto \
		-e inject=sendto:error=EIO:when=$((k + 5)) "$BIN" scan --filter user -d 10.0.0.41 --fix >"$D-delfail.log" 2>&1
	rc=$?
	left=$(lab_ct -L -d 10.0.0.41 2>/dev/null | grep -c .)
	if [ $rc = 1 ] && [ "$(count_events "$D-delfail.log" scan_delete_failed)" = 1 ] &&
	   grep -q 'event=scan_delete_failed.* err="I/O error"' "$D-delfail.log" &&
	   [ "$(count_events "$D-delfail.log" scan_deleted)" = 3 ] && [ "$left" = 1 ] &&
	   [ "$(summary "$D-delfail.log" deleted)" = 3 ]; then
		pass "$S: a deletion that fails (EIO injected): exit 1, one scan_delete_failed line, the other 3 deleted"
	else
		fail "$S: a failed deletion" "rc=$rc left=$left $(grep -v event=blackholed "$D-delfail.log" | sed 's/^ts=[^ ]* //' | tr '\n' ' ' | head -c 300)"
	fi

	# The entry is replaced between the dump and its deletion: the CTA_ID
	# guard leaves the new one alone (scan_gone), exit still 3.
	ins udp "$NODE4" 10.0.0.42 31021 53 UNSET || exit 0
	k=$(before_dump sendto --filter user -d 10.0.0.42)
	ip netns exec "$NS_NODE" strace -f -qq -o "$D-gone.strace" -e trace=sendto \
		-e inject=sendto:delay_enter=1500000:when=$((k + 2)) "$BIN" scan --filter user -d 10.0.0.42 --fix >"$D-gone.log" 2>&1 & P=$!
	sleep 0.5
	old=$(lab_ct -L -o id -d 10.0.0.42 2>/dev/null | sed -n 's/.* id=\([0-9]*\).*/\1/p')
	new=$old k=0
	# Filler entries take the freed slab slot, so the new entry gets
	# another CTA_ID (the kernel hashes the slab address into it).
	while [ "$new" = "$old" ] && [ $k -lt 5 ]; do
		lab_ct -D -d 10.0.0.42 >/dev/null 2>&1
		for f in 1 2 3; do ins udp "$NODE4" 10.0.0.43 $((31030 + k * 3 + f)) 53 UNSET; done
		ins udp "$NODE4" 10.0.0.42 31021 53 UNSET
		new=$(lab_ct -L -o id -d 10.0.0.42 2>/dev/null | sed -n 's/.* id=\([0-9]*\).*/\1/p')
		k=$((k + 1))
	done
	wait $P; rc=$?
	still=$(lab_ct -L -o id -d 10.0.0.42 2>/dev/null | sed -n 's/.* id=\([0-9]*\).*/\1/p')
	if [ -n "$old" ] && [ "$new" != "$old" ] && [ $rc = 3 ] && [ "$still" = "$new" ] &&
	   [ "$(count_events "$D-gone.log" scan_gone)" = 1 ] && [ "$(count_events "$D-gone.log" scan_deleted)" = 0 ]; then
		pass "$S: an entry replaced after the dump (id $old -> $new) is left alone: scan_gone, exit 3"
	else
		fail "$S: an entry replaced after the dump is not deleted" "old=$old new=$new now=$still rc=$rc $(grep -v event=blackholed "$D-gone.log" | sed 's/^ts=[^ ]* //' | tr '\n' ' ' | head -c 300)"
	fi

	# The dump fails every time: exit 1 after three tries, nothing listed.
	ip netns exec "$NS_NODE" strace -f -qq -o "$D-dumpfail.strace" -e trace=recvmsg \
		-e inject=recvmsg:error=ENOBUFS:when=1+ "$BIN" scan -d "$VIP4" -d 10.0.0.41 >"$D-dumpfail.log" 2>&1
	rc=$?
	if [ $rc = 1 ] && [ "$(count_events "$D-dumpfail.log" scan_retry)" = 3 ] &&
	   [ "$(count_events "$D-dumpfail.log" scan_failed)" = 1 ] && [ "$(count_events "$D-dumpfail.log" blackholed)" = 0 ] &&
	   grep -q 'level=error event=scan_failed' "$D-dumpfail.log"; then
		pass "$S: a dump that always fails: 3 scan_retry, then scan_failed (level=error), exit 1, no partial list"
	else
		fail "$S: a dump that always fails" "rc=$rc $(sed 's/^ts=[^ ]* //' "$D-dumpfail.log" | tr '\n' ' ' | head -c 300)"
	fi

	# A table that changes during the dump: 300 blackholed entries from
	# 10.224.0.9 inserted and deleted over and over among 2,000 decoys.
	# Every listing: no entry twice, nothing that is not blackholed.
	lab_decoys 2000 || { fail "$S: lab_decoys"; exit 0; }
	snap "$D-stable.ct"
	OR expect "$D-stable.ct" udp "$VIP4" "[$VIP6]" >"$D-stable.keys"
	for p in $(seq 32000 32299); do
		echo "-I -t 300 -u UNSET -p udp -s 10.224.0.9 -d $VIP4 --sport $p --dport 53 -r $VIP4 -q 10.224.0.9 --reply-port-src 53 --reply-port-dst $p"
	done >"$D-churn.ins"
	: >"$D-churn.on"
	ip netns exec "$NS_NODE" sh -c "while [ -e '$D-churn.on' ]; do conntrack -R '$D-churn.ins'; conntrack -D -s 10.224.0.9; done" >/dev/null 2>&1 & CH=$!
	sleep 0.2
	bad='' seen=0 churned=0
	for k in 1 2 3 4 5 6; do
		f=kernel; [ $((k % 2)) = 0 ] && f=user
		scan "$D-churn$k.log" --filter $f -d "$VIP4" -d "[$VIP6]"
		OR listed "$D-churn$k.log" >"$D-churn$k.got"
		dup=$(sort "$D-churn$k.got" | uniq -d | head -n 1)
		alien=$(grep -v -x -F -f "$D-stable.keys" "$D-churn$k.got" | grep -v "^udp 10.224.0.9 32[0-2][0-9][0-9] $VIP4 53 " | head -n 1)
		[ "$SRC" = 3 ] && [ -z "$dup" ] && [ -z "$alien" ] &&
		   [ "$(summary "$D-churn$k.log" blackholed)" = "$(lines "$D-churn$k.got")" ] ||
			bad="$bad [$k/$f rc=$SRC dup=$dup alien=$alien]"
		seen=$((seen + $(grep -c -x -F -f "$D-stable.keys" "$D-churn$k.got")))
		churned=$((churned + $(grep -c '^udp 10.224.0.9 ' "$D-churn$k.got")))
	done
	rm -f "$D-churn.on"; wait $CH
	if [ -z "$bad" ] && [ "$churned" -gt 0 ]; then
		pass "$S: 6 scans while the table churns: no entry listed twice, nothing but blackholed entries ($churned churned ones listed; $seen of $((6 * $(lines "$D-stable.keys"))) stable ones)"
	else
		fail "$S: scans while the table churns" "churned_listed=$churned $bad"
	fi

	# Without CAP_NET_ADMIN: exit 1 with a clear line, never a partial list.
	lab_node capsh --drop=cap_net_admin -- -c "exec '$BIN' scan -d $VIP4 --fix" >"$D-nocap.log" 2>&1; rc=$?
	if [ $rc = 1 ] && grep -q 'level=error event=scan_failed.*err="Operation not permitted".*hint="needs CAP_NET_ADMIN' "$D-nocap.log" &&
	   [ "$(grep -c . "$D-nocap.log")" = 1 ]; then
		pass "$S: without CAP_NET_ADMIN: exit 1, one line: $(sed 's/^ts=[^ ]* //' "$D-nocap.log")"
	else
		fail "$S: without CAP_NET_ADMIN" "rc=$rc $(head -c 300 "$D-nocap.log")"
	fi
); fi

# ---- usage: exit 2, one line on stderr, nothing else ---------------------
if scenario usage; then
	D=$OUT/scan-usage
	# busage WHAT NAMES ARGS...: the one line must contain NAMES, the
	# option or value refused: any usage error would pass otherwise.
	busage() {
		what=$1 names=$2; shift 2
		# (in an empty network namespace: should one not fail, it dumps nothing real)
		unshare -n "$BIN" scan "$@" >"$D.out" 2>"$D.err"; rc=$?
		if [ $rc = 2 ] && [ ! -s "$D.out" ] && [ "$(wc -l <"$D.err")" = 1 ] && grep -q '^dns-blackhole-tester: ' "$D.err" &&
		   grep -q -F -e "$names" "$D.err"; then
			pass "scan refuses $what: $(cat "$D.err")"
		else
			fail "scan refuses $what" "rc=$rc (want a line naming '$names') stdout=$(head -c 100 "$D.out") stderr=$(head -c 200 "$D.err")"
		fi
	}
	busage "an unparsable VIP" "'not-an-ip': not an IP address" -d not-an-ip
	busage "a VIP port 0" "'10.0.0.10:0': bad port" -d 10.0.0.10:0
	busage "a VIP port out of range" "'10.0.0.10:65536': bad port" -d 10.0.0.10:65536
	busage "an unclosed IPv6 bracket" "'[fd00::a:53': missing ']'" -d '[fd00::a:53'
	busage "an unknown protocol" "--proto 'icmp'" -d 10.0.0.10 -p icmp
	busage "an unknown --filter" "--filter 'both'" -d 10.0.0.10 --filter both
	busage "an unknown log format" "--log-format 'xml'" -d 10.0.0.10 --log-format xml
	busage "a stray argument" "'extra'" -d 10.0.0.10 extra
	busage "an unknown option" "--frobnicate" -d 10.0.0.10 --frobnicate
	busage "a missing value" "'-d' needs a value" -d
	busage "a missing value of --filter" "'--filter' needs a value" --filter
	busage "an unparsable --timeout" "--timeout 'soon'" -d 10.0.0.10 -w soon
	busage "--dry-run without --fix" "--dry-run goes with --fix" -d 10.0.0.10 --dry-run
	busage "a --heal-rate of 0" "--heal-rate '0'" -d 10.0.0.10 --fix --heal-rate 0
	# shellcheck disable=SC2046
	busage "17 VIPs (at most 16)" "at most 16" $(for i in $(seq 1 17); do echo "-d 10.0.1.$i"; done)
	unshare -n "$BIN" scan --help >"$D.out" 2>&1; rc=$?
	if [ $rc = 0 ] && grep -q -- '--filter kernel|user' "$D.out" && grep -q -- '--fix' "$D.out" &&
	   grep -q -- '--timeout DURATION' "$D.out" && grep -q -- '--dry-run' "$D.out" && grep -q 'kind=gone_backend' "$D.out"; then
		pass "scan --help: exit 0, documents --fix, --dry-run, --timeout, --filter and both kinds"
	else
		fail "scan --help" "rc=$rc"
	fi
fi
