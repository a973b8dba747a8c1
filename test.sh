#!/bin/sh
# test.sh - the whole test suite. Run as root on Debian/Ubuntu:
#
#   sudo ./test.sh               every group
#   sudo ./test.sh e2e dns       only tests/t_e2e.sh and tests/t_dns.sh
#
# It installs its own packages, builds, runs each tests/t_*.sh group and
# ends with "N passed, M failed". Every network test runs in namespaces
# it creates and removes; the host's own network is never touched.
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
	GROUP=$(basename "$g" .sh | sed 's/^t_//') sh "$g" || echo "FAIL $g: exited $?" | tee -a "$RESULTS"
	echo "   ($(($(date +%s) - t0)) s)"
done

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
skipped=$(grep -c '^SKIP' "$RESULTS")
echo
grep '^FAIL' "$RESULTS" || true
echo "suite took $(($(date +%s) - start)) s"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
