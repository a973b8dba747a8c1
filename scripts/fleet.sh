#!/bin/sh
# fleet.sh - `sudo make fleet [FLEET_NODES=N]`: a fleet of N nodes on this
# machine, each with its own kube-proxy rules and its own tester started
# as ds.yaml starts it, scraped by a real Prometheus loaded with
# deploy/prometheus-rules.yaml; a rolling kube-proxy restart across the
# nodes; then the nodes whose flows got stuck (conntrack -L in each node,
# the oracle) against the nodes Prometheus alerted on (its API), which must
# be the same set; then the DaemonSet's args switched to --heal-node, rolled
# out the same way: every stuck client healed, every alert resolved.
#
# Knobs (environment; `make fleet FLEET_NODES=200` passes them through):
#   FLEET_NODES=50            node namespaces (1..1000)
#   FLEET_SEED=random         seeds the rollout order and window lengths
#   FLEET_MAX_UNAVAILABLE=10% nodes restarting at once (N or P%), both rollouts
#   FLEET_WINDOW_MIN=0.05 FLEET_WINDOW_MAX=3   window length, s (log-uniform)
#   FLEET_CLIENTS=4           fixed-port DNS clients per node
#   FLEET_HEAL=1              0: stop after the alert comparison
#   FLEET_UDP_TIMEOUT=5       nf_conntrack_udp_timeout in each node (see below)
#   FLEET_RESULTS=FILE        also write the results as key=value lines
#   FLEET_LOGS=DIR            where the run's logs are left (build/fleet-last)
#
# Namespaces, all named fl<pid>-*, linked only to each other (no interface,
# route, rule or conntrack entry in the root namespace; no address outside):
#
#   fab   a bridge (br0); every other namespace has one veth port on it
#   gw    10.224.0.1/16   the nodes' default gateway: drops everything
#   mon   10.224.0.3/16   Prometheus on :9090, scraping NODEIP:9797
#   dns   10.244.0.2/24   the CoreDNS pod: dnsmasq, local data, no upstream
#         10.244.0.3/24   the "kubernetes" Service's backend (never used)
#   nI    10.224.A.B/16   node-00I: kube-proxy's nat rules for the VIPs,
#                         iptables mode on odd nodes, nftables on even;
#                         its tester; FLEET_CLIENTS clients on ports 40001..
#         10.(200+A).B.K  client K>0's own address (a pod's); client 0 keeps
#                         the node's (a hostNetwork pod's). mon serves their
#                         kube_pod_info (kube-state-metrics) on :8080.
#
# The kube-dns VIP is 10.96.0.10 (the "kubernetes" VIP 10.96.0.1:443 keeps
# its DNAT through every window, so conntrack stays active); while a node's
# rule is missing, a query to the VIP follows the default route to gw and
# dies there, leaving an unreplied entry without DNAT.
#
# Time is compressed tenfold for the clients: each node's UDP conntrack
# timeout is 5 s instead of 30 s, and a client asks again 5.5-7.5 s after an
# answer (its cache TTL), so each lookup is a new flow, as for nginx or
# c-ares with a 30 s TTL on a real node; unanswered, it retries every
# second from the same socket, which keeps a stale entry alive forever.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$TOP/dns-blackhole-tester}
N=${FLEET_NODES:-50}
SEED=${FLEET_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
MAXU=${FLEET_MAX_UNAVAILABLE:-10%}
WMIN=${FLEET_WINDOW_MIN:-0.05} WMAX=${FLEET_WINDOW_MAX:-3}
CLIENTS=${FLEET_CLIENTS:-4}
HEAL=${FLEET_HEAL:-1}
UDPT=${FLEET_UDP_TIMEOUT:-5}
RESULTS_FILE=${FLEET_RESULTS:-}
LOGS=${FLEET_LOGS:-$TOP/build/fleet-last}
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
FP=$TOP/scripts/fleet.py
VIP=10.96.0.10 APIVIP=10.96.0.1 DNSIP=10.244.0.2 APIBE=10.244.0.3 GWIP=10.224.0.1 MONIP=10.224.0.3
URL=http://$MONIP:9090

die() { echo "fleet: $*" >&2; exit 1; }
# bg CMD...: CMD in the background, waited for. The shell runs a trap only
# once its foreground command ends, but `wait` returns at once on a signal:
# a SIGTERM (or a Ctrl-C) during a long step cleans up now, not after it.
bg() { "$@" & _bg=$!; echo $_bg >>"$W/pids"; wait $_bg; _bgrc=$?; _bg=; return $_bgrc; }
say() { printf 'fleet: %s\n' "$*"; }
now_ms() { date +%s%3N; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, conntrack): sudo make fleet"
case $N in ''|*[!0-9]*) die "FLEET_NODES: a whole number" ;; esac
[ "$N" -ge 2 ] && [ "$N" -le 1000 ] || die "FLEET_NODES: 2..1000"
case $SEED$CLIENTS$HEAL$UDPT in *[!0-9]*) die "FLEET_SEED, FLEET_CLIENTS, FLEET_HEAL, FLEET_UDP_TIMEOUT: whole numbers" ;; esac
[ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 50 ] || die "FLEET_CLIENTS: 1..50"
case $WMIN$WMAX in *[!0-9.]*|'') die "FLEET_WINDOW_MIN/MAX: seconds" ;; esac
case $MAXU in
*%) p=${MAXU%\%}; case $p in ''|*[!0-9]*) die "FLEET_MAX_UNAVAILABLE: N or P%" ;; esac
    PAR=$(((N * p + 99) / 100)) ;;
