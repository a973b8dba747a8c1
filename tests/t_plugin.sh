#!/bin/sh
# t_plugin.sh - scripts/kubectl-dns_blackhole (kubectl dns-blackhole scan)
# offline: a fake kubectl on PATH answers the API calls from canned data,
# and runs `kubectl exec` / `kubectl debug node/...` as the REAL binary's
# scan inside a lab node's namespace, so the table is real scan output.
#
#   sudo ./test.sh plugin
#
# Nodes: node-bh (lab A: 3 clients really stuck on stale entries to the
# VIP, both families), node-ok and node-fail (lab B: healthy; node-fail's
# exec fails unless FAKE_FAIL is empty), node-nopod (no tester pod: kubectl
# debug, run in lab B). Oracle for "blackholed": conntrack -L in lab A.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
P=$TOP/scripts/kubectl-dns_blackhole
W=$TOP/build/plugin
NC="$LAB_PY $TOP/tests/node_clients.py"
rm -rf "$W"; mkdir -p "$W/bin"

# ---- the fake kubectl --------------------------------------------------------
cat >"$W/bin/kubectl" <<'FAKE'
#!/bin/sh
# fake kubectl for tests/t_plugin.sh: records "$*"; canned answers; exec and
# debug run the real binary's scan in the lab namespace mapped to the pod/node.
d=$FAKE_DIR
echo "$*" >>"$d/calls"
run() {   # NETNS ARGS (after the image's /dns-blackhole-tester)
	n=$1; shift
	[ "$1" = /dns-blackhole-tester ] || { echo "fake: not the image's binary: $1" >&2; exit 126; }
	shift
	ip netns exec "$n" "$FAKE_BIN" "$@"
}
case "$1 $2" in
"get pods") printf 'node-bh pod-a Running\nnode-ok pod-b Running\nnode-fail pod-c Running\n'; exit 0 ;;
"get nodes") printf 'node-bh\nnode-ok\nnode-fail\nnode-nopod\n'; exit 0 ;;
"get service") printf '10.0.0.10 fd00:96::a'; exit 0 ;;
"get daemonset") printf 'registry.example.invalid/dns-blackhole-tester:v0.1.0'; exit 0 ;;
"delete pod") exit 0 ;;
esac
if [ "$1" = exec ]; then
	pod=$4
	while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done; shift
	case $pod in pod-a) n=$FAKE_NS_A ;; pod-b) n=$FAKE_NS_B ;; pod-c) n=$FAKE_NS_B
		[ -n "${FAKE_FAIL:-}" ] && { echo 'error: unable to upgrade connection: container not found ("tester")' >&2; exit 1; } ;;
	*) echo "Error from server (NotFound): pods \"$pod\" not found" >&2; exit 1 ;; esac
	run "$n" "$@"; rc=$?
	[ $rc = 0 ] || echo "command terminated with exit code $rc" >&2
	exit $rc
fi
if [ "$1" = debug ]; then
	node=${2#node/} custom= prof= att= quiet=
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case $1 in --custom) custom=$2 ;; --profile=sysadmin) prof=1 ;; --attach) att=1 ;; --quiet) quiet=1 ;; esac
		shift
	done; shift
	[ -n "$prof" ] && [ -n "$att" ] && [ -s "$custom" ] || { echo "fake: debug without --profile=sysadmin, --attach or --custom" >&2; exit 1; }
	cp "$custom" "$d/custom.seen"
	case $node in node-bh) n=$FAKE_NS_A ;; *) n=$FAKE_NS_B ;; esac
	# (as kubectl does: not with --quiet)
	[ -n "$quiet" ] || echo "Creating debugging pod node-debugger-$node-x7k2p with container debugger on node $node." >&2
	run "$n" "$@"
	exit $?
