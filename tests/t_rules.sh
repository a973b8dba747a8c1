#!/bin/sh
# t_rules.sh - deploy/prometheus-rules.yaml against real /metrics output.
#
#   sudo ./test.sh rules
#
#  check     promtool check rules on the rules file; deploy/prometheusrule.yaml
#            (prometheus-operator) holds exactly the same groups.
#  capture   four labs at once (each its own namespaces), each a node with
#            testers scraped every second (tests/rules/scrape_loop.py) through
#            a story: a restart window that leaves the tester and 5 clients
#            stuck, then scan --fix (watch); a window healed by --heal-node
#            (heal); the DNS pod dropping queries for 75 s (down); a healthy
#            tester, one killed and one stopped with SIGSTOP (dead); a stuck
#            node's tester replaced by a --heal-node one (rollout). 224 s:
#            the dead story's alert waits 3 minutes (for: 3m), the rest is
#            a few scrapes before the kill and after the SIGCONT.
#  promtool  the scrapes become promtool input_series (tests/rules/series.py:
#            up, job, instance, staleness as a scrape job stores them); the
#            alerts expected at each step are tests/rules/expect.yaml, by hand.
#            One `promtool test rules` per case, each a check.
# Nothing captured is committed: every run captures again.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
RULES=$TOP/deploy/prometheus-rules.yaml
OPRULE=$TOP/deploy/prometheusrule.yaml
SL="$LAB_PY $TOP/tests/rules/scrape_loop.py"
NC="$LAB_PY $TOP/tests/node_clients.py"
SER="$LAB_PY $TOP/tests/rules/series.py"
W=$TOP/build/rules
CAP=$W/capture
rm -rf "$W"
mkdir -p "$CAP" "$W/tests"

command -v promtool >/dev/null 2>&1 || fail "promtool on PATH" "install Debian's prometheus package (scripts/test-deps.sh does)"
$LAB_PY -c 'import yaml' 2>/dev/null || fail "python3 yaml" "install python3-yaml (scripts/test-deps.sh does)"

# ---- the rules files ------------------------------------------------------
scenario check
if promtool check rules "$RULES" >"$W/check.out" 2>&1; then
	pass "promtool check rules deploy/prometheus-rules.yaml: $(grep -o 'SUCCESS: [0-9]* rules found' "$W/check.out")"
else
	fail "promtool check rules" "$(tr '\n' ' ' <"$W/check.out" | head -c 400)"
fi
# The operator's object: its spec.groups are the plain file's groups, and
# it is a PrometheusRule in the tester's namespace.
if $LAB_PY - "$RULES" "$OPRULE" >"$W/same.out" 2>&1 <<'PY'
import sys, yaml
plain = yaml.safe_load(open(sys.argv[1]))
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
assert len(docs) == 1, "%d documents" % len(docs)
o = docs[0]
assert o["apiVersion"] == "monitoring.coreos.com/v1" and o["kind"] == "PrometheusRule", (o.get("apiVersion"), o.get("kind"))
assert o["metadata"]["namespace"] == "dns-blackhole-tester", o["metadata"]
assert set(o) == {"apiVersion", "kind", "metadata", "spec"} and set(o["spec"]) == {"groups"}, sorted(o)
assert o["spec"]["groups"] == plain["groups"], "spec.groups differ from the plain file's groups"
print("%d groups, %d rules" % (len(plain["groups"]), sum(len(g["rules"]) for g in plain["groups"])))
PY
then
	pass "deploy/prometheusrule.yaml: a PrometheusRule whose spec.groups equal the plain file's ($(cat "$W/same.out"))"
else
	fail "deploy/prometheusrule.yaml matches the plain file" "$(tail -n 2 "$W/same.out" | tr '\n' ' ')"
fi

