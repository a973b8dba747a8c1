# tests/lab.sh - a network-namespace lab that emulates one Kubernetes node,
# enough to reproduce the kube-proxy DNS blackhole (kubernetes#126468).
# Source it (POSIX sh; works under dash), then:
#
#   lab_up [--mode iptables|nftables] [--dns dnsmasq|unbound] [--backends 1|2]
#   lab_client 40000 4 5 0.2 0.5        # port family count interval timeout
#   lab_window 2 3 1                    # 3 restart windows of 2 s, 1 s apart
#   lab_ct -L                           # conntrack in the node namespace
#   lab_down                            # also run by the trap lab_up sets
#
# With --backends 2 (a second CoreDNS pod, backend B):
#   lab_rollout                         # B leaves the rules and the pod
#   lab_rollback                        # B is back: address, server, rules
#   lab_backend_slow 600                # B answers every query 600 ms late
#   lab_backend_slow 0                  # B's real server again
# On any lab:
#   lab_clientpod_up; lab_clipod CMD... # a client pod routed through the node
#   lab_nodelocal_up                    # NodeLocal DNSCache on 169.254.20.10
#   ip netns exec "$NS_CLI" node "$LAB_TOP/tests/cares_client.js" --server "$VIP4"
#                                       # a real c-ares client under load
#
# Three namespaces, linked only to each other by veth pairs (nothing is
# ever linked to, routed to or changed in the root namespace):
#
#   gw  10.224.0.1/16 fd00:224::1/64   the node's default gateway: drops all
#    |  (gw0 <-> eth0)
#   node 10.224.0.8/16 fd00:224::8/64  where clients run; kube-proxy's nat
#        10.244.0.1/24 fd00:244::1/64  rules and the conntrack table live here
#    |  (pod0 <-> eth0)
#   pod 10.244.0.2,.3/24 fd00:244::2,::3/64   the CoreDNS pod (dnsmasq or
#                                              unbound on .2 / ::2, port 53)
#
# Service VIPs (owned by nobody): kube-dns 10.0.0.10 / fd00:96::a port 53
# (udp and tcp) -> pod .2 / ::2 port 53; "kubernetes" 10.0.0.1 / fd00:96::1
# tcp 443 -> pod .3 / ::3 port 6443. The 443 DNAT always stays, so conntrack
# stays active while the kube-dns rules are gone (ENGINEERING.md section 2).
# With the kube-dns rules gone, a query to the VIP follows the default route
# to gw and dies there, leaving an unreplied entry without DNAT.
#
# Backend B (--backends 2): POD4C=10.244.0.4 / POD6C=fd00:244::4, secondary
# addresses on the pod's eth0 (removing them leaves .2/.3), served by a
# second dnsmasq/unbound instance with the same data. The kube-dns VIP
# then picks A or B at random per new flow: iptables `-m statistic --mode
# random --probability 0.5`, nftables `numgen random mod 2 vmap`, udp and
# tcp, both families; $LAB_DIR/eps says how many endpoints the rules name
# now, so lab_window's "full" is whatever lab_rollout/lab_rollback left.
# The default (one backend) writes the same rules as before.
#
# Client pod (lab_clientpod_up): namespace NS_CLI, CLI4=10.245.0.2/24 via
# 10.245.0.1 (CLIGW4), CLI6=fd00:245::2/64 via fd00:245::1 (CLIGW6) on the
# node's cli0; forwarding on in the node. Its flows are forwarded flows:
# kube-proxy's rules meet them in the nat prerouting chain (both modes
# always have it), their entries live in the node's table, and its own
# namespace tracks nothing. A window removes the VIP's DNAT from output
# and prerouting alike (both jump to the same services chain).
#
# NodeLocal DNSCache (lab_nodelocal_up): NODELOCAL4=169.254.20.10 on the
# node's lo, a dnsmasq cache there forwarding to VIP4, raw-table NOTRACK.
#
# The DNS server answers kubernetes.default.svc.cluster.local with A
# 10.96.0.1 and AAAA fd00:96::1 from local data (AA set); every other name
# gets NXDOMAIN. It never forwards anything anywhere.
#
# One lab per shell: the lab's state is in the variables lab_up exports.
# lab_up owns the EXIT, INT and TERM traps of the shell that calls it; a
# caller that needs its own cleanup should call lab_down from its trap.
# Helper variables are prefixed _lab_ so they don't clash with the caller's.

LAB_TOP=${LAB_TOP:-${TOP:-$(cd "$(dirname "$0")/.." && pwd)}}
# Debian's python3 (what scripts/test-deps.sh installs) starts in 20 ms; a
# version-manager shim found first on PATH may take 100 ms per query loop.
if [ -z "${LAB_PY:-}" ]; then
	if [ -x /usr/bin/python3 ]; then LAB_PY=/usr/bin/python3; else LAB_PY=python3; fi
fi
LAB_DECOY_TIMEOUT=${LAB_DECOY_TIMEOUT:-600}

_lab_err() { echo "lab: $*" >&2; }

# _lab_run WHAT CMD...: run CMD; on failure say WHAT and CMD's stderr.
_lab_run() {
	_lab_what=$1; shift
	if ! "$@" 2>"${LAB_DIR:-/tmp}/.err"; then
		_lab_err "$_lab_what failed: $(tr '\n' ' ' <"${LAB_DIR:-/tmp}/.err")"
		return 1
	fi
}

# _lab_need FUNCTION: fail unless a lab is up in this shell.
_lab_need() {
	[ -n "${LAB:-}" ] && [ -d "${LAB_DIR:-/nonexistent}" ] && return 0
	_lab_err "$1: no lab is up in this shell (call lab_up first)"
	return 1
}

# Wall-clock milliseconds since the epoch (GNU date).
_lab_ms() { date +%s%3N; }

lab_node() { ip netns exec "$NS_NODE" "$@"; }
lab_pod() { ip netns exec "$NS_POD" "$@"; }
lab_gw() { ip netns exec "$NS_GW" "$@"; }
lab_ct() { ip netns exec "$NS_NODE" conntrack "$@"; }

# ---------------------------------------------------------------- lab_up

