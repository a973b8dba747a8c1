#!/bin/sh
# bench/ab.sh OLD_BIN NEW_BIN [ROUNDS] - per-cycle CPU of two builds side
# by side: bench/run.sh on each in turn (old, new, old, new, ...), few
# sizes and short runs, every figure from the same machine in one sitting.
# Prints each run's "CPU per cycle" row and writes the reports under
# build/ab/. About 2 minutes a run.
#
#   sudo sh bench/ab.sh /path/to/old/dns-blackhole-tester ./dns-blackhole-tester 2
set -eu
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_BIN NEW_BIN [ROUNDS]" >&2; exit 2; }
TOP=$(cd "$(dirname "$0")/.." && pwd)
OLD=$(readlink -f "$1") NEW=$(readlink -f "$2") ROUNDS=${3:-2}
W=$TOP/build/ab
mkdir -p "$W"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	for which in old new; do
		[ $which = old ] && bin=$OLD || bin=$NEW
		BENCH_SIZES="0 50000" BENCH_RUNS=3 BENCH_CYCLES=1000 BENCH_ORIG_CYCLES=1 BENCH_SCAN_RUNS=1 \
		BENCH_TICKS=100 BENCH_STARTS=2 BENCH_DETECTS=1 BENCH_RSS_CYCLES=20 BENCH_GETS=10000 \
		BENCH_OUT="$W/$which.$i.md" BENCH_RAW="$W/raw.$which.$i" BIN="$bin" \
			sh "$TOP/bench/run.sh" >"$W/$which.$i.log" 2>&1 || echo "ab: $which run $i failed (see $W/$which.$i.log)" >&2
		printf '%s %s: %s\n' "$which" "$i" "$(grep -m1 'CPU per cycle' "$W/$which.$i.md" 2>/dev/null)"
	done
	i=$((i + 1))
done