*[!0-9]*|'') die "FLEET_MAX_UNAVAILABLE: N or P%" ;;
*) PAR=$MAXU ;;
esac
[ "$PAR" -ge 1 ] || PAR=1
[ -x "$BIN" ] || die "no $BIN: build first (make)"
sh "$TOP/scripts/test-deps.sh" || die "installing packages failed"
command -v prometheus >/dev/null || die "no prometheus (Debian package prometheus)"

# ds.yaml's args, as written there: the active line, and the commented
# --heal-node variant its comment says to switch to.
ds_args() {
	if [ "$1" = watch ]; then _l=$(grep -E '^ +args: \[' "$TOP/ds.yaml")
	else _l=$(grep -E '^ +# *args: \[.*"--heal-node"' "$TOP/ds.yaml"); fi
	[ "$(printf '%s\n' "$_l" | grep -c 'args:')" = 1 ] || return 1
	printf '%s\n' "$_l" | sed 's/.*args: \[//; s/\].*//; s/[",]/ /g; s/  */ /g; s/^ //; s/ $//'
}
ARGS_WATCH=$(ds_args watch) || die "ds.yaml: no single args: line"
ARGS_HEAL=$(ds_args heal) || die "ds.yaml: no single commented --heal-node args: line"
grep -q 'name: NODE_NAME' "$TOP/ds.yaml" || die "ds.yaml: no NODE_NAME env"
[ -e /etc/resolv.conf ] || die "no /etc/resolv.conf to bind the cluster's over"

. "$TOP/tests/lab.sh"     # the kube-proxy rule shapes, _lab_gw_drop, _lab_kill_wait

T0=$(now_ms)
mkdir -p "$TOP/build"
W=$(mktemp -d "$TOP/build/fleet.XXXXXX") || die "mktemp"
: >"$W/netns"; : >"$W/pids"; : >"$W/nodes"; mkdir -p "$W/t"
# shellcheck disable=SC2034  # read by lab.sh's helpers
LAB_DIR=$W   # lab.sh's helpers write their scratch files here