# ---- capture ----------------------------------------------------------------
# Each story runs in a subshell with a lab of its own (lab.sh picks free
# namespace names); its actions are due at fixed seconds from T0, and
# each action that succeeded goes to NAME.phases with its real time (one
# that failed goes to NAME.err: the capture check counts both).
wait_file() { _i=0; while [ ! -e "$1" ] && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done; }
at() { _d=$((T0 + $1 * 1000 - $(now_ms))); [ $_d -gt 0 ] && sleep "$(echo "$_d" | awk '{ printf "%.3f", $1 / 1000 }')"; :; }
phase() { echo "$1 $2 $(($(now_ms) - T0))" >>"$CAP/$S.phases"; }
# act SECOND NAME CMD...: at SECOND, CMD; its phase if it succeeded
act() { _t=$1 _n=$2; shift 2; at "$_t"; if "$@"; then phase "$_t" "$_n"; else echo "$_n: exit $?" >>"$CAP/$S.err"; fi; }
scrape() { lab_node $SL --t0-ms "$T0" --period 1 --timeout 0.5 --out "$CAP/$S.jsonl" --stop-file "$CAP/$S.stop" "$@" & }
finish() { touch "$CAP/$S.stop"; sleep 1.2; }
# begin STORY MODE NODE_NAME: the story's lab, its T0 and node name
begin() {
	S=$1
	lab_up --mode "$2" || { echo "lab_up failed" >>"$CAP/$S.err"; return 1; }
	T0=$(now_ms)
	export NODE_NAME=$3
}
# stuck OPEN CLOSE SECONDS BIND SERVER [node_clients.py args]: kube-proxy's
# rules without the VIP from OPEN to CLOSE s, and 5 fixed-port clients
# started inside that window (their entries are made there) for SECONDS.
# Every client has sent before the rules come back; a slow start shows as
# a late window_closed.
stuck() {
	_o=$1 _c=$2 _d=$3 _b=$4 _v=$5; shift 5
	act "$_o" window_open lab_rules window
	lab_node $NC --bind "$_b" --ports 22000-22004 --server "$_v" --interval 0.2 --duration "$_d" \
		--ready "$CAP/$S.ready" "$@" >/dev/null 2>&1 &
	wait_file "$CAP/$S.ready"
	act "$_c" window_closed lab_rules full
}
# end SECOND: the last scrape, the (last) tester stopped, the lab gone
end() { at "$1"; finish; stop_tester; echo "tester rc=$RC" >>"$CAP/$S.phases"; lab_down; }
scan_fix() { lab_node "$BIN" scan -d "$VIP4" --fix >"$CAP/$S.scan" 2>&1; _r=$?; echo "scan rc=$_r" >>"$CAP/$S.scan"; [ $_r = 3 ]; }
drop_dns() { lab_pod nft add table inet dbt-drop '{ chain in { type filter hook input priority 0; policy accept; udp dport 53 drop; }; }'; }

story_watch() {
	begin watch iptables node-watch || return
	tester "$CAP/$S.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9797
	scrape watch=127.0.0.1:9797
	stuck 20 23 51 "$NODE4" "$VIP4"
	act 50 scan_fix scan_fix
	end 71
}
story_heal() {
	begin heal nftables node-heal || return
	tester "$CAP/$S.log" -d "[$VIP6]" -t AAAA -i 1s -w 500ms --heal --heal-node --metrics-addr 127.0.0.1:9797
	scrape heal=127.0.0.1:9797
	stuck 20 23 25 "$NODE6" "$VIP6" --qtype AAAA
	end 46
}
# The DaemonSet switched to --heal-node while the node is stuck: the
# watching tester goes (SIGTERM), the healing one starts on the same
# address, as a rollout's new pod would, and heals within milliseconds:
# before its first scrape, so its heal counter's series starts above 0.
replace_tester() {
	stop_tester; echo "watch rc=$RC" >>"$CAP/$S.phases"
	tester "$CAP/$S-heal.log" -d "$VIP4" -i 1s -w 500ms --heal-node --metrics-addr 127.0.0.1:9797
}
story_rollout() {
	begin rollout iptables node-rollout || return
	tester "$CAP/$S-watch.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9797
	scrape rollout=127.0.0.1:9797
	stuck 10 13 41 "$NODE4" "$VIP4"
	act 30 rollout replace_tester
	end 51
}
# The pod drops every query (no ICMP back): a DNS server that is down or
# too slow to answer, behind a DNAT rule that is in place.
story_down() {
	begin down iptables node-dnsdown || return
	tester "$CAP/$S.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9797
	scrape down=127.0.0.1:9797
	lab_node $NC --bind "$NODE4" --ports 22000-22001 --server "$VIP4" --interval 0.5 --duration 99 >/dev/null 2>&1 &
	act 15 dns_down drop_dns
	act 90 dns_up lab_pod nft delete table inet dbt-drop
	end 101
}
story_dead() {
	begin dead iptables node-healthy || return
	tester "$CAP/$S-healthy.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9797; TH=$TPID
	export NODE_NAME=node-killed
	tester "$CAP/$S-killed.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9798; TK=$TPID
	export NODE_NAME=node-stalled
	tester "$CAP/$S-stalled.log" -d "$VIP4" -i 1s -w 500ms --watch-node --metrics-addr 127.0.0.1:9799; TS=$TPID
	scrape healthy=127.0.0.1:9797 killed=127.0.0.1:9798 stalled=127.0.0.1:9799
	act 8 kill_and_stop sh -c 'kill -KILL "$1" && kill -STOP "$2"' - "$TK" "$TS"
	act 203 cont kill -CONT "$TS"
	at 224; finish
	wait "$TK"; echo "killed rc=$?" >>"$CAP/$S.phases"
	TPID=$TS; stop_tester; echo "stalled rc=$RC" >>"$CAP/$S.phases"
	TPID=$TH; stop_tester; echo "healthy rc=$RC" >>"$CAP/$S.phases"
	lab_down
}

