#!/bin/sh
# t_gone.sh - the second way an entry strands a client: DNAT'd to a backend
# that is gone (a CoreDNS rollout). The lab's VIP is load-balanced over two
# DNS backends A (POD4/POD6) and B (POD4C/POD6C); lab_rollout drops B from
# the rules and its address from the pod. Clients keep their source port,
# so an entry made to B before the rollout keeps catching their queries.
# `conntrack -L` before and after is the oracle, never the tool's output.
#
#   sudo ./test.sh gone
#   sudo GONE_ONLY="monitor scan" ./test.sh gone   some scenarios:
#     monitor heal scan slow back
#
# Modes and families are spread over the scenarios: monitor (iptables/4,
# nftables/6), heal (nftables/4, iptables/6), scan (both modes, both
# families, clients in the node's namespace and in a client pod), slow
# (iptables/6), back (nftables/4).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/lab.sh"
need_root
LC="$LAB_PY $TOP/tests/logcheck.py"
W=$OUT/gone
mkdir -p "$W"

# shellcheck disable=SC2034  # (read by lib.sh's scenario)
FILTER_VAR=GONE_ONLY

# fam 4|6: this family's addresses: N (node), C (client pod), V (VIP), A
# and B (the backends), T (query type), BR (V as the tester's -d wants it)
fam() {
	if [ "$1" = 4 ]; then N=$NODE4 C=${CLI4:-} V=$VIP4 A=$POD4 B=$POD4C T=A BR=$VIP4 ANS=$ANSWER4 NB=$NODE4
	else N=$NODE6 C=${CLI6:-} V=$VIP6 A=$POD6 B=$POD6C T=AAAA BR="[$VIP6]" ANS=$ANSWER6 NB="[$NODE6]"; fi
}
# in node|pod CMD...: CMD in the node's namespace or in the client pod's
in_ns() { if [ "$1" = node ]; then shift; lab_node "$@"; else shift; lab_clipod "$@"; fi; }
# ask node|pod SRC PORT COUNT INTERVAL TIMEOUT: client.py from SRC:PORT to V
ask() {
	in_ns "$1" "$LAB_PY" "$TOP/tests/client.py" --bind "$2" --port "$3" --server "$V" --qtype "$T" \
		--expect "$ANS" --count "$4" --interval "$5" --timeout "$6"
}
# backend_of SRC PORT: the reply source of the UDP entry SRC:PORT -> V:53 now
backend_of() {
	lab_ct -L -p udp 2>/dev/null |
		awk -v s="$1" -v p="$2" -v v="$V" '$0 ~ (" src=" s " dst=" v " sport=" p " dport=53 ") {
			n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^src=/ && ++n == 2) { print substr($i, 5); exit } }'
}
# pick node|pod SRC BACKEND N FROM: N source ports from FROM up whose first
# query (one client.py query each) was DNAT'd to BACKEND; their entries
# stay (UDP timeout) for the next socket bound there. At most 64 tries.
pick() {
	_got=0 _p=$5 _end=$(($5 + 64))
	while [ "$_got" -lt "$4" ] && [ "$_p" -lt "$_end" ]; do
		ask "$1" "$2" "$_p" 1 0.1 0.5 >/dev/null 2>&1
		[ "$(backend_of "$2" "$_p")" = "$3" ] && { echo "$_p"; _got=$((_got + 1)); }
		_p=$((_p + 1))
	done
}
# ctkeys FILE: one line per entry of `conntrack -L -o id` in FILE:
# "proto osrc odst osport odport rsrc id unreplied(0|1)"
ctkeys() {
	awk '{ n = 0; k = $1; u = 0
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^(src|dst|sport|dport)=/ && n < 4) { k = k " " substr($i, index($i, "=") + 1); n++ }
			else if ($i ~ /^src=/ && n == 4) { rs = substr($i, 5); n++ }
			else if ($i ~ /^id=/) id = substr($i, 4)
			else if ($i == "[UNREPLIED]") u = 1
		}
		print k, rs, id, u }' "$1" | sort
}
snap() { lab_ct -L -o id >"$1" 2>/dev/null; ctkeys "$1" >"$1.keys"; }
# ev LOG EVENT KEY...: KEY values of each EVENT line (the first KEY= of
# the line, before entry= and proof= quote conntrack's own src= sport=),
# one line each
ev() {
	_l=$1 _e=$2; shift 2
	grep "event=$_e " "$_l" | awk -v keys="$*" '{
		n = split(keys, k, " "); delete v
		for (i = 1; i <= NF; i++) {
			p = index($i, "="); if (!p) continue
			key = substr($i, 1, p - 1); if (key in v) continue
			v[key] = substr($i, p + 1)
		}
		out = ""; for (j = 1; j <= n; j++) out = out (j > 1 ? " " : "") v[k[j]]
		print out }'
}