cleanup() {
	trap - EXIT INT TERM
	# Everything the run starts lives in its namespaces, but for the one
	# step bg is waiting for (maybe a sleep); $W/pids is only a record
	# (a pid reaped long ago may be someone else's by now).
	_pids=${_bg:-}
	for _ns in $(cat "$W/netns" 2>/dev/null); do
		_pids="$_pids $(ip netns pids "$_ns" 2>/dev/null | tr '\n' ' ')"
	done
	# shellcheck disable=SC2086,SC2116
	[ -n "$(echo $_pids)" ] && _lab_kill_wait $_pids
	for _ns in $(cat "$W/netns" 2>/dev/null); do
		ip netns del "$_ns" 2>/dev/null || echo "fleet: ip netns del $_ns failed" >&2
	done
	rm -rf "$W/tsdb"
	# keep the last run's logs (FLEET_LOGS, default build/fleet-last)
	rm -rf "$LOGS" && mkdir -p "$(dirname "$LOGS")" && mv "$W" "$LOGS"
}
trap '_rc=$?; cleanup; exit $_rc' EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---------------------------------------------------------------- namespaces
# `ip netns add` fails if the name exists: the first add claims the prefix.
k=0 P=fl$$
until ip netns add "$P-fab" 2>/dev/null; do
	k=$((k + 1)); [ $k -lt 20 ] || die "no free namespace prefix fl$$*"
	P=fl$$x$k
done
echo "$P-fab" >>"$W/netns"
FAB=$P-fab GW=$P-gw MON=$P-mon DNS=$P-dns
say "prefix $P: $N nodes, seed $SEED, $PAR at a time, windows ${WMIN}-${WMAX} s, $CLIENTS clients a node; work dir $W"

# nsadd NS: create, record (cleanup deletes only what is recorded), sysctls
nsadd() {
	ip netns add "$1" || return 1
	echo "$1" >>"$W/netns"
	# forwarding off (a new namespace may inherit it on), no IPv6 chatter
	ip netns exec "$1" sysctl -q -w net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 ${2:+"$2"} || return 1
	ip -n "$1" link set lo up
}
ip netns exec "$FAB" sysctl -q -w net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 \
	net.ipv6.conf.default.disable_ipv6=1 || die "sysctls in $FAB"
ip -n "$FAB" link add br0 type bridge && ip -n "$FAB" link set br0 up || die "bridge in $FAB"

# port NS NAME ADDR/LEN: NS's eth0 on br0 (created in NS, peer straight into fab)
port() {
	ip -n "$1" link add eth0 type veth peer name "$2" netns "$FAB" &&
	ip -n "$FAB" link set "$2" master br0 up &&
	ip -n "$1" addr add "$3" dev eth0 && ip -n "$1" link set eth0 up
}
nsadd "$GW" && port "$GW" gw "$GWIP/16" || die "gw"
# shellcheck disable=SC2034  # read by _lab_gw_drop
NS_GW=$GW; _lab_gw_drop || die "gw drop rules"
nsadd "$MON" && port "$MON" mon "$MONIP/16" || die "mon"
nsadd "$DNS" && port "$DNS" dns "$DNSIP/24" && ip -n "$DNS" addr add "$APIBE/24" dev eth0 &&
	ip -n "$DNS" route add 10.224.0.0/16 dev eth0 && ip -n "$DNS" route add 10.200.0.0/13 dev eth0 || die "dns"

# ---------------------------------------------------------------- rules
# The same shapes as the lab's (tests/lab.sh _lab_ipt, _lab_nft), with the
# fleet's addresses: one file per mode and state, the same on every node.
mkdir -p "$W/rules"
# shellcheck disable=SC2034  # read by _lab_ipt and _lab_nft
# (POD4C: lab.sh's second kube-dns backend, --backends 2; the fleet has one)
VIP4=$VIP APIVIP4=$APIVIP POD4=$DNSIP POD4B=$APIBE POD4C=$DNSIP
for s in full window; do
	_lab_ipt 4 $s >"$W/rules/iptables-$s" && _lab_nft ip $s >"$W/rules/nftables-$s" || die "rules"
