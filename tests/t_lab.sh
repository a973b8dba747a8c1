#!/bin/sh
# tests/t_lab.sh - self-test of the namespace lab (tests/lab.sh and
# tests/client.py), so other groups can trust it as their ground.
#
# For both kube-proxy modes x both DNS servers x both families it shows the
# bug the project is about, with conntrack as the oracle:
#   - through the Service VIP the client is answered (entry DNAT'd to the pod);
#   - with the kube-dns rules gone, a query from a fixed port leaves an
#     entry to the VIP without DNAT ([UNREPLIED] src=VIP);
#   - with the rules back, that port keeps timing out, another port is
#     answered, and deleting that one entry heals the port.
# Plus, once each: lab_window, lab_dns_stop/start, lab_decoys and its
# check, and that lab_down leaves no namespace, process or file behind.
# shellcheck source=tests/lib.sh
. "${TOP:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$TOP/tests/lab.sh"
need_root

# fam 4|6: the addresses of that family.
fam() {
	if [ "$1" = 4 ]; then node=$NODE4 vip=$VIP4 pod=$POD4; else node=$NODE6 vip=$VIP6 pod=$POD6; fi
}

# ct_entry FAM PORT: the node's conntrack entry for NODE:PORT -> VIP:53/udp.
ct_entry() {
	lab_ct -L -f "ipv$1" -p udp --orig-src "$node" --orig-dst "$vip" --sport "$2" --dport 53 2>/dev/null
}

# gw_dropped 4|6: packets of that family the gateway has dropped so far.
gw_dropped() {
	lab_gw nft list chain inet lab-gw in | sed -n "s/.* counter packets \([0-9]*\) .*\"v$1-dropped\".*/\1/p"
}

# node_unreach 4|6: ICMP destination-unreachable messages the node got.
# shellcheck disable=SC2016
node_unreach() {
	if [ "$1" = 4 ]; then
		lab_node awk '$1 == "Icmp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "InDestUnreachs") c = i; h = 1 } else print $c }' /proc/net/snmp
	else
		lab_node awk '$1 == "Icmp6InDestUnreachs" { print $2 }' /proc/net/snmp6
	fi
}

# expect_client NAME WANT_OKS WANT_TIMEOUTS CLIENT_ARGS...: runs lab_client
# and checks how many lines were ok and how many timed out.
expect_client() {
	_n=$1 _ok=$2 _to=$3; shift 3
	lab_client "$@" >"$OUT/client.txt" 2>&1
	got="ok=$(grep -c '^ok ' "$OUT/client.txt") timeout=$(grep -c '^timeout$' "$OUT/client.txt")"
	expect_eq "$_n" "$got" "ok=$_ok timeout=$_to"
}

# has NAME TEXT PATTERN: TEXT contains the fixed string PATTERN.
has() {
	case $2 in *"$3"*) pass "$1" ;; *) fail "$1" "no '$3' in: $(echo "$2" | tr '\n' ' ')" ;; esac
}

# The heart of it, in one family. Ports: 4x00 answered, 4x01 blackholed,
# 4x02 another port after the window.
blackhole() {
	f=$1 t="$tag v$1"; fam "$f"
	okp=4${f}00 stuck=4${f}01 other=4${f}02

	expect_client "$t: answered via the VIP" 2 0 "$okp" "$f" 2 0.05 0.5
	has "$t: entry DNAT'd to the pod" "$(ct_entry "$f" "$okp")" "src=$pod dst=$node sport=53 dport=$okp"

	lab_rules window || fail "$t: lab_rules window"
	d0=$(gw_dropped "$f") u0=$(node_unreach "$f")
	expect_client "$t: no answer in the window" 0 1 "$stuck" "$f" 1 0 0.5
	has "$t: window entry without DNAT" "$(ct_entry "$f" "$stuck")" "[UNREPLIED] src=$vip dst=$node sport=53 dport=$stuck"
	# The query reached the gateway (neighbour resolved) and died there
	# quietly: no ICMP error came back to the node.
	check "$t: gw dropped the query" test "$(gw_dropped "$f")" -gt "$d0"
	expect_eq "$t: no ICMP unreachable at the node" "$(node_unreach "$f")" "$u0"

	lab_rules full || fail "$t: lab_rules full"
	expect_client "$t: same port still blackholed after restore" 0 2 "$stuck" "$f" 2 0.1 0.5
	has "$t: stale entry stays" "$(ct_entry "$f" "$stuck")" "[UNREPLIED] src=$vip dst=$node sport=53 dport=$stuck"
	expect_client "$t: another port answered after restore" 1 0 "$other" "$f" 1 0 0.5

	check "$t: conntrack -D of the stale entry" lab_ct -D -f "ipv$f" -p udp \
		--orig-src "$node" --orig-dst "$vip" --sport "$stuck" --dport 53
	expect_client "$t: port healed" 1 0 "$stuck" "$f" 1 0 0.5
	has "$t: healed entry DNAT'd" "$(ct_entry "$f" "$stuck")" "src=$pod dst=$node sport=53 dport=$stuck"
}

# Facts about the lab itself, checked while it is up.
lab_facts() {
	expect_eq "$tag: udp timeout left at default" \
		"$(lab_node sysctl -n net.netfilter.nf_conntrack_udp_timeout)" 30
	# Both node veths have their peer in a lab namespace, none in the root one.
	expect_eq "$tag: veth peers are lab namespaces" \
		"$(ip -n "$NS_NODE" -o -d link show type veth | grep -o 'link-netns [^ ]*' | sort | tr '\n' ' ')" \
		"link-netns $NS_GW link-netns $NS_POD "
	# Other names: NXDOMAIN (rcode 3), never forwarded.
	lab_node "$LAB_PY" "$TOP/tests/client.py" --bind "$NODE4" --port 40900 --server "$VIP4" \
		--name nosuch.example --timeout 0.5 >"$OUT/client.txt" 2>&1
	expect_eq "$tag: other names NXDOMAIN" "$(cat "$OUT/client.txt")" "bad rcode=3"
}