fi
echo "fake kubectl: unexpected: $*" >&2
exit 1
FAKE
chmod +x "$W/bin/kubectl"
export FAKE_DIR=$W FAKE_BIN=$BIN
calls() { if [ -s "$W/calls" ]; then wc -l <"$W/calls" | tr -d ' '; else echo 0; fi; }
# plug ARGS...: the plugin with the fake kubectl; stdout $W/o, stderr $W/e, RC
plug() { : >"$W/calls"; PATH=$W/bin:$PATH sh "$P" "$@" >"$W/o" 2>"$W/e"; RC=$?; }
# row NODE: the table's row for NODE, fields by blanks (the last column is free text)
row() { awk -v n="$1" 'f && $1 == n { print; exit } /^NODE +VIA +RESULT/ { f = 1 }' "$W/o"; }
col() { row "$1" | awk -v c="$2" '{ print $c }'; }

# ---- bad input: exit 2, one message, no kubectl call -----------------------
scenario refuse
for a in "" "frobnicate" "scan --via ssh" "scan -n Bad_NS" "scan --image" "scan --bogus" \
         "scan -- --log-format json" "scan -- --fix"; do
	# shellcheck disable=SC2086
	plug $a
	if [ $RC = 2 ] && [ "$(calls)" = 0 ] && grep -q "^kubectl-dns_blackhole: " "$W/e" && grep -q '^usage: ' "$W/e"; then
		pass "refuses '$a': exit 2, $(head -n 1 "$W/e")"
	else
		fail "refuses '$a'" "exit $RC, $(calls) kubectl calls, stderr: $(head -n 1 "$W/e")"
	fi
done

plug scan --help
if [ $RC = 0 ] && [ "$(calls)" = 0 ] && grep -q '^ *kubectl dns-blackhole scan \[--fix\]' "$W/o" && grep -q '^Exit: 3 ' "$W/o" && [ ! -s "$W/e" ]; then
	pass "scan --help: the header (usage to exit status) on stdout, exit 0, no kubectl call"
else
	fail "scan --help" "exit $RC, $(calls) kubectl calls, $(wc -l <"$W/o") lines, stderr: $(head -n 1 "$W/e")"
fi