done
rules() {  # NS MODE full|window
	if [ "$2" = iptables ]; then ip netns exec "$1" iptables-restore -w 5 "$W/rules/iptables-$3"
	else ip netns exec "$1" nft -f "$W/rules/nftables-$3"; fi
}

# ---------------------------------------------------------------- DNS pod
ip netns exec "$DNS" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
	--user=root --group=root --pid-file="$W/dnsmasq.pid" --listen-address="$DNSIP" \
	--bind-interfaces --port=53 --host-record="kubernetes.default.svc.cluster.local,10.96.0.1" \
	--local=/#/ --log-facility="$W/dnsmasq.log" >"$W/dns.out" 2>&1 &
echo $! >>"$W/pids"
i=0
until ip netns exec "$DNS" "$PY" "$TOP/tests/client.py" --bind "$DNSIP" --port 0 --server "$DNSIP" \
	--qtype A --expect 10.96.0.1 --timeout 0.2 >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 50 ] || die "dnsmasq does not answer: $(tail -n 3 "$W/dns.out")"
done

# ---------------------------------------------------------------- nodes
printf 'nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
	"$VIP" >"$W/resolv.conf"
# start_tester I PHASE ARGS: the tester in node I as the DaemonSet's pod
# runs it: ds.yaml's args, NODE_NAME, and (dnsPolicy ClusterFirstWithHostNet)
# a resolv.conf naming the cluster DNS VIP, bound over /etc/resolv.conf in
# a mount namespace of its own. `ip netns exec`, unshare and sh all exec:
# the pid is the tester's.
start_tester() {
	_i=$1 _ph=$2; shift 2
	_name=$(printf 'node-%03d' "$_i")
	# the args string is split into words on purpose
	# shellcheck disable=SC2086,SC2048
	ip netns exec "$P-n$_i" unshare -m sh -c \
		'mount --bind "$0" /etc/resolv.conf || exit 125; NODE_NAME=$1; export NODE_NAME; shift; exec "$@"' \
		"$W/resolv.conf" "$_name" "$BIN" $* >"$W/t/$_name.$_ph.log" 2>&1 &
	echo $! >"$W/t/$_name.pid"
	echo $! >>"$W/pids"
}
say "building $N nodes"
i=1
while [ $i -le "$N" ]; do
	ip=10.224.$(((i - 1) / 250 + 1)).$(((i - 1) % 250 + 1))
	if [ $((i % 2)) = 1 ]; then mode=iptables; else mode=nftables; fi
	ns=$P-n$i
	nsadd "$ns" "net.netfilter.nf_conntrack_udp_timeout=$UDPT" && port "$ns" "n$i" "$ip/16" &&
	ip -n "$ns" route add default via "$GWIP" && ip -n "$ns" route add 10.244.0.0/24 dev eth0 &&
	rules "$ns" $mode full || die "node $i"
	# the client pods' addresses (fleet.py client_ip): clients 2.. of the node
	k=1; while [ $k -lt "$CLIENTS" ]; do
		ip -n "$ns" addr add "10.$((200 + (i - 1) / 250 + 1)).$(((i - 1) % 250 + 1)).$k/32" dev eth0 || die "node $i pod $k"
		k=$((k + 1))
	done
	printf '%s node-%03d %s %s\n' "$ns" "$i" "$ip" "$mode" >>"$W/nodes"
	start_tester $i watch "$ARGS_WATCH"
	i=$((i + 1))
done
say "$N nodes up ($(grep -c ' iptables$' "$W/nodes") iptables, $(grep -c ' nftables$' "$W/nodes") nftables) in $((($(now_ms) - T0) / 1000)) s"

