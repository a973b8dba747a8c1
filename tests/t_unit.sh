#!/bin/sh
# t_unit.sh - `make check`: the unit tests that need no root (dns_test,
# opts_test, ct_data_test, verdict_test: the DNS parser, the option parsers, the
# ctnetlink parsers and the BPF filter on captured kernel messages, the
# verdict core against its decision table), all
# built with ASan+UBSan, run as an unprivileged user would run them.
#
#   sudo ./test.sh unit      (or, without root: make check)
. "$(dirname "$0")/lib.sh"

make -C "$TOP" -s check >"$OUT/unit.log" 2>&1; rc=$?
expect_eq "make check exits 0" "$rc" 0
for t in dns_test opts_test ct_data_test verdict_test; do
	# each prints its summary last: "NAME...: N checks|assertions, 0 failed"
	line=$(grep "^$t[ :].* [0-9][0-9]* \(checks\|assertions\), [0-9][0-9]* failed" "$OUT/unit.log" | tail -n 1)
	n=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) \(checks\|assertions\), .*/\1/p')
	if num "$n" && [ "$n" -gt 0 ] && echo "$line" | grep -q ', 0 failed$'; then
		pass "$line"
	else
		fail "$t under make check" "${line:-no summary line} $(grep -m 2 '^FAIL' "$OUT/unit.log" | tr '\n' ' ' | cut -c1-200)"
	fi
done
