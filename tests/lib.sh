# tests/lib.sh - the few helpers every test group uses. Source it.
#
# A test group is tests/t_*.sh: it sources this file, runs checks, and
# records each result with pass/fail. test.sh counts the results file.
# Nothing here is ever skipped silently: a check that cannot run fails
# with the reason, or is recorded as "skip" and counted as such.

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
RESULTS=${RESULTS:-$TOP/build/results.txt}
OUT=${OUT:-$TOP/build/out}
BIN=${BIN:-$TOP/dns-blackhole-tester}
mkdir -p "$OUT" "$(dirname "$RESULTS")"

GROUP=${GROUP:-$(basename "$0" .sh)}

pass() { printf 'PASS %s: %s\n' "$GROUP" "$1" | tee -a "$RESULTS"; }
fail() { printf 'FAIL %s: %s%s\n' "$GROUP" "$1" "${2:+ -- $2}" | tee -a "$RESULTS"; }
skip() { printf 'SKIP %s: %s -- %s\n' "$GROUP" "$1" "$2" | tee -a "$RESULTS"; }

# check NAME CMD...: passes if CMD exits 0.
check() {
	name=$1; shift
	if "$@" >"$OUT/check.log" 2>&1; then pass "$name"; else fail "$name" "$(tail -n 3 "$OUT/check.log" | tr '\n' ' ')"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi
}

# count_events FILE EVENT: how many log lines carry event=EVENT
count_events() { grep -c "event=$2\( \|$\)" "$1" 2>/dev/null || true; }

# field FILE EVENT KEY: the value of KEY on the first EVENT line (logfmt)
field() {
	grep -m1 "event=$2\( \|$\)" "$1" | sed -n "s/.* $3=\(\"[^\"]*\"\|[^ ]*\).*/\1/p" | tr -d '"'
}

need_root() {
	[ "$(id -u)" = 0 ] || { fail "$GROUP needs root" "run as root: sudo ./test.sh"; exit 0; }
}