lab_up() {
	LAB_MODE=iptables LAB_DNS=dnsmasq LAB_BACKENDS=1
	while [ $# -gt 0 ]; do
		case $1 in
		--mode) LAB_MODE=${2:-}; shift 2 || return 1 ;;
		--dns) LAB_DNS=${2:-}; shift 2 || return 1 ;;
		--backends) LAB_BACKENDS=${2:-}; shift 2 || return 1 ;;
		*) _lab_err "lab_up: unknown argument '$1'"; return 1 ;;
		esac
	done
	case $LAB_MODE in iptables|nftables) ;; *) _lab_err "lab_up: --mode iptables|nftables"; return 1 ;; esac
	case $LAB_DNS in dnsmasq|unbound) ;; *) _lab_err "lab_up: --dns dnsmasq|unbound"; return 1 ;; esac
	case $LAB_BACKENDS in 1|2) ;; *) _lab_err "lab_up: --backends 1|2"; return 1 ;; esac
	if [ -n "${LAB:-}" ]; then _lab_err "lab_up: lab $LAB is already up in this shell"; return 1; fi

	NODE4=10.224.0.8 GW4=10.224.0.1 VIP4=10.0.0.10 POD4=10.244.0.2 POD4B=10.244.0.3
	NODE6=fd00:224::8 GW6=fd00:224::1 VIP6=fd00:96::a POD6=fd00:244::2 POD6B=fd00:244::3
	APIVIP4=10.0.0.1 APIVIP6=fd00:96::1
	ANSWER4=10.96.0.1 ANSWER6=fd00:96::1
	POD4C=10.244.0.4 POD6C=fd00:244::4
	export NODE4 GW4 VIP4 POD4 POD4B NODE6 GW6 VIP6 POD6 POD6B APIVIP4 APIVIP6 ANSWER4 ANSWER6
	export POD4C POD6C LAB_MODE LAB_DNS LAB_BACKENDS LAB_TOP LAB_PY

	if [ ! -f "$LAB_TOP/tests/client.py" ]; then
		_lab_err "lab_up: no $LAB_TOP/tests/client.py: set TOP (or LAB_TOP) to the checkout"
		return 1
	fi
	mkdir -p "$LAB_TOP/build" || return 1
	LAB_DIR=$(mktemp -d "$LAB_TOP/build/lab-XXXXXX") || { _lab_err "lab_up: mktemp failed"; return 1; }
	export LAB_DIR
	# From here on, whatever happens, everything goes away with the shell.
	# shellcheck disable=SC2154
	trap '_lab_rc=$?; lab_down; exit $_lab_rc' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM

	# The kube-dns endpoints the rules name now: 2 (A and B) or 1 (A).
	echo "$LAB_BACKENDS" >"$LAB_DIR/eps"
	if _lab_namespaces && _lab_links && _lab_gw_drop && lab_rules full && lab_dns_start &&
		{ [ "$LAB_BACKENDS" = 1 ] || _lab_dnsb_start real; }; then
		return 0
	fi
	_lab_err "lab_up: failed; tearing down"
	lab_down
	return 1
}

# Claims three namespace names. `ip netns add` fails if the name exists, so
# the first add is the atomic claim: on a clash, try the next suffix.
_lab_namespaces() {
	_lab_k=0
	LAB=dbt$$
	until ip netns add "${LAB}n" 2>/dev/null; do
		# (any failure, not only a clash, ends here: 20 tries, then give up)
		_lab_k=$((_lab_k + 1))
		[ $_lab_k -lt 20 ] || { _lab_err "no free namespace name dbt$$*"; LAB=; return 1; }
		LAB=dbt$$x$_lab_k
	done
	NS_NODE=${LAB}n NS_POD=${LAB}p NS_GW=${LAB}g
	export LAB NS_NODE NS_POD NS_GW
	# lab_down deletes only the namespaces listed here: never another's.
	echo "$NS_NODE" >"$LAB_DIR/netns"
	_lab_run "ip netns add $NS_POD" ip netns add "$NS_POD" || return 1
	echo "$NS_POD" >>"$LAB_DIR/netns"
	_lab_run "ip netns add $NS_GW" ip netns add "$NS_GW" || return 1
	echo "$NS_GW" >>"$LAB_DIR/netns"
	for _lab_ns in "$NS_NODE" "$NS_POD" "$NS_GW"; do
		# No duplicate address detection: addresses usable at once.
		# Forwarding off: a new namespace may inherit it on for IPv4.
		_lab_run "sysctls in $_lab_ns" ip netns exec "$_lab_ns" sysctl -q -w \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.default.accept_ra=0 net.ipv4.ip_forward=0 \
			net.ipv6.conf.all.forwarding=0 || return 1
		_lab_run "lo up in $_lab_ns" ip -n "$_lab_ns" link set lo up || return 1
	done
}

# veth pairs are created inside the node namespace with their peer put
# straight into gw or pod: no interface ever exists in the root namespace.
_lab_links() {
	_lab_run "veth node-gw" ip -n "$NS_NODE" link add gw0 type veth peer name eth0 netns "$NS_GW" &&
	_lab_run "veth node-pod" ip -n "$NS_NODE" link add pod0 type veth peer name eth0 netns "$NS_POD" &&
	_lab_addr "$NS_NODE" gw0 "$NODE4/16" "$NODE6/64" &&
	_lab_addr "$NS_NODE" pod0 10.244.0.1/24 fd00:244::1/64 &&
	_lab_addr "$NS_GW" eth0 "$GW4/16" "$GW6/64" &&
	_lab_addr "$NS_POD" eth0 "$POD4/24" "$POD6/64" "$POD4B/24" "$POD6B/64" &&
	{ [ "$LAB_BACKENDS" = 1 ] || _lab_addr "$NS_POD" eth0 "$POD4C/24" "$POD6C/64"; } &&
	_lab_run "node routes" ip -n "$NS_NODE" route add default via "$GW4" &&
	_lab_run "node routes" ip -n "$NS_NODE" -6 route add default via "$GW6" &&
	_lab_run "pod routes" ip -n "$NS_POD" route add default via 10.244.0.1 &&
	_lab_run "pod routes" ip -n "$NS_POD" -6 route add default via fd00:244::1 &&
	_lab_links_ready
}

# A veth's carrier-on reaches IPv6 through linkwatch, which may delay it
# by up to a second; until then the interface has no ff00::/8 route, so
# neighbour solicitations sent to it are dropped (Ip6InNoRoutes) and IPv6
# towards it stalls. Wait for that route on all four ends.
_lab_links_ready() {
	_lab_ends_ready "$NS_NODE gw0" "$NS_NODE pod0" "$NS_GW eth0" "$NS_POD eth0"
}

# _lab_ends_ready "NS DEV"...: the wait above, for these ends.
_lab_ends_ready() {
	_lab_try=0
	for _lab_end in "$@"; do
		# shellcheck disable=SC2086
		set -- $_lab_end
		until ip -n "$1" -6 route show table local type multicast dev "$2" | grep -q ff00::/8; do
			_lab_try=$((_lab_try + 1))
			[ $_lab_try -lt 100 ] || { _lab_err "$1/$2 not ready for IPv6 after 5 s"; return 1; }
			sleep 0.05
		done
	done
}

# _lab_addr NS DEV ADDR...: add addresses (nodad for v6) and bring DEV up.
_lab_addr() {
	_lab_ans=$1 _lab_dev=$2; shift 2
	for _lab_a in "$@"; do
		case $_lab_a in *:*) _lab_nodad=nodad ;; *) _lab_nodad= ;; esac
		_lab_run "address $_lab_a on $_lab_ans/$_lab_dev" \
			ip -n "$_lab_ans" addr add "$_lab_a" dev "$_lab_dev" $_lab_nodad || return 1
	done
	_lab_run "link up $_lab_ans/$_lab_dev" ip -n "$_lab_ans" link set "$_lab_dev" up
}

