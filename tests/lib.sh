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
# The file's own name (t_e2e.sh: e2e), whatever GROUP it reports as: the
# key of its entries in tests/checks.txt.
SUITE=$(basename "$0" .sh); SUITE=${SUITE#t_}

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

# scenario NAME: a scenario of this group begins. It marks the results
# file: test.sh (tests/counts.sh) holds the result lines that follow, up to
# the next mark, to the number tests/checks.txt gives NAME, so a scenario
# that stops early fails even when every check it did run passed. If the
# group's filter (FILTER_VAR names it, e.g. E2E_ONLY="window heal") leaves
# NAME out, records "SKIP group: NAME -- filtered by VAR=..." and returns
# 1: a filtered run is never green.
scenario() {
	printf 'SCENARIO %s %s\n' "$SUITE" "$1" >>"$RESULTS"
	[ -n "${FILTER_VAR:-}" ] || return 0
	eval "_sc_f=\${$FILTER_VAR:-}"
	[ -n "$_sc_f" ] || return 0
	case " $_sc_f " in *" $1 "*) return 0 ;; esac
	skip "$1" "filtered by $FILTER_VAR=$_sc_f"
	return 1
}

# want NAME: the old name of scenario, kept so that a scenario written
# the old way is still marked and counted, never silently dropped.
want() { scenario "$@"; }

# num VALUE...: every VALUE is a whole number (an empty one is not 0)
num() {
	for _n in "$@"; do
		case $_n in ''|*[!0-9]*) return 1 ;; esac
	done
}

need_root() {
	[ "$(id -u)" = 0 ] || { fail "$GROUP needs root" "run as root: sudo ./test.sh"; exit 0; }
}
