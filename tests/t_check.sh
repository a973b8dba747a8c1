#!/bin/sh
# t_check.sh - `dns-blackhole-tester check`, node-problem-detector's custom
# plugin, in the lab: its exit status (NPD's OK 0 / NonOK 1 / Unknown 2)
# and its one line in each state, against conntrack -L as the oracle; the
# 80-byte bound on every line it printed; its time with 200,000 entries in
# the node's table (reported, never asserted: a benchmark, not a race);
# and deploy/node-problem-detector/ checked field by field against NPD's
# config types (kubernetes/node-problem-detector
# pkg/custompluginmonitor/types/config.go and types.go).
#
#   sudo ./test.sh check
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
FILTER_VAR=CHECK_ONLY     # (lib.sh: scenario): states load config
L=$OUT/check
mkdir -p "$L"; : >"$L/all-lines"

# chk NAME NS [ARGS]: check in namespace NS (node|pod|nobody); sets RC and LINE
chk() {
	_n=$1 _ns=$2; shift 2
	case $_ns in
	node) ip netns exec "$NS_NODE" "$BIN" check "$@" >"$L/$_n.out" 2>"$L/$_n.err"; RC=$? ;;
	pod) ip netns exec "$NS_POD" "$BIN" check "$@" >"$L/$_n.out" 2>"$L/$_n.err"; RC=$? ;;
	nobody) ip netns exec "$NS_NODE" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$BIN" check "$@" >"$L/$_n.out" 2>"$L/$_n.err"; RC=$? ;;
	esac
	LINE=$(cat "$L/$_n.out")
	cat "$L/$_n.out" >>"$L/all-lines"
	echo "$_n" >>"$L/all-names"
}
# expect_check NAME RC PATTERN: exit status and line (a grep -E pattern)
expect_check() {
	if [ "$RC" = "$2" ] && printf '%s\n' "$LINE" | grep -Eq "$3" && [ "$(wc -l <"$L/$1.out")" = 1 ] && [ ! -s "$L/$1.err" ]; then
		pass "$1: exit $RC, \"$LINE\""
	else
		fail "$1" "exit $RC (want $2), line \"$LINE\" (want /$3/), stderr: $(head -c 200 "$L/$1.err")"
	fi
}
# stale_unreplied: the oracle, entries to the VIP not DNAT'd and never answered
stale_unreplied() { lab_ct -L -p udp --orig-dst "$VIP4" --dport 53 2>/dev/null | grep '\[UNREPLIED\]' | grep -c "src=$VIP4 dst=$NODE4"; }
# stuck_ports P...: one query from each fixed port while the rule is missing
stuck_ports() {
	lab_rules window || return 1
	for p in "$@"; do lab_node "$LAB_PY" "$TOP/tests/client.py" --bind "$NODE4" --port "$p" --server "$VIP4" \
		--qtype A --timeout 0.2 >/dev/null 2>&1; done
	lab_rules full
}

