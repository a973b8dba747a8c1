#!/bin/sh
# t_nodegone.sh - the node watch and the second kind (kind=gone_backend):
# clients DNAT'd to a backend that is gone (a CoreDNS rollout) are proven
# (fresh flows answered elsewhere, the backend silent when asked straight
# twice), reported once each and, with --heal-node, deleted - exactly
# those, and nothing else in the table. Nothing is deleted under
# --watch-node or --dry-run. In the lab with two DNS backends A and B
# (lab_up --backends 2; lab_rollout removes B), both kube-proxy modes and
# both families, clients in the node's namespace and in a client pod
# routed through the node; conntrack-tools is the oracle.
#
#   sudo ./test.sh nodegone
#   sudo NODEGONE_ONLY="heal watch" ./test.sh nodegone   some scenarios:
#     heal pod watch dry slow
#
# Ports: idle replied flows 21000-21199, active clients 22000-22039,
# decoys 24000-24099: all below the ephemeral range, so the tester's own
# flow and every probe (ephemeral) are told apart by port alone.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"
NC="$LAB_PY $TOP/tests/node_clients.py"
W=$OUT/nodegone
mkdir -p "$W"
FILTER_VAR=NODEGONE_ONLY

wait_file() { _i=0; while [ ! -e "$1" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done; [ -e "$1" ]; }
# fam 4|6: the family's addresses
fam() {
	if [ "$1" = 4 ]; then node=$NODE4 vip=$VIP4 srv=$VIP4 qt=A pod=$POD4 podc=$POD4C vip2=10.0.0.20
	else node=$NODE6 vip=$VIP6 srv="[$VIP6]" qt=AAAA pod=$POD6 podc=$POD6C vip2=fd00:96::14; fi
}
# The table as conntrack-tools prints it, without what time changes and
# without flows from ephemeral ports (the tester's and the probes').
table() {
	lab_ct -L 2>/dev/null | _lab_canon | awk '{
		for (i = 1; i <= NF; i++) if ($i ~ /^sport=/) { split($i, s, "="); break }
		if (s[2] + 0 < 32768) print }' | sort
}
# The stranded set in a table: UDP to VIP:53 DNAT'd to B ("sport" list).
on_b() { grep "^udp .* dst=$vip sport=[0-9]* dport=53 .*src=$podc " "$1" | sed -n 's/.* sport=\([0-9]*\) dport=53 .*/\1/p' | sort -n; }
# decoys the watch must keep, 20 of each: TCP to the VIP DNAT'd to B,
# UDP to the VIP's port 5353 DNAT'd to B, UDP to another VIP DNAT'd to B,
# an unreplied flow straight to A's address.
decoys() {
	for i in $(seq 0 19); do
		p=$((24000 + i)) q=$((24020 + i)) r=$((24040 + i)) s=$((24060 + i))
		echo "-I -t 600 -u SEEN_REPLY,ASSURED -p tcp -s $node -d $vip --sport $p --dport 53 -r $podc -q $node --reply-port-src 53 --reply-port-dst $p --state ESTABLISHED --dst-nat $podc"
		echo "-I -t 600 -u SEEN_REPLY -p udp -s $node -d $vip --sport $q --dport 5353 -r $podc -q $node --reply-port-src 5353 --reply-port-dst $q --dst-nat $podc"
		echo "-I -t 600 -u SEEN_REPLY -p udp -s $node -d $vip2 --sport $r --dport 53 -r $podc -q $node --reply-port-src 53 --reply-port-dst $r --dst-nat $podc"
		echo "-I -t 600 -u UNSET -p udp -s $node -d $pod --sport $s --dport 53 -r $pod -q $node --reply-port-src 53 --reply-port-dst $s"
	done >"$W/decoys.load"
	lab_ct -R "$W/decoys.load" >/dev/null 2>&1
}
# first_ok_after LOG MS: per client port, ms from MS to its first answer after MS
first_ok_after() {
	awk -v t="$2" '$1 == "ok" && $3 > t && !($2 in f) { f[$2] = $3 - t }
		$1 == "sent" { p[$2] = 1 }
		END { for (k in p) print k, (k in f ? f[k] : "never") }' "$1" | sort -n
}
# ports LOG EVENT: the sports of EVENT lines with kind=gone_backend, sorted, one a line
ports() { grep "event=$2 kind=gone_backend " "$1" | sed -n 's/.* client=[^ ]* sport=\([0-9]*\) .*/\1/p' | sort -n; }