# gw is a black hole: forwarding is off, and this drops every packet in and
# out (so no ICMP error either) except neighbour discovery, which the node
# needs to hand packets to it at all. ARP is not seen by inet tables.
_lab_gw_drop() {
	cat >"$LAB_DIR/gw.nft" <<-'EOF'
	table inet lab-gw {
		chain in {
			type filter hook prerouting priority -300; policy drop;
			icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
			meta nfproto ipv4 counter drop comment "v4-dropped"
			meta nfproto ipv6 counter drop comment "v6-dropped"
		}
		chain out {
			type filter hook output priority -300; policy drop;
			icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		}
	}
	EOF
	_lab_run "gw drop rules" ip netns exec "$NS_GW" nft -f "$LAB_DIR/gw.nft"
}

# ---------------------------------------------------------------- rules

# lab_rules full|window: kube-proxy's rules, both families, in LAB_MODE.
# "window" is kube-proxy restarting: the kube-dns rules are missing while
# the other Service's rules stay.
lab_rules() {
	_lab_need lab_rules || return 1
	case ${1:-} in full|window) ;; *) _lab_err "lab_rules full|window"; return 1 ;; esac
	if [ "$LAB_MODE" = iptables ]; then
		_lab_ipt 4 "$1" >"$LAB_DIR/rules4.ipt" &&
		_lab_ipt 6 "$1" >"$LAB_DIR/rules6.ipt" &&
		_lab_run "iptables-restore ($1)" ip netns exec "$NS_NODE" iptables-restore -w 5 "$LAB_DIR/rules4.ipt" &&
		_lab_run "ip6tables-restore ($1)" ip netns exec "$NS_NODE" ip6tables-restore -w 5 "$LAB_DIR/rules6.ipt"
	else
		# One file, one transaction: both families change at once.
		{ _lab_nft ip "$1" && _lab_nft ip6 "$1"; } >"$LAB_DIR/rules.nft" &&
		_lab_run "nft -f ($1)" ip netns exec "$NS_NODE" nft -f "$LAB_DIR/rules.nft"
	fi
}

# _lab_ipt 4|6 full|window: an iptables-restore nat table shaped like
# kube-proxy's (the KUBE-SVC hashes are kube-proxy's real ones for these
# Service ports; the KUBE-SEP names are made up).
_lab_ipt() {
	if [ "$1" = 4 ]; then
		_lab_vip=$VIP4/32 _lab_api=$APIVIP4/32 _lab_dns=$POD4:53 _lab_be=$POD4B:6443 _lab_dnsc=$POD4C:53
	else
		_lab_vip=$VIP6/128 _lab_api=$APIVIP6/128 _lab_dns=[$POD6]:53 _lab_be=[$POD6B]:6443 _lab_dnsc=[$POD6C]:53
	fi
	cat <<-EOF
	*nat
	:PREROUTING ACCEPT [0:0]
	:INPUT ACCEPT [0:0]
	:OUTPUT ACCEPT [0:0]
	:POSTROUTING ACCEPT [0:0]
	:KUBE-SERVICES - [0:0]
	:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
	:KUBE-SEP-LABAPISERVER0001 - [0:0]
	-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
	-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
	-A KUBE-SERVICES -d $_lab_api -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
	-A KUBE-SVC-NPX46M4PTMTKRN6Y -j KUBE-SEP-LABAPISERVER0001
	-A KUBE-SEP-LABAPISERVER0001 -p tcp -m tcp -j DNAT --to-destination $_lab_be
	EOF
	[ "$2" = window ] && { echo COMMIT; return 0; }
	if [ "$(_lab_eps)" = 2 ]; then
		_lab_ipt_two "$_lab_vip" "$_lab_dns" "$_lab_dnsc"
		return 0
	fi
	cat <<-EOF
	:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
	:KUBE-SVC-ERIFXISQEP7F7OF4 - [0:0]
	:KUBE-SEP-LABDNSUDP0000001 - [0:0]
	:KUBE-SEP-LABDNSTCP0000001 - [0:0]
	-A KUBE-SERVICES -d $_lab_vip -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
	-A KUBE-SERVICES -d $_lab_vip -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4
	-A KUBE-SVC-TCOU7JCQXEZGVUNU -j KUBE-SEP-LABDNSUDP0000001
	-A KUBE-SVC-ERIFXISQEP7F7OF4 -j KUBE-SEP-LABDNSTCP0000001
	-A KUBE-SEP-LABDNSUDP0000001 -p udp -m udp -j DNAT --to-destination $_lab_dns
	-A KUBE-SEP-LABDNSTCP0000001 -p tcp -m tcp -j DNAT --to-destination $_lab_dns
	COMMIT
	EOF
}

# _lab_ipt_two VIP A B: the kube-dns part with two endpoints, as
# kube-proxy writes it: the first endpoint taken with probability 1/2, the
# rest fall through to the last one.
_lab_ipt_two() {
	for _lab_p in udp tcp; do
		if [ $_lab_p = udp ]; then _lab_svc=KUBE-SVC-TCOU7JCQXEZGVUNU _lab_pn=dns _lab_s=LABDNSUDP
		else _lab_svc=KUBE-SVC-ERIFXISQEP7F7OF4 _lab_pn=dns-tcp _lab_s=LABDNSTCP; fi
		cat <<-EOF
		:$_lab_svc - [0:0]
		:KUBE-SEP-${_lab_s}0000001 - [0:0]
		:KUBE-SEP-${_lab_s}0000002 - [0:0]
		-A KUBE-SERVICES -d $1 -p $_lab_p -m comment --comment "kube-system/kube-dns:$_lab_pn cluster IP" -m $_lab_p --dport 53 -j $_lab_svc
		-A $_lab_svc -m comment --comment "kube-system/kube-dns:$_lab_pn -> $2" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-${_lab_s}0000001
		-A $_lab_svc -m comment --comment "kube-system/kube-dns:$_lab_pn -> $3" -j KUBE-SEP-${_lab_s}0000002
		-A KUBE-SEP-${_lab_s}0000001 -p $_lab_p -m $_lab_p -j DNAT --to-destination $2
		-A KUBE-SEP-${_lab_s}0000002 -p $_lab_p -m $_lab_p -j DNAT --to-destination $3
		EOF
	done
	echo COMMIT
}

# _lab_eps: how many kube-dns endpoints the rules name now (1 or 2).
_lab_eps() { cat "$LAB_DIR/eps" 2>/dev/null || echo 1; }

