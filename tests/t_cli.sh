#!/bin/sh
# t_cli.sh - the command line: help, version, and every bad value gives
# one clear line on stderr and exit 2 before any socket is opened.
. "$(dirname "$0")/lib.sh"

check "option unit tests (parse_duration, parse_addr)" "$TOP/build/host/opts_test"

"$BIN" --help >"$OUT/help.txt" 2>&1; rc=$?
expect_eq "--help exits 0" "$rc" 0
missing=
for o in --server --name --type --interval --timeout --source --count --monitor \
         --heal --no-conntrack --log-format --verbose --version --help; do
	grep -q -- "$o" "$OUT/help.txt" || missing="$missing $o"
done
expect_eq "--help documents every option" "$missing" ""
out=$("$BIN" -V); expect_eq "-V prints name and version" "${out%% *}" "dns-blackhole-tester"

# bad ARGS...: exit 2, exactly one line on stderr naming the problem,
# nothing on stdout, and no socket ever created (strace is the witness).
bad() {
	what=$1; shift
	strace -f -qq -e trace=socket -o "$OUT/cli.strace" "$BIN" "$@" >"$OUT/cli.out" 2>"$OUT/cli.err"
	rc=$?
	lines=$(wc -l <"$OUT/cli.err")
	sockets=$(grep -c 'socket(' "$OUT/cli.strace")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$OUT/cli.out" ] && [ "$sockets" = 0 ] &&
	   grep -q "^dns-blackhole-tester: " "$OUT/cli.err"; then
		pass "refuses $what: $(cat "$OUT/cli.err")"
	else
		fail "refuses $what" "rc=$rc stderr_lines=$lines sockets=$sockets stderr=$(head -c 200 "$OUT/cli.err")"
	fi
}
l64=$(printf 'a%.0s' $(seq 64))
l63=$(printf 'a%.0s' $(seq 63))
n254="$l63.$l63.$l63.$(printf 'b%.0s' $(seq 62))"       # 63*3+62+3 = 254
bad "an unparsable server" -d not-an-ip
bad "a server port out of range" -d 10.0.0.10:65536
bad "server port 0" -d 10.0.0.10:0
bad "an IPv6 server without closing bracket" -d '[fd00::a:53'
bad "a zero interval" -d 10.0.0.10 -i 0
bad "a negative interval" -d 10.0.0.10 -i -1s
bad "an interval with an unknown unit" -d 10.0.0.10 -i 5parsecs
bad "a zero timeout" -d 10.0.0.10 -w 0ms
bad "a label over 63 bytes" -d 10.0.0.10 -n "$l64.example"
bad "a name over 253 bytes" -d 10.0.0.10 -n "$n254"
bad "an empty label" -d 10.0.0.10 -n "a..b"
bad "an unknown option" -d 10.0.0.10 --frobnicate
bad "an unknown short option" -d 10.0.0.10 -Z
bad "a missing option value" -d
bad "a missing long option value" --log-format
grep -q null "$OUT/cli.err" && fail "error names the option" "$(cat "$OUT/cli.err")"
bad "a zero count" -d 10.0.0.10 -c 0
bad "a negative count" -d 10.0.0.10 -c -5
bad "an unknown type" -d 10.0.0.10 -t NOPE
bad "type 0" -d 10.0.0.10 -t 0
bad "an unknown log format" -d 10.0.0.10 --log-format xml
bad "--monitor with --heal" -d 10.0.0.10 --monitor --heal
bad "a stray argument" -d 10.0.0.10 extra
bad "a source of another family" -d 10.0.0.10 -s fd00::8
bad "an unparsable source" -d 10.0.0.10 -s 10.0.0.x

# The longest legal name is accepted: 63-byte labels, 253 bytes in all.
n253="$l63.$l63.$l63.$(printf 'b%.0s' $(seq 61))"
ns=dbtcli$$
ip netns add $ns || { fail "namespace for CLI runs"; exit 0; }
trap 'ip netns del $ns 2>/dev/null' EXIT INT TERM
ip -n $ns link set lo up
# A peer on the same veth pair inside the namespace gives 10.0.0.10 a route.
ip -n $ns link add v0 type veth peer name v1
ip -n $ns addr add 10.0.0.1/8 dev v0; ip -n $ns link set v0 up; ip -n $ns link set v1 up
ip netns exec $ns "$BIN" -d 10.0.0.10 -n "$n253" -c 1 -w 50ms --no-conntrack >"$OUT/cli-long.log" 2>&1
rc=$?
if grep -q "event=start" "$OUT/cli-long.log" && [ "$rc" = 1 ]; then
	pass "a 253-byte name with 63-byte labels is accepted (query sent, exit 1 on timeout)"
else
	fail "a 253-byte name is accepted" "rc=$rc $(head -c 300 "$OUT/cli-long.log")"
fi

# Default server: the first nameserver of resolv.conf, read in a private
# mount namespace so the host's file is never touched.
printf '# comment\nsearch svc.cluster.local\nnameserver 10.0.0.10\nnameserver 10.0.0.11\n' >"$OUT/resolv.conf"
ip netns exec $ns unshare -m sh -c "mount --bind '$OUT/resolv.conf' /etc/resolv.conf &&
	'$BIN' -c 1 -w 50ms --no-conntrack" >"$OUT/cli-resolv.log" 2>&1
