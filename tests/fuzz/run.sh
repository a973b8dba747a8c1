#!/bin/sh
# tests/fuzz/run.sh SECONDS TARGET... - runs each built target
# build/fuzz/fuzz_TARGET for SECONDS (or until FUZZ_RUNS executions, if
# set), one process on one core, at nice 10 (others share the machine).
#
# Corpus: build/fuzz/corpus/TARGET (new units go there), plus the
# committed seeds tests/fuzz/seeds/TARGET (read only). Crash inputs go
# to build/fuzz/artifacts/TARGET/; the log to build/fuzz/logs/TARGET.log.
# Prints one line per target:
#   fuzz_dns: ok, 1234567 runs in 10 s (123456/s), corpus 210 units
#   fuzz_dns: FAILED (crash), 4567 runs, artifact build/fuzz/...: <first error line>
# and exits 1 if any target failed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:?usage: run.sh SECONDS TARGET...}
shift
out=$top/build/fuzz
nice=${FUZZ_NICE:-10}
status=0

# Per-target options: input sizes that make sense, and dictionaries.
opts_for() {
	case $1 in
	dns) echo "-max_len=1500" ;;    # a UDP reply, past the 512 of plain DNS
	ct) echo "-max_len=2048" ;;     # a dump entry is ~100-300 bytes
	event) echo "-max_len=4096" ;;  # targets, then a receive of a few events
	opts) echo "-max_len=128 -dict=$top/tests/fuzz/opts.dict" ;;
	http) echo "-max_len=2100 -dict=$top/tests/fuzz/http.dict" ;;   # past the 2048 cap
	escape) echo "-max_len=4200" ;;  # past a log line's 4096: the cut pair too
	esac
}

for t in "$@"; do
	bin=$out/fuzz_$t
	log=$out/logs/$t.log
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
	if [ ! -x "$bin" ]; then
		echo "fuzz_$t: FAILED (not built: make fuzz-build)"
		status=1
		continue
	fi
	runs=
	[ -n "${FUZZ_RUNS:-}" ] && runs="-runs=$FUZZ_RUNS"
	start=$(date +%s)
	# shellcheck disable=SC2046,SC2086  # word lists on purpose
	nice -n "$nice" "$bin" -max_total_time="$secs" $runs -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 $(opts_for "$t") \
		-artifact_prefix="$out/artifacts/$t/" \
		"$out/corpus/$t" "$top/tests/fuzz/seeds/$t" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
	[ -n "$n" ] || n=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
	units=$(find "$out/corpus/$t" -type f | wc -l)
	err=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|invariant broken|deadly signal|Timeout|out-of-memory' "$log")
	art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
	if [ "$rc" = 0 ] && [ -z "$err" ] && [ -n "$n" ]; then
		echo "fuzz_$t: ok, $n runs in $took s ($((n / (took > 0 ? took : 1)))/s), corpus $units units"
	else
		echo "fuzz_$t: FAILED (exit $rc), ${n:-?} runs${art:+, artifact $art}: ${err:-see $log}"
		status=1
	fi
done
exit $status
