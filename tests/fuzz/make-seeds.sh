#!/bin/sh
# tests/fuzz/make-seeds.sh - regenerate tests/fuzz/seeds/{dns,ct,http,opts}
# from real traffic (root; `make fuzz-seeds`). Everything runs in a network
# namespace of its own (dbtfz<pid>, loopback only), removed on exit with
# every server it started; the host's network is never touched.
#
#   dns:  dnsmasq and unbound on 127.0.0.1, answering from local data
#         (kubernetes.default.svc.cluster.local A 10.96.0.1 / AAAA
#         fd00:96::1, a CNAME, 40 A records for a TC reply, NXDOMAIN for
#         the rest); tests/fuzz/dns_seed.c sends the queries of
#         dns_queries.h and stores selector byte + reply.
#   ct:   `conntrack -I` entries (UDP/TCP/ICMP, IPv4/IPv6, DNAT'd, replied,
#         marks, a zone), then tests/fuzz/ct_dump.py stores every message
#         of a kernel dump (IPCTNL_MSG_CT_GET, NLM_F_DUMP).
#   http: curl (GET, HEAD, HTTP/1.0, query string, POST, 404, Prometheus's
#         scrape headers, TLS to a plain port) and Python's urllib, as
#         captured by tests/fuzz/http_capture.py; plus written bad ones.
#   opts: option values from the README and the CLI tests, written here.
#
# Seeds are small (a few KB in all) and committed; rerunning replaces them
# (IDs and timeouts in the ct messages differ from run to run).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
seeds=$top/tests/fuzz/seeds
fz=$top/tests/fuzz
work=$top/build/fuzz/seedwork
NS=dbtfz$$
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

[ "$(id -u)" = 0 ] || { echo "make-seeds: needs root (network namespace)" >&2; exit 1; }
for t in ip dnsmasq unbound conntrack curl "$PY" cc; do
	command -v "$t" >/dev/null 2>&1 || { echo "make-seeds: $t missing (sh scripts/test-deps.sh; apt-get install curl)" >&2; exit 1; }
done

pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM
rm -rf "$work"
mkdir -p "$work"
ip netns add "$NS"
ip -n "$NS" link set lo up
X() { ip netns exec "$NS" "$@"; }

# ---- dns ---------------------------------------------------------------
cc -std=c11 -Wall -Wextra -Werror -O1 -I"$top" -I"$fz" -o "$work/dns_seed" \
	"$fz/dns_seed.c" "$top/dns.c"
K8S=kubernetes.default.svc.cluster.local
: >"$work/big.hosts"
i=1
while [ $i -le 40 ]; do
	echo "10.0.1.$i big.cluster.local" >>"$work/big.hosts"
	echo "	local-data: \"big.cluster.local. 30 IN A 10.0.1.$i\"" >>"$work/big.unbound"
	i=$((i + 1))
done
X dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --group=root \
	--pid-file="$work/dnsmasq.pid" --listen-address=127.0.0.1 --bind-interfaces --port=5301 \
	--host-record="$K8S,10.96.0.1,fd00:96::1" --cname="alias.cluster.local,$K8S" \
	--addn-hosts="$work/big.hosts" --local=/#/ --log-facility="$work/dnsmasq.log" \
	>"$work/dnsmasq.out" 2>&1 &
pids="$pids $!"
cat >"$work/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: 5302
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$work"
	pidfile: "$work/unbound.pid"
	logfile: "$work/unbound.log"
	use-syslog: no
	num-threads: 1
	module-config: "iterator"
	local-zone: "." static
	local-data: "$K8S. 30 IN A 10.96.0.1"
	local-data: "$K8S. 30 IN AAAA fd00:96::1"
	local-data: "alias.cluster.local. 30 IN CNAME $K8S."
$(cat "$work/big.unbound")
remote-control:
	control-enable: no
EOF
X unbound -d -c "$work/unbound.conf" >"$work/unbound.out" 2>&1 &
pids="$pids $!"

