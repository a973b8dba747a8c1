#!/bin/sh
# t_fuzz.sh - libFuzzer smoke test of everything that parses outside input:
# DNS replies (dns.c), ctnetlink messages (nl.c), option values and HTTP
# requests (opts.c, metrics.c). Builds tests/fuzz/fuzz_* (clang, ASan + UBSan; the
# build installs clang's libFuzzer runtime if missing), runs each target
# for FUZZ_SMOKE_SECONDS (10) from its committed seeds, and replays every
# reproducer in tests/fuzz/crashes/<target>/: each must run clean.
#
#   TOP=$PWD RESULTS=build/r-fuzz.txt OUT=build/out GROUP=fuzz sh tests/t_fuzz.sh
#
# Longer runs, outside CI: make fuzz FUZZ_SECONDS=600 (tests/fuzz/fuzz.mk).
# No network at all: the targets are in-process parsers.
. "${TOP:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

secs=${FUZZ_SMOKE_SECONDS:-10}
unset FUZZ_RUNS

# the lock: t_node builds fuzz_event in another lane (one make at a time)
mkdir -p "$TOP/build"
if ! flock "$TOP/build/.fuzz-build.lock" make -C "$TOP" -s fuzz-build >"$OUT/fuzz-build.log" 2>&1; then
	fail "fuzz targets build" "$(tail -n 3 "$OUT/fuzz-build.log" | tr '\n' ' ')"
	exit 0
fi
pass "fuzz targets build (clang -fsanitize=fuzzer,address,undefined)"

for t in dns ct opts http escape; do
	line=$(sh "$TOP/tests/fuzz/run.sh" "$secs" "$t")
	case $line in
	"fuzz_$t: ok, "*) pass "$line" ;;
	*) fail "fuzz_$t runs ${secs} s without a finding" "$line (log: build/fuzz/logs/$t.log)" ;;
	esac
done

# Inputs that once crashed or broke an invariant: regressions now.
for f in "$TOP"/tests/fuzz/crashes/*/*; do
	[ -f "$f" ] || continue
	t=$(basename "$(dirname "$f")")
	name="fuzz_$t: reproducer crashes/$t/$(basename "$f") runs clean"
	if "$TOP/build/fuzz/fuzz_$t" "$f" >"$OUT/fuzz-replay.log" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(grep -m1 '^SUMMARY' "$OUT/fuzz-replay.log" || tail -n 1 "$OUT/fuzz-replay.log")"
	fi
done