# _lab_nft ip|ip6 full|window: a table named kube-proxy shaped like
# kube-proxy's nftables mode (a verdict map from VIP . proto . port to a
# service chain). "add; delete; define" replaces the table in the same
# transaction as the rest of the file.
_lab_nft() {
	if [ "$1" = ip ]; then
		_lab_t=ipv4_addr _lab_vip=$VIP4 _lab_api=$APIVIP4 _lab_dns=$POD4:53 _lab_be=$POD4B:6443 _lab_dnsc=$POD4C:53
	else
		_lab_t=ipv6_addr _lab_vip=$VIP6 _lab_api=$APIVIP6 _lab_dns=[$POD6]:53 _lab_be=[$POD6B]:6443 _lab_dnsc=[$POD6C]:53
	fi
	_lab_svc_api=service-2QRHZV4L-default/kubernetes/tcp/https
	_lab_svc_udp=service-ERIFXISQ-kube-system/kube-dns/udp/dns
	_lab_svc_tcp=service-TCOU7JCQ-kube-system/kube-dns/tcp/dns-tcp
	_lab_elems="$_lab_api . tcp . 443 : goto $_lab_svc_api"
	[ "$2" = full ] && _lab_elems="$_lab_elems, $_lab_vip . udp . 53 : goto $_lab_svc_udp, $_lab_vip . tcp . 53 : goto $_lab_svc_tcp"
	cat <<-EOF
	add table $1 kube-proxy
	delete table $1 kube-proxy
	table $1 kube-proxy {
		map service-ips {
			type $_lab_t . inet_proto . inet_service : verdict
			elements = { $_lab_elems }
		}
		chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }
		chain nat-output { type nat hook output priority -100; policy accept; jump services; }
		chain services { $1 daddr . meta l4proto . th dport vmap @service-ips; }
		chain $_lab_svc_api { jump endpoint-LABAPI01-default/kubernetes/tcp/https; }
		chain endpoint-LABAPI01-default/kubernetes/tcp/https { meta l4proto tcp dnat to $_lab_be; }
	EOF
	if [ "$2" = full ] && [ "$(_lab_eps)" = 2 ]; then
		# kube-proxy's nftables mode picks an endpoint with numgen.
		_lab_eu1=endpoint-LABDNSU1-kube-system/kube-dns/udp/dns _lab_eu2=endpoint-LABDNSU2-kube-system/kube-dns/udp/dns
		_lab_et1=endpoint-LABDNST1-kube-system/kube-dns/tcp/dns-tcp _lab_et2=endpoint-LABDNST2-kube-system/kube-dns/tcp/dns-tcp
		cat <<-EOF
		chain $_lab_svc_udp { numgen random mod 2 vmap { 0 : goto $_lab_eu1, 1 : goto $_lab_eu2 }; }
		chain $_lab_eu1 { meta l4proto udp dnat to $_lab_dns; }
		chain $_lab_eu2 { meta l4proto udp dnat to $_lab_dnsc; }
		chain $_lab_svc_tcp { numgen random mod 2 vmap { 0 : goto $_lab_et1, 1 : goto $_lab_et2 }; }
		chain $_lab_et1 { meta l4proto tcp dnat to $_lab_dns; }
		chain $_lab_et2 { meta l4proto tcp dnat to $_lab_dnsc; }
		EOF
	elif [ "$2" = full ]; then
		cat <<-EOF
		chain $_lab_svc_udp { jump endpoint-LABDNSU1-kube-system/kube-dns/udp/dns; }
		chain endpoint-LABDNSU1-kube-system/kube-dns/udp/dns { meta l4proto udp dnat to $_lab_dns; }
		chain $_lab_svc_tcp { jump endpoint-LABDNST1-kube-system/kube-dns/tcp/dns-tcp; }
		chain endpoint-LABDNST1-kube-system/kube-dns/tcp/dns-tcp { meta l4proto tcp dnat to $_lab_dns; }
		EOF
	fi
	echo "}"
}

# lab_window SECONDS [COUNT [GAP_SECONDS]]: COUNT restart windows. Each
# line of windows.log spans from just before the window ruleset went in to
# just after the full one was back: every packet that could have met the
# window was sent between "open" and "close".
lab_window() {
	_lab_need lab_window || return 1
	_lab_secs=${1:-}; _lab_count=${2:-1}; _lab_gap=${3:-1}
	case "$_lab_secs$_lab_gap" in ''|*[!0-9.]*) _lab_err "lab_window SECONDS [COUNT [GAP]]"; return 1 ;; esac
	case $_lab_count in ''|*[!0-9]*) _lab_err "lab_window: COUNT is a whole number"; return 1 ;; esac
	_lab_i=0
	while [ "$_lab_i" -lt "$_lab_count" ]; do
		_lab_open=$(_lab_ms)
		lab_rules window || return 1
		_lab_sleep "$_lab_secs"
		lab_rules full || return 1
		echo "open $_lab_open close $(_lab_ms)" >>"$LAB_DIR/windows.log"
		_lab_sleep "$_lab_gap"
		_lab_i=$((_lab_i + 1))
	done
}

# A sleep that a signal cuts short: the shell runs a trap only once its
# foreground command ends, but `wait` returns at once. lab_down kills the
# sleep left behind.
_lab_sleep() {
	sleep "$1" &
	_lab_sleep_pid=$!
	wait "$_lab_sleep_pid"
	_lab_sleep_pid=
}

# ---------------------------------------------------------------- DNS

lab_dns_start() {
	_lab_need lab_dns_start || return 1
	if [ -s "$LAB_DIR/dns.pid" ] && _lab_alive "$(cat "$LAB_DIR/dns.pid")"; then
		_lab_err "lab_dns_start: $LAB_DNS is already running"; return 1
	fi
	if [ "$LAB_DNS" = dnsmasq ]; then _lab_dnsmasq; else _lab_unbound; fi || return 1
	# `ip netns exec` execs the server, so $! is the server's own pid.
	echo "$!" >"$LAB_DIR/dns.pid"
	_lab_dns_wait
}

# dnsmasq in the foreground (-k) as root, no config file, no upstream:
# --local=/#/ makes every name local, so unknown names get NXDOMAIN.
# _lab_dnsmasq [ADDR4 ADDR6 NAME]: on those addresses (default the pod's
# .2 and ::2), its files named NAME (default dnsmasq).
_lab_dnsmasq() {
	ip netns exec "$NS_POD" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
		--user=root --group=root --pid-file="$LAB_DIR/${3:-dnsmasq}.pid" \
		--listen-address="${1:-$POD4}" --listen-address="${2:-$POD6}" --bind-interfaces --port=53 \
		--host-record="kubernetes.default.svc.cluster.local,$ANSWER4,$ANSWER6" \
		--local=/#/ --log-facility="$LAB_DIR/${3:-dnsmasq}.log" \
		>>"$LAB_DIR/dns.out" 2>&1 &
}

