#!/bin/sh
# t_bench.sh - smoke test of the benchmarks (bench/run.sh, bench/harness.c,
# bench/report.py) on tiny sizes: that every measurement runs, sees what it
# should, and lands in the report. It asserts no speed at all: speed is a
# benchmark (`sudo make bench`), not a timed test.
#
# Writes to build/out/bench-*; never touches bench/RESULTS.md.
. "$(dirname "$0")/lib.sh"
need_root

RAW=$OUT/bench-raw
MD=$OUT/bench-RESULTS.md
rm -rf "$RAW" "$MD"
before=$(cksum "$TOP/bench/RESULTS.md" 2>/dev/null)

BENCH_SIZES="0 1000" BENCH_RUNS=1 BENCH_CYCLES=50 BENCH_ORIG_CYCLES=2 BENCH_SCAN_RUNS=1 \
BENCH_TICKS=100 BENCH_STARTS=2 BENCH_DETECTS=1 BENCH_RSS_CYCLES=20 BENCH_GETS=1000 \
BENCH_RAW=$RAW BENCH_OUT=$MD BIN=$BIN \
	sh "$TOP/bench/run.sh" >"$OUT/bench.log" 2>&1 &
pid=$!
wait "$pid"; rc=$?

if [ $rc = 0 ] && [ -s "$MD" ]; then
	pass "bench/run.sh on sizes 0 and 1000 exits 0 and writes a report"
else
	fail "bench/run.sh exits 0 and writes a report" "rc=$rc: $(tail -n 3 "$OUT/bench.log" | tr '\n' ' ')"
fi

# The lab it used is gone (lab names are dbt<pid of the shell>...).
left=$(ip netns list 2>/dev/null | grep -c "^dbt${pid}[nx]" || true)
expect_eq "bench leaves no lab namespace behind" "$left" 0

expect_eq "bench/RESULTS.md untouched by the smoke run" "$(cksum "$TOP/bench/RESULTS.md" 2>/dev/null)" "$before"

# The flood filled the node's table (plus the 12 decoys and our flows).
n=$(awk '{ print $2 }' "$RAW/size.1000/count.txt" 2>/dev/null)
if [ -n "$n" ] && [ "$n" -ge 1000 ] && [ "$n" -lt 1100 ]; then
	pass "raw-socket flood: 1000 entries in the node's table ($n with decoys)"
else
	fail "raw-socket flood fills the table" "conntrack -C said '$n'"
fi

for s in 0 1000; do
	d=$RAW/size.$s
	# tester: every run ended with every query answered (exit 0)
	got=$(awk '{ print $5 }' "$d/ours.txt" 2>/dev/null | tr '\n' ' ')
	expect_eq "size $s: the tester's measured run answered every query" "$got" "0 "
	# each cycle's own CPU was read (mid-interval, between ticks)
	got=$(wc -w <"$d/cycles.txt" 2>/dev/null)
	# (cycles 2 to 50: the first begins before the harness's first read)
	if [ "${got:-0}" -ge 45 ] && [ "$got" -le 49 ]; then
		pass "size $s: the CPU of each of the 50 cycles read on its own ($got whole cycles)"
	else
		fail "size $s: per-cycle CPU read" "$got values in cycles.txt"
	fi
	# syscalls per cycle could be computed from the two strace runs
	if grep -q ' total$' "$d/strace.50" 2>/dev/null && grep -q ' total$' "$d/strace.250" 2>/dev/null; then
		pass "size $s: strace -c counted both runs"
	else
		fail "size $s: strace -c counted both runs" "$(head -n 2 "$d/strace.50" 2>/dev/null)"
	fi
	# original method: each cycle got its answer and ran conntrack -D
	got=$(awk '$2 > 0 && $4 == 1' "$d/orig.txt" 2>/dev/null | wc -l)
	expect_eq "size $s: original method, 2 cycles answered, conntrack -D ran" "$got" 2
	# the lookup alone found its entry every time
	got=$(awk '{ print $2 }' "$d/get.txt" 2>/dev/null)
	expect_eq "size $s: getloop (nl.c's lookup alone) found its entry 1000 times" "$got" 1000
	# scan and conntrack -L looked at the same entries to the VIP
	ex=$(sed -n 's/.*examined=\([0-9]*\).*/\1/p' "$d/scan.out" 2>/dev/null)
	bh=$(sed -n 's/.*blackholed=\([0-9]*\).*/\1/p' "$d/scan.out" 2>/dev/null)
	ctl=$(grep -c '^udp' "$d/ctl.out" 2>/dev/null)
	if [ -n "$ex" ] && [ "$ex" = "$ctl" ] && [ "$bh" = 1 ]; then
		pass "size $s: scan and conntrack -L see the same $ex entries; scan finds the 1 blackholed decoy"
	else
		fail "size $s: scan and conntrack -L agree" "scan examined=$ex blackholed=$bh, conntrack -L $ctl lines"
	fi
	for k in scan ctl scanuser; do
		[ "$(wc -l <"$d/$k.txt" 2>/dev/null)" = 1 ] || fail "size $s: $k measured" "no $d/$k.txt"
	done
done

got=$(grep -c '^pkt ' "$RAW/ticks.txt" 2>/dev/null)
expect_eq "ticks: every one of 100 queries timestamped on the wire" "$got" 100
got=$(cat "$RAW"/start.* 2>/dev/null | grep -c '^pkt ')
expect_eq "start-up: first query seen for both launches" "$got" 2
for k in default fast; do
	f=$RAW/detect.$k.0
	if grep -q '^pkt ' "$f" 2>/dev/null && grep -q '^line .*event=blackhole' "$f" 2>/dev/null; then
		pass "detection ($k): blackholed query on the wire and event=blackhole both stamped"
	else
		fail "detection ($k): both stamped" "$(tr '\n' ' ' <"$f" 2>/dev/null | cut -c 1-200)"
	fi
done
if grep -q '^VmHWM:' "$RAW/rss.txt" 2>/dev/null; then pass "peak RSS read from /proc"; else fail "peak RSS read from /proc" "no VmHWM"; fi

# The report holds every row, a figure in each size column, and the goals.
for want in "| entries in the table" "**tester**: CPU per cycle" "lookup alone" "**original / tester**" \
	"**scan / conntrack -L**" "Stripped binary" "Peak RSS" "Start-up to first query" \
	"Tick error vs grid" "Drift" "proven after the rules' return, interval 1000 ms" "proven after the rules' return, interval 200 ms"; do
	if grep -qF -- "$want" "$MD" 2>/dev/null; then :; else fail "report has '$want'"; fi
done
nas=$(grep -c 'n/a' "$MD" 2>/dev/null)
if grep -qF "**tester**: CPU per cycle" "$MD" 2>/dev/null && [ "$nas" = 0 ]; then
	pass "report: every row present, no n/a"
else
	fail "report: every row present, no n/a" "$nas n/a; $(grep -m2 'n/a' "$MD" 2>/dev/null | tr '\n' ' ')"
fi