# ---- a --monitor tester stranded on B by a rollout ---------------------
monitor_case() {   # MODE FAMILY
	S="monitor $1/IPv$2"
	lab_up --mode "$1" --backends 2 || { fail "$S: lab_up"; return; }
	fam "$2"
	P=$(pick node "$N" "$B" 1 31000)
	[ -n "$P" ] || { fail "$S: no port of 64 was DNAT'd to B"; return; }
	L=$W/monitor-$1-$2.log
	tester "$L" -d "$BR" -t "$T" -s "$NB:$P" -i 300ms -w 300ms --monitor
	sleep 1
	snap "$W/monitor-$1-$2.pre"
	lab_rollout || { fail "$S: lab_rollout"; stop_tester; return; }
	_i=0
	until grep -q 'event=blackhole ' "$L" || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	sleep 1.5                  # five more cycles: still one line
	snap "$W/monitor-$1-$2.post"
	stop_tester
	bp=$(if [ "$2" = 4 ]; then echo "$B:53"; else echo "[$B]:53"; fi)
	ap=$(if [ "$2" = 4 ]; then echo "$A:53"; else echo "[$A]:53"; fi)
	got="$($LC count "$L" blackhole kind=gone_backend backend="$bp" now="$ap") $($LC count "$L" blackhole) $RC"
	expect_eq "$S: one event=blackhole kind=gone_backend backend=$bp now=$ap (of all blackhole lines), exit 3" "$got" "1 1 3"
	# the proof is a fresh flow's entry, DNAT'd to A
	proof=$($LC field "$L" blackhole proof)
	case $proof in *"src=$N dst=$V "*" src=$A dst=$N "*) pass "$S: proof= is a fresh flow to the VIP DNAT'd to A" ;;
	*) fail "$S: proof= DNAT'd to A" "$proof" ;; esac
	# the oracle: our entry before and after, same ID, still DNAT'd to B
	pre=$(grep "^udp $N $V $P 53 " "$W/monitor-$1-$2.pre.keys")
	post=$(grep "^udp $N $V $P 53 " "$W/monitor-$1-$2.post.keys")
	if [ -n "$pre" ] && [ "$pre" = "$post" ] && [ "$(echo "$post" | cut -d' ' -f6)" = "$B" ]; then
		pass "$S: --monitor kept its entry (conntrack -L before and after: DNAT'd to B, id $(echo "$post" | cut -d' ' -f7))"
	else
		fail "$S: --monitor keeps its entry" "pre '$pre' post '$post'"
	fi
	n=$($LC count "$L" timeout cause=gone_backend)
	if num "$n" && [ "$n" -ge 3 ]; then pass "$S: the timeouts after the proof say cause=gone_backend ($n)"
	else fail "$S: timeouts cause=gone_backend" "$n"; fi
}