# unbound in the foreground with a config of its own: no chroot, no user
# switch, no remote control, iterator only (no validator, so no trust
# anchor), and the root zone "static" so unknown names get NXDOMAIN and
# nothing is ever asked upstream.
# _lab_unbound [ADDR4 ADDR6 NAME]: as _lab_dnsmasq's arguments.
_lab_unbound() {
	_lab_un=${3:-unbound}
	cat >"$LAB_DIR/$_lab_un.conf" <<-EOF
	server:
		interface: ${1:-$POD4}
		interface: ${2:-$POD6}
		port: 53
		do-ip4: yes
		do-ip6: yes
		access-control: 0.0.0.0/0 allow
		access-control: ::0/0 allow
		do-daemonize: no
		chroot: ""
		username: ""
		directory: "$LAB_DIR"
		pidfile: "$LAB_DIR/$_lab_un.pid"
		logfile: "$LAB_DIR/$_lab_un.log"
		use-syslog: no
		num-threads: 1
		module-config: "iterator"
		local-zone: "." static
		local-data: "kubernetes.default.svc.cluster.local. 30 IN A $ANSWER4"
		local-data: "kubernetes.default.svc.cluster.local. 30 IN AAAA $ANSWER6"
	remote-control:
		control-enable: no
	EOF
	ip netns exec "$NS_POD" unbound -d -c "$LAB_DIR/$_lab_un.conf" >>"$LAB_DIR/dns.out" 2>&1 &
}

# Polls until the server answers both families. It asks from inside the pod
# so that the node's conntrack table holds nothing but what tests make.
_lab_dns_wait() {
	_lab_pid=$(cat "$LAB_DIR/dns.pid")
	_lab_try=0
	while [ $_lab_try -lt 50 ]; do
		if ! _lab_alive "$_lab_pid"; then
			_lab_err "$LAB_DNS exited at start: $(tail -n 3 "$LAB_DIR/dns.out" | tr '\n' ' ')"
			return 1
		fi
		if _lab_ask_pod "$POD4" A "$ANSWER4" && _lab_ask_pod "$POD6" AAAA "$ANSWER6"; then
			return 0
		fi
		_lab_try=$((_lab_try + 1))
	done
	_lab_err "$LAB_DNS does not answer on $POD4 and $POD6"
	return 1
}

_lab_ask_pod() {
	ip netns exec "$NS_POD" "$LAB_PY" "$LAB_TOP/tests/client.py" --bind "$1" --port 0 \
		--server "$1" --qtype "$2" --expect "$3" --timeout 0.2 >/dev/null 2>&1
}

# "The DNS pod stopped": TERM the server and wait until it is gone.
lab_dns_stop() {
	_lab_need lab_dns_stop || return 1
	[ -s "$LAB_DIR/dns.pid" ] || { _lab_err "lab_dns_stop: no DNS server running"; return 1; }
	_lab_pid=$(cat "$LAB_DIR/dns.pid")
	rm -f "$LAB_DIR/dns.pid"
	_lab_kill_wait "$_lab_pid" || { _lab_err "lab_dns_stop: pid $_lab_pid would not die"; return 1; }
}

# _lab_kill_wait PID...: TERM, then KILL after 2 s; reaps our children.
_lab_kill_wait() {
	kill -TERM "$@" 2>/dev/null
	_lab_t=0
	while [ $_lab_t -lt 40 ]; do
		_lab_left=
		for _lab_p in "$@"; do _lab_alive "$_lab_p" && _lab_left="$_lab_left $_lab_p"; done
		[ -n "$_lab_left" ] || break
		# shellcheck disable=SC2086
		[ $_lab_t -eq 20 ] && kill -KILL $_lab_left 2>/dev/null
		sleep 0.1
		_lab_t=$((_lab_t + 1))
	done
	# wait reaps a child of this shell (no zombie left); for any other pid
	# it returns at once.
	for _lab_p in "$@"; do wait "$_lab_p" 2>/dev/null; done
	[ -z "$_lab_left" ]
}

# A zombie counts as gone: it holds no socket and no namespace (and
# kill -0 would still find it until its parent reaps it).
_lab_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# tester LOG ARGS...: $BIN in the node namespace, in the background; `ip
# netns exec` execs it, so TPID is the tester itself and signals reach it.
# stop_tester: SIGTERM it and wait for it by PID; RC is its exit status.
# now_ms: wall-clock milliseconds, as the log's ts= (groups may redefine).
tester() { _l=$1; shift; ip netns exec "$NS_NODE" "$BIN" "$@" >"$_l" 2>&1 & TPID=$!; }
stop_tester() { kill -TERM "$TPID" 2>/dev/null; wait "$TPID"; RC=$?; }
now_ms() { date +%s%3N; }

# lab_each FUNCTION: FUNCTION MODE DNS FAMILY, each in a subshell of its
# own (its own lab), for the four combinations the e2e-style groups cover:
# iptables/dnsmasq/4, nftables/unbound/6, iptables/unbound/6, nftables/dnsmasq/4.
lab_each() {
	( "$1" iptables dnsmasq 4 )
	( "$1" nftables unbound 6 )
	( "$1" iptables unbound 6 )
	( "$1" nftables dnsmasq 4 )
}

# ---------------------------------------------------------------- clients

# lab_client PORT 4|6 COUNT INTERVAL_S [TIMEOUT_S]: client.py in the node
# namespace, one socket bound to NODE4|NODE6:PORT, querying the VIP.
lab_client() {
	_lab_need lab_client || return 2
	if [ $# -lt 4 ]; then _lab_err "lab_client PORT 4|6 COUNT INTERVAL_S [TIMEOUT_S]"; return 2; fi
	case $2 in
	4) set -- "$1" "$NODE4" "$VIP4" A "$ANSWER4" "$3" "$4" "${5:-1}" ;;
	6) set -- "$1" "$NODE6" "$VIP6" AAAA "$ANSWER6" "$3" "$4" "${5:-1}" ;;
	*) _lab_err "lab_client: family is 4 or 6"; return 2 ;;
	esac
	ip netns exec "$NS_NODE" "$LAB_PY" "$LAB_TOP/tests/client.py" --bind "$2" --port "$1" \
		--server "$3" --qtype "$4" --expect "$5" --count "$6" --interval "$7" --timeout "$8"
}

# ---------------------------------------------------------------- decoys

