#!/bin/sh
# t_view.sh - where the tool runs (#20): it says what it can see there, it
# proves a stuck flow from a pod's namespace at the DNS level, it says why
# scan and --watch-node have nothing to do where the table holds nothing,
# and as the DaemonSet it heals its own flow once the blackhole is proven.
#
#   sudo ./test.sh view
#   sudo VIEW_ONLY="pod loss" ./test.sh view      some scenarios:
#     pod loss nodelocal reject daemonset cares
#
# A client pod (tests/lab.sh: lab_clientpod_up) is a namespace routed
# through the node with no rule of its own: its flows' entries, and any
# stale one, are in the node's table; conntrack -L on the node is the
# oracle. NodeLocal DNSCache (lab_nodelocal_up) is 169.254.20.10 on the
# node's lo with raw NOTRACK rules. The c-ares client is Node's
# dns.Resolver (tests/cares_client.js) under load.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"
NC="$LAB_PY $TOP/tests/node_clients.py"
W=$OUT/view
rm -rf "$W"; mkdir -p "$W"
FILTER_VAR=VIEW_ONLY     # (lib.sh: scenario)

# ctester LOG ARGS...: the tester in the client pod, in the background
ctester() { _l=$1; shift; ip netns exec "$NS_CLI" "$BIN" "$@" >"$_l" 2>&1 & TPID=$!; }
# waitfor FILE REGEX [TENTHS]: until a line matches (default 30 s)
waitfor() { _i=0; until grep -q "$2" "$1" 2>/dev/null; do _i=$((_i + 1)); [ $_i -le "${3:-300}" ] || return 1; sleep 0.1; done; }
# sv LOG KEY: KEY's value on the last stats line
sv() { grep 'event=stats ' "$1" | tail -n 1 | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }
# errors LOG: level=error lines other than the events named (a regex)
errors() { grep 'level=error' "$1" | grep -v -c "event=\($2\)\( \|$\)"; }
# one-line summary of a log for a failure message
brief() { grep -v 'event=\(reply\|timeout\|node_resync\)' "$1" | cut -c1-300 | tail -n 4 | tr '\n' ' '; }
# metric NAME: its value in the node's tester's /metrics (127.0.0.1:9797)
metric() {
	lab_node "$LAB_PY" -c 'import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9797/metrics", timeout=2).read().decode()
vals = [l.rsplit(" ", 1)[1] for l in body.splitlines() if l.split("{")[0].split(" ")[0] == sys.argv[1]]
print(vals[0] if vals else "none")' "dns_blackhole_tester_$1" 2>/dev/null
}
# ds_args watch|heal: ds.yaml's args, as the DaemonSet runs it (--watch-node),
# or the commented line it offers for healing (--heal-node)
ds_args() {
	$LAB_PY - "$TOP/ds.yaml" "$1" <<-'PY'
	import json, re, sys, yaml
	text = open(sys.argv[1]).read()
	docs = [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "DaemonSet"]
	args = docs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
	if sys.argv[2] == "heal":
	    args = json.loads(re.search(r"^\s*# args: (\[.*\])\s*$", text, re.M).group(1))
	print(" ".join(args))
	PY
}

