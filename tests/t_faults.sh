#!/bin/sh
# t_faults.sh - the tester against things going wrong, in the lab: a DNS
# server that lies, dies or is gone, routes that vanish, netlink that
# refuses (EPERM) or overflows (ENOBUFS), a full conntrack table, signals
# mid-query, a closed or stuck stdout, clock steps, hostile metrics
# clients. Each fault must give one clear log line (a cycle), no crash,
# counters that add up, and recovery once the fault is gone.
#
# Safety invariant, in every scenario: 240 decoy entries (tests/lab.sh's
# lab_decoys: other clients' flows, DNAT'd or not, UDP and TCP, both
# families) are put in before and checked after; only our own flow (and,
# with scan --fix, exactly the entries it listed) may go.
#
#   sudo ./test.sh faults
#   sudo FAULTS_ONLY="hostile route" ./test.sh faults     some scenarios:
#     hostile killed icmp icmperr ppoll kerr route eperm enobufs tablefull signals stdout
#     clock metrics
#
# $BIN is the binary under test (default the static one); the scenarios
# that need LD_PRELOAD (tests/faults/preload.c: EPERM mid-run, ENOBUFS,
# clock steps) use the glibc build build/host/dns-blackhole-tester-debug,
# which is the same source. Nothing touches the host: every fault is made
# inside the lab's namespaces (the host clock is never changed: clock
# steps are made for the tester alone, by the preload, or by a time
# namespace).
#
# shellcheck disable=SC2086,SC2016
# SC2086: argument lists in variables are split on purpose; SC2016: $ in
# single quotes is awk's.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root

PY=$LAB_PY                        # (lab.sh picks Debian's python3)
LC="$PY $TOP/tests/logcheck.py"
F=$TOP/tests/faults
W=$OUT/faults
DBG=${DBG:-$TOP/build/host/dns-blackhole-tester-debug}
PRE=$W/preload.so     # (in this run's own folder: another run may build its own beside it)
NDECOYS=240
mkdir -p "$W" "$TOP/build/faults"
: >"$W/safety.txt"

FILTER_VAR=FAULTS_ONLY     # (lib.sh: scenario)
now_ms() { date +%s%3N; }

# The fault injector for the glibc build (see tests/faults/preload.c).
if ! gcc -shared -fPIC -O1 -Wall -o "$PRE" "$F/preload.c" -ldl 2>"$W/preload.err"; then
	fail "faults: build tests/faults/preload.c" "$(head -n 3 "$W/preload.err" | tr '\n' ' ')"
	PRE=
fi