# Wait for both to answer, then capture.
rm -rf "$seeds/dns"
mkdir -p "$seeds/dns"
for srv in dnsmasq:5301 unbound:5302; do
	name=${srv%:*} port=${srv#*:}
	try=0
	until X "$work/dns_seed" 127.0.0.1 "$port" "$name" "$work" >/dev/null 2>&1; do
		try=$((try + 1))
		[ $try -lt 30 ] || { echo "make-seeds: $name does not answer:" >&2; cat "$work/$name.out" >&2; exit 1; }
		sleep 0.2
	done
	X "$work/dns_seed" 127.0.0.1 "$port" "$name" "$seeds/dns"
done
# A few names for dns_check_name / dns_build_query (selector byte, name).
printf '\000%s' "$K8S" >"$seeds/dns/name-k8s"
printf '\000%s' "a..b" >"$seeds/dns/name-empty-label"
printf '\000%s.' "$(printf 'x%.0s' $(seq 64))" >"$seeds/dns/name-label-64"
printf '\000%s' "TYPE65535" >"$seeds/dns/name-type"

# ---- ct ----------------------------------------------------------------
ins() { X conntrack -I "$@" -t 600 >/dev/null 2>&1 || { echo "make-seeds: conntrack -I $* failed" >&2; exit 1; }; }
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40000 --dport 53                      # unreplied: the blackhole
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40001 --dport 53 --dst-nat 10.244.0.2 # DNAT'd
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40002 --dport 53 -r 10.244.0.3 -q 10.0.0.1 \
	--reply-port-src 53 --reply-port-dst 40002 -u SEEN_REPLY                      # replied from elsewhere
ins -p udp -s 10.0.0.1 -d 10.0.0.11 --sport 40003 --dport 53 -u SEEN_REPLY -m 7
ins -p tcp -s 10.0.0.1 -d 10.0.0.10 --sport 40004 --dport 53 --state ESTABLISHED \
	-u SEEN_REPLY,ASSURED -m 4294967295
ins -p tcp -s 10.0.0.1 -d 10.0.0.10 --sport 40005 --dport 80 --state SYN_SENT --dst-nat 10.244.0.3:8080
ins -p icmp -s 10.0.0.1 -d 10.0.0.10 --icmp-type 8 --icmp-code 0 --icmp-id 53
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40008 --dport 53 -w 5                 # a zone
ins -p udp -s fd00::1 -d fd00::10 --sport 40000 --dport 53
ins -p udp -s fd00::1 -d fd00::10 --sport 40001 --dport 53 --dst-nat fd00::99
ins -p tcp -s fd00::1 -d fd00::10 --sport 40004 --dport 53 --state ESTABLISHED -u SEEN_REPLY,ASSURED -m 3
ins -p icmpv6 -s fd00::1 -d fd00::10 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 7
rm -rf "$seeds/ct"
mkdir -p "$seeds/ct"
X "$PY" "$fz/ct_dump.py" "$seeds/ct"
X conntrack -L 2>/dev/null | sed 's/^/  /'

# ---- http --------------------------------------------------------------
rm -rf "$seeds/http"
mkdir -p "$seeds/http"
U=http://127.0.0.1:9100
set -- curl-get curl-head curl-http10 curl-query curl-root curl-post prometheus-like \
	python-urllib curl-tls-to-plain-port
X "$PY" "$fz/http_capture.py" 9100 "$seeds/http" "$@" >"$work/http.out" 2>&1 &
pids="$pids $!"
try=0
until grep -q ready "$work/http.out" 2>/dev/null; do
	try=$((try + 1)); [ $try -lt 50 ] || { echo "make-seeds: http_capture did not start" >&2; exit 1; }
	sleep 0.1
done
C() { X curl -s -o /dev/null --max-time 3 "$@" || true; }
C "$U/metrics"
C -I "$U/metrics"
C --http1.0 "$U/metrics"
C -g "$U/metrics?name[]=up"
C "$U/"
C -d 'x=1' "$U/metrics"
# The headers Prometheus sends with every scrape (scrape.go), via curl.
C -A 'Prometheus/2.53.0' -H 'Accept-Encoding: gzip' -H 'X-Prometheus-Scrape-Timeout-Seconds: 10' \
	-H 'Accept: application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2' \
	"$U/metrics"
X "$PY" -c "import urllib.request; urllib.request.urlopen('$U/metrics', timeout=3).read()"
C -k "https://127.0.0.1:9100/metrics"
wait "$!" 2>/dev/null || true
# Bad ones, written: each keeps a header line, so none is the known
# headerless-CRLF crash (tests/fuzz/crashes/http), which would stop
# every run at its first input.
w() { printf '%b' "$2" >"$seeds/http/$1"; }
w lowercase-method 'get /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
w http2-version 'GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n'
w double-space 'GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
w no-version 'GET /metrics\nHost: x\n\n'
w del-in-target 'GET /metr\177ics HTTP/1.1\nHost: x\n\n'
w metrics-suffix 'GET /metricsfoo HTTP/1.1\r\nHost: x\r\n\r\n'
w lf-only 'HEAD /metrics HTTP/1.0\nUser-Agent: x\n\n'
w incomplete 'GET /metrics HTTP/1.1\r\nHost: x\r\n'
w empty-lines '\n\n'
{ printf 'GET /metrics HTTP/1.1\r\nX-Long: '; head -c 2100 /dev/zero | tr '\0' A; } >"$seeds/http/oversized"

# ---- opts --------------------------------------------------------------
# One flags byte (bit 0: allow port 0), then the value.
rm -rf "$seeds/opts"
mkdir -p "$seeds/opts"
n=0
for v in 1s 500ms 1.5s 2m 1m30s 100us 250ns 3 0.25 1h "$(printf '2\302\265s')" 0 -1s 5parsecs \
	10.0.0.10 10.0.0.10:53 10.96.0.10:5353 '[fd00::a]:53' '[fd00::a]' fd00::a ::1 \
	'[::ffff:10.0.0.1]:99' 'fe80::1%lo' '[fe80::1%1]:53' 10.0.0.10:0 10.0.0.10:65536 \
	'[fd00::a' not-an-ip 127.0.0.1:9153 0.0.0.0:0; do
	n=$((n + 1))
	printf '\000%s' "$v" >"$seeds/opts/v$(printf %02d $n)"
done
printf '\001%s' 0.0.0.0:0 >"$seeds/opts/zero-port-allowed"
printf '\001%s' '[::]:0' >"$seeds/opts/zero-port-allowed6"

echo "make-seeds: $(find "$seeds" -type f | wc -l) seeds, $(find "$seeds" -type f -exec cat {} + | wc -c) bytes"