# ---- a pod's namespace: healthy, and started during a window ------------
if scenario pod; then (
	lab_up || { fail "pod: lab_up"; exit 0; }
	lab_clientpod_up || { fail "pod: lab_clientpod_up"; exit 0; }
	L=$W/pod-healthy.log
	ip netns exec "$NS_CLI" "$BIN" -d "$VIP4" -i 200ms -w 500ms -c 10 >"$L" 2>&1; rc=$?
	if [ $rc = 0 ] && grep -q 'event=start .* view=unknown ' "$L" && [ "$($LC count "$L" view view=pod)" = 1 ] &&
	   grep -q 'event=view .*explain=".*kubectl debug node/' "$L" && ! grep -q level=error "$L" &&
	   [ "$(sv "$L" answered)" = 10 ]; then
		pass "pod, healthy: start view=unknown, then one event=view view=pod that says how to get to the node; 10 of 10 answered, no error, exit 0"
	else
		fail "pod, healthy" "rc=$rc $(brief "$L")"
	fi
	# scan and --watch-node: one warn line that explains, exit 0
	S=$W/pod-scan.log
	lab_clipod "$BIN" scan -d "$VIP4" >"$S" 2>&1; src=$?
	L=$W/pod-watch.log
	lab_clipod "$BIN" -d "$VIP4" -i 200ms -w 500ms -c 3 --watch-node >"$L" 2>&1; wrc=$?
	if [ $src = 0 ] && [ "$(wc -l <"$S")" = 1 ] && grep -q 'level=warn event=view view=pod .*explain=' "$S" &&
	   [ $wrc = 0 ] && [ "$(grep -c 'level=warn event=node_watch_unavailable view=pod .*explain=' "$L")" = 1 ] &&
	   ! grep -q level=error "$S" "$L"; then
		pass "pod: scan says view=pod in one warn line, exit 0; --watch-node one warn line node_watch_unavailable view=pod, exit 0; no error"
	else
		fail "pod: scan and --watch-node" "scan rc=$src: $(head -c 300 "$S"); watch rc=$wrc: $(brief "$L")"
	fi

	# Started during a window: our socket's first query makes the node's
	# entry without DNAT; after the rules' return it stays stuck while
	# fresh sockets are answered.
	L=$W/pod-stuck.log
	lab_rules window
	ctester "$L" -d "$VIP4" -i 200ms -w 300ms -c 400 --heal
	waitfor "$L" 'event=view ' 50
	sleep 0.5
	lab_rules full
	waitfor "$L" 'event=blackhole ' 300
	port=$(sed -n '1s/.* src=[^ ]*:\([0-9]*\) .*/\1/p' "$L")
	fix=$($LC field "$L" blackhole fix)
	if grep -q "event=blackhole .*view=pod kind=unseen .*fresh_rtt_ms=" "$L" &&
	   [ "$fix" = "conntrack -D -p udp -s $CLI4 --sport $port -d $VIP4 --dport 53" ] &&
	   [ "$($LC count "$L" blackhole)" = 1 ] && [ "$(grep -c 'level=warn event=heal_unavailable .*view=pod ' "$L")" = 1 ]; then
		pass "pod, started in a window (--heal: one heal_unavailable line): event=blackhole view=pod kind=unseen after $($LC field "$L" blackhole unanswered) unanswered queries (fresh socket answered in $($LC field "$L" blackhole fresh_rtt_ms) ms); fix=\"$fix\""
	else
		fail "pod, started in a window: the claim" "port=$port fix=$fix $(brief "$L")"
	fi
	# The oracle: the node's table holds that flow's one entry, untranslated
	# and unreplied.
	lab_ct -L -p udp -s "$CLI4" --sport "$port" 2>/dev/null >"$W/pod-entry"
	if [ "$(wc -l <"$W/pod-entry")" = 1 ] && grep -q "dport=53 \[UNREPLIED\] src=$VIP4 dst=$CLI4 sport=53 dport=$port " "$W/pod-entry"; then
		pass "pod: conntrack -L on the node holds exactly that entry, not DNAT'd, unreplied: $(cut -c1-160 "$W/pod-entry")"
	else
		fail "pod: the node's entry" "$(cat "$W/pod-entry")"
	fi
	# fix= run on the node heals it: our socket is answered again
	lab_node sh -c "$fix" >"$W/pod-fix.out" 2>&1; frc=$?
	waitfor "$L" 'event=recovered ' 100; rec=$?
	kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; rc=$?
	if [ $frc = 0 ] && [ $rec = 0 ] && [ $rc = 3 ] && grep -q 'event=recovered .*cause=blackhole' "$L" &&
	   [ "$(errors "$L" 'blackhole\|timeout')" = 0 ]; then
		pass "pod: fix= run on the node (\"$(tr -d '\n' <"$W/pod-fix.out")\") heals it: the same socket answered again (event=recovered cause=blackhole), exit 3"
	else
		fail "pod: fix= heals" "fix rc=$frc recovered=$rec rc=$rc $(brief "$L")"
	fi
); fi

