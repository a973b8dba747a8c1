#!/bin/sh
# tests/t_dns.sh - dns.c: the offline unit tests, then real servers.
#
# 1. build/host/dns_test: encode vectors, hand-built hostile replies,
#    checked-in real replies (tests/data/dns) cut and flipped.
# 2. In a network namespace of its own (loopback only, no link to the
#    host), dnsmasq on port 53 and unbound on port 5353, both on
#    127.0.0.1 and ::1, answer queries built by dns_build_query
#    ("dns_test live"). Each reply is saved in $OUT/corpus/dns/ (fuzz
#    seeds) and then cut and flipped too ("dns_test mutate").
#
# Run as root: sudo ./test.sh dns. Needs dnsmasq-base and unbound
# (scripts/test-deps.sh installs them).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need_root
cd "$TOP" || exit 1

T=$TOP/build/host/dns_test
NAME=kubernetes.default.svc.cluster.local
NS=dbtdns$$
TMP=$(mktemp -d /tmp/dbtdns.XXXXXX)
CORPUS=$OUT/corpus/dns
mkdir -p "$CORPUS"

# Everything started here runs in $NS: on exit, kill what is left in it
# (by pid, from "ip netns pids"), then remove it. Runs on failure too.
# shellcheck disable=SC2317  # (called by the trap)
cleanup() {
	for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	sleep 0.2
	for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	cp "$TMP/dnsmasq.log" "$OUT/dns-dnsmasq.log" 2>/dev/null
	cp "$TMP/unbound.log" "$OUT/dns-unbound.log" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- 1. offline unit tests --------------------------------------------

if [ ! -x "$T" ]; then
	fail "dns_test offline" "$T not built: make build/host/dns_test"
	exit 0
fi
"$T" >"$OUT/dns_test.log" 2>&1
rc=$?
summary=$(tail -n 1 "$OUT/dns_test.log")
if [ "$rc" = 0 ]; then
	pass "dns_test offline ($summary)"
else
	fail "dns_test offline" "exit $rc: $(grep -c '^FAIL' "$OUT/dns_test.log") failed assertions, e.g. $(grep -m 3 '^FAIL' "$OUT/dns_test.log" | tr '\n' ' ')(all in $OUT/dns_test.log)"
fi

# ---- 2. real servers in a namespace -----------------------------------

for prog in dnsmasq unbound; do
	if ! command -v "$prog" >/dev/null; then
		fail "$prog installed" "not found: sh scripts/test-deps.sh (dnsmasq-base, unbound)"
		exit 0
	fi
done
if ! ip netns add "$NS" || ! ip -n "$NS" link set lo up; then
	fail "namespace $NS" "ip netns add or link set lo up failed"
	exit 0
fi
in_ns() { ip netns exec "$NS" "$@"; }

# A name with 40 AAAA records: 40 * 28 bytes do not fit in 512, so a
# query without EDNS gets a reply with TC set.
MANY=many.cluster.local
many_dnsmasq='' many_unbound=
for i in $(seq 1 40); do
	many_dnsmasq="$many_dnsmasq --host-record=$MANY,fd00:96::$i"
	many_unbound="$many_unbound  local-data: \"$MANY. 300 IN AAAA fd00:96::$i\"
"
done

# dnsmasq: answers from --host-record only; no upstream server, so a
# name it does not know gets REFUSED, and no packet ever leaves.
# shellcheck disable=SC2086
in_ns dnsmasq -k -C /dev/null --no-resolv --no-hosts --bind-interfaces \
	--listen-address=127.0.0.1 --listen-address=::1 --port=53 \
	--pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" --user=root \
	--host-record=$NAME,10.96.0.1,fd00:96::1,300 \
	--cname=alias.cluster.local,$NAME $many_dnsmasq &

# unbound: cluster.local is a static local zone, so unknown names in it
# get NXDOMAIN and nothing is ever looked up upstream.
cat >"$TMP/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  interface: ::1
  port: 5353
  do-ip6: yes
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$TMP"
  pidfile: "$TMP/unbound.pid"
  use-syslog: no
  logfile: "$TMP/unbound.log"
  module-config: "iterator"
  local-zone: "cluster.local." static
  local-data: "$NAME. 300 IN A 10.96.0.1"
  local-data: "$NAME. 300 IN AAAA fd00:96::1"
  local-data: "alias.cluster.local. 300 IN CNAME $NAME."
$many_unbound
remote-control:
  control-enable: no
EOF
in_ns unbound -d -c "$TMP/unbound.conf" &

# Ready when the server answers (up to 5 s each).
wait_ready() {
	for _ in $(seq 50); do
		in_ns "$T" live "$1" "$2" "$NAME" A >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
for s in "dnsmasq 127.0.0.1 53" "unbound 127.0.0.1 5353"; do
	# shellcheck disable=SC2086  # split on purpose
	set -- $s
	if ! wait_ready "$2" "$3"; then
		fail "$1 answers" "no reply on $2 port $3 within 5 s: $(tail -n 3 "$TMP/$1.log" 2>/dev/null | tr '\n' ' ')"
		exit 0
	fi
done

# ask LABEL ADDR PORT NAME TYPE WANT...: one query; passes if every
# WANT word (e.g. rcode=NOERROR) is in dns_test's answer line. The reply
# is saved as $CORPUS/LABEL.bin.
ask() {
	label=$1 addr=$2 port=$3 qname=$4 qtype=$5
	shift 5
	got=$(in_ns "$T" live "$addr" "$port" "$qname" "$qtype" "$CORPUS/$label.bin" 2>&1)
	for w in "$@"; do
		case " $got " in
		*" $w "*) ;;
		*) fail "$label: $qname $qtype @$addr:$port" "got '$got', want $*"; return ;;
		esac
	done
	pass "$label: $qname $qtype @$addr:$port -> $got"
}