expect_eq "server defaults to resolv.conf's first nameserver" "$(field "$OUT/cli-resolv.log" start server)" "10.0.0.10:53"
printf 'search x\n' >"$OUT/resolv-empty.conf"
ip netns exec $ns unshare -m sh -c "mount --bind '$OUT/resolv-empty.conf' /etc/resolv.conf &&
	'$BIN' -c 1" >"$OUT/cli-noresolv.log" 2>&1
rc=$?
if [ $rc = 2 ] && grep -q "no nameserver found in /etc/resolv.conf" "$OUT/cli-noresolv.log"; then
	pass "no nameserver and no --server: exit 2 with a clear line"
else
	fail "no nameserver and no --server" "rc=$rc $(cat "$OUT/cli-noresolv.log")"
fi

# Every spelling of the options reads the same: separate values, --opt=value,
# attached short values and bundles, unique long prefixes. The start line
# says what was parsed.
want="server=10.0.0.10:53 name=example.org type=AAAA interval=20ms timeout=30ms mode=no-conntrack count=2"
i=0
for spelling in \
	"-d 10.0.0.10 -n example.org -t AAAA -i 20ms -w 30ms -c 2 -v --no-conntrack" \
	"--server=10.0.0.10 --name=example.org --type=AAAA --interval=20ms --timeout=30ms --count=2 --verbose --no-conntrack" \
	"-d10.0.0.10 -nexample.org -tAAAA -i20ms -w30ms -vc2 --no-conntrack" \
	"--serve 10.0.0.10 --na example.org --ty AAAA --int 20ms --time 30ms --cou 2 --verb --no --"; do
	i=$((i + 1))
	# shellcheck disable=SC2086  # (split on purpose)
	ip netns exec $ns "$BIN" $spelling >"$OUT/cli-spell$i.log" 2>&1
	got=$(grep -m1 'event=start' "$OUT/cli-spell$i.log" | tr ' ' '\n' |
		grep -E '^(server|name|type|interval|timeout|mode|count)=' | tr '\n' ' ' | sed 's/ $//')
	expect_eq "options spelled '$spelling' parse alike" "$got" "$want"
done
bad "an ambiguous long prefix (--ver: --verbose or --version)" -d 10.0.0.10 --ver
bad "a value given to a flag" -d 10.0.0.10 --monitor=yes

# JSON logs: every line is one JSON object with ts, level, event.
ip netns exec $ns "$BIN" -d 10.0.0.10 -c 2 -i 20ms -w 20ms --no-conntrack --log-format json >"$OUT/cli-json.log" 2>&1
if python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 4, lines
for l in lines:
    o = json.loads(l)
    assert {"ts", "level", "event"} <= set(o), o
    assert o["ts"].endswith("Z") and len(o["ts"]) == 24, o["ts"]
assert [json.loads(l)["event"] for l in lines][0] == "start"
assert sum(json.loads(l)["event"] == "timeout" for l in lines) == 2
assert all(json.loads(l)["level"] == "error" for l in lines if json.loads(l)["event"] == "timeout")
' "$OUT/cli-json.log" 2>"$OUT/cli-json.err"; then
	pass "--log-format json: one valid object per line, timeouts are level=error"
else
	fail "--log-format json" "$(tail -n 2 "$OUT/cli-json.err")"
fi

# logfmt: every line starts ts=<RFC 3339 ms Z> level=... event=...
if grep -qvE '^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(debug|info|warn|error) event=[a-z_]+( |$)' "$OUT/cli-long.log"; then
	fail "logfmt line shape" "$(grep -vE '^ts=' "$OUT/cli-long.log" | head -n 2)"
else
	pass "logfmt lines begin ts=RFC3339 level= event="
fi

# Under 1 ms the loop would spin: refused (named in the message), exit 2.
bad "an interval under 1 ms (100us)" -d 10.0.0.10 -i 100us
grep -q -- "--interval '100us': must be at least 1ms" "$OUT/cli.err" || fail "the sub-ms refusal names --interval" "$(cat "$OUT/cli.err")"
bad "a timeout under 1 ms (999us)" -d 10.0.0.10 -w 999us
grep -q -- "--timeout '999us': must be at least 1ms" "$OUT/cli.err" || fail "the sub-ms refusal names --timeout" "$(cat "$OUT/cli.err")"

# A line too long for its buffer (a 5,000-byte NODE_NAME on the start
# line) is still one valid JSON object: the pair that does not fit is
# left out and the line says "truncated":true.
big=$(printf 'n%.0s' $(seq 5000))
ip netns exec $ns env NODE_NAME="$big" "$BIN" -d 10.0.0.10 -c 1 -w 20ms --no-conntrack --log-format json \
	>"$OUT/cli-bigjson.log" 2>&1
if python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objs = [json.loads(l) for l in lines]
start = [o for o in objs if o["event"] == "start"]
assert len(start) == 1 and start[0].get("truncated") is True and "node" not in start[0], start
assert start[0]["interval"] == "1s" and start[0]["pid"] > 0, start[0]
assert [o["event"] for o in objs][-1] == "stop", objs
' "$OUT/cli-bigjson.log" 2>"$OUT/cli-bigjson.err"; then
	pass "a line that overflows its buffer stays valid JSON and says truncated=true"
else
	fail "a line that overflows its buffer stays valid JSON" "$(tail -n 2 "$OUT/cli-bigjson.err")"
fi
