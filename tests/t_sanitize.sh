#!/bin/sh
# t_sanitize.sh - the tester under AddressSanitizer + UndefinedBehavior-
# Sanitizer (build/host/dns-blackhole-tester-asan, `make host`) and under
# valgrind memcheck (build/host/dns-blackhole-tester-debug), in the lab.
#
#   1. a canary with one known bug per sanitizer proves that, with the
#      options used here, a report is caught (else "no report" proves
#      nothing);
#   2. the unit tests (dns_test, opts_test; nl_test through t_nl.sh) and
#      the whole lab suite t_e2e.sh run with the sanitized binaries
#      (their own checks are recorded as groups nl-asan and e2e-asan; in
#      a whole ./test.sh run, e2e runs only here, as the e2e group), and
#      so do the fault scenarios that stress parsers and error paths
#      (t_faults.sh: hostile DNS, hostile metrics clients, EPERM, ENOBUFS,
#      clock steps; group faults-asan);
#   3. scan --fix on 1,200 decoys and a blackholed client, IPv6 --heal in
#      JSON: sanitized, with the safety diff of conntrack -L;
#   4. valgrind --leak-check=full on a lab run (windows + --heal + metrics
#      scrapes and hostile clients + scan --fix + a flood of bad replies +
#      no CAP_NET_ADMIN): 0 errors, no leak.
#
# A run is clean when no ASan/LSan report file appears in its log_path
# directory, no report ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
# "runtime error:") is in its logs, and it was not aborted (every
# sanitizer aborts: abort_on_error=1, exit 134).
#
#   sudo ./test.sh sanitize
#
# shellcheck disable=SC2086
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root

