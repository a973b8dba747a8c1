#!/bin/sh
# t_demo.sh - `make demo` reproduces, detects and heals the bug (act 1), shows
# a CoreDNS rollout stranding a client (act 2), and leaves nothing behind.
# Checked on what the demo's tester logged and what conntrack showed at each
# step (DEMO_LOGS), not on its narration.
. "$(dirname "$0")/lib.sh"
need_root
LC=$TOP/tests/logcheck.py
D=$OUT/demo-logs
rm -rf "$D"
# The demo's lab is named after its shell's PID (dbt<pid>*): other labs
# may come and go meanwhile, so look for exactly that one afterwards.
DEMO_LOGS=$D sh "$TOP/scripts/demo.sh" >"$OUT/demo.txt" 2>&1 & pid=$!
wait $pid; rc=$?
expect_eq "make demo exits 0" "$rc" 0

# count DIR EVENT [K=V...] / after DIR EVENT MS [K=V...]: tester.log lines.
count() { _d=$1; shift; /usr/bin/python3 "$LC" count "$D/$_d/tester.log" "$@"; }
after() { _d=$1; shift; /usr/bin/python3 "$LC" after "$D/$_d/tester.log" "$@"; }
phase() { sed -n "s/^$2 //p" "$D/$1/phases" 2>/dev/null; }

# Act 1: the restart window.
grep -q 'dst=10.0.0.10 .*\[UNREPLIED\] src=10.0.0.10 ' "$D/act1/ct-window.txt" 2>/dev/null &&
	pass "act 1: the window's conntrack entry goes straight to the VIP" ||
	fail "act 1: window entry" "$(cat "$D/act1/ct-window.txt" 2>&1)"
expect_eq "act 1: event=blackhole once" "$(count act1 blackhole)" 1
expect_eq "act 1: the restart window reported once (event=nat_missing)" "$(count act1 nat_missing)" 1
check "act 1: ... and measured (event=nat_restored window_ms=)" \
	num "$(/usr/bin/python3 "$LC" field "$D/act1/tester.log" nat_restored window_ms)"
check "act 1: scan --fix deleted the entry (event=scan_deleted)" grep -q 'event=scan_deleted' "$D/act1/scan.log"
expect_eq "act 1: the tester recovered (event=recovered)" "$(count act1 recovered)" 1
expect_eq "act 1: the tester exits 3 (blackhole seen)" "$(phase act1 exit)" 3
expect_eq "act 1: a slow real server: 2 answers, no blackhole, exit 0" \
	"$(/usr/bin/python3 "$LC" count "$D/act1/slow.log" reply) $(/usr/bin/python3 "$LC" count "$D/act1/slow.log" blackhole) $(phase act1 slow_exit)" "2 0 0"

# Act 2: a CoreDNS rollout strands the tester's flow on backend B
# (10.244.0.4); fresh flows go to A (10.244.0.2).
ro=$(phase act2 rollout) he=$(phase act2 heal)
check "act 2: phases recorded" num "$ro" "$he"
port=$(sed -n 's/^udp .* sport=\([0-9]*\) dport=53 .*/\1/p' "$D/act2/ct-before.txt" 2>/dev/null | head -n 1)
check "act 2: before the rollout the tester's entry is DNAT'd to B" \
	grep -q "sport=$port dport=53 src=10.244.0.4 dst=10.224.0.8 sport=53 dport=$port " "$D/act2/ct-before.txt"
expect_eq "act 2: answered, no timeout, before the rollout" \
	"$(($(count act2 reply) > 0)) $(($(count act2 timeout) - $(after act2 timeout "$ro")))" "1 0"
stuck=$(($(after act2 timeout "$ro") - $(after act2 timeout "$he")))
check "act 2: after the rollout, queries time out on the stale entry ($stuck)" test "$stuck" -ge 3
expect_eq "act 2: no reply in the last second before the heal" \
	"$(($(after act2 reply $((he - 1000))) - $(after act2 reply "$he")))" 0
check "act 2: conntrack: still DNAT'd to B, gone, after the rollout" \
	grep -q "sport=$port dport=53 src=10.244.0.4 dst=10.224.0.8 sport=53 dport=$port " "$D/act2/ct-stuck.txt"
expect_eq "act 2: 3 fresh sockets answered" "$(grep -c '^ok ' "$D/act2/fresh.txt" 2>/dev/null)" 3
expect_eq "act 2: conntrack: every other flow to the VIP went to A" \
	"$(grep -v "sport=$port " "$D/act2/ct-stuck.txt" | grep -c -v ' src=10.244.0.2 dst=10.224.0.8 ')" 0
check "act 2: answered again after conntrack -D (event=reply, event=recovered)" \
	test "$(after act2 reply "$he")" -gt 0 -a "$(after act2 recovered "$he")" = 1
check "act 2: conntrack: its new entry is DNAT'd to A" \
	grep -q "sport=$port dport=53 src=10.244.0.2 dst=10.224.0.8 sport=53 dport=$port " "$D/act2/ct-after.txt"
# The one kind of blackhole act 2 may name is a gone backend.
expect_eq "act 2: no blackhole claimed but kind=gone_backend" \
	"$(($(count act2 blackhole) - $(count act2 blackhole kind=gone_backend)))" 0
case $(phase act2 exit) in
0|3) pass "act 2: the tester stopped by SIGTERM exits 0, or 3 once it names the gone backend" ;;
*) fail "act 2: tester exit" "got '$(phase act2 exit)'" ;;
esac

expect_eq "no namespace left behind" "$(ip netns list | grep -c "^dbt$pid")" 0
expect_eq "no lab folder left behind" "$(grep -l "^dbt$pid" "$TOP"/build/lab-*/netns 2>/dev/null | wc -l)" 0