# lab_decoys N: insert N entries into the node's conntrack table that a
# tester must leave alone, and list them (canonical form) in decoys.txt.
# Twelve kinds, round robin (each in IPv4 and IPv6):
#   udp NODE:p -> VIP:53, DNAT'd to POD:53, replied    (the node's other sockets)
#   udp OTHER:p -> VIP:53, no DNAT, unreplied          (others' blackholed flows;
#                          OTHER = 10.224.0.50-99, fd00:224::50-81 in hex)
#   udp NODE:p -> VIP:5353, no DNAT, unreplied
#   tcp NODE:p -> VIP:53, DNAT'd to POD:53, ESTABLISHED
#   tcp NODE:p -> VIP:9153, no DNAT, SYN_SENT
#   udp NODE:p -> 10.0.0.20:53, alternately DNAT'd to POD .3 or unreplied
# Source ports are 20000-29999, outside Linux's ephemeral range, so a test's
# own client ports (ephemeral, or 30000 and up) never meet a decoy. Beyond
# 10000 entries of one kind, NODE becomes 10.224.V.8 / fd00:224::V:8.
# Calling it again adds N more. One `conntrack -R` loads them all.
# With LAB_DECOY_ASSURED=1 every decoy is also marked ASSURED: when the
# table is full, the kernel itself evicts entries that are not (early drop
# at insert, and the gc worker above 95% of nf_conntrack_max), so only
# ASSURED decoys can tell a tester's deletes from the kernel's.
lab_decoys() {
	_lab_need lab_decoys || return 1
	case ${1:-} in ''|*[!0-9]*) _lab_err "lab_decoys N"; return 1 ;; esac
	_lab_from=0
	[ -s "$LAB_DIR/decoys.n" ] && _lab_from=$(cat "$LAB_DIR/decoys.n")
	_lab_decoy_gen "$_lab_from" "$1" "$LAB_DIR/decoys.load" "$LAB_DIR/decoys.new" || return 1
	_lab_run "conntrack -R (decoys)" ip netns exec "$NS_NODE" conntrack -R "$LAB_DIR/decoys.load" || return 1
	cat "$LAB_DIR/decoys.new" >>"$LAB_DIR/decoys.txt"
	echo $((_lab_from + $1)) >"$LAB_DIR/decoys.n"
	rm -f "$LAB_DIR/decoys.load" "$LAB_DIR/decoys.new"
	# Prove they went in exactly as listed.
	lab_decoys_check >"$LAB_DIR/decoys.bad" || {
		_lab_err "lab_decoys: inserted entries differ from the list: $(head -n 3 "$LAB_DIR/decoys.bad")"
		return 1
	}
}

# _lab_decoy_gen FROM N LOADFILE LISTFILE: conntrack -R commands for decoys
# FROM..FROM+N-1, and the line `conntrack -L` will print for each, in
# canonical form (see _lab_canon).
_lab_decoy_gen() {
	awk -v from="$1" -v n="$2" -v tmo="$LAB_DECOY_TIMEOUT" -v load="$3" -v list="$4" \
		-v assured="${LAB_DECOY_ASSURED:-0}" '
	function emit(proto, s, d, sp, dp, rs, rd, rsp, rdp, nat, st, state, aflag,   unrep) {
		unrep = (st == "UNSET")
		if (assured == 1 && aflag == "") {
			st = (unrep ? "ASSURED" : st ",ASSURED"); aflag = "[ASSURED]"
		}
		printf "-I -t %d -u %s -p %s -s %s -d %s --sport %d --dport %d -r %s -q %s --reply-port-src %d --reply-port-dst %d%s%s\n", \
			tmo, st, proto, s, d, sp, dp, rs, rd, rsp, rdp, \
			(nat != "" ? " --dst-nat " nat : ""), (state != "" ? " --state " state : "") >load
		line = sprintf("%s %d %s src=%s dst=%s sport=%d dport=%d %s src=%s dst=%s sport=%d dport=%d %s mark=0", \
			proto, (proto == "tcp" ? 6 : 17), state, s, d, sp, dp, \
			(unrep ? "[UNREPLIED]" : ""), rs, rd, rsp, rdp, aflag)
		gsub(/ +/, " ", line)
		print line >list
	}
	BEGIN {
		for (i = from; i < from + n; i++) {
			k = i % 12; j = int(i / 12); v6 = (k >= 6); k = k % 6
			p = 20000 + j % 10000; var = int(j / 10000)
			if (var > 255) { print "lab_decoys: too many decoys" > "/dev/stderr"; exit 1 }
			if (v6) {
				node = var ? sprintf("fd00:224::%x:8", var) : "fd00:224::8"
				other = sprintf("fd00:224::%x", 80 + j % 50)
				vip = "fd00:96::a"; pod = "fd00:244::2"; pod3 = "fd00:244::3"; vip2 = "fd00:96::14"
			} else {
				node = "10.224." var ".8"; other = "10.224.0." (50 + j % 50)
				vip = "10.0.0.10"; pod = "10.244.0.2"; pod3 = "10.244.0.3"; vip2 = "10.0.0.20"
			}
			if (k == 0) emit("udp", node, vip, p, 53, pod, node, 53, p, pod, "SEEN_REPLY", "", "")
			if (k == 1) { op = 20000 + int(j / 50) % 10000
				emit("udp", other, vip, op, 53, vip, other, 53, op, "", "UNSET", "", "") }
			if (k == 2) emit("udp", node, vip, p, 5353, vip, node, 5353, p, "", "UNSET", "", "")
			if (k == 3) emit("tcp", node, vip, p, 53, pod, node, 53, p, pod, "SEEN_REPLY,ASSURED", "ESTABLISHED", "[ASSURED]")
			if (k == 4) emit("tcp", node, vip, p, 9153, vip, node, 9153, p, "", "UNSET", "SYN_SENT", "")
			if (k == 5) { if (j % 2) emit("udp", node, vip2, p, 53, pod3, node, 53, p, pod3, "SEEN_REPLY", "", "")
				else emit("udp", node, vip2, p, 53, vip2, node, 53, p, "", "UNSET", "", "") }
		}
	}' </dev/null && : >>"$3" && : >>"$4"
}

# The parts of a `conntrack -L` line that no time passing changes: drop
# the timeout (third field) and use=, squeeze blanks.
_lab_canon() {
	awk '{ $3 = ""; for (i = 4; i <= NF; i++) if ($i ~ /^use=/) $i = ""; $0 = $0; $1 = $1; print }'
}

# lab_decoys_check: prints each decoy missing from, or changed in, the
# table now; exit 0 if all are there as inserted.
lab_decoys_check() {
	_lab_need lab_decoys_check || return 1
	[ -f "$LAB_DIR/decoys.txt" ] || { _lab_err "lab_decoys_check: no decoys inserted"; return 1; }
	lab_ct -L 2>/dev/null | _lab_canon >"$LAB_DIR/ct.now" || return 1
	awk '
	# key: protocol and original tuple (the first src= dst= sport= dport=)
	function key(line,   f, n, i, k, c) {
		n = split(line, f, " "); k = f[1]; c = 0
		for (i = 2; i <= n && c < 4; i++)
			if (f[i] ~ /^(src|dst|sport|dport)=/) { k = k " " f[i]; c++ }
		return k
	}
	FNR == NR { now[$0] = 1; bykey[key($0)] = $0; next }
	!($0 in now) {
		bad = 1; k = key($0)
		if (k in bykey) print "changed: " $0 " -> now: " bykey[k]
		else print "missing: " $0
	}
	END { exit bad }' "$LAB_DIR/ct.now" "$LAB_DIR/decoys.txt"
}

# ---------------------------------------------------------------- backend B