# ---- --heal heals it; the default mode re-balances it -------------------
heal_case() {   # MODE FAMILY
	S="heal $1/IPv$2" M=$1 F=$2
	lab_up --mode "$1" --backends 2 || { fail "$S: lab_up"; return; }
	fam "$2"
	# shellcheck disable=SC2046  # (one word a port)
	set -- "$1" "$2" $(pick node "$N" "$B" 2 31100)
	[ $# = 4 ] || { fail "$S: two ports DNAT'd to B"; return; }
	PH=$3 PD=$4
	# left PORT: "gone" if the entry of PORT to B before the testers (its
	# ID) is not in the table after them and no entry of PORT goes to B
	left() {
		_id=$(grep "^udp $N $V $1 53 $B " "$W/heal-$M-$F.pre.keys" | cut -d' ' -f7)
		if [ -n "$_id" ] && ! grep -q " $_id [01]\$" "$W/heal-$M-$F.post.keys" &&
		   ! grep -q "^udp $N $V $1 53 $B " "$W/heal-$M-$F.post.keys"; then echo gone; else echo "left(id '$_id')"; fi
	}
	lab_rollout || { fail "$S: lab_rollout"; return; }
	snap "$W/heal-$1-$2.pre"
	LH=$W/heal-$1-$2-heal.log LD=$W/heal-$1-$2-default.log
	lab_node "$BIN" -d "$BR" -t "$T" -s "$NB:$PD" -i 300ms -w 300ms -c 8 >"$LD" 2>&1 & TD=$!
	lab_node "$BIN" -d "$BR" -t "$T" -s "$NB:$PH" -i 300ms -w 300ms -c 10 --heal >"$LH" 2>&1; RH=$?
	wait $TD; RD=$?
	snap "$W/heal-$1-$2.post"
	for p in $PH $PD; do
		grep -q "^udp $N $V $p 53 $B " "$W/heal-$1-$2.pre.keys" || fail "$S: port $p DNAT'd to B before the testers" "$(grep " $V $p " "$W/heal-$1-$2.pre.keys")"
	done
	got="$RH $($LC count "$LH" blackhole kind=gone_backend) $($LC count "$LH" healed)"
	expect_eq "$S: --heal: exit 3, one blackhole kind=gone_backend, one healed" "$got" "3 1 1"
	# (each tester deletes its answered DNAT'd entry as it ends: the
	# oracle is that the entry to B, by its ID, is gone)
	ans=$(sed -n 's/.*event=stats .* answered=\([0-9]*\).*/\1/p' "$LH" | tail -n 1)
	got="$(left "$PH") $(num "$ans" && [ "$ans" -ge 1 ] && echo answered)"
	expect_eq "$S: --heal: its entry to B is gone (conntrack -L), answered after ($ans)" "$got" "gone answered"
	got="$RD $($LC count "$LD" blackhole) $(sed -n 's/.*event=stats .* answered=\([0-9]*\).*/\1/p' "$LD" | tail -n 1) $(left "$PD")"
	expect_eq "$S: default mode: its per-cycle delete re-balanced it (one timeout, 7/8 answered, exit 1, no claim, its entry to B gone)" \
		"$got" "1 0 7 gone"
}

# ---- scan: exactly the stranded clients, among decoys -------------------
scan_case() {   # MODE
	S="scan $1"
	D=$W/scan-$1
	lab_up --mode "$1" --backends 2 || { fail "$S: lab_up"; return; }
	lab_clientpod_up || { fail "$S: lab_clientpod_up"; return; }
	# entries left by pick's one-query clients must outlive the scenario:
	# the oracle compares the whole table before and after
	lab_node sysctl -q -w net.netfilter.nf_conntrack_udp_timeout=600 \
		net.netfilter.nf_conntrack_udp_timeout_stream=600 || { fail "$S: udp timeouts"; return; }
	: >"$D.stranded"; : >"$D.live"
	# Per family, two stranded clients in the node's namespace, two in the
	# client pod, and one live client (DNAT'd to A) in each; all keep
	# their port and query every 200 ms.
	for f in 4 6; do
		fam $f
		for w in node pod; do
			src=$N; [ $w = pod ] && src=$C
			base=$((32000 + f * 100)); [ $w = pod ] && base=$((base + 50))
			for p in $(pick $w "$src" "$B" 2 $base); do echo "$src $p" >>"$D.stranded"; done
			for p in $(pick $w "$src" "$A" 1 $((base + 30))); do echo "$src $p" >>"$D.live"; done
		done
	done
	while read -r src p; do
		case $src in *:*) fam 6 ;; *) fam 4 ;; esac
		w=node; [ "$src" = "$C" ] && w=pod
		ask $w "$src" "$p" 600 0.2 0.15 >"$D.c-$p.txt" 2>&1 &
	done <<-EOF
	$(cat "$D.stranded" "$D.live")
	EOF
	# decoys: other clients' flows (lab_decoys), and entries to B that are
	# not the VIP's UDP: TCP to VIP:53, UDP to another VIP, UDP to VIP:5353
	lab_decoys 120 >/dev/null || { fail "$S: lab_decoys"; return; }
	for f in 4 6; do
		fam $f
		lab_ct -I -p tcp -s "$N" -d "$V" --sport 29001 --dport 53 -r "$B" -q "$N" --reply-port-src 53 \
			--reply-port-dst 29001 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 --dst-nat "$B" >/dev/null 2>&1 &&
		lab_ct -I -p udp -s "$N" -d "$( [ $f = 4 ] && echo 10.0.0.20 || echo fd00:96::14)" --sport 29002 --dport 53 -r "$B" -q "$N" \
			--reply-port-src 53 --reply-port-dst 29002 -u SEEN_REPLY -t 300 --dst-nat "$B" >/dev/null 2>&1 &&
		lab_ct -I -p udp -s "$N" -d "$V" --sport 29003 --dport 5353 -r "$B" -q "$N" --reply-port-src 5353 \
			--reply-port-dst 29003 -u SEEN_REPLY -t 300 --dst-nat "$B" >/dev/null 2>&1 ||
			{ fail "$S: conntrack -I the decoys to B (IPv$f)"; return; }
	done
	n=$(grep -c . "$D.stranded")
	if [ "$n" = 8 ] && [ "$(grep -c . "$D.live")" = 4 ]; then
		pass "$S: 8 clients DNAT'd to B (2 per family, in the node and in a client pod), 4 to A"
	else
		fail "$S: clients on B and A" "stranded: $(tr '\n' ',' <"$D.stranded") live: $(tr '\n' ',' <"$D.live")"
	fi
	sleep 0.5
	lab_rollout || { fail "$S: lab_rollout"; return; }
	sleep 0.5
	snap "$D.pre"
	# What must be listed, from conntrack -L alone: every UDP entry to
	# VIP:53 DNAT'd to B (the clients above, and the entries left by
	# pick's one-query clients on B), and every one not DNAT'd and never
	# replied (lab_decoys' other clients caught by a window: no_dnat).
	awk -v v4="$VIP4" -v v6="$VIP6" -v b4="$POD4C" -v b6="$POD6C" '$1 == "udp" && ($3 == v4 || $3 == v6) && $5 == 53 {
		if ($6 == b4 || $6 == b6) print $2, $4, "gone_backend", $6
		else if ($6 == $3 && $8 == 1) print $2, $4, "no_dnat" }' "$D.pre.keys" | sort >"$D.want-all"
	grep no_dnat "$D.want-all" >"$D.want-nodnat"
	missing=
	while read -r src p; do grep -q "^$src $p gone_backend " "$D.want-all" || missing="$missing $src:$p"; done <"$D.stranded"
	n=$(grep -c gone_backend "$D.want-all")
	expect_eq "$S: the oracle (conntrack -L) has each of the 8 clients DNAT'd to B ($n such entries in all)" "${missing:-none}" none
	lab_node "$BIN" scan -d "$VIP4" -d "[$VIP6]" >"$D-1.log" 2>&1; rc=$?
	snap "$D.mid"
	ev "$D-1.log" blackholed client sport kind backend | sed 's/ \[\(.*\)\]:53$/ \1/; s/:53$//; s/ $//' | sort >"$D.got"
	if [ $rc = 3 ] && cmp -s "$D.want-all" "$D.got"; then
		pass "$S: scan lists exactly the $n stranded clients (kind=gone_backend backend=B) and the $(grep -c . "$D.want-nodnat") no_dnat decoys, exit 3"
	else
		fail "$S: scan lists exactly the stranded set" "rc=$rc $(diff "$D.want-all" "$D.got" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
	fi
	expect_eq "$S: scan_summary gone_backend=$n no_dnat=$(grep -c . "$D.want-nodnat") deleted=0" \
		"$(field "$D-1.log" scan_summary gone_backend) $(field "$D-1.log" scan_summary no_dnat) $(field "$D-1.log" scan_summary deleted)" \
		"$n $(grep -c . "$D.want-nodnat") 0"
	now=$(ev "$D-1.log" blackholed kind now | grep gone_backend | sort -u | tr '\n' ' ')
	expect_eq "$S: now= names A for each family" "$now" "gone_backend $POD4:53 gone_backend [$POD6]:53 "
	if cmp -s "$D.pre.keys" "$D.mid.keys"; then pass "$S: scan without --fix changed nothing (conntrack -L, $(grep -c . "$D.pre.keys") entries)"
	else fail "$S: scan without --fix changes nothing" "$(diff "$D.pre.keys" "$D.mid.keys" | head -n 4 | tr '\n' ' ')"; fi
	lab_node "$BIN" scan -d "$VIP4" -d "[$VIP6]" --fix --dry-run >"$D-2.log" 2>&1; rc=$?
	snap "$D.dry"
	got="$rc $(ev "$D-2.log" scan_would_delete client sport | grep -c .) $(field "$D-2.log" scan_summary deleted)"
	if [ "$got" = "3 $(grep -c . "$D.want-all") 0" ] && cmp -s "$D.pre.keys" "$D.dry.keys"; then
		pass "$S: --fix --dry-run: $(grep -c . "$D.want-all") scan_would_delete, deleted=0, conntrack -L unchanged"
	else
		fail "$S: --fix --dry-run deletes nothing" "$got $(diff "$D.pre.keys" "$D.dry.keys" | head -n 3 | tr '\n' ' ')"
	fi
	t0=$(now_ms)
	lab_node "$BIN" scan -d "$VIP4" -d "[$VIP6]" --fix --heal-rate 10 >"$D-3.log" 2>&1; rc=$?
	took=$(($(now_ms) - t0))
	snap "$D.post"
	ev "$D-3.log" scan_deleted client sport kind backend | sed 's/ \[\(.*\)\]:53$/ \1/; s/:53$//; s/ $//' | sort >"$D.del"
	# the oracle: each deleted entry is gone (its ID with its reply source:
	# a client still sending makes a new entry at once, which the kernel
	# may give the same ID, since CTA_ID hashes the slab address and the
	# tuple; the new one is DNAT'd to A); every other entry of the table
	# before is still there with its ID
	awk 'FNR == NR { del[$1 " " $2] = 1; next }
	     { k = $2 " " $4 }
	     FILENAME ~ /pre.keys$/ && !(k in del) { keep[$0] = 1 }
	     FILENAME ~ /pre.keys$/ && (k in del) { gone[$7] = $6 }
	     FILENAME ~ /post.keys$/ { now[$0] = 1; ids[$7] = $6 }
	     END { for (e in keep) if (!(e in now)) { print "lost: " e; bad = 1 }
	           for (i in gone) if ((i in ids) && ids[i] == gone[i]) { print "still there: id " i " reply from " gone[i]; bad = 1 }
	           exit bad }' "$D.want-all" "$D.pre.keys" "$D.post.keys" >"$D.bad"; ok=$?
	if [ $rc = 3 ] && cmp -s "$D.want-all" "$D.del" && [ $ok = 0 ]; then
		pass "$S: --fix deleted exactly the listed entries; the other $(($(grep -c . "$D.pre.keys") - $(grep -c . "$D.del"))) entries kept with their IDs (live flows to A, TCP, another VIP, another port to B)"
	else
		fail "$S: --fix deletes exactly them" "rc=$rc $(diff "$D.want-all" "$D.del" | grep '^[<>]' | head -n 3 | tr '\n' ' ') $(head -n 3 "$D.bad" | tr '\n' ' ')"
	fi
	# --heal-rate 10: ten at once, then one every 100 ms (a lower bound on
	# the time, which no machine can beat)
	k=$(grep -c . "$D.del")
	if [ $((took * 10)) -ge $(((k - 10) * 1000)) ]; then
		pass "$S: --heal-rate 10: $k deletions took $took ms (at least $(((k - 10) * 100)) ms)"
	else
		fail "$S: --heal-rate 10 paces the deletions" "$k deletions in $took ms"
	fi
	sleep 1
	bad=
	while read -r src p; do
		tail -n 3 "$D.c-$p.txt" | grep -q '^ok ' || bad="$bad $src:$p"
	done <"$D.stranded"
	expect_eq "$S: the stranded clients are answered again after --fix (same port)" "${bad:-none}" none
}

