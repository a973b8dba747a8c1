#!/bin/sh
# tests/counts.sh - holds one test group's results to tests/checks.txt.
#
#   sh tests/counts.sh SUITE RESULTS_SLICE        one line per problem; exit 1 if any
#   sh tests/counts.sh --observed SUITE SLICE     what ran, in checks.txt's form
#
# A group's result lines (PASS/FAIL/SKIP) are split by the "SCENARIO suite
# name" marks lib.sh's scenario() writes; lines before the first mark are
# the scenario "main". Each scenario in checks.txt must have started and
# must have recorded exactly its number of results, so that a scenario that
# returns early, a group that stops halfway, or a check lost in an edit is
# a failure, not a smaller green total. More results than listed are a
# failure too (the list is stale), unless the scenario already failed: a
# setup step's "|| fail" adds a line only when it fails. A scenario left
# out by its group's filter variable has one SKIP "filtered by" line and
# is not counted (the SKIP already keeps the run from being green).
TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
observed=0
[ "${1:-}" = --observed ] && { observed=1; shift; }
[ $# = 2 ] || { echo "usage: counts.sh [--observed] SUITE RESULTS_SLICE" >&2; exit 2; }
awk -v suite="$1" -v observed=$observed '
FNR == NR {
	if ($0 !~ /^#/ && NF == 3 && $1 == suite) want[$2] = $3
	next
}
/^SCENARIO / { if ($2 == suite) { cur = $3; seen[cur] = 1; order[++n] = cur } next }
/^(PASS|FAIL|SKIP) / {
	c = (cur == "" ? "main" : cur)
	if (!(c in seen)) { seen[c] = 1; order[++n] = c }
	got[c]++
	if ($1 == "FAIL") failed[c] = 1
	if ($1 == "SKIP" && / -- filtered by [A-Z0-9_]+=/) filtered[c] = 1
}
END {
	if (observed) {
		for (i = 1; i <= n; i++) if (!(order[i] in done)) { done[order[i]] = 1; print suite, order[i], got[order[i]] + 0 }
		exit 0
	}
	bad = 0
	for (s in want) if (!(s in seen)) {
		print "scenario " s ": never started (" want[s] " checks missing)"; bad = 1
	}
	for (s in seen) {
		if (filtered[s]) continue
		if (!(s in want)) {
			if (s == "main" && !failed[s] && got[s] + 0 == 0) continue
			if (s == "main" && failed[s]) continue
			print "scenario " s ": not in tests/checks.txt (" got[s] + 0 " checks ran)"; bad = 1
		} else if (got[s] + 0 < want[s]) {
			print "scenario " s ": only " got[s] + 0 " of its " want[s] " checks ran"; bad = 1
		} else if (got[s] > want[s] && !failed[s]) {
			print "scenario " s ": " got[s] " checks ran, tests/checks.txt says " want[s] ": update it"; bad = 1
		}
	}
	exit bad
}' "$TOP/tests/checks.txt" "$2"