# ---- packet loss on the pod's path: never a claim -----------------------
# 30% of the pod's queries dropped in the node's forward path (random, as
# loss is): our socket and the fresh ones lose alike, and a run of 8 in a
# row with every fresh one answered stays out of reach.
if scenario loss; then (
	lab_up || { fail "loss: lab_up"; exit 0; }
	lab_clientpod_up || { fail "loss: lab_clientpod_up"; exit 0; }
	lab_node nft -f - <<-EOF || { fail "loss: the drop rule"; exit 0; }
	table inet dbt-loss {
		chain forward_loss {
			type filter hook forward priority 0; policy accept;
			ip saddr $CLI4 udp dport 53 numgen random mod 100 < 30 counter drop
		}
	}
	EOF
	L=$W/loss.log
	lab_clipod "$BIN" -d "$VIP4" -i 100ms -w 200ms -c 200 >"$L" 2>&1; rc=$?
	dropped=$(lab_node nft list table inet dbt-loss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
	to=$(sv "$L" timeouts) pr=$(sv "$L" probes)
	if [ $rc = 1 ] && [ "$($LC count "$L" blackhole)" = 0 ] && num "$to" "$dropped" && [ "$to" -ge 20 ] &&
	   [ "$(errors "$L" timeout)" = 0 ] && [ "$(sv "$L" blackholes)" = 0 ]; then
		pass "30% loss on the pod's path: $to of 200 queries lost, $pr fresh sockets sent, $dropped packets dropped; no blackhole claimed, exit 1"
	else
		fail "30% loss: no claim" "rc=$rc timeouts=$to dropped=$dropped $(brief "$L")"
	fi
); fi

# ---- NodeLocal DNSCache: NOTRACK'd, so untracked --------------------------
if scenario nodelocal; then (
	lab_up || { fail "nodelocal: lab_up"; exit 0; }
	lab_nodelocal_up || { fail "nodelocal: lab_nodelocal_up"; exit 0; }
	L=$W/nodelocal.log
	lab_node "$BIN" -d "$NODELOCAL4" -i 200ms -w 500ms -c 10 >"$L" 2>&1; rc=$?
	if [ $rc = 0 ] && [ "$($LC count "$L" view view=untracked)" = 1 ] && ! grep -q 'level=\(error\|warn\)' "$L" &&
	   [ "$(sv "$L" answered)" = 10 ]; then
		pass "NodeLocal DNSCache, the tester: one event=view view=untracked (\"$($LC field "$L" view explain | cut -c1-60)...\"), 10 of 10 answered, no error, exit 0"
	else
		fail "NodeLocal DNSCache, the tester" "rc=$rc $(brief "$L")"
	fi
	S=$W/nodelocal-scan.log
	lab_node "$BIN" scan -d "$NODELOCAL4" >"$S" 2>&1; rc=$?
	if [ $rc = 0 ] && [ "$(wc -l <"$S")" = 1 ] && grep -q 'level=info event=view view=untracked .*explain=' "$S"; then
		pass "NodeLocal DNSCache, scan: one level=info line view=untracked, exit 0"
	else
		fail "NodeLocal DNSCache, scan" "rc=$rc $(head -c 400 "$S")"
	fi
	L=$W/nodelocal-watch.log
	lab_node "$BIN" -d "$NODELOCAL4" -i 200ms -w 500ms -c 3 --watch-node >"$L" 2>&1; rc=$?
	if [ $rc = 0 ] && [ "$(grep -c 'level=info event=node_watch_unavailable view=untracked .*explain=' "$L")" = 1 ] &&
	   ! grep -q 'level=\(error\|warn\)' "$L" && [ "$(sv "$L" answered)" = 3 ]; then
		pass "NodeLocal DNSCache, --watch-node: one level=info node_watch_unavailable view=untracked, no error, exit 0"
	else
		fail "NodeLocal DNSCache, --watch-node" "rc=$rc $(brief "$L")"
	fi
); fi

# ---- REJECT for a Service without endpoints ---------------------------
# kube-proxy rejects queries to a VIP whose Service has no endpoint (a
# filter rule, which meets the packet after NAT: it matches only while
# there is no DNAT for the VIP). The tester sees EPERM on send and the
# ICMP refusal; no entry is confirmed, so nothing strands it afterwards.
if scenario reject; then (
	lab_up || { fail "reject: lab_up"; exit 0; }
	rej() { lab_node iptables -w 5 "$1" OUTPUT -d "$VIP4" -p udp --dport 53 -m comment \
		--comment "kube-system/kube-dns:dns has no endpoints" -j REJECT --reject-with icmp-port-unreachable; }
	lab_rules window && rej -A || { fail "reject: rules"; exit 0; }
	L=$W/reject.log
	tester "$L" -d "$VIP4" -i 200ms -w 500ms -c 20
	waitfor "$L" 'event=refused .*seq=3 ' 100
	port=$(sed -n '1s/.* src=[^ ]*:\([0-9]*\) .*/\1/p' "$L")
	left=$(lab_ct -L -p udp --sport "$port" 2>/dev/null | wc -l)
	# an endpoint is ready: kube-proxy's DNAT comes back, then the REJECT goes
	lab_rules full && rej -D
	wait "$TPID"; rc=$?
	n=$(grep -c 'event=refused .*cause=rejected explain="a REJECT rule' "$L")
	if num "$n" && [ "$n" -ge 3 ] && [ "$n" = "$($LC count "$L" refused)" ] && ! grep -q 'err=' "$L" &&
	   [ "$(errors "$L" refused)" = 0 ]; then
		pass "REJECT (no endpoints): $n queries event=refused cause=rejected with the explanation, no raw errno"
	else
		fail "REJECT: cause=rejected" "rejected=$n $(brief "$L")"
	fi
	if [ "$left" = 0 ] && [ "$($LC count "$L" blackhole)" = 0 ] && grep -q 'event=recovered ' "$L" &&
	   [ "$(sv "$L" answered)" -ge 5 ] && [ $rc = 1 ]; then
		pass "REJECT: no entry left while rejected (conntrack -L: $left for our port), no claim, recovered once the endpoint is back, exit 1"
	else
		fail "REJECT: recovered, no claim" "entries=$left rc=$rc $(brief "$L")"
	fi
); fi

# ---- the DaemonSet: its own flow healed once proven ------------------------
# ds.yaml's args (and its commented --heal-node line), the lab's VIP as -d
# (the pod's resolv.conf names it on a cluster). A window of 2 s; after
# it the tester's own flow is proven stuck, counted, and deleted: its next
# query is answered, the gauge is 0, the counter 1. With --heal-node, 5
# fixed-port clients in the client pod, started in the window, are healed.
ds_case() {   # watch|heal
	lab_up || { fail "daemonset $1: lab_up"; return; }
	lab_clientpod_up || { fail "daemonset $1: lab_clientpod_up"; return; }
	args=$(ds_args "$1") || { fail "daemonset $1: ds.yaml's args"; return; }
	L=$W/ds-$1.log C=$W/ds-$1.clients
	export NODE_NAME=node-ds
	# shellcheck disable=SC2086
	tester "$L" -d "$VIP4" $args
	waitfor "$L" 'event=view .*view=node ' 100 || { fail "daemonset $1: view=node" "$(brief "$L")"; return; }
	lab_rules window
	rm -f "$W/ready"
	lab_clipod $NC --bind "$CLI4" --ports 22000-22004 --server "$VIP4" --interval 0.2 --duration 12 \
		--log "$C" --ready "$W/ready" >/dev/null 2>&1 &
	cpid=$!
	_i=0; while [ ! -e "$W/ready" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
	sleep 2
	r=$(now_ms)
	lab_rules full
	waitfor "$L" 'event=recovered ' 100
	sleep 1.5                      # a scrape after the next query
	g=$(metric blackholed) c=$(metric blackholes_total) h=$(metric heals_total) nh=$(metric node_clients_healed_total)
	wait $cpid
	stop_tester
	# after the heal, every query was answered: by seq, not the clock. The
	# query that proved it (its timeout says healed=true) is logged just
	# after the heal, in the same or the next ms; the ones sent after it
	# have a greater seq, and none of them may time out.
	hs=$(grep -m1 'event=healed ' "$L" | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
	hq=$(grep -m1 'event=timeout .*healed=true' "$L" | sed -n 's/.* seq=\([0-9]*\) .*/\1/p')
	after=$(awk -v q="${hq:-0}" '/event=timeout / && match($0, / seq=[0-9]+ /) &&
		substr($0, RSTART + 5, RLENGTH - 6) + 0 > q + 0' "$L" | wc -l)
	rec=$(($(date -d "$(sed -n 's/^ts=\([^ ]*\) .*event=recovered .*/\1/p' "$L" | head -n 1)" +%s%3N) - r))
	if [ "$($LC count "$L" blackhole)" = 1 ] && [ "$($LC count "$L" healed)" = 1 ] && [ -n "$hs" ] && num "$hq" && [ "$after" = 0 ] &&
	   [ "$g" = 0 ] && [ "$c" = 1 ] && [ $RC = 3 ]; then
		pass "daemonset ($args): own blackhole proven once and its entry deleted; no timeout after, recovered ${rec} ms after the rules' return; blackholed=$g blackholes_total=$c heals_total=$h; exit 3"
	else
		fail "daemonset ($args): own flow healed" "blackhole=$($LC count "$L" blackhole) healed=$($LC count "$L" healed) healed_seq=$hq after=$after gauge=$g counter=$c rc=$RC $(brief "$L")"
	fi
	if [ "$1" = heal ]; then
		ch=$(grep 'event=client_healed ' "$L" | grep -o ' sport=2200[0-4] ' | sort -u | wc -l)
		never=$(awk -v t="$r" '$1 == "ok" && $3 > t { ok[$2] = 1 } $1 == "sent" { p[$2] = 1 }
			END { n = 0; for (k in p) if (!(k in ok)) n++; print n }' "$C")
		if [ "$ch" = 5 ] && [ "$never" = 0 ] && [ "$nh" = 5 ] && [ "$h" = 1 ]; then
			pass "daemonset --heal-node: the 5 stuck clients in the client pod healed (client_healed each, node_clients_healed_total=$nh), all answered after; heals_total=$h (its own)"
		else
			fail "daemonset --heal-node: clients healed" "client_healed ports=$ch never answered=$never node_clients_healed_total=$nh heals_total=$h"
		fi
	fi
	lab_down
}
if scenario daemonset; then
	( ds_case watch )
	( ds_case heal )
fi

# ---- a real client: c-ares under load, in a pod behind the node ------------
# cares_run LOG: a window that lasts until the client's socket has sent
# for 2.5 s (node may start slowly on a loaded machine; its lookups time
# out after 1 s, and only then does c-ares keep one socket: 1 s was
# sometimes too short to be sure); R is the rules' return (epoch ms).
# Its lines: one per second of sending.
cares_run() {
	lab_rules window
	lab_clipod node "$TOP/tests/cares_client.js" --server "$VIP4" --expect "$ANSWER4" --seconds 14 \
		--every-ms 5 --max-inflight 1000 --timeout-ms 1000 --tries 1 >"$1" 2>"$1.err" &
	cp=$!
	_i=0
	until lab_clipod ss -Hun dst "$VIP4:53" | grep -q .; do
		_i=$((_i + 1)); [ $_i -lt 200 ] || break; sleep 0.05
	done
	sleep 2.5
	R=$(now_ms)
	lab_rules full
	wait $cp
}
# per_sec LOG FROM_MS: "sent ok fail" over the seconds that began at or after FROM_MS
per_sec() {
	$LAB_PY -c 'import json, sys
s = o = f = 0
for l in open(sys.argv[1]):
    d = json.loads(l)
    if "sec" in d and d["t_ms"] >= int(sys.argv[2]):
        s += d["sent"]; o += d["ok"]; f += d["fail"]
print(s, o, f)' "$1" "$2"
}
if scenario cares; then (
	lab_up || { fail "cares: lab_up"; exit 0; }
	lab_clientpod_up || { fail "cares: lab_clientpod_up"; exit 0; }
	command -v node >/dev/null || { fail "cares: nodejs" "scripts/test-deps.sh installs it"; exit 0; }
	cares_run "$W/cares-alone.jsonl"
	# without the tool: still failing from 3 s after the rules' return on
	set -- $(per_sec "$W/cares-alone.jsonl" $((R + 3000)))
	if num "$1" "$2" "$3" && [ "$1" -ge 200 ] && [ "$3" -gt $(($1 / 2)) ]; then
		pass "c-ares under load, no tool (a lab fact): from 3 s after the rules' return, $3 of $1 lookups failed"
	else
		fail "c-ares without the tool stays stuck" "sent/ok/fail=$* $(tail -c 300 "$W/cares-alone.jsonl.err")"
	fi
	lab_ct -D -p udp -s "$CLI4" >/dev/null 2>&1   # the first run's stale entries, gone
	L=$W/cares-heal.log
	export NODE_NAME=node-cares
	# shellcheck disable=SC2046
	tester "$L" -d "$VIP4" $(ds_args heal)
	waitfor "$L" 'event=view .*view=node ' 100
	cares_run "$W/cares-heal.jsonl"
	stop_tester
	# with --heal-node (1 s interval): every lookup sent from two intervals
	# after the rules' return is answered
	set -- $(per_sec "$W/cares-heal.jsonl" $((R + 2000)))
	ch=$($LC count "$L" client_healed)
	if num "$1" "$2" "$3" && [ "$1" -ge 200 ] && [ "$3" = 0 ] && [ "$ch" -ge 1 ]; then
		pass "c-ares under load with --heal-node: $ch client_healed, and $2 of $1 lookups sent from 2 intervals after the rules' return answered, 0 failed"
	else
		fail "c-ares healed within two intervals" "sent/ok/fail=$* client_healed=$ch $(brief "$L")"
	fi
); fi
exit 0