if scenario states; then (
	lab_up || { fail "states: lab_up"; exit 0; }
	# a DNAT'd flow in the table, as a node always has one
	lab_node "$LAB_PY" "$TOP/tests/client.py" --bind "$NODE4" --port 41000 --server "$VIP4" --qtype A \
		--expect "$ANSWER4" --timeout 1 >/dev/null 2>&1 || fail "states: a first answer through the VIP"
	chk healthy node -d "$VIP4"
	expect_check healthy 0 "^no stuck DNS flow to $VIP4:53 \([0-9]+ entries\)$"
	stuck_ports 42001 42002 42003 || fail "states: the window"
	want=$(stale_unreplied)
	chk stuck node -d "$VIP4"
	expect_check stuck 1 "^no_dnat: $want stuck DNS flows to $VIP4:53 \(VIP rule in place\)$"
	[ "$want" = 3 ] && pass "stuck: the oracle (conntrack -L) shows the 3 entries check counted" ||
		fail "stuck: oracle" "conntrack -L shows $want stale unreplied entries, not 3"
	chk default node            # resolv.conf's nameserver: the host's, no NAT here
	expect_check default 2 "^cannot tell: not the node view \(no NAT'd flow to .*\)$"
	lab_rules window
	chk window node -d "$VIP4"
	expect_check window 2 "^cannot tell: $VIP4:53 has no DNAT rule now \(restart window\?\)$"
	lab_rules full
	chk podview pod -d "$VIP4"
	expect_check podview 2 "^cannot tell: not the node view \(no NAT'd flow to $VIP4:53\)$"
	chk nocap nobody -d "$VIP4"
	expect_check nocap 2 "^cannot tell: no CAP_NET_ADMIN to read conntrack$"
	chk longvip node -d "[fd8c:5e2b:1d3a:9f07:1234:5678:9abc:def0]:65535"
	expect_check longvip 2 "^cannot tell: "
	chk usage node --bogus
	expect_check usage 2 "^usage: "
	ip netns exec "$NS_NODE" "$BIN" check --help >"$L/help.out" 2>&1; rc=$?
	expect_eq "check --help: exit 0, the usage" "$rc $(head -n 1 "$L/help.out" | cut -c 1-33)" "0 Usage: dns-blackhole-tester check"
	# every line printed above, newline included, within NPD's 80 bytes
	long=$(awk '{ if (length($0) + 1 > 80) print NR ": " length($0) + 1 " bytes" }' "$L/all-lines")
	n=$(wc -l <"$L/all-lines")
	if [ -z "$long" ] && [ "$n" = 8 ]; then
		pass "80-byte bound: all $n lines (longest $(awk '{ if (length($0) + 1 > m) m = length($0) + 1 } END { print m }' "$L/all-lines") bytes with its newline)"
	else
		fail "80-byte bound" "$n lines; over 80: $long"
	fi
) fi

# ---- 200,000 entries in the node's table: check's time (a report) --------
if scenario load; then (
	lab_up || { fail "load: lab_up"; exit 0; }
	H=$TOP/build/bench/harness
	mkdir -p "$(dirname "$H")"
	gcc -O2 -Wall -Wextra -std=gnu11 -o "$H" "$TOP/bench/harness.c" || { fail "load: building bench/harness.c"; exit 0; }
	lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=3600 net.netfilter.nf_conntrack_udp_timeout_stream=3600
	lab_node "$LAB_PY" "$TOP/tests/client.py" --bind "$NODE4" --port 41000 --server "$VIP4" --qtype A \
		--expect "$ANSWER4" --timeout 1 >/dev/null 2>&1
	stuck_ports 42001 42002 || fail "load: the window"
	# the flood (ENGINEERING.md section 4): one raw datagram per flow to the gateway, which drops it
	ip netns exec "$NS_NODE" "$H" flood "$GW4" 0 200000 20000 >/dev/null || fail "load: flood"
	total=$(lab_ct -C 2>/dev/null)
	ms=
	for k in 1 2 3; do
		t0=$(date +%s%N)
		chk load$k node -d "$VIP4"
		ms="$ms $((($(date +%s%N) - t0) / 1000000))"
	done
	med=$(echo $ms | tr ' ' '\n' | sort -n | sed -n 2p)
	if num "$total" && [ "$total" -ge 200000 ]; then
		pass "load: $total entries in the node's table"
	else
		fail "load: table size" "conntrack -C says $total"
	fi
	expect_check load3 1 "^no_dnat: 2 stuck DNS flows to $VIP4:53 \(VIP rule in place\)$"
	# reported: NPD's default timeout is 5s (types/config.go); not asserted
	pass "load: check with $total entries took$ms ms (median $med ms; NPD's default timeout 5000 ms)"
	echo "check_ms_200k $ms median=$med" >"$L/load-time.txt"
) fi

# ---- deploy/node-problem-detector/ against NPD's config types ------------
if scenario config; then
	if $LAB_PY - "$TOP/deploy/node-problem-detector" <<'PY' >"$L/config.out" 2>&1; then