# tester LOG ARGS...: $BIN in the node namespace, in the background;
# `ip netns exec` execs it, so TPID is the tester itself.
tester() { _l=$1; shift; ip netns exec "$NS_NODE" "$BIN" "$@" >"$_l" 2>&1 & TPID=$!; }
# stop PID: SIGTERM, wait for it by PID (never a bare wait: the lab's DNS
# server is a child of this shell too); RC is its exit status.
stop() { kill -TERM "$1" 2>/dev/null; wait "$1"; RC=$?; }
# signal_stop PID SIG: send SIG, give the process 5 s to end (it needs
# milliseconds; the 5 s only turns a hang into a failure instead of a
# stuck suite), then SIGKILL. RC is its exit status, TOOK the ms it took
# (reported, never compared: "stopped within the tick" is proved by the
# counters, which no slow machine can fake), HUNG non-empty if killed.
signal_stop() {
	_t0=$(now_ms); kill -"$2" "$1" 2>/dev/null
	_i=0; while _lab_alive "$1" && [ $_i -lt 500 ]; do sleep 0.01; _i=$((_i + 1)); done
	HUNG=; if _lab_alive "$1"; then HUNG="still running 5 s after SIG$2"; kill -KILL "$1"; fi
	{ wait "$1"; } 2>/dev/null; RC=$?; TOOK=$(($(now_ms) - _t0))
}
# both NAME ARGS...: the tester against VIP4 and [VIP6] (AAAA) at once in
# the node namespace, to the end; logs $W/NAME-4.log and $W/NAME-6.log,
# exit statuses RC4 and RC6.
both() {
	_n=$1; shift
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" "$@" >"$W/$_n-4.log" 2>&1 & _p4=$!
	ip netns exec "$NS_NODE" "$BIN" -d "[$VIP6]" -t AAAA "$@" >"$W/$_n-6.log" 2>&1 & _p6=$!
	wait $_p4; RC4=$?; wait $_p6; RC6=$?
}
# sv LOG KEY: KEY of the last stats line
sv() { grep 'event=stats' "$1" | tail -n 1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
# accounted LOG [ABANDONED_MAX]: every query sent has exactly one outcome
# (answered, timeout, refused, send error), except a query in flight at
# SIGTERM, which is abandoned and not counted (README).
accounted() {
	_s=$(sv "$1" sent) _a=$(sv "$1" answered) _t=$(sv "$1" timeouts)
	_r=$(sv "$1" refused) _e=$(sv "$1" send_errors) _x=$(sv "$1" recv_errors)
	[ -n "$_s" ] || return 1
	_d=$((_s - _a - _t - _r - _e - ${_x:-0}))
	[ "$_d" -ge 0 ] && [ "$_d" -le "${2:-1}" ]
}
# sane LOG RC: no crash (not killed by a signal, no sanitizer report),
# stats and stop lines printed
sane() {
	[ "$2" -lt 128 ] && grep -q 'event=stats' "$1" && grep -q 'event=stop' "$1" &&
		! grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$1"
}
brief() { grep -v 'event=reply' "$1" | sed 's/^ts=[^ ]* //; s/ src=[^ ]* server=[^ ]*//' | head -n "${2:-4}" | cut -c1-200 | tr '\n' '|'; }

# decoys_in: the safety invariant's "before"; the summary at the end
# holds every scenario that got this far to its "after"
decoys_in() { echo "start $1" >>"$W/safety.txt"; lab_decoys $NDECOYS || { fail "$1: lab_decoys"; return 1; }; }
# decoys_ok NAME: the "after"; recorded for the summary at the end
decoys_ok() {
	if lab_decoys_check >"$W/$1.decoys"; then
		echo "ok $1" >>"$W/safety.txt"
		pass "$1: safety: all $NDECOYS decoys still there, unchanged"
	else
		echo "bad $1" >>"$W/safety.txt"
		fail "$1: safety: decoys" "$(head -n 3 "$W/$1.decoys" | tr '\n' ' ')"
	fi
}

# ---- a DNS server that answers garbage, wrong IDs, floods --------------
# tests/faults/hostile_dns.py replaces dnsmasq on the pod's addresses and
# logs what it sent for each query, so the tester's counters can be held
# against it exactly.
hostile() {   # MODE ALLOWED_REASONS(regex) EXPECT(fail|answer)
	mode=$1 reasons=$2 expect=$3 srv=$W/hostile-$1.srv
	rm -f "$srv" "$W/hostile.ready"
	ip netns exec "$NS_POD" $PY "$F/hostile_dns.py" --bind "$POD4" --bind "$POD6" \
		--mode "$mode" --log "$srv" --ready "$W/hostile.ready" 2>"$W/hostile-$mode.err" & HPID=$!
	i=0; while [ ! -e "$W/hostile.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	drops0=$(ip netns exec "$NS_NODE" awk '/^Udp:/ { if (h) print $6 + 0; h = 1 }' /proc/net/snmp)
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 100ms -w 80ms -c 8 >"$W/hostile-$mode-4.log" 2>&1 & p4=$!
	ip netns exec "$NS_NODE" "$BIN" -d "[$VIP6]" -t AAAA -i 100ms -w 80ms -c 8 >"$W/hostile-$mode-6.log" 2>&1 & p6=$!
	wait $p4; rc4=$?; wait $p6; rc6=$?
	kill $HPID 2>/dev/null; wait $HPID 2>/dev/null
	drops=$(( $(ip netns exec "$NS_NODE" awk '/^Udp:/ { if (h) print $6 + 0; h = 1 }' /proc/net/snmp) - drops0 ))
	for fam in 4 6; do
		L=$W/hostile-$mode-$fam.log
		if [ $fam = 4 ]; then rc=$rc4 peer=$NODE4; else rc=$rc6 peer=$NODE6; fi
		bad=$(awk -v p="peer=$peer" '$2 == p { split($4, b, "="); n += b[2] } END { print n + 0 }' "$srv")
		sent=$(sv "$L" sent) ans=$(sv "$L" answered) unexp=$(sv "$L" unexpected)
		lines=$($LC count "$L" unexpected_reply)
		other=$(grep 'event=unexpected_reply' "$L" | sed -n 's/.* reason=\([^ ]*\).*/\1/p' | sort -u | grep -v -x -E "$reasons" | tr '\n' ' ')
		errs=$(grep 'level=error' "$L" | grep -v -c 'event=timeout.*cause=no_reply')
		why=
		sane "$L" "$rc" || why="$why crashed-or-no-stats(rc=$rc)"
		[ "$sent" = 8 ] || why="$why sent=$sent"
		[ "$unexp" = "$bad" ] || why="$why unexpected=$unexp but the server sent $bad bad datagrams (UDP receive-buffer drops on the node: $drops)"
		[ "$lines" -ge 1 ] && [ "$lines" -le "$sent" ] || why="$why unexpected_reply lines=$lines (want 1..one a cycle)"
		# One a cycle, per query, not only in total: where each query ends
		# in a timeout line (seq=N), at most one unexpected_reply line may
		# come between it and the previous query's.
		if [ "$expect" = fail ]; then
			twice=$(awk '/event=unexpected_reply/ { n++ } /event=timeout/ { if (n > 1) { sub(/.* seq=/, ""); sub(/ .*/, ""); printf "seq %s: %d lines; ", $0, n } n = 0 }' "$L")
			[ -z "$twice" ] || why="$why more than one unexpected_reply line in a cycle: $twice"
		fi
		[ -z "$other" ] || why="$why reasons outside /$reasons/: $other"
		[ "$errs" = 0 ] || why="$why other error lines: $(grep level=error "$L" | grep -v 'cause=no_reply' | head -n 1)"
		[ "$($LC count "$L" blackhole)" = 0 ] || why="$why a blackhole was claimed"
		if [ "$expect" = fail ]; then
			[ "$ans" = 0 ] && [ "$rc" = 1 ] && [ "$($LC count "$L" timeout cause=no_reply)" = 8 ] ||
				why="$why answered=$ans rc=$rc (want 0 answers, 8 timeouts cause=no_reply, exit 1)"
		else
			[ "$ans" = 8 ] && [ "$rc" = 0 ] || why="$why answered=$ans rc=$rc (want 8, exit 0)"
		fi
		if [ -z "$why" ]; then
			pass "hostile DNS '$mode' IPv$fam: $lines unexpected_reply lines for $sent queries, unexpected=$unexp = what the server sent, answered=$ans, no crash"
		else
			fail "hostile DNS '$mode' IPv$fam" "$why"
		fi
	done
}
if scenario hostile; then (
	lab_up || { fail "hostile: lab_up"; exit 0; }
	decoys_in hostile || exit 0
	lab_dns_stop
	hostile garbage 'truncated_message|oversized|id_mismatch|not_a_reply' fail
	hostile wrongid id_mismatch fail
	hostile question question_mismatch fail
	hostile notreply not_a_reply fail
	hostile cut truncated_message fail
	hostile loop malformed fail
	hostile flood 'truncated_message|id_mismatch|question_mismatch|not_a_reply|malformed' answer
	# late: every answer comes twice; the copy may be counted or, once our
	# entry is deleted, dropped by the kernel (the socket is connect()ed
	# to the VIP): either way each query is answered exactly once.
	mode=late; rm -f "$W/hostile.ready"
	ip netns exec "$NS_POD" $PY "$F/hostile_dns.py" --bind "$POD4" --bind "$POD6" --mode late \
		--log "$W/hostile-late.srv" --ready "$W/hostile.ready" & HPID=$!
	i=0; while [ ! -e "$W/hostile.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 100ms -w 80ms -c 8 >"$W/hostile-late-4.log" 2>&1; rc=$?
	kill $HPID 2>/dev/null; wait $HPID 2>/dev/null
	L=$W/hostile-late-4.log
	if sane "$L" $rc && [ $rc = 0 ] && [ "$(sv "$L" answered)" = 8 ] && [ "$(grep -c level=error "$L")" = 0 ]; then
		pass "hostile DNS 'late' (every answer twice): 8 answered once each, unexpected=$(sv "$L" unexpected), exit 0"
	else
		fail "hostile DNS 'late'" "rc=$rc $(brief "$L")"
	fi
	# tc: TC set, the answer record cut off (retry over TCP). The path to
	# the server works, so it counts as answered, flagged truncated=true.
	rm -f "$W/hostile.ready"
	ip netns exec "$NS_POD" $PY "$F/hostile_dns.py" --bind "$POD4" --bind "$POD6" --mode tc \
		--log "$W/hostile-tc.srv" --ready "$W/hostile.ready" & HPID=$!
	i=0; while [ ! -e "$W/hostile.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	ip netns exec "$NS_NODE" "$BIN" -d "[$VIP6]" -t AAAA -i 100ms -w 80ms -c 4 -v >"$W/hostile-tc-6.log" 2>&1; rc=$?
	kill $HPID 2>/dev/null; wait $HPID 2>/dev/null
	L=$W/hostile-tc-6.log
	if sane "$L" $rc && [ $rc = 0 ] && [ "$(sv "$L" answered)" = 4 ] && [ "$($LC count "$L" reply truncated=true)" = 4 ] &&
	   [ "$(grep -c level=error "$L")" = 0 ]; then
		pass "hostile DNS 'tc' (TC set, answer cut off): 4 answered, each reply line says truncated=true, exit 0"
	else
		fail "hostile DNS 'tc'" "rc=$rc $(brief "$L")"
	fi
	decoys_ok hostile
); fi

# ---- the DNS server SIGKILLed and restarted mid-run ---------------------
if scenario killed; then (
	lab_up --dns unbound || { fail "killed: lab_up"; exit 0; }
	decoys_in killed || exit 0
	tester "$W/killed-4.log" -d "$VIP4" -i 100ms -w 200ms; p4=$TPID
	tester "$W/killed-6.log" -d "[$VIP6]" -t AAAA -i 100ms -w 200ms; p6=$TPID
	sleep 0.5
	dpid=$(cat "$LAB_DIR/dns.pid"); rm -f "$LAB_DIR/dns.pid"
	kill -KILL "$dpid"; wait "$dpid" 2>/dev/null
	sleep 1
	lab_dns_start || fail "killed: restarting unbound"
	sleep 1.2
	stop $p4; rc4=$RC; stop $p6; rc6=$RC
	for fam in 4 6; do
		L=$W/killed-$fam.log; [ $fam = 4 ] && rc=$rc4 || rc=$rc6
		fails=$(( $($LC count "$L" refused) + $($LC count "$L" timeout cause=no_reply) ))
		other=$(grep level=error "$L" | grep -v -c 'event=refused\|event=timeout.*cause=no_reply')
		if sane "$L" $rc && [ $rc = 0 ] && [ "$fails" -ge 3 ] && [ "$other" = 0 ] &&
		   [ "$($LC count "$L" recovered)" = 1 ] && [ "$($LC count "$L" blackhole)" = 0 ] && accounted "$L"; then
			pass "DNS server SIGKILLed and restarted, IPv$fam: $fails failures (refused/no_reply), one recovered, no blackhole, every query accounted for, exit 0"
		else
			fail "DNS server SIGKILLed and restarted, IPv$fam" "rc=$rc fails=$fails other_errors=$other $(brief "$L" 6)"
		fi
	done
	decoys_ok killed
); fi

# ---- nothing listening: ICMP port unreachable ---------------------------
if scenario icmp; then (
	lab_up || { fail "icmp: lab_up"; exit 0; }
	decoys_in icmp || exit 0
	# No ICMP rate limit in the pod, so that every query gets its ICMP.
	lab_pod sysctl -q -w net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
	lab_dns_stop
	both icmp -i 100ms -w 500ms -c 10
	for fam in 4 6; do
		L=$W/icmp-$fam.log; [ $fam = 4 ] && rc=$RC4 || rc=$RC6
		n=$($LC count "$L" refused cause=refused)
		if sane "$L" $rc && [ $rc = 1 ] && [ "$n" = 10 ] && [ "$(sv "$L" refused)" = 10 ] &&
		   [ "$(grep level=error "$L" | grep -v -c event=refused)" = 0 ] && accounted "$L" 0; then
			pass "ICMP port unreachable, IPv$fam: 10 queries, 10 event=refused lines ($($LC field "$L" refused err)), refused=10, exit 1"
		else
			fail "ICMP port unreachable, IPv$fam" "rc=$rc refused_lines=$n $(brief "$L")"
		fi
	done
	lab_dns_start
	decoys_ok icmp
); fi

# ---- the DNS pod answers with ICMP administratively prohibited ----------
# A receive error on the query socket is what it is: event=recv_error with
# the errno, the query ended at once; never a timeout blamed on no_reply.
# (A UDP socket is told only of hard ICMP errors: "filtered" is one, and
# reads as EHOSTUNREACH in IPv4 and EACCES in IPv6; a plain host
# unreachable is a soft error the kernel keeps to itself.)
if scenario icmperr; then (
	lab_up || { fail "icmperr: lab_up"; exit 0; }
	decoys_in icmperr || exit 0
	lab_pod sysctl -q -w net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
	lab_pod nft -f - <<-'EOF' || { fail "icmperr: reject rule in the pod"; exit 0; }
	table inet lab-reject {
		chain in {
			type filter hook input priority 0;
			udp dport 53 reject with icmpx type admin-prohibited
		}
	}
	EOF
	both icmperr -i 100ms -w 2s -c 6
	for fam in 4 6; do
		# (EHOSTUNREACH reads "Host is unreachable" in musl, "No route to host" in glibc)
		L=$W/icmperr-$fam.log; [ $fam = 4 ] && rc=$RC4 want_err="Host is unreachable,|No route to host," ||
			rc=$RC6 want_err="Permission denied,"
		n=$($LC count "$L" recv_error cause=recv_error)
		errs=$(grep 'event=recv_error' "$L" | sed -n 's/.* err="\([^"]*\)".*/\1/p' | sort -u | tr '\n' ',')
		# each query ended when the ICMP came, not at its 2 s timeout
		late=$(grep 'event=recv_error' "$L" | sed -n 's/.* waited_ms=\([0-9]*\).*/\1/p' | awk '$1 >= 2000' | wc -l)
		if sane "$L" $rc && [ $rc = 1 ] && [ "$n" = 6 ] && echo "$errs" | grep -qxE "$want_err" &&
		   [ "$(sv "$L" recv_errors)" = 6 ] && [ "$late" = 0 ] && [ "$(sv "$L" timeouts)" = 0 ] &&
		   [ "$(grep level=error "$L" | grep -v -c event=recv_error)" = 0 ] && accounted "$L" 0; then
			pass "ICMP admin-prohibited, IPv$fam: 6 event=recv_error lines (err=$errs), recv_errors=6, no timeout, exit 1"
		else
			fail "ICMP admin-prohibited, IPv$fam" "rc=$rc recv_error_lines=$n errs=$errs late=$late $(brief "$L")"
		fi
	done
	decoys_ok icmperr
); fi

# ---- ppoll fails for good: one clear line and a stop, never a busy loop --
if scenario ppoll; then (
	if [ -z "$PRE" ]; then fail "ppoll: needs tests/faults/preload.c built"; exit 0; fi
	lab_up || { fail "ppoll: lab_up"; exit 0; }
	L=$W/ppoll.log
	# (timeout(1) first: env execs the tester, so only the tester is preloaded)
	ip netns exec "$NS_NODE" timeout -s KILL 20 env LD_PRELOAD="$PRE" FAULT_PPOLL_FAIL_FROM=3 \
		FAULT_REPORT="$W/ppoll.report" "$DBG" -d "$VIP4" -i 200ms -w 1s -c 5 >"$L" 2>&1
	rc=$?
	failed=$(sed -n 's/.*ppoll_failed=\([0-9]*\).*/\1/p' "$W/ppoll.report" 2>/dev/null)
	if sane "$L" $rc && [ $rc = 1 ] && [ "$($LC count "$L" fatal)" = 1 ] &&
	   grep -q 'event=fatal.* op=ppoll err="Invalid argument"' "$L" && [ -n "$failed" ] && [ "$failed" -ge 1 ] && [ "$failed" -le 2 ]; then
		pass "ppoll failing for good: one event=fatal line (op=ppoll), stopped after $failed failed calls, exit 1"
	else
		fail "ppoll failing for good" "rc=$rc ppoll_failed=${failed:-none} $(brief "$L")"
	fi
); fi

# ---- the kernel answers a netlink request with ESRCH or EPROTO ----------
# Such an error is the kernel's answer to this very request (its sequence
# number is ours), never a stale reply to skip: it must come back at once,
# named. The preload gives the kernel's real ENOENT answer to the start-up
# GET (no entry yet) another code.
if scenario kerr; then (
	if [ -z "$PRE" ]; then fail "kerr: needs tests/faults/preload.c built"; exit 0; fi
	lab_up || { fail "kerr: lab_up"; exit 0; }
	for e in 3:"No such process" 71:"Protocol error"; do
		n=${e%%:*} msg=${e#*:}
		L=$W/kerr-$n.log
		ip netns exec "$NS_NODE" timeout -s KILL 20 env LD_PRELOAD="$PRE" FAULT_NL_ERRNO_AS=$n \
			FAULT_REPORT="$W/kerr-$n.rep" "$DBG" -d "$VIP4" -c 2 -i 100ms -w 300ms >"$L" 2>&1; rc=$?
		why=$($LC field "$L" conntrack_unavailable reason)
		if sane "$L" $rc && [ "$rc" = 0 ] && [ "$why" = "ctnetlink refused a lookup: $msg" ] &&
		   grep -q 'errors_rewritten=[1-9]' "$W/kerr-$n.rep" && [ "$(sv "$L" answered)" = 2 ]; then
			pass "the kernel answers a GET with errno $n: returned as is (conntrack_unavailable reason=\"$why\"), not waited out as a stale reply; DNS goes on, exit 0"
		else
			fail "the kernel's errno $n answer is returned" "rc=$rc reason='$why' $(tail -n 1 "$W/kerr-$n.rep" 2>/dev/null) $(brief "$L" 3)"
		fi
	done
); fi

# ---- the route to the VIP removed, then an unreachable / prohibit route --
if scenario route; then (
	lab_up || { fail "route: lab_up"; exit 0; }
	decoys_in route || exit 0
	tester "$W/route-4.log" -d "$VIP4" -i 100ms -w 200ms; p4=$TPID
	tester "$W/route-6.log" -d "[$VIP6]" -t AAAA -i 100ms -w 200ms; p6=$TPID
	sleep 0.4
	ip -n "$NS_NODE" route del default; ip -n "$NS_NODE" -6 route del default
	sleep 0.6
	ip -n "$NS_NODE" route add default via "$GW4"; ip -n "$NS_NODE" -6 route add default via "$GW6"
	sleep 0.5
	ip -n "$NS_NODE" route add unreachable "$VIP4/32"; ip -n "$NS_NODE" -6 route add unreachable "$VIP6/128"
	sleep 0.6
	ip -n "$NS_NODE" route del unreachable "$VIP4/32"; ip -n "$NS_NODE" -6 route del unreachable "$VIP6/128"
	sleep 0.5
	ip -n "$NS_NODE" route add prohibit "$VIP4/32"; ip -n "$NS_NODE" -6 route add prohibit "$VIP6/128"
	sleep 0.6
	ip -n "$NS_NODE" route del prohibit "$VIP4/32"; ip -n "$NS_NODE" -6 route del prohibit "$VIP6/128"
	sleep 0.5
	stop $p4; rc4=$RC; stop $p6; rc6=$RC
	for fam in 4 6; do
		L=$W/route-$fam.log; [ $fam = 4 ] && rc=$rc4 || rc=$rc6
		errs=$(grep 'event=send_failed' "$L" | sed -n 's/.* err="\([^"]*\)".*/\1/p' | sort | uniq -c | sed 's/^ *//' | tr '\n' ',')
		kinds=$(grep 'event=send_failed' "$L" | sed -n 's/.* err="\([^"]*\)".*/\1/p' | sort -u | wc -l)
		# one line a cycle: no query (seq=) has two send_failed lines
		nsf=$(grep -c 'event=send_failed' "$L")
		seqs=$(grep 'event=send_failed' "$L" | sed -n 's/.* seq=\([0-9]*\) .*/\1/p' | sort -n | uniq | wc -l)
		twice=$(grep 'event=send_failed' "$L" | sed -n 's/.* seq=\([0-9]*\) .*/\1/p' | sort -n | uniq -d | tr '\n' ' ')
		if sane "$L" $rc && [ $rc = 0 ] && [ "$kinds" = 3 ] && [ "$nsf" -ge 3 ] && [ "$seqs" = "$nsf" ] && [ -z "$twice" ] && [ "$($LC count "$L" recovered cause=send_error)" = 3 ] &&
		   [ "$(grep level=error "$L" | grep -v -c 'event=send_failed.*cause=send_error')" = 0 ] && accounted "$L"; then
			pass "VIP route removed / unreachable / prohibit, IPv$fam: one send_failed line a cycle ($errs), recovered 3 times, exit 0"
		else
			fail "VIP route removed, IPv$fam" "rc=$rc send_failed by err: $errs lines=$nsf for $seqs queries (twice: ${twice:-none}) recovered=$($LC count "$L" recovered) $(brief "$L" 6)"
		fi
	done
	decoys_ok route
); fi

# ---- netlink EPERM: no CAP_NET_ADMIN, a user namespace, lost mid-run ----
# A send's EPERM is netfilter dropping the packet, never a lost
# capability: during a restart window, a rule in the node's filter table
# drops every NEW UDP flow to port 53, so each probe's send fails (EPERM)
# while the flows already made go on. The tester keeps conntrack (one
# probe_send_failed line, no conntrack_unavailable) and, once the rule is
# gone, proves and heals its own flow, and the node watch heals a client
# stuck in the window. (A lab of its own: --heal-node would heal the
# decoys that stand for other stuck clients.)
eperm_window() {
	lab_up || { fail "eperm window: lab_up"; return; }
	L=$W/eperm-window.log C=$W/eperm-window.client
	tester "$L" -d "$VIP4" -s "$NODE4:30700" -i 200ms -w 300ms --heal --heal-node
	sleep 1
	lab_rules window || { fail "eperm window: lab_rules window"; return; }
	sleep 0.6
	lab_client 30701 4 40 0.2 0.15 >"$C" 2>&1 & CP=$!
	sleep 0.6
	for ipt in iptables ip6tables; do
		lab_node $ipt -I OUTPUT -p udp --dport 53 -m conntrack --ctstate NEW -j DROP ||
			{ fail "eperm window: $ipt DROP rule"; return; }
	done
	lab_rules full || { fail "eperm window: lab_rules full"; return; }
	sleep 1.5
	t_open=$(now_ms)
	for ipt in iptables ip6tables; do lab_node $ipt -D OUTPUT -p udp --dport 53 -m conntrack --ctstate NEW -j DROP; done
	sleep 2.5
	stop "$TPID"
	wait "$CP"
	got="$($LC count "$L" conntrack_unavailable) $($LC count "$L" probe_send_failed err="Operation not permitted")"
	expect_eq "eperm window: NEW UDP to port 53 dropped: one probe_send_failed (EPERM), no conntrack_unavailable" "$got" "0 1"
	got="$($LC after "$L" blackhole "$t_open" kind=no_dnat) $($LC after "$L" healed "$t_open") $($LC after "$L" client_healed "$t_open") $(tail -n 3 "$C" | grep -c '^ok ')"
	expect_eq "eperm window: once the rule is gone: our flow proven (kind=no_dnat) and healed, the stuck client healed by the node watch and answered again" \
		"$got" "1 1 1 3"
	[ "$RC" = 3 ] && sane "$L" "$RC" && pass "eperm window: exit 3, clean stop" || fail "eperm window: exit 3" "rc=$RC $(brief "$L" 6)"
}

if scenario eperm; then (
	lab_up || { fail "eperm: lab_up"; exit 0; }
	decoys_in eperm || exit 0
	L=$W/eperm-capsh.log
	lab_node capsh --drop=cap_net_admin -- -c "exec '$BIN' -d $VIP4 -c 5 -i 100ms -w 300ms" >"$L" 2>&1; rc=$?
	if sane "$L" $rc && [ $rc = 0 ] && [ "$($LC count "$L" conntrack_unavailable)" = 1 ] && [ "$(sv "$L" answered)" = 5 ]; then
		pass "EPERM (capsh --drop=cap_net_admin): one conntrack_unavailable line, 5 answers, exit 0"
	else
		fail "EPERM (capsh)" "rc=$rc $(brief "$L")"
	fi
	L=$W/eperm-scan.log
	lab_node capsh --drop=cap_net_admin -- -c "exec '$BIN' scan -d $VIP4 -d [$VIP6] --fix" >"$L" 2>&1; rc=$?
	if [ $rc = 1 ] && grep -q 'event=scan_failed.*err="Operation not permitted".*hint=' "$L"; then
		pass "EPERM: scan --fix without CAP_NET_ADMIN: scan_failed with the hint, exit 1"
	else
		fail "EPERM: scan without CAP_NET_ADMIN" "rc=$rc $(brief "$L")"
	fi
	# A pod with its own user namespace (hostUsers: false): every
	# capability, but none over the node's network namespace.
	L=$W/eperm-userns.log
	lab_node unshare --user --map-root-user "$BIN" -d "$VIP4" -c 5 -i 100ms -w 300ms >"$L" 2>&1; rc=$?
	if sane "$L" $rc && [ $rc = 0 ] && [ "$($LC count "$L" conntrack_unavailable)" = 1 ] && [ "$(sv "$L" answered)" = 5 ]; then
		pass "EPERM (user namespace, root in it only): one conntrack_unavailable line ($($LC field "$L" conntrack_unavailable reason)), 5 answers"
	else
		fail "EPERM (user namespace)" "rc=$rc $(brief "$L")"
	fi
	# CAP_NET_ADMIN lost after 4 netlink requests: the kernel refuses the
	# 5th (a GET or a DELETE). One conntrack_unavailable, at most one
	# conntrack_error (a refused DELETE), then DNS only.
	if [ -n "$PRE" ]; then
		L=$W/eperm-midrun.log
		ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_DROPCAP_AFTER=4 FAULT_REPORT="$W/eperm-midrun.rep" \
			"$DBG" -d "$VIP4" -c 10 -i 50ms -w 300ms >"$L" 2>&1; rc=$?
		reqs=$(sed -n 's/.*nl_requests=\([0-9]*\).*/\1/p' "$W/eperm-midrun.rep" 2>/dev/null)
		if sane "$L" $rc && [ $rc = 0 ] && grep -q cap_dropped=1 "$W/eperm-midrun.rep" &&
		   [ "$($LC count "$L" conntrack_unavailable)" = 1 ] && [ "$($LC count "$L" conntrack_error)" -le 1 ] &&
		   [ "$(sv "$L" answered)" = 10 ] && [ "$reqs" -le 6 ]; then
			pass "EPERM mid-run (CAP_NET_ADMIN dropped after 4 requests): $($LC count "$L" conntrack_error) conntrack_error + one conntrack_unavailable, then DNS only ($reqs netlink requests in all), 10 answers"
		else
			fail "EPERM mid-run" "rc=$rc requests=$reqs $(brief "$L" 5)"
		fi
	fi
	decoys_ok eperm
); ( eperm_window ); fi

# ---- netlink ENOBUFS ---------------------------------------------------
# net.core.rmem_default is read-only in a non-initial network namespace,
# and the host's must not change; the preload shrinks the tester's own
# netlink socket instead. What the kernel really does with a tiny receive
# buffer (SO_RCVBUF at its minimum, ~2.3 KB) is tried first: it does not
# overrun (answers are trimmed to fit, dumps are paced by the reader).
# ENOBUFS itself is then injected at recv(), as sk_err would make it; the
# kernel's state is the real one (a GET's answer still queued, a dump
# still running).
if scenario enobufs; then (
	lab_up || { fail "enobufs: lab_up"; exit 0; }
	decoys_in enobufs || exit 0
	lab_decoys 6000 >/dev/null || { fail "enobufs: 6000 more decoys"; exit 0; }
	NDECOYS=6240
	if [ -z "$PRE" ]; then fail "enobufs: needs tests/faults/preload.c built"; exit 0; fi
	S="scan -d $VIP4 -d [$VIP6]"
	# tiny REP: the SO_RCVBUF the kernel kept at every netlink request
	# (preload.c reads it back), at most 4608 bytes - its minimum is
	# about 2.3 KB, the default ~200 KB - or "" with the reason.
	tiny() {
		_mx=$(sed -n 's/.*nl_rcvbuf_max=\(-*[0-9]*\).*/\1/p' "$1" 2>/dev/null)
		_mn=$(sed -n 's/.*nl_rcvbuf_min=\(-*[0-9]*\).*/\1/p' "$1" 2>/dev/null)
		if num "$_mx" "$_mn" && [ "$_mn" -gt 0 ] && [ "$_mx" -le 4608 ]; then RCVBUF=$_mx; return 0; fi
		RCVBUF="SO_RCVBUF in force not at its minimum: min=${_mn:-none} max=${_mx:-none} ($1)"; return 1
	}
	lab_node "$DBG" $S >"$W/enobufs-scan0.log" 2>&1; rc0=$?
	base=$(grep event=scan_summary "$W/enobufs-scan0.log" | sed 's/.* examined=\([0-9]*\) blackholed=\([0-9]*\).*/examined=\1 blackholed=\2/')
	# real kernel, tiny buffer: the tester
	L=$W/enobufs-tiny.log
	ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_RCVBUF=1 FAULT_REPORT="$W/enobufs-tiny.rep" \
		"$DBG" -d "$VIP4" -c 10 -i 50ms -w 300ms >"$L" 2>&1; rc=$?
	if sane "$L" $rc && [ $rc = 0 ] && [ "$(sv "$L" deleted)" = 10 ] && [ "$($LC count "$L" conntrack_error)" = 0 ] &&
	   tiny "$W/enobufs-tiny.rep"; then
		pass "ENOBUFS (real): with SO_RCVBUF at its minimum ($RCVBUF bytes in force, read back) every GET and DELETE still completes (10 deleted, no conntrack_error): the kernel trims each answer to fit, ENOBUFS cannot be forced on a GET"
	else
		tiny "$W/enobufs-tiny.rep"
		fail "tiny netlink buffer, tester" "rc=$rc $RCVBUF $(brief "$L" 5)"
	fi
	# real kernel, tiny buffer: a dump of 6,240 entries
	ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_RCVBUF=1 FAULT_REPORT="$W/enobufs-scan1.rep" "$DBG" $S >"$W/enobufs-scan1.log" 2>&1; rc=$?
	got=$(grep event=scan_summary "$W/enobufs-scan1.log" | sed 's/.* examined=\([0-9]*\) blackholed=\([0-9]*\).*/examined=\1 blackholed=\2/')
	if [ $rc = $rc0 ] && [ -n "$base" ] && [ "$got" = "$base" ] && [ "$($LC count "$W/enobufs-scan1.log" scan_retry)" = 0 ] &&
	   tiny "$W/enobufs-scan1.rep"; then
		pass "ENOBUFS (real): scan with SO_RCVBUF at its minimum ($RCVBUF bytes in force, read back): the same result as with the default ($got); the kernel paces a dump, it does not overrun it"
	else
		tiny "$W/enobufs-scan1.rep"
		fail "tiny netlink buffer, scan" "rc=$rc/$rc0 got '$got' want '$base' $RCVBUF"
	fi
	# injected on the 5th netlink recv of the tester: the answer to the
	# second cycle's GET (1: the start-up GET, 2-3: a GET's entry and ACK,
	# 4: a DELETE's ACK). Its entry and ACK stay queued, stale.
	L=$W/enobufs-get.log
	ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_ENOBUFS_AT=5 FAULT_REPORT="$W/enobufs-get.rep" \
		"$DBG" -d "$VIP4" -c 10 -i 50ms -w 300ms >"$L" 2>&1; rc=$?
	op=$($LC field "$L" conntrack_error op)
	if sane "$L" $rc && [ $rc = 0 ] && grep -q injected_enobufs=1 "$W/enobufs-get.rep" &&
	   [ "$($LC count "$L" conntrack_error err="No buffer space available")" = 1 ] &&
	   [ "$($LC count "$L" conntrack_error)" = 1 ] && [ "$(sv "$L" answered)" = 10 ] && [ "$(sv "$L" deleted)" -ge 8 ]; then
		pass "ENOBUFS on a netlink answer (op=$op): one conntrack_error line, the stale answer skipped, later cycles look up and delete again ($(sv "$L" deleted) of 10 deleted), 10 answers"
	else
		fail "ENOBUFS on a netlink answer" "rc=$rc $(head -n 1 "$W/enobufs-get.rep" 2>/dev/null) $(brief "$L" 5)"
	fi
	# injected in the middle of a dump: README says a dump cut short is
	# retried from scratch and never reported as whole. (Recvs 1-4 are the
	# two VIPs' probes: a GET and a DELETE's ACK each; 5 the dump's first.)
	L=$W/enobufs-dump.log
	ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_ENOBUFS_AT=6 FAULT_REPORT="$W/enobufs-dump.rep" \
		"$DBG" $S >"$L" 2>&1; rc=$?
	got=$(grep event=scan_summary "$L" | sed 's/.* examined=\([0-9]*\) blackholed=\([0-9]*\).*/examined=\1 blackholed=\2/')
	if [ $rc = $rc0 ] && [ "$got" = "$base" ] && [ "$($LC count "$L" scan_retry)" = 1 ]; then
		pass "ENOBUFS mid-dump: one scan_retry, then the whole table again ($got)"
	else
		fail "ENOBUFS mid-dump: scan retries and gets the whole table" "rc=$rc (want $rc0) summary='$got' (want '$base'); $(grep 'scan_retry\|scan_failed' "$L" | sed 's/^ts=[^ ]* //' | tr '\n' '|') -- the retry's new dump request meets the kernel's unfinished first dump on the same socket (EBUSY); fix: on a failed dump, drain to NLMSG_DONE or close and reopen the netlink socket before retrying (scan_dump in scan.c)"
	fi
	# scan --fix with the tiny buffer: deletes exactly what it listed.
	L=$W/enobufs-fix.log
	ip netns exec "$NS_NODE" env LD_PRELOAD="$PRE" FAULT_NL_RCVBUF=1 FAULT_REPORT="$W/enobufs-fix.rep" "$DBG" $S --fix >"$L" 2>&1; rc=$?
	lab_decoys_check | sed -n 's/^missing: //p' | sort >"$W/enobufs-fix.missing"
	grep 'event=scan_deleted' "$L" | sed 's/.* entry="\([^"]*\)".*/\1/' | _lab_canon | sort >"$W/enobufs-fix.deleted"
	# the decoys that are blackholed flows to the VIPs (no DNAT, never replied)
	grep -E '^udp 17 src=[^ ]+ dst=(10\.0\.0\.10|fd00:96::a) sport=[0-9]+ dport=53 \[UNREPLIED\]' "$LAB_DIR/decoys.txt" | sort >"$W/enobufs-fix.expected"
	nexp=$(wc -l <"$W/enobufs-fix.expected")
	if [ $rc = 3 ] && [ "$nexp" -gt 0 ] && tiny "$W/enobufs-fix.rep" && cmp -s "$W/enobufs-fix.missing" "$W/enobufs-fix.deleted" &&
	   cmp -s "$W/enobufs-fix.missing" "$W/enobufs-fix.expected" &&
	   [ "$(lab_decoys_check | grep -c '^changed')" = 0 ]; then
		pass "safety: scan --fix (tiny buffer) deleted exactly the $nexp blackholed decoys it listed; the other $((NDECOYS - nexp)) are unchanged"
		echo "ok enobufs" >>"$W/safety.txt"
	else
		tiny "$W/enobufs-fix.rep"
		fail "safety: scan --fix deletes exactly what it listed" "rc=$rc $RCVBUF expected=$nexp missing=$(wc -l <"$W/enobufs-fix.missing") deleted=$(wc -l <"$W/enobufs-fix.deleted") (files $W/enobufs-fix.*)"
		echo "bad enobufs" >>"$W/safety.txt"
	fi
); fi

# ---- the conntrack table full ------------------------------------------
# nf_conntrack_max is read-only outside the initial network namespace
# (checked below), and the host's value must not be touched. But the
# limit is compared with each namespace's own count, so the node
# namespace is filled to the host's limit with entries of its own:
# ASSURED, ESTABLISHED TCP, which neither early drop nor the garbage
# collector may evict. New flows then cannot get an entry and the kernel
# drops their first packet (and logs "table full" in the host's dmesg).
if scenario tablefull; then (
	lab_up || { fail "tablefull: lab_up"; exit 0; }
	# On a full table the kernel evicts entries that are not ASSURED to
	# make room (early drop; seen here taking an unreplied decoy), so the
	# decoys are ASSURED and any one lost is lost to the tester.
	LAB_DECOY_ASSURED=1   # (this scenario runs in its own subshell)
	decoys_in tablefull || exit 0
	# (mode 444 outside the initial namespace; net.core.rmem_* too)
	ctmode=$(lab_node stat -c %a /proc/sys/net/netfilter/nf_conntrack_max)
	max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
	if [ "$max" -gt 600000 ]; then
		echo "skipped tablefull" >>"$W/safety.txt"
		skip "conntrack table full" "this host's nf_conntrack_max is $max: filling a namespace to it would take too long and too much kernel memory (262,144 entries: ~3 s, ~300 MB)"
		exit 0
	fi
	tester "$W/full.log" -d "$VIP4" -i 100ms -w 200ms; p=$TPID
	sleep 0.5
	cnt=$(lab_node cat /proc/sys/net/netfilter/nf_conntrack_count)
	n=$((max - cnt))
	awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) { a = int(i / 60000); p = 1024 + i % 60000
		printf "-I -t 900 -u SEEN_REPLY,ASSURED -p tcp -s 10.230.%d.1 -d 10.231.0.1 --sport %d --dport 80 -r 10.231.0.1 -q 10.230.%d.1 --reply-port-src 80 --reply-port-dst %d --state ESTABLISHED\n", a, p, a, p } }' >"$LAB_DIR/fill.load"
	t0=$(now_ms)
	lab_ct -R "$LAB_DIR/fill.load" >/dev/null 2>"$W/fill.err"
	# The tester deletes its own (DNAT'd) entry every cycle, which frees
	# one slot; like any other new flow on a full node, a filler takes it.
	i=0
	until lab_ct -I -t 900 -u SEEN_REPLY,ASSURED -p tcp -s 10.232.0.1 -d 10.231.0.1 --sport $((i + 1)) --dport 80 \
		-r 10.231.0.1 -q 10.232.0.1 --reply-port-src 80 --reply-port-dst $((i + 1)) --state ESTABLISHED >/dev/null 2>&1 ||
		[ $i -ge 300 ]; do i=$((i + 1)); done
	filled=$(lab_node cat /proc/sys/net/netfilter/nf_conntrack_count)
	full_at=$(now_ms)
	one_more=$(lab_ct -I -t 60 -u SEEN_REPLY,ASSURED -p tcp -s 10.232.0.2 -d 10.231.0.1 --sport 5 --dport 80 \
		-r 10.231.0.1 -q 10.232.0.2 --reply-port-src 80 --reply-port-dst 5 --state ESTABLISHED 2>&1)
	sleep 1
	# room again: the 10.230.4.x block goes
	lab_ct -D -s 10.230.4.1 >/dev/null 2>&1
	freed_at=$(now_ms)
	sleep 1
	stop $p
	L=$W/full.log
	during=$($LC after "$L" send_failed "$full_at")
	twice=$(grep 'event=send_failed' "$L" | sed -n 's/.* seq=\([0-9]*\) .*/\1/p' | sort -n | uniq -d | tr '\n' ' ')
	late=$($LC after "$L" send_failed $((freed_at + 150)))
	if sane "$L" $RC && [ "$filled" -ge "$max" ] && [ "$during" -ge 5 ] && [ "$late" = 0 ] && [ -z "$twice" ] &&
	   [ "$($LC count "$L" recovered cause=send_error)" = 1 ] && [ "$(grep level=error "$L" | grep -v -c event=send_failed)" = 0 ] &&
	   [ "$RC" = 0 ] && accounted "$L"; then
		pass "conntrack table full (nf_conntrack_max mode $ctmode in the lab namespace, so filled: $filled/$max in the node namespace, in $((full_at - t0)) ms; one more: '$(echo "$one_more" | tail -n 1 | cut -c1-60)'): one send_failed line a cycle (err=\"$($LC field "$L" send_failed err)\"), recovered once room was made, exit 0"
	else
		fail "conntrack table full" "filled=$filled/$max send_failed_while_full=$during after_freed=$late two_lines_for_seq=${twice:-none} rc=$RC $(brief "$L" 4)"
	fi
	for a in 0 1 2 3; do lab_ct -D -s 10.230.$a.1 >/dev/null 2>&1; done
	lab_ct -D -s 10.232.0.1 >/dev/null 2>&1
	decoys_ok tablefull
); fi

# ---- SIGTERM / SIGINT mid-query ----------------------------------------
# README: stop within one tick (the query in flight is abandoned, not
# counted), print stats then stop; exit 3 if a blackhole was seen, else 0.
sig_case() {   # NAME SIGNAL WANT_RC [WANT_TIMEOUTS [TESTER ARGS...]]
	name=$1 sig=$2 wantrc=$3 wantto=${4:-0}
	shift 3; [ $# -gt 0 ] && shift
	L=$W/signal-$name.log
	tester "$L" -d "$VIP4" -i 2s -w 10s "$@"; p=$TPID
	sleep 1                         # the first query waits for its 10 s timeout
	signal_stop "$p" "$sig"; rc=$RC
	# sent=1: it ended before the next tick (2 s); timeouts=0: without
	# waiting out the 10 s timeout (a proven blackhole's query is given
	# up at the look, 250 ms in: timeouts=1 then, cause=blackhole).
	if sane "$L" $rc && [ -z "$HUNG" ] && [ $rc = "$wantrc" ] && grep -q "event=stop.*reason=SIG$sig" "$L" &&
	   [ "$(sv "$L" sent)" = 1 ] && [ "$(sv "$L" timeouts)" = "$wantto" ] && [ "$(sv "$L" answered)" = 0 ] &&
	   { [ "$wantto" = 0 ] || [ "$($LC count "$L" timeout cause=blackhole gave_up=true)" = 1 ]; }; then
		pass "SIG$sig ($name): exited $TOOK ms after the signal, before the next tick (interval 2 s) and without waiting out the query (timeout 10 s): stats (sent=1, timeouts=$wantto) and stop lines, exit $rc"
	else
		fail "SIG$sig mid-query ($name)" "rc=$rc (want $wantrc) took=${TOOK}ms $HUNG $(brief "$L" 5)"
	fi
}
# stale_entry PORT: a conntrack entry for NODE4:PORT -> VIP4:53 straight to
# the VIP, as a restart window leaves it; the rules are back, so a tester
# bound to PORT is proven blackholed by its first look's probe.
stale_entry() {
	lab_ct -I -p udp -s "$NODE4" -d "$VIP4" --sport "$1" --dport 53 -r "$VIP4" -q "$NODE4" \
		--reply-port-src 53 --reply-port-dst "$1" -t 120 >/dev/null 2>&1
}
if scenario signals; then (
	lab_up || { fail "signals: lab_up"; exit 0; }
	decoys_in signals || exit 0
	stale_entry 31101 || fail "signals: stale entry"
	sig_case blackholed TERM 3 1 -s "$NODE4:31101"
	stale_entry 31102 || fail "signals: stale entry"
	sig_case blackholed-int INT 3 1 -s "$NODE4:31102"
	lab_pod iptables -I INPUT -p udp --dport 53 -j DROP || fail "signals: iptables -I in the pod"   # silent server
	sig_case silent TERM 0
	sig_case silent-int INT 0
	lab_pod iptables -D INPUT -p udp --dport 53 -j DROP
	# between two ticks: the interval (30 s) is far longer than
	# signal_stop's 5 s guard, so a tester that only notices the signal at
	# its next tick is killed as hung: only a prompt stop passes.
	L=$W/signal-idle.log
	tester "$L" -d "$VIP4" -i 30s -w 1s; p=$TPID
	sleep 1; signal_stop $p TERM; rc=$RC
	if sane "$L" $rc && [ -z "$HUNG" ] && [ $rc = 0 ] && [ "$(sv "$L" sent)" = 1 ] && [ "$(sv "$L" answered)" = 1 ]; then
		pass "SIGTERM between ticks (interval 30 s, hang guard 5 s): exited $TOOK ms after the signal, before the next tick (sent=1), exit 0"
	else
		fail "SIGTERM between ticks" "rc=$rc took=${TOOK}ms $HUNG $(brief "$L")"
	fi
	decoys_ok signals
); fi

# ---- stdout closed, a pipe whose reader is gone, a pipe nobody reads ----
scrape_sent() {   # the tester's queries_sent_total, read over --metrics-addr
	ip netns exec "$NS_NODE" $PY -c '
import sys, urllib.request
try:
    b = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=1).read().decode()
    print([l for l in b.splitlines() if l.startswith("dns_blackhole_tester_queries_sent_total")][0].split()[-1])
except Exception:
    print("none")' "$1"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
if scenario stdout; then (
	lab_up || { fail "stdout: lab_up"; exit 0; }
	decoys_in stdout || exit 0
	# 1. stdout closed (>&-): the log is lost, and nothing else may happen.
	# The DNS server is hostile_dns.py in "good" mode, which records every
	# datagram it receives.
	lab_dns_stop
	rm -f "$W/closed.dump" "$W/closed.srv" "$W/hostile.ready"
	ip netns exec "$NS_POD" $PY "$F/hostile_dns.py" --bind "$POD4" --bind "$POD6" --mode good \
		--log "$W/closed.srv" --dump "$W/closed.dump" --ready "$W/hostile.ready" & HPID=$!
	i=0; while [ ! -e "$W/hostile.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -c 10 -i 50ms -w 300ms >&- 2>"$W/closed.err"; rc=$?
	sleep 0.2
	got=$(wc -l <"$W/closed.dump")
	if [ $rc = 0 ] && [ "$got" = 10 ]; then
		pass "stdout closed (>&-): exit 0, the DNS server got exactly the 10 queries"
	else
		fail "stdout closed (>&-): nothing but queries reaches the DNS server" "rc=$rc; the server got $got datagrams for 10 queries, the first: $(grep "b'ts=\|b'{" "$W/closed.dump" | head -n 1 | cut -c1-140) -- with fd 1 closed, socket() returns fd 1 for the query socket and every log line is sent to the DNS server; fix: at start, open /dev/null on any of fds 0-2 that is closed (or move the sockets to fds >= 3 with F_DUPFD_CLOEXEC)"
	fi
	kill $HPID 2>/dev/null; wait $HPID 2>/dev/null
	lab_dns_start
	# 2. a pipe whose reader exits after one line: EPIPE, SIGPIPE ignored
	rm -f "$W/fifo"; mkfifo "$W/fifo"
	head -n 1 <"$W/fifo" >"$W/head.out" & HP=$!
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 20ms -w 300ms -v --metrics-addr 127.0.0.1:9797 >"$W/fifo" 2>"$W/epipe.err" & p=$!
	wait $HP
	sleep 0.5
	c0=$(cpu_ticks $p) s0=$(scrape_sent 9797)
	sleep 3
	c1=$(cpu_ticks $p) s1=$(scrape_sent 9797)
	signal_stop $p TERM; rc=$RC took=$TOOK
	# 150 ticks in those 3 s; a loop blocked on stdout sends none, so 30
	# proves it kept going without racing a busy machine.
	if [ $rc = 0 ] && [ -z "$HUNG" ] && [ "$s0" != none ] && [ "$s1" != none ] && [ $((s1 - s0)) -ge 30 ] &&
	   [ $((c1 - c0)) -le 30 ] && grep -q event=start "$W/head.out"; then
		pass "stdout a pipe whose reader exited: kept querying ($((s1 - s0)) queries in 3 s, one log line each lost to EPIPE), $((c1 - c0)) CPU ticks in 3 s (no spin), SIGTERM: exit 0 in $took ms"
	else
		fail "stdout a pipe whose reader exited" "rc=$rc took=${took}ms $HUNG sent $s0 -> $s1 cpu_ticks $c0 -> $c1 $(head -c 200 "$W/epipe.err")"
	fi
	# 3. a pipe nobody reads (a stuck log collector): once the 64 KiB pipe
	# buffer is full, write(2) blocks. The comment on log_end() in log.c
	# (end()) says a full stdout loses the line, never the process.
	rm -f "$W/fifo"; mkfifo "$W/fifo"
	# shellcheck disable=SC2217  # (it opens the pipe and never reads it: that is the point)
	sleep 30 <"$W/fifo" & SP=$!
	ip netns exec "$NS_NODE" "$BIN" -d "$VIP4" -i 10ms -w 300ms -v --metrics-addr 127.0.0.1:9798 >"$W/fifo" 2>"$W/full-pipe.err" & p=$!
	sleep 3
	s0=$(scrape_sent 9798)
	sleep 1
	s1=$(scrape_sent 9798)   # 100 ticks a second; a blocked loop: none
	t0=$(now_ms); kill -TERM $p
	i=0; while _lab_alive $p && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done
	if _lab_alive $p; then
		stuck="still running 2 s after SIGTERM, in $(cat /proc/$p/wchan 2>/dev/null)"
		kill -KILL $p
	else
		stuck=
	fi
	{ wait $p; } 2>/dev/null; rc=$?; took=$(($(now_ms) - t0))
	kill $SP 2>/dev/null; wait $SP 2>/dev/null
	if [ -z "$stuck" ] && [ $rc = 0 ] && [ "$s0" != none ] && [ "$s1" != none ] && [ $((s1 - s0)) -ge 20 ]; then
		pass "stdout a pipe nobody reads: kept querying ($((s1 - s0)) queries in 1 s after the pipe filled), SIGTERM: exit 0 in $took ms"
	else
		fail "stdout a pipe nobody reads: the tester must keep querying and obey SIGTERM" "queries_sent_total over 1 s: $s0 -> $s1 (none: the metrics endpoint does not answer either); $stuck; rc=$rc -- write(2) to the full pipe blocks the whole loop, and SIGTERM is blocked outside ppoll so it cannot end it; fix: never block on stdout, e.g. poll(fd 1, POLLOUT, 0) before each write and drop (and count) the line when it is not writable"
	fi
	decoys_ok stdout
); fi

# ---- clock steps --------------------------------------------------------
# CLOCK_REALTIME is stepped for the tester alone (the preload adds an
# offset to what clock_gettime(CLOCK_REALTIME) returns to it); the host
# clock is never touched. CLOCK_MONOTONIC cannot be stepped at all; a
# time namespace starts it far from the host's (both ways) instead.
if scenario clock; then (
	lab_up || { fail "clock: lab_up"; exit 0; }
	decoys_in clock || exit 0
	if [ -n "$PRE" ]; then
		L=$W/clock-steps.log
		t0=$(now_ms)
		# A grid kept on CLOCK_REALTIME would wait out the -1 h step (the
		# 60 s timeout ends it), fire early after it (under 2.9 s), or
		# skip ~864,000 ticks at +1 day. Lateness is not checked: a busy
		# machine may make us late (skipped_ticks <= 2 allows it).
		ip netns exec "$NS_NODE" timeout 60 env LD_PRELOAD="$PRE" FAULT_RT_JUMPS="0.8:-3600,1.6:86400,2.4:-315360000" \
			FAULT_REPORT="$W/clock-steps.rep" "$DBG" -d "$VIP4" -c 30 -i 100ms -w 300ms -v >"$L" 2>&1; rc=$?
		took=$(($(now_ms) - t0))
		lines=$(grep -c '^ts=' "$L")
		rt=$(sed -n 's/.*clock_realtime=\([0-9]*\).*/\1/p' "$W/clock-steps.rep" 2>/dev/null)
		years=$(sed -n 's/^ts=\([0-9]*\)-.*/\1/p' "$L" | sort -u | tr '\n' ' ')
		days=$(sed -n 's/^ts=\([0-9-]*\)T.*/\1/p' "$L" | sort -u | wc -l)
		if sane "$L" $rc && [ $rc = 0 ] && [ "$(sv "$L" answered)" = 30 ] && [ "$(sv "$L" skipped_ticks)" -le 2 ] &&
		   [ "$took" -ge 2800 ] && [ "$days" -ge 3 ] && [ "$rt" = "$lines" ]; then
			pass "CLOCK_REALTIME stepped -1 h, +1 day, -10 years mid-run: 30 ticks in $took ms, $(sv "$L" skipped_ticks) skipped, timestamps follow the steps (years: $years); CLOCK_REALTIME read $rt times = once per log line (timestamps only)"
		else
			fail "clock steps" "rc=$rc took=${took}ms days=$days realtime_reads=$rt log_lines=$lines skipped=$(sv "$L" skipped_ticks) $(tr '\n' ' ' <"$W/clock-steps.rep" 2>/dev/null)"
		fi
	fi
	up=$(cut -d. -f1 /proc/uptime)
	for off in $((100 * 365 * 86400)) -$((up - 1)); do
		L=$W/clock-timens$off.log
		t0=$(now_ms)
		# (an overflowing deadline hangs, ended by the timeout, or fires
		# at once: the 10 ticks cannot take under 450 ms)
		lab_node timeout 60 unshare --time --fork --monotonic="$off" --boottime="$off" \
			"$BIN" -d "$VIP4" -c 10 -i 50ms -w 300ms >"$L" 2>&1; rc=$?
		took=$(($(now_ms) - t0))
		if sane "$L" $rc && [ $rc = 0 ] && [ "$(sv "$L" answered)" = 10 ] && [ "$(sv "$L" skipped_ticks)" -le 2 ] && [ "$took" -ge 450 ]; then
			pass "time namespace, CLOCK_MONOTONIC offset ${off} s: 10 ticks in $took ms, $(sv "$L" skipped_ticks) skipped"
		else
			fail "time namespace, monotonic offset $off" "rc=$rc took=${took}ms $(brief "$L")"
		fi
	done
	decoys_ok clock
); fi

# ---- hostile metrics clients -------------------------------------------
if scenario metrics; then (
	lab_up || { fail "metrics: lab_up"; exit 0; }
	decoys_in metrics || exit 0
	L=$W/metrics.log
	tester "$L" -d "$VIP4" -i 100ms -w 300ms --metrics-addr 127.0.0.1:9797; p=$TPID
	sleep 0.3
	t0=$(now_ms)
	ip netns exec "$NS_NODE" $PY "$F/http_hostile.py" 127.0.0.1 9797 1 >"$W/metrics-client.txt" 2>&1; crc=$?
	took=$(($(now_ms) - t0))
	stop $p
	sent=$(sv "$L" sent)
	# queries kept their ticks while the clients misbehaved: a loop held
	# by the eight slow clients (2 s) would skip about 20 ticks; a busy
	# machine may make us miss one or two, which is not the server's doing
	if sane "$L" $RC && [ $crc = 0 ] && [ $RC = 0 ] && [ "$(sv "$L" skipped_ticks)" -le 3 ] &&
	   [ "$(grep -c level=error "$L")" = 0 ] && [ "$sent" -ge $((took / 100 - 3)) ]; then
		pass "metrics: $(grep -c . "$W/metrics-client.txt") hostile requests (malformed, 431, 503, slow, reset, never read) answered as README says; $sent queries meanwhile ($(sv "$L" skipped_ticks) ticks skipped), no error line, exit 0"
	else
		fail "metrics: hostile clients" "client rc=$crc: $(tail -n 1 "$W/metrics-client.txt") tester rc=$RC skipped=$(sv "$L" skipped_ticks)"
	fi
	decoys_ok metrics
); fi

# ---- the safety invariant, over every scenario above --------------------
# Every scenario that put its decoys in must have checked them after; the
# line names what it covers, and what was skipped or left out.
if scenario safety; then
	started=$(sed -n 's/^start //p' "$W/safety.txt" | sort -u)
	okd=$(sed -n 's/^ok //p' "$W/safety.txt" | sort -u)
	n_ok=$(echo "$okd" | grep -c .)
	n_bad=$(grep -c '^bad' "$W/safety.txt")
	unchecked=$(for sc in $started; do echo "$okd" | grep -qx "$sc" || grep -qx "bad $sc" "$W/safety.txt" ||
		grep -qx "skipped $sc" "$W/safety.txt" || echo "$sc"; done | tr '\n' ' ')
	skipped=$(sed -n 's/^skipped //p' "$W/safety.txt" | tr '\n' ' ')
	out=$(grep ' -- filtered by FAULTS_ONLY' "$RESULTS" 2>/dev/null | sed -n "s/^SKIP $GROUP: \([a-z]*\) -- .*/\1/p" | tr '\n' ' ')
	if [ "$n_ok" -gt 0 ] && [ "$n_bad" = 0 ] && [ -z "$unchecked" ]; then
		pass "safety invariant: in the $n_ok fault scenarios checked ($(echo $okd)), conntrack -L before/after shows only our own flows (and scan --fix's listed entries) gone${skipped:+; skipped: $skipped}${out:+; left out by FAULTS_ONLY: $out}"
	else
		fail "safety invariant over the fault scenarios" "$n_bad lost or changed decoys: $(grep '^bad' "$W/safety.txt" | tr '\n' ' '); started but never checked: ${unchecked:-none}"
	fi
fi
