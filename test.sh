#!/bin/sh
# test.sh - the whole test suite. Run as root on Debian/Ubuntu:
#
#   sudo ./test.sh               every group
#   sudo ./test.sh e2e dns       only tests/t_e2e.sh and tests/t_dns.sh
#
# It installs its own packages, builds, runs each tests/t_*.sh group and
# ends with "N passed, M failed" (", K skipped" if any). Every network test
# runs in namespaces it creates and removes; the host's own network is
# never touched.
#
# Green (exit 0) means every check ran and passed: no FAIL, no SKIP, and
# each group's scenarios recorded exactly the number of results that
# tests/checks.txt gives them (tests/counts.sh). A filter variable
# (E2E_ONLY, SCAN_ONLY, FAULTS_ONLY, METRICS_ONLY, SOAK_CYCLES) turns what
# it leaves out into SKIP lines, so a filtered run is never green. Naming
# groups on the command line runs only those, and says so.
set -u
TOP=$(cd "$(dirname "$0")" && pwd)
cd "$TOP"
export TOP RESULTS="$TOP/build/results.txt" OUT="$TOP/build/out"
mkdir -p build "$OUT"
: >"$RESULTS"

if [ "$(id -u)" != 0 ]; then
	echo "test.sh: needs root (network namespaces, conntrack): sudo ./test.sh" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

sh scripts/test-deps.sh || { echo "test.sh: installing test packages failed"; echo "0 passed, 1 failed"; exit 1; }
if ! make -s >"$OUT/build.log" 2>&1 || ! make -s host >>"$OUT/build.log" 2>&1; then
	cat "$OUT/build.log"
	echo "test.sh: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

if [ $# -gt 0 ]; then
	groups=$(for g in "$@"; do echo "tests/t_$g.sh"; done)
else
	groups=$(ls tests/t_*.sh)
fi
start=$(date +%s)
for g in $groups; do
	[ -f "$g" ] || { echo "FAIL $g: no such test group" | tee -a "$RESULTS"; continue; }
	echo "== $g"
	t0=$(date +%s)
	suite=$(basename "$g" .sh | sed 's/^t_//')
	from=$(($(wc -l <"$RESULTS") + 1))
	GROUP=$suite sh "$g" || echo "FAIL $g: exited $?" | tee -a "$RESULTS"
	# every scenario ran all its checks (tests/checks.txt)
	sed -n "$from,\$p" "$RESULTS" >"$OUT/slice.txt"
	sh tests/counts.sh "$suite" "$OUT/slice.txt" >"$OUT/counts.txt" 2>&1 ||
		sed "s/^/FAIL $suite: expected checks: /" "$OUT/counts.txt" | tee -a "$RESULTS"
	echo "   ($(($(date +%s) - t0)) s)"
done

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
skipped=$(grep -c '^SKIP' "$RESULTS")
echo
grep '^FAIL' "$RESULTS" || true
echo "suite took $(($(date +%s) - start)) s"
if [ $# -gt 0 ]; then
	echo "partial run: groups $* only (of $(ls tests/t_*.sh | wc -l))"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$passed" -gt 0 ]