PY=$LAB_PY                        # (lab.sh picks Debian's python3)
LC="$PY $TOP/tests/logcheck.py"
F=$TOP/tests/faults
W=$OUT/sanitize
ASAN=$TOP/build/host/dns-blackhole-tester-asan
DBG=$TOP/build/host/dns-blackhole-tester-debug
# the Makefile's SAN flags, for the canary
SANFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
rm -rf "$W"; mkdir -p "$W" "$TOP/build/faults"
now_ms() { date +%s%3N; }
# subrun NAME SUITE RESULTS OUTFILE: a group run with the sanitized build
# into its own results file passes only if it recorded no FAIL and every
# scenario it ran recorded all its checks (tests/counts.sh); scenarios
# its filter left out are named. Prints nothing, sets SUB_WHY ("" if ok)
# and SUB_SUMMARY.
subrun() {
	_np=$(grep -c '^PASS' "$3") _nf=$(grep -c '^FAIL' "$3") _ns=$(grep -c '^SKIP' "$3")
	_cnt=$(sh "$TOP/tests/counts.sh" "$2" "$3" 2>&1 | tr '\n' ' ')
	SUB_SUMMARY="$_np passed, $_nf failed"
	[ "$_ns" = 0 ] || SUB_SUMMARY="$SUB_SUMMARY, left out by its filter: $(sed -n 's/^SKIP [^:]*: \([^ ]*\) -- filtered by.*/\1/p' "$3" | tr '\n' ' ')"
	SUB_WHY=
	[ "$_np" -gt 0 ] || SUB_WHY="nothing passed;"
	[ "$_nf" = 0 ] || SUB_WHY="$SUB_WHY $(grep '^FAIL' "$3" | head -n 3 | cut -c1-160 | tr '\n' ' ');"
	[ -z "$_cnt" ] || SUB_WHY="$SUB_WHY checks missing: $_cnt"
	[ "$(grep '^SKIP' "$3" | grep -vc ' -- filtered by ')" = 0 ] || SUB_WHY="$SUB_WHY $(grep '^SKIP' "$3" | grep -v ' -- filtered by ' | head -n 2 | tr '\n' ' ')"
}
sv() { grep 'event=stats' "$1" | tail -n 1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

# san_env DIR: sanitizer options for everything started from here on;
# ASan and LSan write their reports to DIR/asan.PID, UBSan to stderr.
# (verify_asan_link_order=0: t_faults.sh preloads its fault injector.)
san_env() {
	mkdir -p "$1"
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:verify_asan_link_order=0:log_path=$1/asan"
	UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
	export ASAN_OPTIONS UBSAN_OPTIONS
}
# reports DIR FILE_OR_DIR...: the reports found, one per line (none: empty)
reports() {
	_d=$1; shift
	{ ls "$_d"/asan.* 2>/dev/null
	  grep -rl -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$@" 2>/dev/null
	} | sort -u
}
# clean NAME DIR FILE_OR_DIR...: pass/fail on reports
clean() {
	_n=$1; shift
	_r=$(reports "$@")
	if [ -z "$_r" ]; then
		pass "$_n: no sanitizer report"
	else
		fail "$_n: sanitizer report" "$(echo "$_r" | head -n 2 | tr '\n' ' ') $(grep -h -m 2 -e 'ERROR:' -e 'runtime error:' $_r 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
	fi
}

for b in "$ASAN" "$DBG" "$TOP/build/host/dns_test" "$TOP/build/host/opts_test" "$TOP/build/host/nl_test"; do
	[ -x "$b" ] || { fail "$(basename "$b") is built" "missing: make host"; exit 0; }
done
for b in "$ASAN" "$TOP/build/host/dns_test" "$TOP/build/host/opts_test" "$TOP/build/host/nl_test"; do
	if [ "$(ldd "$b" | grep -c 'libasan\|libubsan')" = 2 ]; then
		pass "$(basename "$b") is linked with libasan and libubsan"
	else
		fail "$(basename "$b") is sanitized" "ldd: $(ldd "$b" | tr '\n' ' ' | cut -c1-200)"
	fi
done

# ---- 1. the canary: a report is seen when there is one -------------------
if gcc $SANFLAGS -o "$TOP/build/faults/asan_canary" "$F/asan_canary.c" 2>"$W/canary.err"; then
	for m in heap:'ERROR: AddressSanitizer: heap-buffer-overflow' ubsan:'runtime error: signed integer overflow' \
	         leak:'ERROR: LeakSanitizer: detected memory leaks'; do
		mode=${m%%:*} pat=${m#*:}
		san_env "$W/canary-$mode"
		"$TOP/build/faults/asan_canary" "$mode" >"$W/canary-$mode/out.log" 2>&1; rc=$?
		if [ $rc = 134 ] && grep -rq "$pat" "$W/canary-$mode"; then
			pass "canary: a $mode bug is caught with these options ('$pat', exit 134)"
		else
			fail "canary: a $mode bug is caught" "rc=$rc, no '$pat' in $W/canary-$mode"
		fi
	done
	san_env "$W/canary-clean"
	"$TOP/build/faults/asan_canary" clean >"$W/canary-clean/out.log" 2>&1; rc=$?
	if [ $rc = 0 ] && [ -z "$(reports "$W/canary-clean" "$W/canary-clean")" ]; then
		pass "canary: no bug, no report, exit 0"
	else
		fail "canary: clean run" "rc=$rc"
	fi
else
	fail "canary builds" "$(head -n 3 "$W/canary.err" | tr '\n' ' ')"
fi

# ---- 2. unit tests, the lab suite and the fault scenarios, sanitized ------
san_env "$W/units"
"$TOP/build/host/dns_test" >"$W/units/dns_test.log" 2>&1; r1=$?
"$TOP/build/host/opts_test" >"$W/units/opts_test.log" 2>&1; r2=$?
if [ $r1 = 0 ] && [ $r2 = 0 ]; then
	pass "unit tests under ASan+UBSan: $(tail -n 1 "$W/units/dns_test.log"); $(tail -n 1 "$W/units/opts_test.log")"
else
	fail "unit tests under ASan+UBSan" "dns_test rc=$r1, opts_test rc=$r2"
fi
clean "unit tests" "$W/units" "$W/units"

san_env "$W/nl"
: >"$W/nl.results"
GROUP=nl-asan OUT="$W/nl" RESULTS="$W/nl.results" sh "$TOP/tests/t_nl.sh" >"$W/nl.out" 2>&1
subrun nl nl "$W/nl.results"
if [ -z "$SUB_WHY" ]; then pass "t_nl.sh with nl_test under ASan+UBSan: $SUB_SUMMARY"; else fail "t_nl.sh under ASan+UBSan" "$SUB_WHY"; fi
clean "t_nl.sh (nl_test against the kernel) under ASan+UBSan" "$W/nl" "$W/nl" "$W/nl.out"

san_env "$W/e2e"
t0=$(now_ms)
# (its results go to a file of its own, held to tests/checks.txt here:
# a PASS below means every e2e check ran with the sanitized build and
# passed). test.sh gives it the e2e group's own results file and folder
# (SAN_E2E_RESULTS, SAN_E2E_OUT): the suite runs e2e once, here, and
# holds those results to e2e's counts as the e2e group.
if [ -n "${SAN_E2E_RESULTS:-}" ]; then
	ER=$SAN_E2E_RESULTS EO=${SAN_E2E_OUT:?SAN_E2E_OUT with SAN_E2E_RESULTS} EG=e2e
else
	ER=$W/e2e.results EO=$W/e2e EG=e2e-asan
	: >"$ER"
fi
mkdir -p "$EO"
BIN=$ASAN GROUP=$EG OUT="$EO" RESULTS="$ER" sh "$TOP/tests/t_e2e.sh" >"$W/e2e.out" 2>&1
took=$((($(now_ms) - t0) / 1000))
ran=$(cat "$EO"/*.log 2>/dev/null | grep -c 'event=start')
subrun e2e e2e "$ER"
if [ -z "$SUB_WHY" ] && [ "$ran" -ge 10 ] && ! grep -q ' -- filtered by ' "$ER"; then
	pass "t_e2e.sh with BIN=the ASan+UBSan build: $SUB_SUMMARY, every check ran, $ran tester runs, $took s"
else
	fail "t_e2e.sh with the ASan build: every check ran and passed" "$SUB_WHY tester_runs=$ran $(grep ' -- filtered by ' "$ER" | head -n 1)"
fi
clean "t_e2e.sh under ASan+UBSan" "$W/e2e" "$W/e2e" "$EO" "$W/e2e.out"

san_env "$W/faults"
# (five scenarios on purpose: the others are left out by FAULTS_ONLY,
# each a SKIP in its own results file, and named in the line below)
: >"$W/faults.results"
BIN=$ASAN DBG=$ASAN FAULTS_ONLY="hostile metrics eperm enobufs clock" GROUP=faults-asan OUT="$W/faults" RESULTS="$W/faults.results" \
	sh "$TOP/tests/t_faults.sh" >"$W/faults.out" 2>&1
subrun faults faults "$W/faults.results"
for sc in hostile metrics eperm enobufs clock; do
	grep -q "^SKIP [^:]*: $sc -- filtered by" "$W/faults.results" && SUB_WHY="$SUB_WHY $sc was left out;"
done
if [ -z "$SUB_WHY" ]; then
	pass "t_faults.sh (hostile DNS and metrics, EPERM, ENOBUFS, clock steps) with the ASan build: $SUB_SUMMARY"
else
	fail "t_faults.sh (hostile, metrics, eperm, enobufs, clock) with the ASan build: every check ran and passed" "$SUB_WHY"
fi
clean "t_faults.sh (hostile DNS and metrics, EPERM, ENOBUFS, clock steps) under ASan+UBSan" \
	"$W/faults" "$W/faults" "$W/faults.out"

# ---- 3. scan --fix and --heal in JSON, sanitized, with the safety diff ----
san_env "$W/scan"
(
	lab_up || { fail "scan: lab_up"; exit 0; }
	lab_decoys 1200 || { fail "scan: lab_decoys"; exit 0; }
	# a blackholed client of our own too: a fixed-port client in a window
	lab_rules window
	lab_client 40777 4 3 0.1 0.2 >/dev/null 2>&1
	lab_client 40778 6 3 0.1 0.2 >/dev/null 2>&1
	lab_rules full
	S="scan -d $VIP4 -d [$VIP6]"
	lab_node "$ASAN" $S >"$W/scan/list.log" 2>&1; rc1=$?
	lab_node "$ASAN" $S --filter user --log-format json >"$W/scan/user.json" 2>&1; rc2=$?
	n1=$(grep -c 'event=blackholed' "$W/scan/list.log")
	n2=$(grep -c '"event":"blackholed"' "$W/scan/user.json")
	lab_ct -L 2>/dev/null | _lab_canon | sort >"$W/scan/before"
	lab_node "$ASAN" $S --fix >"$W/scan/fix.log" 2>&1; rc3=$?
	lab_ct -L 2>/dev/null | _lab_canon | sort >"$W/scan/after"
	comm -23 "$W/scan/before" "$W/scan/after" >"$W/scan/gone"
	comm -13 "$W/scan/before" "$W/scan/after" >"$W/scan/new"
	grep 'event=scan_deleted' "$W/scan/fix.log" | sed 's/.* entry="\([^"]*\)".*/\1/' | _lab_canon | sort >"$W/scan/deleted"
	# what must go: the decoys that are others' blackholed flows to the
	# VIPs, and our two clients' flows; nothing else
	{ grep -E '^udp 17 src=[^ ]+ dst=(10\.0\.0\.10|fd00:96::a) sport=[0-9]+ dport=53 \[UNREPLIED\]' "$LAB_DIR/decoys.txt"
	  grep -E 'sport=4077[78] dport=53 \[UNREPLIED\]' "$W/scan/before"; } | sort >"$W/scan/expected"
	ne=$(wc -l <"$W/scan/expected")
	if [ $rc1 = 3 ] && [ $rc2 = 3 ] && [ "$n1" = "$ne" ] && [ "$n2" = "$ne" ]; then
		pass "scan (ASan): kernel and user filter, logfmt and JSON: the same $n1 blackholed entries, exit 3"
	else
		fail "scan (ASan) lists" "rc=$rc1/$rc2 listed=$n1/$n2 expected=$ne"
	fi
	if [ $rc3 = 3 ] && [ "$ne" -gt 2 ] && cmp -s "$W/scan/gone" "$W/scan/expected" &&
	   cmp -s "$W/scan/deleted" "$W/scan/expected" && [ ! -s "$W/scan/new" ]; then
		pass "safety: scan --fix (ASan) deleted exactly the $ne entries it listed (conntrack -L before/after: nothing else gone or changed)"
	else
		fail "safety: scan --fix deletes exactly what it listed" "rc=$rc3 expected=$ne gone=$(wc -l <"$W/scan/gone") deleted=$(wc -l <"$W/scan/deleted") new=$(wc -l <"$W/scan/new") (files in $W/scan)"
	fi
	# --heal, IPv6, JSON, through a window
	L=$W/scan/heal6.json
	ip netns exec "$NS_NODE" "$ASAN" -d "[$VIP6]" -t AAAA -i 100ms -w 1s --heal --log-format json >"$L" 2>&1 & p=$!
	sleep 0.5; lab_window 0.6 2 0.6; sleep 0.6
	kill -TERM $p; wait $p; rc=$?
	bad=$($PY -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    try: json.loads(l)
    except ValueError: n += 1
print(n)' "$L")
	# nothing that was in the table before it ran may be gone or changed
	lab_ct -L 2>/dev/null | _lab_canon | sort >"$W/scan/after-heal"
	comm -23 "$W/scan/after" "$W/scan/after-heal" >"$W/scan/heal6.gone"
	if [ $rc = 3 ] && [ "$bad" = 0 ] && [ "$(grep -c '"event":"healed"' "$L")" -ge 2 ] &&
	   [ "$(grep -c '"event":"recovered"' "$L")" -ge 2 ] && [ ! -s "$W/scan/heal6.gone" ]; then
		pass "--heal IPv6 JSON (ASan): $(grep -c '"event":"healed"' "$L") heals over 2 windows, recovered after each, every line valid JSON; safety: all $(wc -l <"$W/scan/after") entries there before it are still there, unchanged; exit 3"
	else
		fail "--heal IPv6 JSON (ASan)" "rc=$rc invalid_json_lines=$bad healed=$(grep -c '"event":"healed"' "$L") gone: $(head -n 2 "$W/scan/heal6.gone" | tr '\n' ' ')"
	fi
)
clean "scan --fix and --heal JSON under ASan+UBSan" "$W/scan" "$W/scan"
unset ASAN_OPTIONS UBSAN_OPTIONS

# ---- 4. valgrind memcheck on a lab run -----------------------------------
VG="valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --track-fds=yes"
V=$W/valgrind
mkdir -p "$V"
# vg_ok NAME REPORT RC WANT_RC: 0 errors, no leak, the tester's own exit status
vg_ok() {
	_e=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$2" | tail -n 1)
	_lost=$(grep -E '(definitely|indirectly|possibly) lost: [1-9]|still reachable: [1-9]' "$2" | head -n 2 | tr '\n' ' ')
	# descriptors the process opened itself and left open at exit
	_own=$(awk '/== Open / { o = $0; sub(/^==[0-9]*== /, "", o); next }
		o != "" { if ($0 !~ /inherited from parent/) print o; o = "" }' "$2" | head -n 3 | tr '\n' ';')
	if [ "$_e" = 0 ] && [ -z "$_lost" ] && [ "$3" = "$4" ] && grep -q 'in use at exit: 0 bytes\|no leaks are possible' "$2"; then
		pass "valgrind $1: ERROR SUMMARY: 0 errors, nothing in use at exit, exit $3 (the tester's own)${_own:+; left open at exit (closed by the kernel, not a leak): $_own}"
	else
		fail "valgrind $1" "errors=$_e rc=$3 (want $4; 99 = valgrind found errors) $_lost $(grep -m 3 -E 'Invalid|uninitialised|definitely' "$2" | tr '\n' ' ')"
	fi
}
(
	lab_up || { fail "valgrind: lab_up"; exit 0; }
	lab_decoys 240 || { fail "valgrind: lab_decoys"; exit 0; }
	L=$V/tester.log
	ip netns exec "$NS_NODE" $VG --log-file="$V/tester.vg" "$DBG" -d "$VIP4" -i 100ms -w 500ms --heal -v \
		--metrics-addr 127.0.0.1:9797 >"$L" 2>&1 & p=$!
	i=0; until grep -q event=start "$L" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 0.5
	lab_window 0.6 2 0.6
	ip netns exec "$NS_NODE" $PY "$F/http_hostile.py" 127.0.0.1 9797 1 >"$V/http.txt" 2>&1; hrc=$?
	sleep 0.5
	kill -TERM $p; wait $p; rc=$?
	if [ "$($LC count "$L" blackhole)" -ge 1 ] && [ "$($LC count "$L" healed)" -ge 1 ] &&
	   [ "$($LC count "$L" recovered)" -ge 1 ] && [ $hrc = 0 ] && grep -q 'event=stop.*reason=SIGTERM' "$L"; then
		pass "valgrind run: 2 windows, $($LC count "$L" healed) heals, recovered, $(grep -c . "$V/http.txt") metrics requests (hostile ones too) answered right, $(sv "$L" sent) queries"
	else
		fail "valgrind run: events" "blackholes=$($LC count "$L" blackhole) healed=$($LC count "$L" healed) http=$(tail -n 1 "$V/http.txt") rc=$rc"
	fi
	vg_ok "tester (--heal, 2 windows, metrics scrapes and hostile clients, SIGTERM)" "$V/tester.vg" $rc 3
	ip netns exec "$NS_NODE" $VG --log-file="$V/scan.vg" "$DBG" scan -d "$VIP4" -d "[$VIP6]" --fix >"$V/scan.log" 2>&1; rc=$?
	vg_ok "scan --fix ($(grep -c event=scan_deleted "$V/scan.log") entries deleted)" "$V/scan.vg" $rc 3
	lab_node capsh --drop=cap_net_admin -- -c "exec $VG --log-file='$V/nocap.vg' '$DBG' -d $VIP4 -c 3 -i 100ms -w 500ms" >"$V/nocap.log" 2>&1; rc=$?
	vg_ok "tester without CAP_NET_ADMIN (-c 3)" "$V/nocap.vg" $rc 0
	lab_dns_stop
	rm -f "$V/hostile.ready"
	ip netns exec "$NS_POD" $PY "$F/hostile_dns.py" --bind "$POD4" --bind "$POD6" --mode flood \
		--log "$V/flood.srv" --ready "$V/hostile.ready" & h=$!
	i=0; while [ ! -e "$V/hostile.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	ip netns exec "$NS_NODE" $VG --log-file="$V/flood.vg" "$DBG" -d "[$VIP6]" -t AAAA -c 10 -i 100ms -w 500ms >"$V/flood.log" 2>&1; rc=$?
	kill $h; wait $h 2>/dev/null
	vg_ok "tester against a flood of bad replies (IPv6, $(sv "$V/flood.log" unexpected) ignored, $(sv "$V/flood.log" answered) answered)" "$V/flood.vg" $rc 0
)
