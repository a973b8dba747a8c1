#!/bin/sh
# tests/t_docs.sh - the manual and the README against the program.
#
# What the man page says is read from the page itself and compared with
# what the binary prints and the sources can do (tests/docs_check.py):
#   - mandoc -Tlint finds nothing, and the page renders with every section;
#   - every option in --help, and in each subcommand's --help, is in the
#     page's list for it and the other way round (long and short forms,
#     and whether it takes a value), and in SYNOPSIS;
#   - every long option a getopt table in the sources accepts is in the page;
#   - every event the sources can log is listed in DIAGNOSTICS, and every
#     event listed there is logged somewhere; every key the sources can
#     write is named there;
#   - the README is at most 150 lines, still holds the test command CI
#     runs, and every relative link in README, HACKING.md and docs/
#     names a file that exists.
# Needs no root and no network: sh tests/t_docs.sh, or ./test.sh docs.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1

MAN=$TOP/dns-blackhole-tester.8
PY="python3 $TOP/tests/docs_check.py"

# mandoc -Tlint: no message at STYLE level or above. The only lines let
# through are about the host's installed pages, not this one: its man
# database older than its pages ("outdated mandoc.db lacks ..."), or an
# .Xr to a page this host has not installed ("referenced manual not
# found"); mandoc's exit status counts the latter, so it is not read.
mandoc -Tlint -W style "$MAN" >"$OUT/docs-lint.txt" 2>&1
grep -v -e 'outdated mandoc.db lacks' -e 'STYLE: referenced manual not found' \
	"$OUT/docs-lint.txt" >"$OUT/docs-lint.msgs"
if command -v mandoc >/dev/null && [ ! -s "$OUT/docs-lint.msgs" ]; then
	pass "mandoc -Tlint is clean"
else
	fail "mandoc -Tlint is clean" "$(command -v mandoc || echo 'no mandoc') $(head -n 3 "$OUT/docs-lint.msgs" | tr '\n' ' ')"
fi

# rendered as man(1) would show it: every section the manual must have
missing=
if mandoc -Tutf8 "$MAN" 2>/dev/null | col -b >"$OUT/docs-man.txt" && [ -s "$OUT/docs-man.txt" ]; then
	for h in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES DIAGNOSTICS "SEE ALSO" CAVEATS \
	         "   The scan command" "   The node watch" "   Metrics"; do
		grep -q "^$h\$" "$OUT/docs-man.txt" || missing="$missing '$h'"
	done
else
	missing=" (mandoc -Tutf8 rendered nothing)"
fi
expect_eq "the man page renders with every section" "$missing" ""

# docs_check NAME CMD...: the command lists every difference; none passes.
docs_check() {
	name=$1; shift
	if $PY "$@" >"$OUT/docs-check.txt" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(head -n 4 "$OUT/docs-check.txt" | tr '\n' ' ')"
	fi
}

# The tester's options, then each subcommand main.c dispatches.
"$BIN" --help >"$OUT/docs-help-tester.txt" 2>&1; rc=$?
expect_eq "--help exits 0" "$rc" 0
docs_check "--help options = the man page's options" options "$OUT/docs-help-tester.txt" "$MAN" tester
docs_check "--help options are in SYNOPSIS, and no other" synopsis "$OUT/docs-help-tester.txt" "$MAN" tester
subs=$($PY subcommands "$TOP")
[ -n "$subs" ] || fail "main.c dispatches a subcommand" "the reader found none (scan at least)"
for sub in $subs; do
	"$BIN" "$sub" --help >"$OUT/docs-help-$sub.txt" 2>&1; rc=$?
	expect_eq "$sub --help exits 0" "$rc" 0
	docs_check "$sub --help options = the man page's $sub options" options "$OUT/docs-help-$sub.txt" "$MAN" "$sub"
	docs_check "$sub --help options are in SYNOPSIS, and no other" synopsis "$OUT/docs-help-$sub.txt" "$MAN" "$sub"
done
docs_check "every long option the code accepts is in the man page" getopt "$TOP" "$MAN"
docs_check "every event the code logs is in DIAGNOSTICS, and back" events "$TOP" "$MAN"
docs_check "every key the code logs is in DIAGNOSTICS" keys "$TOP" "$MAN"

# The README: short, still holding the test command CI runs.
n=$(wc -l <"$TOP/README")
if num "$n" && [ "$n" -le 150 ]; then
	pass "README is at most 150 lines ($n)"
else
	fail "README is at most 150 lines" "it has '$n'"
fi
if grep -Eq '^ {4,}(sudo )?\./test\.sh *$' "$TOP/README"; then
	pass "README holds the test command (./test.sh)"
else
	fail "README holds the test command (./test.sh)" "no code line '    sudo ./test.sh'"
fi
docs_check "links in README, HACKING.md and docs/ name files that exist" links \
	"$TOP/README" "$TOP/HACKING.md" "$TOP"/docs/*.md