# ---- a slow backend that answers is never claimed -----------------------
# A terminating pod that still serves: B answers every query 600 ms late
# and is out of the rules (lab.sh: $LAB_DIR/eps is how many endpoints the
# rules name), so fresh flows go to A and B is asked straight.
slow_case() {   # MODE FAMILY
	S="slow $1/IPv$2"
	lab_up --mode "$1" --backends 2 || { fail "$S: lab_up"; return; }
	fam "$2"
	P=$(pick node "$N" "$B" 1 31200)
	[ -n "$P" ] || { fail "$S: no port of 64 was DNAT'd to B"; return; }
	lab_backend_slow 600 || { fail "$S: lab_backend_slow 600"; return; }
	{ echo 1 >"$LAB_DIR/eps" && lab_rules full; } || { fail "$S: B out of the rules"; return; }
	L=$W/slow-$1-$2.log
	lab_node "$BIN" -d "$BR" -t "$T" -s "$NB:$P" -i 1s -w 2s -c 4 --monitor -v >"$L" 2>&1; rc=$?
	slow=$(ev "$L" reply rtt_ms | awk '$1 >= 600 { n++ } END { print n + 0 }')
	got="$rc $($LC count "$L" blackhole) $(sed -n 's/.*event=stats .* answered=\([0-9]*\).*/\1/p' "$L") $slow"
	expect_eq "$S: --monitor -w 2s on B answering after 600 ms: 4/4 answered, each in 600 ms or more, no claim, exit 0" "$got" "0 0 4 4"
	lab_node "$BIN" scan -d "$BR" -w 2s >"$L.scan" 2>&1; src=$?
	expect_eq "$S: scan -w 2s: B asked straight (backends_asked=1), nothing listed, exit 0" \
		"$src $(field "$L.scan" scan_summary backends_asked) $(field "$L.scan" scan_summary blackholed)" "0 1 0"
	# the same scan with a timeout B cannot meet: the check above is live
	lab_node "$BIN" scan -d "$BR" -w 300ms >"$L.scan2" 2>&1; src=$?
	expect_eq "$S: scan -w 300ms (B answers after 600 ms): our entry listed gone_backend, exit 3" \
		"$src $(ev "$L.scan2" blackholed sport kind | grep -c "^$P gone_backend$")" "3 1"
}

