#!/bin/sh
# t_demo.sh - `make demo` reproduces, detects and heals the bug, and
# leaves nothing behind.
. "$(dirname "$0")/lib.sh"
need_root
# The demo's lab is named after its shell's PID (dbt<pid>*): other labs
# may come and go meanwhile, so look for exactly that one afterwards.
sh "$TOP/scripts/demo.sh" >"$OUT/demo.txt" 2>&1 & pid=$!
wait $pid; rc=$?
expect_eq "make demo exits 0" "$rc" 0
grep -A1 '^  reproduced' "$OUT/demo.txt" | grep -q 'dst=10.0.0.10 .*\[UNREPLIED\] src=10.0.0.10 ' &&
	pass "the window's conntrack entry, straight to the VIP, is shown" ||
	fail "reproduced" "$(grep -A1 reproduced "$OUT/demo.txt")"
grep -q 'detected .*event=blackhole: 1,' "$OUT/demo.txt" &&
	pass "event=blackhole named once" || fail "detected" "$(grep detected "$OUT/demo.txt")"
grep -q 'window .*event=nat_missing: 1 while.* window_ms=[0-9][0-9]*$' "$OUT/demo.txt" &&
	pass "the restart window is reported once and measured" || fail "window" "$(grep '^  window' "$OUT/demo.txt")"
grep -q 'slow server  2 answers after 0.6 s, blackholes claimed: 0, exit 0' "$OUT/demo.txt" &&
	pass "a slow real server: answered, nothing claimed, exit 0" || fail "slow server" "$(grep 'slow server' "$OUT/demo.txt")"
grep -q 'event=scan_deleted' "$OUT/demo.txt" && grep -q 'event=recovered after [0-9]* ms' "$OUT/demo.txt" &&
	pass "scan --fix heals it, the tester recovers" || fail "healed" "$(grep healed "$OUT/demo.txt")"
grep -q 'exit status  3' "$OUT/demo.txt" && pass "the tester exits 3 (blackhole seen)" ||
	fail "exit status" "$(grep 'exit status' "$OUT/demo.txt")"
expect_eq "no namespace left behind" "$(ip netns list | grep -c "^dbt$pid")" 0
expect_eq "no lab folder left behind" "$(grep -l "^dbt$pid" "$TOP"/build/lab-*/netns 2>/dev/null | wc -l)" 0