# _lab_dnsb_start real|slow [SECONDS]: backend B's server on POD4C and
# POD6C: a second instance of LAB_DNS with the same data (real), or
# tests/faults/hostile_dns.py answering every query SECONDS late (slow).
# Its pid is in dnsb.pid. Returns once it answers (real) or listens (slow).
_lab_dnsb_start() {
	if [ "$1" = real ]; then
		if [ "$LAB_DNS" = dnsmasq ]; then _lab_dnsmasq "$POD4C" "$POD6C" dnsmasq-b
		else _lab_unbound "$POD4C" "$POD6C" unbound-b; fi || return 1
	else
		rm -f "$LAB_DIR/slowb.ready"
		ip netns exec "$NS_POD" "$LAB_PY" "$LAB_TOP/tests/faults/hostile_dns.py" \
			--bind "$POD4C" --bind "$POD6C" --mode slow --delay "$2" \
			--log "$LAB_DIR/slowb.q" --ready "$LAB_DIR/slowb.ready" >>"$LAB_DIR/dns.out" 2>&1 &
	fi
	echo "$!" >"$LAB_DIR/dnsb.pid"
	_lab_pid=$!
	_lab_try=0
	while [ $_lab_try -lt 50 ]; do
		if ! _lab_alive "$_lab_pid"; then
			_lab_err "backend B ($1) exited at start: $(tail -n 3 "$LAB_DIR/dns.out" | tr '\n' ' ')"
			return 1
		fi
		if [ "$1" = real ]; then
			_lab_ask_pod "$POD4C" A "$ANSWER4" && _lab_ask_pod "$POD6C" AAAA "$ANSWER6" && return 0
		else
			[ -e "$LAB_DIR/slowb.ready" ] && return 0
			sleep 0.1
		fi
		_lab_try=$((_lab_try + 1))
	done
	_lab_err "backend B ($1) does not answer on $POD4C and $POD6C"
	return 1
}

# _lab_dnsb_stop: backend B's server is gone (whichever kind runs).
_lab_dnsb_stop() {
	[ -s "$LAB_DIR/dnsb.pid" ] || return 0
	_lab_pid=$(cat "$LAB_DIR/dnsb.pid")
	rm -f "$LAB_DIR/dnsb.pid"
	_lab_kill_wait "$_lab_pid" || { _lab_err "backend B: pid $_lab_pid would not die"; return 1; }
}

# _lab_need_b FUNCTION: fail unless the lab has a second backend in the rules.
_lab_need_b() {
	_lab_need "$1" || return 1
	[ "${LAB_BACKENDS:-1}" = 2 ] || { _lab_err "$1: the lab has one backend (lab_up --backends 2)"; return 1; }
	[ "$(_lab_eps)" = 2 ] || { _lab_err "$1: backend B is rolled out (lab_rollback first)"; return 1; }
}

# lab_rollout: a CoreDNS rollout removes backend B. kube-proxy drops B from
# the kube-dns VIP (the full rules now DNAT only to A), B's addresses leave
# the pod (POD4C was added as a secondary of the pod's /24, so the pod's
# other addresses stay), then B's server stops. Addresses go first so that
# nothing ever meets a closed port there (no ICMP port unreachable): a
# packet still sent to B is dropped in silence by the pod, which does not
# forward. Entries already DNAT'd to B stay in the node's table: nobody
# deletes them. Measured: the node keeps B's neighbour entry (the pod's
# MAC) for some 40-60 s; once it has failed, the node answers its own
# sends to B with ICMP host unreachable after an ARP wait, as a bridge CNI
# does. Either way nothing from B comes back.
lab_rollout() {
	_lab_need_b lab_rollout || return 1
	echo 1 >"$LAB_DIR/eps"
	lab_rules full || return 1
	_lab_run "address $POD4C off the pod" ip -n "$NS_POD" addr del "$POD4C/24" dev eth0 &&
	_lab_run "address $POD6C off the pod" ip -n "$NS_POD" addr del "$POD6C/64" dev eth0 &&
	_lab_dnsb_stop
}

# lab_rollback: backend B is back: its addresses, its (real, not slow)
# server answering there, then the rules over both endpoints again.
lab_rollback() {
	_lab_need lab_rollback || return 1
	if [ "${LAB_BACKENDS:-1}" != 2 ] || [ "$(_lab_eps)" != 1 ]; then
		_lab_err "lab_rollback: nothing is rolled out"; return 1
	fi
	_lab_addr "$NS_POD" eth0 "$POD4C/24" "$POD6C/64" || return 1
	_lab_dnsb_start real || return 1
	echo 2 >"$LAB_DIR/eps"
	lab_rules full
}

# lab_backend_slow MS: backend B still answers, every query, but MS
# milliseconds late: its server is replaced by tests/faults/hostile_dns.py
# --mode slow on POD4C/POD6C (any name gets A ANSWER4 / AAAA ANSWER6; its
# queries are logged in $LAB_DIR/slowb.q). The path is untouched, so A is
# as fast as ever. lab_backend_slow 0 puts the real server back.
lab_backend_slow() {
	_lab_need_b lab_backend_slow || return 1
	case ${1:-} in ''|*[!0-9]*) _lab_err "lab_backend_slow MS (0: back to normal)"; return 1 ;; esac
	_lab_dnsb_stop || return 1
	if [ "$1" -eq 0 ]; then
		_lab_dnsb_start real
	else
		_lab_dnsb_start slow "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"
	fi
}

# ---------------------------------------------------------------- client pod

# lab_clientpod_up: a client pod routed through the node, as pods are:
#
#   node cli0 10.245.0.1/24 fd00:245::1/64 <-> cli eth0 CLI4=10.245.0.2/24
#                                                       CLI6=fd00:245::2/64
#
# its default routes via the node, forwarding on in the node, and routes
# back to 10.245.0.0/24 / fd00:245::/64 in gw (the pod's default route is
# the node already). Its queries to the VIP are forwarded flows: kube-proxy's
# rules meet them in prerouting and their entries are in the node's table.
# The client pod's own namespace has no rule, so it tracks nothing.
lab_clientpod_up() {
	_lab_need lab_clientpod_up || return 1
	if grep -qx "${LAB}c" "$LAB_DIR/netns"; then _lab_err "lab_clientpod_up: already up"; return 1; fi
	CLI4=10.245.0.2 CLI6=fd00:245::2 CLIGW4=10.245.0.1 CLIGW6=fd00:245::1
	export CLI4 CLI6 CLIGW4 CLIGW6
	_lab_run "ip netns add ${LAB}c" ip netns add "${LAB}c" || return 1
	NS_CLI=${LAB}c
	export NS_CLI
	echo "$NS_CLI" >>"$LAB_DIR/netns"
	_lab_run "sysctls in $NS_CLI" ip netns exec "$NS_CLI" sysctl -q -w \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.accept_ra=0 net.ipv4.ip_forward=0 \
		net.ipv6.conf.all.forwarding=0 &&
	_lab_run "lo up in $NS_CLI" ip -n "$NS_CLI" link set lo up &&
	_lab_run "veth node-cli" ip -n "$NS_NODE" link add cli0 type veth peer name eth0 netns "$NS_CLI" &&
	_lab_addr "$NS_NODE" cli0 "$CLIGW4/24" "$CLIGW6/64" &&
	_lab_addr "$NS_CLI" eth0 "$CLI4/24" "$CLI6/64" &&
	_lab_run "client pod routes" ip -n "$NS_CLI" route add default via "$CLIGW4" &&
	_lab_run "client pod routes" ip -n "$NS_CLI" -6 route add default via "$CLIGW6" &&
	_lab_run "gw routes" ip -n "$NS_GW" route add 10.245.0.0/24 via "$NODE4" &&
	_lab_run "gw routes" ip -n "$NS_GW" -6 route add fd00:245::/64 via "$NODE6" &&
	_lab_run "forwarding on the node" ip netns exec "$NS_NODE" sysctl -q -w \
		net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 &&
	_lab_ends_ready "$NS_NODE cli0" "$NS_CLI eth0"
}