for s in "dnsmasq 53" "unbound 5353"; do
	# shellcheck disable=SC2086  # split on purpose
	set -- $s
	srv=$1 port=$2
	# What each server does, as configured above: dnsmasq has no upstream
	# to ask, so it REFUSEs names and types it holds no record for, and
	# follows its --cname; unbound's static zone gives NXDOMAIN and NODATA,
	# and returns the CNAME alone (its local data does not chase it).
	if [ "$srv" = dnsmasq ]; then
		unknown=REFUSED nodata=REFUSED cname="ancount=2 addr=10.96.0.1"
	else
		unknown=NXDOMAIN nodata=NOERROR cname="ancount=1 addr=-"
	fi
	for addr in 127.0.0.1 ::1; do
		fam=v4; [ "$addr" = ::1 ] && fam=v6
		ask "$srv-$fam-A" "$addr" "$port" "$NAME" A result=ok rcode=NOERROR ancount=1 addr=10.96.0.1 ttl=300
		ask "$srv-$fam-AAAA" "$addr" "$port" "$NAME" AAAA result=ok rcode=NOERROR ancount=1 addr=fd00:96::1 ttl=300
		ask "$srv-$fam-unknown-A" "$addr" "$port" nope.cluster.local A result=ok rcode=$unknown ancount=0 addr=-
		ask "$srv-$fam-unknown-AAAA" "$addr" "$port" nope.cluster.local AAAA result=ok rcode=$unknown ancount=0 addr=-
	done
	# Mixed case (0x20): the server echoes our spelling; it must match.
	ask "$srv-v4-0x20-A" 127.0.0.1 "$port" KuBeRnEtEs.Default.SVC.cluster.LOCAL A result=ok rcode=NOERROR addr=10.96.0.1
	# A CNAME then the A it leads to.
	# shellcheck disable=SC2086
	ask "$srv-v4-cname-A" 127.0.0.1 "$port" alias.cluster.local A result=ok rcode=NOERROR $cname
	# 40 AAAA records do not fit in 512 bytes: TC, with what fitted.
	ask "$srv-v4-tc-AAAA" 127.0.0.1 "$port" $MANY AAAA result=ok rcode=NOERROR tc=1
	# A name that exists, a type it has not: no answer.
	ask "$srv-v4-nodata-TXT" 127.0.0.1 "$port" "$NAME" TXT result=ok rcode=$nodata ancount=0 addr=-
done

# Every captured reply, cut at every length and flipped at every bit.
n=$(find "$CORPUS" -name '*.bin' | wc -l)
if "$T" mutate "$CORPUS"/*.bin >"$OUT/dns_mutate.log" 2>&1; then
	pass "mutations of $n real replies ($(tail -n 1 "$OUT/dns_mutate.log"))"
else
	fail "mutations of $n real replies" "$(grep -m 3 '^FAIL' "$OUT/dns_mutate.log" | tr '\n' ' ')$(tail -n 1 "$OUT/dns_mutate.log") (all in $OUT/dns_mutate.log)"
fi
exit 0