# A fixed-port client whose first query falls in a restart window stays
# stuck after the rules are back. (One that started before the window
# keeps its DNAT'd entry and is never hurt: only new flows meet the window.)
window_run() {
	lab_window 0.5 2 0.2 >"$OUT/window.txt" 2>&1 &
	wpid=$!
	sleep 0.2
	lab_client 40500 4 20 0.05 0.1 >"$OUT/client-bg.txt" 2>&1 &
	cpid=$!
	wait "$wpid"
	expect_eq "$tag: lab_window 0.5 2 0.2" "$?" 0
	wait "$cpid"
	expect_eq "$tag: client started in a window fails" "$?" 1
	expect_eq "$tag: ... every query, also after the windows" \
		"$(grep -c '^timeout$' "$OUT/client-bg.txt")" 20
	f=4; fam 4
	has "$tag: its entry has no DNAT" "$(ct_entry 4 40500)" "[UNREPLIED] src=$vip dst=$node sport=53 dport=40500"
	expect_client "$tag: a new port is answered after the windows" 1 0 40501 4 1 0 0.5
	expect_eq "$tag: windows.log has two windows of 0.5 s" \
		"$(awk '$1 == "open" && $3 == "close" && $4 - $2 >= 500 && $4 - $2 < 5000' "$LAB_DIR/windows.log" | wc -l)" 2
}

# "The DNS pod stopped": no answer on a fresh port; back once restarted.
dns_restart() {
	_pid=$(cat "$LAB_DIR/dns.pid")
	check "$tag: lab_dns_stop" lab_dns_stop
	check "$tag: DNS server process gone" sh -c "! kill -0 $_pid 2>/dev/null || grep -q '^[^ ]* ([^)]*) Z' /proc/$_pid/stat"
	expect_client "$tag: no answer while DNS is stopped" 0 1 40600 4 1 0 0.5
	check "$tag: lab_dns_start" lab_dns_start
	expect_client "$tag: answered after restart" 1 0 40601 4 1 0 0.5
}

# Decoys go in, survive the blackhole tests (whose conntrack -D targets
# only the stale entry), and the check notices a missing and a changed one.
decoys_in() {
	t0=$(date +%s%3N)
	check "$tag: lab_decoys 1000" lab_decoys 1000
	echo "lab_decoys 1000 took $(($(date +%s%3N) - t0)) ms" >>"$OUT/lab-timing.txt"
	expect_eq "$tag: decoys.txt lists 1000" "$(wc -l <"$LAB_DIR/decoys.txt")" 1000
}
decoys_after() {
	check "$tag: decoys intact after the blackhole tests" lab_decoys_check
	lab_ct -D -p udp -s 10.224.0.50 -d "$VIP4" --sport 20000 --dport 53 >/dev/null 2>&1
	lab_ct -U -p udp -s "$NODE4" -d "$VIP4" --sport 20000 --dport 53 -m 7 >/dev/null 2>&1
	lab_decoys_check >"$OUT/decoys-check.txt"
	expect_eq "$tag: decoys check fails when tampered" "$?" 1
	expect_eq "$tag: decoys check names the missing one" \
		"$(grep -c '^missing: udp 17 src=10.224.0.50 dst=10.0.0.10 sport=20000 dport=53 ' "$OUT/decoys-check.txt")" 1
	expect_eq "$tag: decoys check names the changed one" \
		"$(grep -c '^changed: .* -> now: .*sport=20000 dport=53 .* mark=7' "$OUT/decoys-check.txt")" 1
}

# After lab_down: no namespace, process or temp dir of that lab is left.
gone() {
	_lab=$1 _dir=$2 _pid=$3
	expect_eq "$tag: no namespace left" "$(ip netns list | awk '{print $1}' | grep -c "^${_lab}[npg]\$")" 0
	expect_eq "$tag: no process left" "$(pgrep -c -f -- "$_dir/")" 0
	check "$tag: DNS server pid $_pid gone" sh -c "! kill -0 $_pid 2>/dev/null"
	check "$tag: temp dir removed" test ! -e "$_dir"
}

combo() {
	tag="$1/$2"
	t0=$(date +%s%3N)
	if ! lab_up --mode "$1" --dns "$2" 2>"$OUT/lab_up.err"; then
		fail "$tag: lab_up" "$(tr '\n' ' ' <"$OUT/lab_up.err")"
		return
	fi
	pass "$tag: lab_up"
	echo "$tag lab_up took $(($(date +%s%3N) - t0)) ms" >>"$OUT/lab-timing.txt"
	lab=$LAB dir=$LAB_DIR
	lab_facts
	[ "$3" = decoys ] && decoys_in
	blackhole 4
	blackhole 6
	[ "$3" = decoys ] && decoys_after
	window_run
	dns_restart
	dnspid=$(cat "$LAB_DIR/dns.pid")
	lab_down
	gone "$lab" "$dir" "$dnspid"
}

: >"$OUT/lab-timing.txt"
combo iptables dnsmasq decoys
combo iptables unbound
combo nftables dnsmasq
combo nftables unbound decoys
# lab_down again: idempotent, harmless.
check "lab_down twice" lab_down