# ---------------------------------------------------------------- Prometheus
promtool check rules "$TOP/deploy/prometheus-rules.yaml" >"$W/promtool.out" 2>&1 ||
	die "promtool check rules: $(tail -n 3 "$W/promtool.out")"
{
	printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n'
	printf 'rule_files:\n  - %s\n' "$TOP/deploy/prometheus-rules.yaml"
	# kube-state-metrics, as kube-prometheus-stack scrapes it (honor_labels:
	# namespace= and pod= are the pods'); a static page of the clients' pods
	printf 'scrape_configs:\n  - job_name: kube-state-metrics\n    honor_labels: true\n'
	printf '    static_configs:\n      - targets: ["%s:8080"]\n' "$MONIP"
	printf '  - job_name: dns-blackhole-tester\n    static_configs:\n      - targets:\n'
	awk '{ printf "          - %s:9797\n", $3 }' "$W/nodes"
} >"$W/prometheus.yml"
LO=40001 HI=$((40000 + CLIENTS))
mkdir -p "$W/ksm"
"$PY" "$FP" ksm --nodes "$W/nodes" --ports "$LO-$HI" --out "$W/ksm/metrics" || die "kube_pod_info page"
ip netns exec "$MON" "$PY" -m http.server 8080 --bind "$MONIP" --directory "$W/ksm" >"$W/ksm.out" 2>&1 &
echo $! >>"$W/pids"
ip netns exec "$MON" prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/tsdb" \
	--web.listen-address="$MONIP:9090" --log.level=warn >"$W/prometheus.log" 2>&1 &
PROMPID=$!
echo $PROMPID >>"$W/pids"
PROM_T0=$(now_ms)

# ---------------------------------------------------------------- clients
ip netns exec "$FAB" "$PY" "$FP" clients --nodes "$W/nodes" --vip "$VIP" --ports "$LO-$HI" \
	--status "$W/clients.json" --ready "$W/clients.ready" --seed "$SEED" >"$W/clients.out" 2>&1 &
echo $! >>"$W/pids"
i=0
until [ -e "$W/clients.ready" ]; do
	i=$((i + 1)); [ $i -lt 300 ] || die "not every client was answered in 30 s: $(tail -n 3 "$W/clients.out")"
	sleep 0.1
done
bg ip netns exec "$MON" "$PY" "$FP" wait-ready --url "$URL" --nodes "$W/nodes" --deadline 90 >"$W/targets.out" 2>&1 ||
	die "Prometheus: $(cat "$W/targets.out")"