# gone_case heal|watch|dry MODE FAMILY node|pod [acct]
gone_case() {
	lab_up --mode "$2" --backends 2 || { fail "$1 $2 IPv$3 $4: lab_up"; return; }
	fam "$3"
	n="$1 $2/IPv$3/$4${5:+/acct}"
	L=$W/$1-$2-$3-$4.log C=$W/$1-$2-$3-$4.clients
	rm -f "$C" "$W/ready"
	[ -n "${5:-}" ] && lab_node sysctl -qw net.netfilter.nf_conntrack_acct=1
	run=lab_node cbind=$node
	if [ "$4" = pod ]; then
		lab_clientpod_up || { fail "$n: lab_clientpod_up"; return; }
		run=lab_clipod
		if [ "$3" = 4 ]; then cbind=$CLI4; else cbind=$CLI6; fi
	fi
	decoys
	$run $NC --bind "$cbind" --ports 21000-21199 --server "$vip" --qtype $qt --once >"$W/idle" 2>&1 ||
		{ fail "$n: 200 idle replied flows" "$(cat "$W/idle")"; return; }
	case $1 in heal) mode=--heal-node ;; watch) mode=--watch-node ;; dry) mode="--heal-node --dry-run" ;; esac
	# shellcheck disable=SC2086
	tester "$L" -d "$srv" -t $qt -i 200ms -w 300ms $mode --heal-rate 1000
	$run $NC --bind "$cbind" --ports 22000-22039 --server "$vip" --qtype $qt --interval 0.1 \
		--duration 6 --log "$C" --ready "$W/ready" &
	cpid=$!
	wait_file "$W/ready"; sleep 1
	table >"$W/before"
	on_b "$W/before" >"$W/set"
	r=$(now_ms)
	lab_rollout || { fail "$n: lab_rollout"; kill $cpid; return; }
	r2=$(now_ms)   # B's addresses are gone: an answer from now on is A's
	sleep 3.5
	table >"$W/after"
	wait $cpid
	stop_tester
	want=$(wc -l <"$W/set")
	on_b "$W/after" >"$W/left"
	# Everything but the stranded set and the active clients (whose
	# entries change as they are answered) is as it was.
	awk '{ print " sport=" $1 " dport=53 " }' "$W/set" >"$W/set.pat"
	grep -v -e ' sport=220[0-3][0-9] ' "$W/before" | grep -v -F -f "$W/set.pat" >"$W/b"
	grep -v -e ' sport=220[0-3][0-9] ' "$W/after" | grep -v -F -f "$W/set.pat" >"$W/a"
	bh=$(ports "$L" client_blackholed | tr '\n' ' ') setl=$(tr '\n' ' ' <"$W/set")
	decoys_kept=$(grep -c " sport=240[0-9][0-9] " "$W/a")
	others="$(wc -l <"$W/b") other entries ($decoys_kept decoys)"
	if [ "$want" -ge 20 ] && [ "$(grep -c '^220' "$W/set")" -ge 5 ]; then
		pass "$n: the lab: $want replied flows DNAT'd to B before the rollout ($(grep -c '^220' "$W/set") of them active clients)"
	else
		fail "$n: the lab" "only $want flows on B before the rollout ($(grep -c '^220' "$W/set") active)"
	fi
	if [ "$1" = heal ]; then
		healed=$(ports "$L" client_healed | tr '\n' ' ')
		first_ok_after "$C" "$r2" | grep -F -w -f "$W/set" >"$W/first"
		never=$(grep -c never "$W/first")
		worst=$(grep -v never "$W/first" | awk '{ print $2 }' | sort -n | tail -n1)
		dup=$(ports "$L" client_healed | uniq -d | wc -l)
		if [ "$bh" = "$setl" ] && [ "$healed" = "$setl" ] && [ "$dup" = 0 ] && [ ! -s "$W/left" ] && [ "$never" = 0 ] &&
		   [ "$($LC count "$L" client_blackholed kind=no_dnat)" = 0 ]; then
			pass "$n: exactly the $want flows on the gone backend ($(grep -c '^220' "$W/set") active clients) reported and healed once each (kind=gone_backend); every active client on B answered again (by A), the last ${worst} ms after B's address was gone"
		else
			fail "$n: heal" "want: $setl; blackholed: $bh; healed: $healed; dup=$dup left on B: $(tr '\n' ' ' <"$W/left") unanswered=$never"
		fi
		if cmp -s "$W/b" "$W/a" && [ "$decoys_kept" = 80 ]; then
			pass "$n: conntrack -L before/after: $others unchanged (TCP, other port and other VIP on B; flows on A)"
		else
			fail "$n: nothing else changed" "decoys=$decoys_kept $(diff "$W/b" "$W/a" | head -n 4 | tr '\n' ' ')"
		fi
	else
		would=$(ports "$L" client_would_heal | tr '\n' ' ')
		[ "$1" = dry ] && expect_would=$setl || expect_would=
		if [ "$bh" = "$setl" ] && [ "$($LC count "$L" client_healed)" = 0 ] && [ "$would" = "$expect_would" ] &&
		   cmp -s "$W/set" "$W/left" && cmp -s "$W/b" "$W/a"; then
			pass "$n: each of the $want flows on the gone backend reported once, nothing deleted (conntrack -L: all $want still DNAT'd to B, $others unchanged)"
		else
			fail "$n: $1 only" "want: $setl; blackholed: $bh; would: $would; healed lines=$($LC count "$L" client_healed); left on B: $(wc -l <"$W/left")"
		fi
	fi
	lab_down
}