# ---- two labs: A with a real blackhole, B healthy ----------------------------
scenario cluster
# Lab B lives in a subshell of its own (one lab per shell) until $W/b.stop
# appears (or 300 s pass), and names its node namespace in $W/b.ns.
(
	lab_up --mode nftables || exit 1
	echo "$NS_NODE" >"$W/b.ns"
	i=0; while [ ! -e "$W/b.stop" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
	lab_down
) >"$W/b.out" 2>&1 &
BPID=$!
stop_b() { touch "$W/b.stop"; wait "$BPID"; }
lab_up --mode iptables || { fail "cluster: lab_up (A)"; stop_b; exit 0; }
trap 'lab_down; stop_b' EXIT
i=0; while [ ! -s "$W/b.ns" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$W/b.ns" ] || { fail "cluster: lab_up (B)" "$(tail -n 2 "$W/b.out")"; exit 0; }
export FAKE_NS_A=$NS_NODE FAKE_NS_B
FAKE_NS_B=$(cat "$W/b.ns")
# 3 clients (2 IPv4, 1 IPv6) start querying during a window and keep
# their sockets: stuck once the rules are back, as in the bug.
lab_rules window
lab_node $NC --bind "$NODE4" --ports 22000-22001 --server "$VIP4" --interval 0.5 --duration 120 --ready "$W/r4" >/dev/null 2>&1 &
lab_node $NC --bind "$NODE6" --ports 22002-22002 --server "$VIP6" --qtype AAAA --interval 0.5 --duration 120 --ready "$W/r6" >/dev/null 2>&1 &
i=0; while { [ ! -e "$W/r4" ] || [ ! -e "$W/r6" ]; } && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
[ -e "$W/r4" ] && [ -e "$W/r6" ] || fail "cluster: the 3 clients did not start within 20 s"
sleep 0.3
lab_rules full
sleep 1
# oracle: entries to a VIP:53, not DNAT'd (the reply comes from the VIP), never replied
oracle() { lab_ct -L 2>/dev/null | grep -Ec "dport=53 \[UNREPLIED\] src=($VIP4|$VIP6) "; }
o1=$(oracle)

export FAKE_FAIL=1
plug scan
cp "$W/o" "$W/scan1.out"
expect_eq "scan: exit 3 (a blackhole proven on a node)" "$RC" 3
expect_eq "scan: node-bh via exec, BLACKHOLED, as many as conntrack -L shows stuck ($o1), none deleted" \
	"$(col node-bh 2) $(col node-bh 3) $(col node-bh 4) $(col node-bh 7)" "exec BLACKHOLED $o1 0"
check "scan: 3 stuck, by the oracle" test "$o1" = 3
expect_eq "scan: node-ok via exec, OK, 0 blackholed" "$(col node-ok 2) $(col node-ok 3) $(col node-ok 4)" "exec OK 0"
check "scan: node-fail's exec failure is FAILED with kubectl's error" \
	sh -c 'echo "$1" | grep -q "^node-fail  *exec  *FAILED .*rc=1: error: unable to upgrade connection: container not found"' - "$(row node-fail)"
expect_eq "scan: node-nopod (no tester pod) via debug, OK" "$(col node-nopod 2) $(col node-nopod 3) $(col node-nopod 4)" "debug OK 0"
check "scan: exec runs the image's binary, no shell, with kube-dns's cluster IPs as -d" \
	grep -qx 'exec -n dns-blackhole-tester pod-a -c tester -- /dns-blackhole-tester scan -d 10.0.0.10 -d \[fd00:96::a\]' "$W/calls"
check "scan: debug node/node-nopod: the DaemonSet's image, sysadmin profile, uid 0 (--custom), attached; its pod deleted" \
	sh -c 'grep -q "^debug node/node-nopod -n dns-blackhole-tester --image registry.example.invalid/dns-blackhole-tester:v0.1.0 --profile=sysadmin --custom [^ ]* --attach -- /dns-blackhole-tester scan -d 10.0.0.10 -d \[fd00:96::a\]$" "$1/calls" &&
	       grep -q "\"runAsUser\": 0" "$1/custom.seen" &&
	       grep -qx "delete pod -n dns-blackhole-tester node-debugger-node-nopod-x7k2p --wait=false" "$1/calls"' - "$W"
expect_eq "scan: each blackholed entry printed with its node, then the table and a summary line" \
	"$(grep -c '^node-bh: .*event=blackholed ' "$W/o") $(tail -n 1 "$W/o")" "$o1 4 nodes: 1 with blackholed clients, 1 failed"
expect_eq "scan without --fix deletes nothing: conntrack -L still shows them" "$(oracle)" "$o1"

plug scan --fix
o2=$(oracle)
expect_eq "scan --fix: exit 3, node-bh DELETED $o1, and conntrack -L shows none stuck now" \
	"$RC $(col node-bh 3) $(col node-bh 7) $o2" "3 BLACKHOLED $o1 0"
FAKE_FAIL=
plug scan
expect_eq "after the fix, every node OK: exit 0" "$RC $(awk '/^NODE +VIA/ { f = 1; next } f && /^node-/ { print $3 }' "$W/o" | sort | uniq -c | tr -s ' ')" "0  4 OK"
plug scan --via exec
expect_eq "--via exec: node-nopod FAILED (no pod), no debug pod made, exit 1" \
	"$RC $(col node-nopod 3) $(grep -c '^debug' "$W/calls")" "1 FAILED 0"
plug scan --via debug
expect_eq "--via debug: a debug pod on each of the 4 nodes, each deleted, no exec, exit 0" \
	"$RC $(grep -c '^debug node/' "$W/calls") $(grep -c '^delete pod .*node-debugger-' "$W/calls") $(grep -c '^exec' "$W/calls")" "0 4 4 0"
exit 0