# lab_clipod CMD...: run CMD in the client pod's namespace.
lab_clipod() {
	[ -n "${NS_CLI:-}" ] || { _lab_err "lab_clipod: no client pod (lab_clientpod_up)"; return 1; }
	ip netns exec "$NS_CLI" "$@"
}

# ---------------------------------------------------------------- NodeLocal DNSCache

# lab_nodelocal_up: NodeLocal DNSCache as node-local-dns sets it up:
# NODELOCAL4=169.254.20.10 on the node's lo, a dnsmasq cache in the node
# namespace listening there (udp and tcp 53) that forwards every name to
# the kube-dns VIP (VIP4) and so to the lab's pods, nowhere else; and raw
# table NOTRACK rules in prerouting and output for daddr 169.254.20.10
# dport 53 and saddr 169.254.20.10 sport 53 (udp and tcp): iptables-restore
# of a raw table in iptables mode, an nft table "ip node-local-dns" with
# notrack at priority raw in nftables mode. Flows to it never get an
# entry; the cache's own flows to the VIP do, as on a real node.
lab_nodelocal_up() {
	_lab_need lab_nodelocal_up || return 1
	[ ! -s "$LAB_DIR/nodelocal.pid" ] || { _lab_err "lab_nodelocal_up: already up"; return 1; }
	NODELOCAL4=169.254.20.10
	export NODELOCAL4
	_lab_run "$NODELOCAL4 on the node's lo" ip -n "$NS_NODE" addr add "$NODELOCAL4/32" dev lo &&
	_lab_nodelocal_rules || return 1
	ip netns exec "$NS_NODE" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
		--user=root --group=root --pid-file="$LAB_DIR/nodelocal-dnsmasq.pid" \
		--listen-address="$NODELOCAL4" --bind-interfaces --port=53 --server="$VIP4" \
		--log-facility="$LAB_DIR/nodelocal.log" >>"$LAB_DIR/dns.out" 2>&1 &
	echo "$!" >"$LAB_DIR/nodelocal.pid"
	# Wait until it listens; asking it would add the cache's upstream
	# entry to the node's table.
	_lab_pid=$! _lab_try=0
	until ip netns exec "$NS_NODE" ss -Hlun "sport = :53" | grep -q "$NODELOCAL4:53"; do
		_lab_try=$((_lab_try + 1))
		if [ $_lab_try -ge 50 ] || ! _lab_alive "$_lab_pid"; then
			_lab_err "lab_nodelocal_up: the cache does not listen on $NODELOCAL4:53: $(tail -n 3 "$LAB_DIR/dns.out" | tr '\n' ' ')"
			return 1
		fi
		sleep 0.1
	done
}

_lab_nodelocal_rules() {
	if [ "$LAB_MODE" = iptables ]; then
		{
			printf '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n'
			for _lab_c in PREROUTING OUTPUT; do
				for _lab_p in udp tcp; do
					echo "-A $_lab_c -d $NODELOCAL4/32 -p $_lab_p -m $_lab_p --dport 53 -j NOTRACK"
					echo "-A $_lab_c -s $NODELOCAL4/32 -p $_lab_p -m $_lab_p --sport 53 -j NOTRACK"
				done
			done
			echo COMMIT
		} >"$LAB_DIR/nodelocal.ipt" &&
		_lab_run "iptables-restore (NOTRACK)" ip netns exec "$NS_NODE" iptables-restore -w 5 "$LAB_DIR/nodelocal.ipt"
	else
		_lab_r="ip daddr $NODELOCAL4 udp dport 53 notrack; ip daddr $NODELOCAL4 tcp dport 53 notrack;"
		_lab_r="$_lab_r ip saddr $NODELOCAL4 udp sport 53 notrack; ip saddr $NODELOCAL4 tcp sport 53 notrack;"
		cat >"$LAB_DIR/nodelocal.nft" <<-EOF
		add table ip node-local-dns
		delete table ip node-local-dns
		table ip node-local-dns {
			chain prerouting { type filter hook prerouting priority raw; policy accept; $_lab_r }
			chain output { type filter hook output priority raw; policy accept; $_lab_r }
		}
		EOF
		_lab_run "nft -f (NOTRACK)" ip netns exec "$NS_NODE" nft -f "$LAB_DIR/nodelocal.nft"
	fi
}

# ---------------------------------------------------------------- lab_down

# Idempotent: kills every process in the lab's namespaces (the DNS server,
# clients, anything a test started there), deletes the namespaces and the
# temp dir, and gives the shell its traps back.
lab_down() {
	trap - EXIT INT TERM
	[ -n "${_lab_sleep_pid:-}" ] && kill "$_lab_sleep_pid" 2>/dev/null
	_lab_sleep_pid=
	if [ -n "${LAB_DIR:-}" ] && [ -d "$LAB_DIR" ]; then
		_lab_owned=$(cat "$LAB_DIR/netns" 2>/dev/null)
		_lab_pids=
		[ -s "$LAB_DIR/dns.pid" ] && _lab_pids=$(cat "$LAB_DIR/dns.pid")
		for _lab_ns in $_lab_owned; do
			_lab_pids="$_lab_pids $(ip netns pids "$_lab_ns" 2>/dev/null | tr '\n' ' ')"
		done
		# shellcheck disable=SC2086,SC2116
		[ -n "$(echo $_lab_pids)" ] && _lab_kill_wait $_lab_pids
		for _lab_ns in $_lab_owned; do
			ip netns del "$_lab_ns" 2>/dev/null || _lab_err "lab_down: ip netns del $_lab_ns failed"
		done
	fi
	case ${LAB_DIR:-} in */build/lab-*) rm -rf "$LAB_DIR" ;; esac
	unset LAB LAB_DIR NS_NODE NS_POD NS_GW NS_CLI
	return 0
}