if scenario heal; then
	( gone_case heal iptables 4 node )
	( gone_case heal nftables 6 node acct )
fi
if scenario pod; then
	( gone_case heal nftables 4 pod )
	( gone_case heal iptables 6 pod )
fi
if scenario watch; then
	( gone_case watch nftables 4 node )
fi
if scenario dry; then
	( gone_case dry iptables 6 node )
fi

# ---- slow: a backend that answers late is never claimed -----------------
# B answers every query 600 ms late (lab_backend_slow 600); -w 2s: asked
# straight, it answers within the timeout each time. Its clients are
# reported nowhere and deleted never, over 4 s of asks.
if scenario slow; then (
	lab_up --mode nftables --backends 2 || { fail "slow: lab_up"; exit 0; }
	fam 4
	L=$W/slow.log
	lab_node $NC --bind "$node" --ports 21000-21199 --server "$vip" --once >"$W/idle" 2>&1
	lab_backend_slow 600 || { fail "slow: lab_backend_slow"; exit 0; }
	table >"$W/before"
	on_b "$W/before" >"$W/set"
	tester "$L" -d "$srv" -i 500ms -w 2s --heal-node
	sleep 4
	stop_tester
	table >"$W/after"
	on_b "$W/after" >"$W/left"
	asks=$(grep -c . "$LAB_DIR/slowb.q" 2>/dev/null || echo 0)
	if [ "$(wc -l <"$W/set")" -ge 20 ] && [ "$($LC count "$L" client_blackholed)" = 0 ] && [ "$($LC count "$L" client_healed)" = 0 ] &&
	   cmp -s "$W/set" "$W/left" && [ "$asks" -ge 4 ]; then
		pass "slow: B answering 600 ms late (-w 2s): asked $asks times, none of its $(wc -l <"$W/set") flows reported or deleted (conntrack -L: all still DNAT'd to B)"
	else
		fail "slow" "on B: $(wc -l <"$W/set") before, $(wc -l <"$W/left") after; blackholed=$($LC count "$L" client_blackholed) healed=$($LC count "$L" client_healed) asks=$asks"
	fi
); fi