# ---- a backend that comes back before the proof is never claimed --------
back_case() {   # MODE FAMILY
	S="back $1/IPv$2"
	lab_up --mode "$1" --backends 2 || { fail "$S: lab_up"; return; }
	fam "$2"
	P=$(pick node "$N" "$B" 1 31300)
	[ -n "$P" ] || { fail "$S: no port of 64 was DNAT'd to B"; return; }
	L=$W/back-$1-$2.log
	# 3 s between queries: one query unanswered (one ask of B, one strike),
	# then the tester is held still while B comes back, so no second query
	# or ask can meet B gone whatever the machine's speed.
	tester "$L" -d "$BR" -t "$T" -s "$NB:$P" -i 3s -w 500ms --monitor
	sleep 0.5
	lab_rollout || { fail "$S: lab_rollout"; stop_tester; return; }
	_i=0
	until grep -q 'event=timeout ' "$L" || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -STOP "$TPID"
	lab_rollback; rb=$?
	kill -CONT "$TPID"
	t_back=$(now_ms)
	sleep 7
	stop_tester
	got="$rb $($LC count "$L" blackhole) $RC"
	expect_eq "$S: B back after one unanswered query: no claim, exit 0" "$got" "0 0 0"
	# the query in flight while it was held may time out; every one
	# sent a tick after B was back is answered
	late=$($LC after "$L" timeout $((t_back + 3500)))
	n=$(sed -n 's/.*event=stats .* answered=\([0-9]*\).*/\1/p' "$L")
	if [ "$late" = 0 ] && num "$n" && [ "$n" -ge 2 ]; then
		pass "$S: its queries are answered again through the same entry ($n answered, no timeout a tick after B was back)"
	else
		fail "$S: answered again" "timeouts after: $late answered=$n"
	fi
}

if scenario monitor; then ( monitor_case iptables 4 ); ( monitor_case nftables 6 ); fi
if scenario heal; then ( heal_case nftables 4 ); ( heal_case iptables 6 ); fi
if scenario scan; then ( scan_case iptables ); ( scan_case nftables ); fi
if scenario slow; then ( slow_case iptables 6 ); fi
if scenario back; then ( back_case nftables 4 ); fi