scenario capture
c0=$(now_ms)
( story_watch ) 2>"$CAP/watch.stderr" &
( story_heal ) 2>"$CAP/heal.stderr" &
( story_down ) 2>"$CAP/down.stderr" &
( story_dead ) 2>"$CAP/dead.stderr" &
( story_rollout ) 2>"$CAP/rollout.stderr" &
wait
csecs=$((($(now_ms) - c0) / 1000))
# Each story: its lab came up, every action ran within 2 s of its time
# (the expectations keep 5 s away from each), and it was scraped.
# every action of the story, each succeeded (watch: window, rules back,
# scan --fix; rollout: window, rules back, the new tester; the others two)
for sa in watch:3 heal:2 down:2 dead:2 rollout:3; do
	s=${sa%:*} want=${sa#*:}
	late=$(awk 'NF == 3 && $3 - $1 * 1000 > 2000 { print $2 " at " $3 / 1000 " s (due " $1 " s)" }' "$CAP/$s.phases" 2>/dev/null)
	n=$(grep -c '"ok": true' "$CAP/$s.jsonl" 2>/dev/null)
	f=$(grep -c '"ok": false' "$CAP/$s.jsonl" 2>/dev/null)
	acts=$(awk 'NF == 3' "$CAP/$s.phases" 2>/dev/null | wc -l)
	if [ ! -s "$CAP/$s.err" ] && [ -z "$late" ] && num "$n" && [ "$n" -ge 40 ] && [ "$acts" = "$want" ]; then
		pass "capture $s: $acts actions on time, $n scrapes answered, ${f:-0} failed (all five stories: ${csecs} s)"
	else
		fail "capture $s" "$(cat "$CAP/$s.err" 2>/dev/null) late: $late; scrapes ok=$n failed=$f actions=$acts of $want; $(tail -n 2 "$CAP/$s.stderr" | tr '\n' ' ')"
	fi
done
# What the testers' logs say happened (the story took place as written).
lc() { grep -c "event=$2\( \|$\)" "$CAP/$1" 2>/dev/null; }
bh=$(lc watch.log blackhole) cb=$(lc watch.log client_blackholed) cc=$(lc watch.log client_cleared)
if [ "$bh" -ge 1 ] && [ "$cb" = 5 ] && [ "$cc" = 5 ] && grep -q 'event=scan_summary .* blackholed=6 ' "$CAP/watch.scan"; then
	pass "capture watch: the log proves our blackhole and 5 stuck clients; scan --fix found and healed all 6"
else
	fail "capture watch: the story" "blackhole=$bh client_blackholed=$cb client_cleared=$cc scan: $(grep scan_summary "$CAP/watch.scan")"
fi
hb=$(lc heal.log healed) hc=$(lc heal.log client_healed)
if [ "$hb" -ge 1 ] && [ "$hc" = 5 ]; then
	pass "capture heal: --heal healed our flow ($hb) and --heal-node the 5 clients"
else
	fail "capture heal: the story" "healed=$hb client_healed=$hc"
fi
# the rollout: the watching tester proved the 5 clients stuck, the
# healing one that replaced it healed each of them
rb=$(lc rollout-watch.log client_blackholed)
rh=$(grep 'event=client_healed ' "$CAP/rollout-heal.log" 2>/dev/null | grep -o ' sport=2200[0-4] ' | sort -u | wc -l)
if [ "$rb" = 5 ] && [ "$rh" = 5 ]; then
	pass "capture rollout: the --watch-node tester proved 5 clients stuck, the --heal-node one that replaced it healed all 5"
else
	fail "capture rollout: the story" "client_blackholed=$rb, clients healed after the rollout=$rh"
fi
nr=$(grep -c 'event=timeout .*cause=no_reply' "$CAP/down.log") db=$(grep -c 'event=\(blackhole\|client_blackholed\|nat_missing\)' "$CAP/down.log")
if [ "$nr" -ge 60 ] && [ "$db" = 0 ] && grep -q 'event=recovered .*cause=no_reply' "$CAP/down.log"; then
	pass "capture down: $nr timeouts cause=no_reply, no blackhole or window claimed, recovered after"
else
	fail "capture down: the story" "no_reply=$nr claims=$db $(grep -m1 event=recovered "$CAP/down.log")"
fi

# ---- promtool test rules on the captured series ----------------------------
scenario promtool
if $SER build "$TOP/tests/rules/expect.yaml" "$CAP" "$RULES" "$W/tests" >"$W/build.out" 2>&1; then
	pass "series.py: $(wc -l <"$W/build.out") promtool test files from the capture"
else
	fail "series.py build" "$(tail -n 3 "$W/build.out" | tr '\n' ' ')"
fi
for c in watch-blackhole heal-node rollout dns-down healthy tester-killed tester-stopped; do
	info=$(grep "^$c " "$W/build.out" | cut -d' ' -f3-)
	if [ -s "$W/tests/$c.yaml" ] && (cd "$W/tests" && promtool test rules "$c.yaml") >"$W/tests/$c.out" 2>&1; then
		pass "promtool test rules, $c: every alert as expected at each step ($info)"
	else
		fail "promtool test rules, $c" "$(grep -v '^ *$' "$W/tests/$c.out" 2>/dev/null | head -n 12 | tr '\n' ' ' | head -c 900)"
	fi
done
exit 0
