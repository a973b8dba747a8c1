#!/bin/sh
# t_audit.sh - the kube-proxy audit (kproxy.c) in the lab: a server in the
# node namespace (tests/audit/kproxy_server.py, bound to 127.0.0.1:10249
# there, nowhere else) plays kube-proxy's metrics endpoint in its real
# exposition format. The tester reports each version it is shown, the
# gauge follows, and hostile answers (slow, huge, malformed, status 500,
# no answer, port closed) are each refused with their reason, once, while
# the queries go on untouched. Each scenario is a subshell with its own lab.
#
#   sudo ./test.sh audit                      all scenarios
#   sudo AUDIT_ONLY="hostile" ./test.sh audit  some (versions hostile views stuck)
#
# stuck: the stuck clients by name (dns_blackhole_tester_stuck_client),
# one series per client address, and the bound (--stuck-clients-max).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
FILTER_VAR=AUDIT_ONLY     # (lib.sh: scenario)
SERVER=$TOP/tests/audit/kproxy_server.py

tester() { _l=$1; shift; ip netns exec "$NS_NODE" "$BIN" "$@" >"$_l" 2>&1 & TPID=$!; }
stop_tester() { kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; RC=$?; }
# sv LOG KEY: KEY of the last stats line
sv() { grep 'event=stats' "$1" | tail -n 1 | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
# profile NAME: what the fake kube-proxy serves from its next connection
# (renamed into place: the server never reads a half-written file)
profile() { echo "$1" >"$LAB_DIR/profile.new" && mv "$LAB_DIR/profile.new" "$LAB_DIR/profile"; }
# kp_start PROFILE: the fake kube-proxy in the node namespace; its request log is $KPLOG
kp_start() {
	profile "$1"
	KPLOG=$LAB_DIR/kp-requests.log; : >"$KPLOG"
	# `ip netns exec` execs python: $! is the server itself
	ip netns exec "$NS_NODE" "$LAB_PY" "$SERVER" 127.0.0.1 10249 "$LAB_DIR/profile" "$KPLOG" 2>"$LAB_DIR/kp.err" &
	KPPID=$!
	for _i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		lab_node "$LAB_PY" -c 'import socket; socket.create_connection(("127.0.0.1", 10249), 1).close()' \
			2>/dev/null && return 0
		sleep 0.1
	done
	fail "fake kube-proxy did not start" "$(cat "$LAB_DIR/kp.err")"; return 1
}
# line LOG: the kube_proxy lines, key=value only as the test compares them
kp_lines() { grep 'event=kube_proxy ' "$1" | sed -E 's/.* (version=[^ ]*) (mode=[^ ]*) (window_fix=[^ ]*) (reconciler=[^ ]*) .*/\1 \2 \3 \4/'; }
# scrape: the tester's kube_proxy_info series, labels after the flow's
scrape() {
	lab_node "$LAB_PY" -c 'import urllib.request,sys
for l in urllib.request.urlopen("http://127.0.0.1:9797/metrics", timeout=3).read().decode().splitlines():
    if l.startswith("dns_blackhole_tester_kube_proxy_info{"): print("version=" + l.split(",version=",1)[1])' 2>&1
}

# ---- versions: without the fix, with it, with the reconciler ----------
if scenario versions; then (
	lab_up || { fail "versions: lab_up"; exit 0; }
	kp_start old || exit 0
	L=$OUT/audit-versions.log
	tester "$L" -d "$VIP4" -i 200ms -w 1s --kube-proxy-interval 500ms --metrics-addr 127.0.0.1:9797
	sleep 2; m1=$(scrape)
	profile fixed; sleep 2; m2=$(scrape)
	profile reconciler; sleep 2; m3=$(scrape)
	sleep 1                     # more reads of an unchanged kube-proxy: no more lines
	stop_tester
	got=$(kp_lines "$L" | tr '\n' '|')
	want="version=v1.29.8 mode=iptables window_fix=no reconciler=no|version=v1.31.1 mode=nftables window_fix=yes reconciler=no|version=v1.33.1 mode=iptables window_fix=yes reconciler=yes|"
	expect_eq "versions: one event=kube_proxy per version, in order, each judged right" "$got" "$want"
	expect_eq "versions: gauge for 1.29.8" "$m1" 'version="v1.29.8",mode="iptables",window_fix="no",reconciler="no"} 1'
	expect_eq "versions: gauge for 1.31.1" "$m2" 'version="v1.31.1",mode="nftables",window_fix="yes",reconciler="no"} 1'
	expect_eq "versions: gauge for 1.33.1" "$m3" 'version="v1.33.1",mode="iptables",window_fix="yes",reconciler="yes"} 1'
	reads=$(grep -c ' /metrics$' "$KPLOG"); modes=$(grep -c ' /proxyMode$' "$KPLOG")
	if [ "$reads" -ge 3 ] && [ "$modes" = "$reads" ]; then
		pass "versions: re-read every 500ms ($reads reads of /metrics, as many of /proxyMode)"
	else
		fail "versions: re-reads" "metrics=$reads proxyMode=$modes"
	fi
	if [ "$(sv "$L" sent)" = "$(sv "$L" answered)" ] && [ "$(sv "$L" sent)" -ge 30 ] && [ "$(count_events "$L" kube_proxy_unavailable)" = 0 ]; then
		pass "versions: every query answered ($(sv "$L" answered)), no unavailable line"
	else
		fail "versions: queries" "$(grep event=stats "$L" | tail -n1)"
	fi
) fi

# ---- hostile answers: each refused with its reason, once -------------
hostile() {   # PROFILE REASON
	L=$OUT/audit-hostile-$1.log
	if [ "$1" = closed ]; then : >"$LAB_DIR/kp-requests.log"; KPLOG=$LAB_DIR/kp-requests.log
	else kp_start "$1" || return; fi
	# 50 queries, 1 s timeout each: an audit that held the loop for a
	# second (a blocking read of the dripping server would hold it 2 s)
	# would cost a timeout, and the exit status would be 1
	lab_node "$BIN" -d "$VIP4" -c 50 -i 100ms -w 1s --kube-proxy-interval 1s >"$L" 2>&1; RC=$?
	[ "$1" = closed ] || { kill "$KPPID"; wait "$KPPID" 2>/dev/null; }
	n=$(count_events "$L" kube_proxy_unavailable); r=$(field "$L" kube_proxy_unavailable reason)
	reads=$(grep -c ' /metrics$' "$KPLOG")
	if [ "$n" = 1 ] && [ "$r" = "$2" ] && [ "$(count_events "$L" kube_proxy)" = 0 ]; then
		pass "hostile $1: event=kube_proxy_unavailable reason=$2 once ($reads reads), no verdict"
	else
		fail "hostile $1" "unavailable=$n reason=$r $(grep -m1 event=kube_proxy "$L")"
	fi
	if [ "$RC" = 0 ] && [ "$(sv "$L" answered)" = 50 ]; then
		pass "hostile $1: all 50 queries answered within their 1s timeout, exit 0"
	else
		fail "hostile $1: queries" "rc=$RC $(grep event=stats "$L" | tail -n1)"
	fi
}
if scenario hostile; then (
	lab_up || { fail "hostile: lab_up"; exit 0; }
	hostile slow slow
	hostile huge huge
	hostile malformed malformed
	hostile status status
	hostile noreply no_answer
	hostile closed no_answer
	grep -q 'reason=status detail="status 500"' "$OUT/audit-hostile-status.log" &&
		pass "hostile status: the detail names the status (500)" ||
		fail "hostile status: detail" "$(grep -m1 kube_proxy_unavailable "$OUT/audit-hostile-status.log")"
) fi

# ---- views: only in the node view, and not with none -------------------
if scenario views; then (
	lab_up || { fail "views: lab_up"; exit 0; }
	kp_start fixed || exit 0
	# the pod's own address: nothing NATs it here, so this is not the node view
	L=$OUT/audit-direct.log
	lab_node "$BIN" -d "$POD4" -c 10 -i 100ms -w 1s --kube-proxy-interval 200ms >"$L" 2>&1
	expect_eq "views: a server never NAT'd: no audit, no request" \
		"$(grep -c 'event=kube_proxy' "$L") $(grep -c ' /' "$KPLOG")" "0 0"
	L=$OUT/audit-none.log
	lab_node "$BIN" -d "$VIP4" -c 10 -i 100ms -w 1s --kube-proxy-metrics none >"$L" 2>&1
	expect_eq "views: --kube-proxy-metrics none: no audit, no request" \
		"$(grep -c 'event=kube_proxy' "$L") $(grep -c ' /' "$KPLOG")" "0 0"
	L=$OUT/audit-nat.log
	lab_node "$BIN" -d "$VIP4" -c 10 -i 100ms -w 1s >"$L" 2>&1
	expect_eq "views: the VIP, NAT'd here: the audit runs once at start" \
		"$(kp_lines "$L")" "version=v1.31.1 mode=nftables window_fix=yes reconciler=no"
	profile unversioned
	lab_node "$BIN" -d "$VIP4" -c 10 -i 100ms -w 1s >"$L" 2>&1
	expect_eq "views: no kubernetes_build_info: nothing guessed" \
		"$(kp_lines "$L")" "version=unknown mode=iptables window_fix=unknown reconciler=unknown"
	lab_node "$BIN" -d "$VIP4" -c 1 --kube-proxy-metrics 127.0.0.1 >"$L" 2>&1; rc=$?
	expect_eq "views: a bad --kube-proxy-metrics is a usage error" "$rc $(grep -c 'kube-proxy-metrics' "$L")" "2 1"
) fi

# ---- stuck clients by name, and the bound ------------------------------
# series NAME PORT: the lines of that metric on the tester's page
series() {
	lab_node "$LAB_PY" -c 'import sys, urllib.request
for l in urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[2], timeout=3).read().decode().splitlines():
    if l.startswith("dns_blackhole_tester_" + sys.argv[1] + "{"): print(l.split(",vip=")[-1] if "vip=" in l else l.rsplit(" ", 1)[1])' "$1" "$2" 2>&1
}
if scenario stuck; then (
	lab_up || { fail "stuck: lab_up"; exit 0; }
	# two clients (the node's two addresses), two sockets each, sent in the
	# window; the testers start after it (their own flows are not stuck):
	# their first dump finds the 4 entries, their next DNAT'd flow proves them
	lab_rules window || fail "stuck: window"
	for a in "$NODE4" 10.244.0.1; do for p in 43001 43002; do
		lab_node "$LAB_PY" "$TOP/tests/client.py" --bind "$a" --port $p --server "$VIP4" --qtype A --timeout 0.2 >/dev/null 2>&1
	done; done
	lab_rules full
	tester "$OUT/audit-stuck1.log" -d "$VIP4" -i 200ms -w 500ms --watch-node --stuck-clients-max 1 \
		--kube-proxy-metrics none --metrics-addr 127.0.0.1:9797; T1=$TPID
	tester "$OUT/audit-stuck100.log" -d "$VIP4" -i 200ms -w 500ms --watch-node \
		--kube-proxy-metrics none --metrics-addr 127.0.0.1:9798; T2=$TPID
	tester "$OUT/audit-stuck0.log" -d "$VIP4" -i 200ms -w 500ms --watch-node --stuck-clients-max 0 \
		--kube-proxy-metrics none --metrics-addr 127.0.0.1:9799; T0=$TPID
	sleep 2
	s0=$(series stuck_client 9799 | wc -l); o0=$(series stuck_clients_omitted 9799)
	s1=$(series stuck_client 9797 | sort | tr '\n' '|'); o1=$(series stuck_clients_omitted 9797)
	s2=$(series stuck_client 9798 | sort | tr '\n' '|'); o2=$(series stuck_clients_omitted 9798)
	f2=$(series node_stuck_flows 9798 | grep 'kind="no_dnat"')
	TPID=$T1; stop_tester; TPID=$T2; stop_tester; TPID=$T0; stop_tester
	cb=$(count_events "$OUT/audit-stuck100.log" client_blackholed)
	expect_eq "stuck: the watch proved 4 flows of 2 clients stuck (client_blackholed, node_stuck_flows)" "$cb $f2" '4 "10.0.0.10:53",kind="no_dnat"} 4'
	expect_eq "stuck: one series per client address, kind no_dnat" "$s2" '"10.0.0.10:53",client="10.224.0.8",kind="no_dnat"} 1|"10.0.0.10:53",client="10.244.0.1",kind="no_dnat"} 1|'
	expect_eq "stuck: nothing omitted within the bound" "$o2" 0
	n1=$(printf '%s' "$s1" | tr '|' '\n' | grep -c 'kind="no_dnat"} 1')
	expect_eq "stuck: --stuck-clients-max 1: one series, the other client's 2 flows counted as omitted" "$n1 $o1" "1 2"
	expect_eq "stuck: --stuck-clients-max 0: no series, all 4 stuck flows counted as omitted" "$s0 $o0" "0 4"
) fi
