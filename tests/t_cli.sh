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

# bad WHAT NAMES ARGS...: exit 2, exactly one line on stderr naming the
# problem - it must contain NAMES, the option or value refused (any usage
# error would do otherwise) -, nothing on stdout, and no socket ever
# created (strace is the witness).
bad() {
	what=$1 names=$2; shift 2
	strace -f -qq -e trace=socket -o "$OUT/cli.strace" "$BIN" "$@" >"$OUT/cli.out" 2>"$OUT/cli.err"
	rc=$?
	lines=$(wc -l <"$OUT/cli.err")
	sockets=$(grep -c 'socket(' "$OUT/cli.strace")
	if [ "$rc" = 2 ] && [ "$lines" = 1 ] && [ ! -s "$OUT/cli.out" ] && [ "$sockets" = 0 ] &&
	   grep -q "^dns-blackhole-tester: " "$OUT/cli.err" && grep -q -F -e "$names" "$OUT/cli.err"; then
		pass "refuses $what: $(cat "$OUT/cli.err")"
	else
		fail "refuses $what" "rc=$rc stderr_lines=$lines sockets=$sockets (want a line naming '$names') stderr=$(head -c 200 "$OUT/cli.err")"
	fi
}
l64=$(printf 'a%.0s' $(seq 64))
l63=$(printf 'a%.0s' $(seq 63))
n254="$l63.$l63.$l63.$(printf 'b%.0s' $(seq 62))"       # 63*3+62+3 = 254
bad "an unparsable server" "--server 'not-an-ip'" -d not-an-ip
bad "a server port out of range" "'10.0.0.10:65536': bad port" -d 10.0.0.10:65536
bad "server port 0" "'10.0.0.10:0': bad port" -d 10.0.0.10:0
bad "an IPv6 server without closing bracket" "'[fd00::a:53': missing ']'" -d '[fd00::a:53'
bad "a zero interval" "--interval '0'" -d 10.0.0.10 -i 0
bad "a negative interval" "--interval '-1s'" -d 10.0.0.10 -i -1s
bad "an interval with an unknown unit" "--interval '5parsecs'" -d 10.0.0.10 -i 5parsecs
bad "a zero timeout" "--timeout '0ms'" -d 10.0.0.10 -w 0ms
bad "a label over 63 bytes" "label longer than 63" -d 10.0.0.10 -n "$l64.example"
bad "a name over 253 bytes" "name longer than 253" -d 10.0.0.10 -n "$n254"
bad "an empty label" "'a..b': empty label" -d 10.0.0.10 -n "a..b"
bad "an unknown option" "--frobnicate" -d 10.0.0.10 --frobnicate
bad "an unknown short option" "-Z" -d 10.0.0.10 -Z
bad "a missing option value" "'-d' needs a value" -d
bad "a missing long option value" "'--log-format' needs a value" --log-format
bad "a zero count" "--count '0'" -d 10.0.0.10 -c 0
bad "a negative count" "--count '-5'" -d 10.0.0.10 -c -5
bad "an unknown type" "--type 'NOPE'" -d 10.0.0.10 -t NOPE
bad "type 0" "--type '0'" -d 10.0.0.10 -t 0
bad "an unknown log format" "--log-format 'xml'" -d 10.0.0.10 --log-format xml
bad "--monitor with --heal" "--monitor and --heal" -d 10.0.0.10 --monitor --heal
bad "a stray argument" "'extra'" -d 10.0.0.10 extra
bad "a source of another family" "--source 'fd00::8' is not of the server's address family" -d 10.0.0.10 -s fd00::8
bad "an unparsable source" "--source '10.0.0.x'" -d 10.0.0.10 -s 10.0.0.x