import json, os, re, sys, yaml
d = sys.argv[1]
cfg = json.load(open(os.path.join(d, "dns-blackhole-monitor.json")))
# pkg/custompluginmonitor/types/config.go: CustomPluginConfig and pluginGlobalConfig json names
top = {"plugin", "pluginConfig", "source", "conditions", "rules", "metricsReporting"}
glob = {"invoke_interval", "timeout", "max_output_length", "concurrency",
        "enable_message_change_based_condition_update", "skip_initial_status"}
# types.go: CustomRule; pkg/types: Condition (type, status, transition, reason, message)
rule_keys = {"type", "condition", "reason", "path", "args", "timeout", "invoke_interval"}
cond_keys = {"type", "status", "transition", "reason", "message"}
assert set(cfg) <= top, set(cfg) - top
assert cfg["plugin"] == "custom", "Validate(): only the \"custom\" plugin"
assert set(cfg["pluginConfig"]) <= glob, set(cfg["pluginConfig"]) - glob
dur = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")   # time.ParseDuration's shape
sec = lambda s: sum(float(v) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[u]
                    for v, _, u in re.findall(r"([0-9]+(\.[0-9]+)?)(ns|us|ms|s|m|h)", s))
pc = cfg["pluginConfig"]
for k in ("invoke_interval", "timeout"):
    assert dur.match(pc[k]), (k, pc[k])
assert isinstance(pc["max_output_length"], int) and pc["max_output_length"] == 80, "check's bound is 80"
assert isinstance(pc["concurrency"], int) and pc["concurrency"] >= 1
assert isinstance(cfg["metricsReporting"], bool)
assert isinstance(cfg["source"], str) and cfg["source"]
conds = {c["type"]: c for c in cfg["conditions"]}
for c in cfg["conditions"]:
    assert set(c) <= cond_keys, set(c) - cond_keys
assert "DNSBlackhole" in conds and conds["DNSBlackhole"]["reason"] and conds["DNSBlackhole"]["message"]
assert cfg["rules"], "no rule"
for r in cfg["rules"]:
    assert set(r) <= rule_keys, set(r) - rule_keys
    assert r["type"] in ("temporary", "permanent"), r["type"]   # pkg/types: Temp, Perm
    if r["type"] == "permanent":
        assert r["condition"] in conds, "Validate(): a permanent rule's condition needs a default"
    assert dur.match(r["timeout"]) and sec(r["timeout"]) <= sec(pc["timeout"]), "Validate(): rule timeout <= global"
    assert r["reason"] and r["reason"] != conds.get(r.get("condition"), {}).get("reason"), "a reason per state"
    assert r["args"] == ["check"], r["args"]
# the DaemonSet patch: the rule's path is where it mounts the image's /dns-blackhole-tester
p = yaml.safe_load(open(os.path.join(d, "daemonset-patch.yaml")))
spec = p["spec"]["template"]["spec"]
assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
c = spec["containers"][0]
assert c["name"] == "node-problem-detector"
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in spec["volumes"]}
assert "NET_ADMIN" in c["securityContext"]["capabilities"]["add"]
path = cfg["rules"][0]["path"]
assert path == os.path.join(mounts["dns-blackhole-tester"], "dns-blackhole-tester"), (path, mounts)
assert "image" in vols["dns-blackhole-tester"] and vols["dns-blackhole-monitor"]["configMap"]["name"] == "dns-blackhole-monitor"
flag = [a for a in c["command"] if a.startswith("--config.custom-plugin-monitor=")]
assert flag == ["--config.custom-plugin-monitor=" + os.path.join(mounts["dns-blackhole-monitor"], "dns-blackhole-monitor.json")], flag
print("%d rule(s), condition %s, reasons %s/%s, timeout %s of NPD's %s, path %s" % (
    len(cfg["rules"]), "DNSBlackhole", conds["DNSBlackhole"]["reason"], cfg["rules"][0]["reason"],
    cfg["rules"][0]["timeout"], pc["timeout"], path))
PY
		pass "deploy/node-problem-detector: every field one of NPD's, as its types want ($(cat "$L/config.out"))"
	else
		fail "deploy/node-problem-detector against NPD's types" "$(tail -n 3 "$L/config.out" | tr '\n' ' ')"
	fi
fi