TARGETS_UP=$(sed -n 's/^\([0-9]*\) of [0-9]* targets up$/\1/p' "$W/targets.out")
STARTED=0
for f in "$W"/t/*.watch.log; do grep -q 'event=start ' "$f" && STARTED=$((STARTED + 1)); done
say "$STARTED testers started, Prometheus scrapes $TARGETS_UP of $N; every client answered"
# a few samples of every counter at 0 before anything happens
bg sleep 5

# ---------------------------------------------------------------- rollout
say "rolling kube-proxy restart: $PAR at a time"
R0=$(now_ms)
bg ip netns exec "$FAB" "$PY" "$FP" rollout --nodes "$W/nodes" --seed "$SEED" --par "$PAR" \
	--wmin "$WMIN" --wmax "$WMAX" --rules "$W/rules" --log "$W/rollout.log" >"$W/rollout.out" 2>&1 ||
	die "rollout: $(cat "$W/rollout.out")"
R1=$(now_ms)
say "rollout done in $(((R1 - R0) / 1000)) s; waiting for the oracle and the alerts to settle"
bg ip netns exec "$MON" "$PY" "$FP" settle --url "$URL" --nodes "$W/nodes" --vip "$VIP" --ports "$LO-$HI" \
	--also DNSBlackholeProven --also DNSRestartWindowSeen --deadline 90 --out "$W/settle1.json" \
	2>"$W/settle1.err"
S1=$(now_ms)

# ---------------------------------------------------------------- heal rollout
# pstat PID: "schedstat_ns utime_ticks stime_ticks vmhwm_kb vmrss_kb"
pstat() {
	_s=$(cut -d' ' -f1 "/proc/$1/schedstat" 2>/dev/null)
	# shellcheck disable=SC2046
	set -- "$1" $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)
	_u=${13:-} _k=${14:-}
	_m=$(awk '/^VmHWM/ { h = $2 } /^VmRSS/ { r = $2 } END { print h, r }' "/proc/$1/status" 2>/dev/null)
	echo "$_s $_u $_k $_m"
}
stop_testers() {  # PHASE NAME...
	_ph=$1; shift
	for _n in "$@"; do
		_p=$(cat "$W/t/$_n.pid")
		echo "$_ph $_n $_p $(now_ms) $(pstat "$_p")" >>"$W/procstats"
		kill -TERM "$_p" 2>/dev/null
	done
	for _n in "$@"; do
		_p=$(cat "$W/t/$_n.pid"); wait "$_p"; echo "$_ph $_n rc=$?" >>"$W/exits"
	done
}
H0=$(now_ms)
if [ "$HEAL" = 1 ]; then
	say "DaemonSet args -> --heal-node ($ARGS_HEAL), rolled out $PAR at a time"
	i=1
	while [ $i -le "$N" ]; do
		batch= j=$i
		while [ $j -le "$N" ] && [ $j -lt $((i + PAR)) ]; do batch="$batch $(printf 'node-%03d' $j)"; j=$((j + 1)); done
		# shellcheck disable=SC2086
		stop_testers watch $batch
		j=$i
		while [ $j -le "$N" ] && [ $j -lt $((i + PAR)) ]; do
			echo "$(printf 'node-%03d' $j) $(now_ms)" >>"$W/restarts"
			start_tester $j heal "$ARGS_HEAL"; j=$((j + 1))
		done
		# the next batch once this one's pods are up (their start line)
		for n in $batch; do
			k=0
			until grep -q 'event=start ' "$W/t/$n.heal.log" 2>/dev/null; do
				k=$((k + 1)); [ $k -lt 100 ] || die "$n: the --heal-node tester did not start: $(tail -n 2 "$W/t/$n.heal.log")"
				sleep 0.05
			done
		done
		i=$((i + PAR))
	done
	H1=$(now_ms)
	say "heal rollout done in $(((H1 - H0) / 1000)) s; waiting for every stuck flow and alert to go"
	bg ip netns exec "$MON" "$PY" "$FP" settle --url "$URL" --nodes "$W/nodes" --vip "$VIP" --ports "$LO-$HI" --want-empty 1 \
		--also DNSBlackholeProven --healed-logs "$W/t/%s.heal.log" --deadline 90 --out "$W/settle2.json" \
		2>"$W/settle2.err"
	PH=heal
else
	PH=watch
fi
# a last status of the clients, then the testers' own figures
bg sleep 1.2
cp "$W/clients.json" "$W/clients.end.json"
T1=$(now_ms)
awk '{ print $2 }' "$W/nodes" >"$W/names"
# shellcheck disable=SC2046
stop_testers $PH $(cat "$W/names")
echo "prometheus x $PROMPID $(now_ms) $(pstat "$PROMPID")" >>"$W/procstats"
# the start-up chain's own CPU (ip netns exec, unshare, sh: counted in
# the tester's pid, as exec keeps it), measured once the same way
CHAIN_NS=$(ip netns exec "$P-n1" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf || exit 1; exec cut -d" " -f1 /proc/self/schedstat' "$W/resolv.conf")

bg ip netns exec "$MON" "$PY" "$FP" report --url "$URL" --work "$W" --t0 "$T0" --t1 "$T1" \
	--prom-t0 "$PROM_T0" --r0 "$R0" --r1 "$R1" --s1 "$S1" --h0 "$H0" --heal "$HEAL" \
	--seed "$SEED" --par "$PAR" --wmin "$WMIN" --wmax "$WMAX" --clients "$CLIENTS" \
	--ports "$LO-$HI" --started "$STARTED" --targets-up "${TARGETS_UP:-0}" \
	--chain-ns "${CHAIN_NS:-0}" --results "${RESULTS_FILE:-$W/results.txt}"
RC=$?
say "logs: $LOGS (moved there on exit)"
exit $RC