# The longest legal name is accepted: 63-byte labels, 253 bytes in all.
n253="$l63.$l63.$l63.$(printf 'b%.0s' $(seq 61))"
ns=dbtcli$$
ip netns add $ns || { fail "namespace for CLI runs"; exit 0; }
trap 'ip netns del $ns 2>/dev/null' EXIT INT TERM
ip -n $ns link set lo up
# A peer on the same veth pair inside the namespace gives 10.0.0.10 a route.
ip -n $ns link add v0 type veth peer name v1
ip -n $ns addr add 10.0.0.1/8 dev v0; ip -n $ns link set v0 up; ip -n $ns link set v1 up
# Accepted means a query on the wire: strace sees the kernel take all
# 271 bytes (12 header + 255 name + 4), and the one query ends in a
# timeout, not in a send error (a failed encode would be send_failed).
ip netns exec $ns strace -f -qq -e trace=sendto,sendmsg -e signal=none -o "$OUT/cli-long.strace" \
	"$BIN" -d 10.0.0.10 -n "$n253" -c 1 -w 50ms --no-conntrack >"$OUT/cli-long.log" 2>&1
rc=$?
st=$(grep 'event=stats' "$OUT/cli-long.log")
if grep -q "event=start" "$OUT/cli-long.log" && [ "$rc" = 1 ] && grep -Eq '^[0-9]+ +send(to|msg)\(.* = 271$' "$OUT/cli-long.strace" &&
   [ "$(count_events "$OUT/cli-long.log" timeout)" = 1 ] && [ "$(count_events "$OUT/cli-long.log" send_failed)" = 0 ] &&
   echo "$st" | grep -q ' sent=1 answered=0 timeouts=1 refused=0 send_errors=0 '; then
	pass "a 253-byte name with 63-byte labels is accepted: a 271-byte query sent, one timeout, send_errors=0, exit 1"
else
	fail "a 253-byte name is accepted" "rc=$rc sends: $(grep -o '= -*[0-9]*$' "$OUT/cli-long.strace" | tr '\n' ' ') $(grep -v event=start "$OUT/cli-long.log" | head -c 300)"
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
	"--serve 10.0.0.10 --na example.org --ty AAAA --int 20ms --time 30ms --cou 2 --verb --no-conn --"; do
	i=$((i + 1))
	# shellcheck disable=SC2086  # (split on purpose)
	ip netns exec $ns "$BIN" $spelling >"$OUT/cli-spell$i.log" 2>&1
	got=$(grep -m1 'event=start' "$OUT/cli-spell$i.log" | tr ' ' '\n' |
		grep -E '^(server|name|type|interval|timeout|mode|count)=' | tr '\n' ' ' | sed 's/ $//')
	expect_eq "options spelled '$spelling' parse alike" "$got" "$want"
done
bad "an ambiguous long prefix (--ver: --verbose or --version)" "'--ver'" -d 10.0.0.10 --ver
bad "a value given to a flag" "option '--monitor' takes no value" -d 10.0.0.10 --monitor=yes

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

# logfmt: every line of every logfmt run above starts ts=<RFC 3339 ms Z>
# level=... event=...; each log must hold lines (grep -v on an empty or
# missing file finds nothing wrong).
shape='^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(debug|info|warn|error) event=[a-z_]+( |$)'
badlogs= nlines=0
for f in cli-long cli-resolv cli-spell1 cli-spell2 cli-spell3 cli-spell4; do
	n=$(grep -c . "$OUT/$f.log" 2>/dev/null)
	if ! num "$n" || [ "$n" -lt 3 ]; then
		badlogs="$badlogs $f.log: ${n:-missing} lines;"
	elif grep -qvE "$shape" "$OUT/$f.log"; then
		badlogs="$badlogs $f.log: $(grep -vE "$shape" "$OUT/$f.log" | head -n 1 | cut -c1-120);"
	fi
	nlines=$((nlines + ${n:-0}))
done
if [ -z "$badlogs" ]; then
	pass "logfmt: all $nlines lines of 6 runs begin ts=RFC3339 level= event="
else
	fail "logfmt line shape" "$badlogs"
fi

# Under 1 ms the loop would spin: refused (named in the message), exit 2.
bad "an interval under 1 ms (100us)" "--interval '100us': must be at least 1ms" -d 10.0.0.10 -i 100us
bad "a timeout under 1 ms (999us)" "--timeout '999us': must be at least 1ms" -d 10.0.0.10 -w 999us

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
