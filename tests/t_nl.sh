#!/bin/sh
# t_nl.sh - nl.c against the real kernel, judged by conntrack-tools.
#
# In a network namespace of its own, this group inserts conntrack entries
# with `conntrack -I` (plain, DNAT'd, replied, TCP, IPv4 and IPv6, marks,
# a zone) and has build/host/nl_test (tests/nl_test.c: one nl.c call per
# run) read, delete and dump them. What nl.c reports must be what
# `conntrack -G` / `conntrack -L` print for the same entries, and every
# delete must remove exactly the entry it names. The timeout field of
# an entry counts down between two reads, so lines are compared with it
# masked, and the timeout itself within a second.
#
#   make build/host/nl_test
#   TOP=$PWD RESULTS=build/r-nl.txt OUT=build/out GROUP=nl sh tests/t_nl.sh
#
# The host's own network is never touched: every conntrack and nl_test
# call runs through `ip netns exec`, and the namespace goes on exit.
#
# shellcheck disable=SC2086,SC2016
# SC2086: tuples like $A are split into words on purpose.
# SC2016: the '$1', '$0' in single quotes are awk's, not the shell's.
. "${TOP:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
need_root

NLT=${NLT:-$TOP/build/host/nl_test}
NS=dbtnl$$
W=$OUT/nl                     # every file compared stays here for a look
mkdir -p "$W"

for tool in ip conntrack setpriv "$NLT"; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ fail "nl: $tool is available" "missing (make build/host/nl_test; sh scripts/test-deps.sh)"; exit 0; }
done

cleanup() { ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP    # the EXIT trap still runs
if ! ip netns add "$NS" || ! ip -n "$NS" link set lo up; then
	fail "nl: namespace $NS" "ip netns add failed"
	exit 0
fi

X() { ip netns exec "$NS" "$@"; }
nlt() { X "$NLT" "$@"; }
# Without CAP_NET_ADMIN, still root and still in the namespace.
nocap() { X setpriv --inh-caps=-net_admin --bounding-set=-net_admin "$@"; }

# The third field of a conntrack line is the timeout, which counts down.
mask() { sed -E 's/^([a-z0-9]+ +[0-9]+ )[0-9]+ /\1T /'; }
timeout_of() { awk '{ print $3 }'; }
# The table as conntrack-tools sees it, with ids, in a stable order.
snapshot() { X conntrack -L -o id 2>/dev/null | mask | sort; }

# ins ARGS...: one entry, with a timeout long enough for the whole run.
ins() {
	X conntrack -I "$@" -t 600 >"$W/ins.log" 2>&1 ||
		fail "insert: conntrack -I $*" "$(tail -n 1 "$W/ins.log")"
}

# A tuple is "PROTO SRC DST SPORT DPORT": the original direction, the
# way nl_test takes it; $A-style variables are left unquoted on
# purpose so that they split into those five words (SC2086 below).
# cg TUPLE: what `conntrack -G` prints for it.
cg() { X conntrack -G -p "$1" -s "$2" -d "$3" --sport "$4" --dport "$5" 2>/dev/null; }

# first_tuple_is PROTO SRC DST SPORT DPORT: awk program matching conntrack
# lines whose ORIGINAL tuple is that one (the reply tuple of another entry
# may carry the same text, so only the first "src=" counts).
first_tuple_is() {
	printf '$1 == "%s" { i = index($0, " src="); if (index(substr($0, i + 1), "src=%s dst=%s sport=%s dport=%s ") == 1) %s }' \
		"$1" "$2" "$3" "$4" "$5" "$6"
}
# ctid TUPLE: the entry's id as `conntrack -L -o id` prints it.
ctid() {
	X conntrack -L -o id 2>/dev/null |
		awk "$(first_tuple_is "$@" '{ for (f = 1; f <= NF; f++) if ($f ~ /^id=/) print substr($f, 4) }')"
}
# without TUPLE < snapshot: the snapshot minus that entry's line.
without() { awk "$(first_tuple_is "$@" 'next') { print }"; }

# ---- fixture --------------------------------------------------------
# VIPs 10.0.0.10 and fd00::10 port 53, as the tester's Service VIP; the
# client is 10.0.0.1 / fd00::1. Names say what each entry is for.
A="udp 10.0.0.1 10.0.0.10 40000 53"      # the blackhole: plain, unreplied
B="udp 10.0.0.1 10.0.0.10 40001 53"      # DNAT'd by conntrack (IPS_DST_NAT)
C="udp 10.0.0.1 10.0.0.10 40002 53"      # replied, reply tuple from elsewhere, no NAT bit
D="udp 10.0.0.1 10.0.0.11 40003 53"      # other VIP, replied, mark 7
E="tcp 10.0.0.1 10.0.0.10 40004 53"      # TCP to the VIP:53, ESTABLISHED, mark 2^32-1
F="tcp 10.0.0.1 10.0.0.10 40005 80"      # TCP, DNAT'd with a port change, SYN_SENT
L="tcp 10.0.0.1 10.0.0.12 40009 80"      # TCP state 9, printed SYN_SENT2 (inserted as LISTEN)
A6="udp fd00::1 fd00::10 40000 53"
B6="udp fd00::1 fd00::10 40001 53"
D6="udp fd00::1 fd00::11 40003 53"
E6="tcp fd00::1 fd00::10 40004 53"
# An entry from the VIP (10.0.0.10:53 -> 10.0.0.1:40007): its REPLY tuple
# is this one, which no entry has as its original tuple.
H_REPLY="udp 10.0.0.1 10.0.0.10 40007 53"
MISSING="udp 10.0.0.1 10.0.0.10 40099 53"
MISSING6="udp fd00::1 fd00::10 40099 53"

ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40000 --dport 53
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40001 --dport 53 --dst-nat 10.244.0.2
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40002 --dport 53 -r 10.244.0.3 -q 10.0.0.1 \
	--reply-port-src 53 --reply-port-dst 40002 -u SEEN_REPLY
ins -p udp -s 10.0.0.1 -d 10.0.0.11 --sport 40003 --dport 53 -u SEEN_REPLY -m 7
ins -p tcp -s 10.0.0.1 -d 10.0.0.10 --sport 40004 --dport 53 --state ESTABLISHED \
	-u SEEN_REPLY,ASSURED -m 4294967295
ins -p tcp -s 10.0.0.1 -d 10.0.0.10 --sport 40005 --dport 80 --state SYN_SENT --dst-nat 10.244.0.3:8080
ins -p tcp -s 10.0.0.1 -d 10.0.0.12 --sport 40009 --dport 80 --state LISTEN
ins -p tcp -s 10.0.0.1 -d 10.0.0.12 --sport 40010 --dport 80 --state TIME_WAIT
ins -p udp -s 10.0.0.10 -d 10.0.0.1 --sport 53 --dport 40007
# Decoys for the dump filter: same VIP other port, other protocol, a zone.
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40006 --dport 54
ins -p icmp -s 10.0.0.1 -d 10.0.0.10 --icmp-type 8 --icmp-code 0 --icmp-id 53
ins -p udp -s 10.0.0.1 -d 10.0.0.10 --sport 40008 --dport 53 -w 5
ins -p udp -s fd00::1 -d fd00::10 --sport 40000 --dport 53
ins -p udp -s fd00::1 -d fd00::10 --sport 40001 --dport 53 --dst-nat fd00::99
ins -p udp -s fd00::1 -d fd00::11 --sport 40003 --dport 53 -u SEEN_REPLY -m 7
ins -p tcp -s fd00::1 -d fd00::10 --sport 40004 --dport 53 --state ESTABLISHED -u SEEN_REPLY,ASSURED
ins -p udp -s fd00::1 -d fd00::10 --sport 40006 --dport 54
ins -p udp -s fd00::10 -d fd00::1 --sport 53 --dport 40007
expect_eq "fixture: 18 entries in the namespace's table" "$(X conntrack -C)" 18

# ---- get: field for field what conntrack -G prints ------------------
# Both are GETs of one tuple (conntrack -G shows use=2 for the same
# reason nl_get does: the kernel holds the entry while it answers).
get_matches_conntrack() {
	name=$1; shift
	got=$(nlt get "$@")
	want=$(cg "$@")
	if [ -z "$want" ]; then
		fail "get $name: matches conntrack -G" "conntrack -G found no entry for: $*"
		return
	fi
	expect_eq "get $name: line as conntrack -G prints it" \
		"$(echo "$got" | mask)" "$(echo "$want" | mask)"
	# Read one after the other: the timeouts may differ by one second.
	tg=$(echo "$got" | timeout_of)
	tw=$(echo "$want" | timeout_of)
	case "$tg" in
	*[!0-9]* | '') fail "get $name: timeout" "not a number: '$tg'" ;;
	*) if [ $((tg - tw)) -le 1 ] && [ $((tw - tg)) -le 1 ]; then pass "get $name: timeout $tg vs $tw"
	   else fail "get $name: timeout" "nl_test $tg, conntrack $tw"; fi ;;
	esac
}
get_matches_conntrack "IPv4 UDP unreplied" $A
get_matches_conntrack "IPv4 UDP DNAT'd" $B
get_matches_conntrack "IPv4 UDP replied, reply tuple rewritten" $C
get_matches_conntrack "IPv4 UDP mark 7" $D
get_matches_conntrack "IPv4 TCP ESTABLISHED ASSURED mark 2^32-1" $E
get_matches_conntrack "IPv4 TCP SYN_SENT DNAT'd to another port" $F
get_matches_conntrack "IPv4 TCP state 9 (SYN_SENT2)" $L
get_matches_conntrack "IPv6 UDP unreplied" $A6
get_matches_conntrack "IPv6 UDP DNAT'd" $B6
get_matches_conntrack "IPv6 UDP mark 7" $D6
get_matches_conntrack "IPv6 TCP ESTABLISHED" $E6

expect_eq "get of a missing IPv4 tuple: ENOENT" "$(nlt get $MISSING)" ENOENT
expect_eq "get of a missing IPv6 tuple: ENOENT" "$(nlt get $MISSING6)" ENOENT
# nl.h: nl_get finds "the entry whose original tuple is t". The kernel
# looks a tuple up in both directions, so H_REPLY finds H, whose
# original tuple is another one: that is not the entry asked for.
expect_eq "get of a tuple that is only another entry's reply tuple: ENOENT" \
	"$(nlt get $H_REPLY)" ENOENT

# ---- id, DNAT and reply flags ---------------------------------------
info_is() {   # info_is NAME WANT TUPLE: nl_test info against what we know
	name=$1 want=$2; shift 2
	expect_eq "info $name" "$(nlt info "$@")" "$want"
}
# The kernel sets IPS_DST_NAT where NAT was set up; conntrack -L
# --dst-nat lists exactly those (tested on that bit by conntrack-tools),
# so this also proves which entries carry it, independently of nl.c.
dnat_list=$(X conntrack -L --dst-nat 2>/dev/null)
expect_eq "conntrack -L --dst-nat lists B, F and B6 (IPS_DST_NAT), not C" \
	"$(echo "$dnat_list" | awk '{ for (f = 1; f <= NF; f++) if ($f ~ /^sport=/) { print $f; break } }' | sort | tr '\n' ' ')" \
	"sport=40001 sport=40001 sport=40005 "
info_is "IPv4 plain unreplied: not DNAT'd" "id=$(ctid $A) dnat=0 seen_reply=0 mark=0" $A
info_is "IPv4 DNAT'd (IPS_DST_NAT)" "id=$(ctid $B) dnat=1 seen_reply=0 mark=0" $B
info_is "IPv4 reply from another address, no NAT bit: DNAT'd" "id=$(ctid $C) dnat=1 seen_reply=1 mark=0" $C
info_is "IPv4 replied by the VIP itself: not DNAT'd" "id=$(ctid $D) dnat=0 seen_reply=1 mark=7" $D
info_is "IPv4 TCP mark 2^32-1" "id=$(ctid $E) dnat=0 seen_reply=1 mark=4294967295" $E
info_is "IPv4 TCP DNAT'd to another port" "id=$(ctid $F) dnat=1 seen_reply=0 mark=0" $F
info_is "IPv6 plain unreplied: not DNAT'd" "id=$(ctid $A6) dnat=0 seen_reply=0 mark=0" $A6
info_is "IPv6 DNAT'd (IPS_DST_NAT)" "id=$(ctid $B6) dnat=1 seen_reply=0 mark=0" $B6

# ---- ct_format at every buffer size ----------------------------------
# The longest line here: two IPv6 tuples. ct_format says it returns
# snprintf's value, so every capacity must return the full length.
len=$(cg $B6 | awk '{ print length($0) }')
expect_eq "ct_format: snprintf contract at every buffer size 0..len+1" \
	"$(nlt formatcap $B6)" "ok $len"

# ---- dump: kernel filter, user filter, awk on conntrack -L -----------
# want_dump PROTO VIP:PORT...: conntrack -L lines whose original
# protocol, destination and destination port match, found by awk alone.
want_dump() {
	proto=$1; shift
	keys=
	for v in "$@"; do
		addr=${v%:*} port=${v##*:}
		addr=${addr#\[} addr=${addr%\]}
		keys="$keys|dst=$addr dport=$port"
	done
	X conntrack -L 2>/dev/null | awk -v p="$proto" -v keys="$keys" '
		BEGIN { n = split(keys, k, "|"); for (i = 1; i <= n; i++) if (k[i] != "") want[k[i]] = 1 }
		$1 == p {
			d = ""; dp = ""
			for (f = 1; f <= NF; f++) {
				if (d == "" && $f ~ /^dst=/) d = $f
				if (dp == "" && $f ~ /^dport=/) dp = $f
			}
			if ((d " " dp) in want) print
		}'
}

# CTA_FILTER came with Linux 5.8: before it, nl_dump's kernel path
# must fall back to a plain dump and say so.
kver=$(uname -r) kmaj=${kver%%.*} kmin=${kver#*.}
kmin=${kmin%%[!0-9]*}
if [ "$kmaj" -gt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -ge 8 ]; }; then kernel_filter=1; else kernel_filter=0; fi

# dump_case NAME COUNT PROTO VIP:PORT...: both of nl_dump's paths give
# exactly the entries awk picks from conntrack -L (COUNT of them, known
# from the fixture, so that an empty or wrong awk cannot pass).
dump_case() {
	name=$1 count=$2; shift 2
	f=$W/dump-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
	want_dump "$@" | mask | sort >"$f.want"
	expect_eq "dump $name: conntrack -L has $count such entries" "$(wc -l <"$f.want")" "$count"
	for path in kernel user; do
		nlt dump $path "$@" 2>"$f.$path.err" | mask | sort >"$f.$path"
		kf=$(sed -n 's/^kernel_filtered=\([0-9-]*\).*/\1/p' "$f.$path.err")
		[ $path = kernel ] && wantkf=$kernel_filter || wantkf=0
		expect_eq "dump $name ($path): kernel_filtered" "$kf" "$wantkf"
		if cmp -s "$f.$path" "$f.want"; then
			pass "dump $name ($path): exactly conntrack -L's entries"
		else
			fail "dump $name ($path): exactly conntrack -L's entries" \
				"$(diff "$f.want" "$f.$path" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
		fi
	done
}
dump_case "IPv4 udp VIP:53" 4 udp 10.0.0.10:53
dump_case "IPv6 udp VIP:53" 2 udp '[fd00::10]:53'
dump_case "mixed udp, two families, three VIPs" 7 udp 10.0.0.10:53 '[fd00::10]:53' 10.0.0.11:53
# Two IPv6 VIPs on one port: each entry still passes once.
dump_case "two IPv6 VIPs on one port" 3 udp '[fd00::10]:53' '[fd00::11]:53'
dump_case "tcp VIP:53 both families" 2 tcp 10.0.0.10:53 '[fd00::10]:53'
dump_case "tcp VIP:80" 1 tcp 10.0.0.10:80
dump_case "a VIP with no entries" 0 udp 10.0.0.99:53
# The same destination given twice is still one set of entries: each
# entry passes the filter once.
dump_case "same VIP:port listed twice" 4 udp 10.0.0.10:53 10.0.0.10:53

# Unfiltered, every line is ct_format's: all kinds in the fixture (ICMP,
# zone, TCP states, IPv6) exactly as conntrack -L prints them.
X conntrack -L 2>/dev/null | mask | sort >"$W/all.want"
nlt dump all 2>"$W/all.err" | mask | sort >"$W/all.got"
if cmp -s "$W/all.got" "$W/all.want" && [ -s "$W/all.want" ]; then
	pass "dump all: every line as conntrack -L prints it ($(wc -l <"$W/all.want") entries)"
else
	fail "dump all: every line as conntrack -L prints it" \
		"$(diff "$W/all.want" "$W/all.got" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
fi

# ---- without CAP_NET_ADMIN -------------------------------------------
# First prove the capability is really gone in that context.
capeff=$(nocap awk '/^CapEff:/ { print $2 }' /proc/self/status)
if [ -n "$capeff" ] && [ $(( 0x$capeff & (1 << 12) )) -eq 0 ]; then
	pass "setpriv drops CAP_NET_ADMIN (CapEff $capeff)"
else
	fail "setpriv drops CAP_NET_ADMIN" "CapEff '$capeff'"
fi
before=$(snapshot)
idA=$(ctid $A)
expect_eq "no CAP_NET_ADMIN: get is EPERM" "$(nocap "$NLT" get $A)" EPERM
expect_eq "no CAP_NET_ADMIN: delete with the right ID is EPERM" "$(nocap "$NLT" delete $A "$idA")" EPERM
expect_eq "no CAP_NET_ADMIN: dump is EPERM" "$(nocap "$NLT" dump all 2>/dev/null)" EPERM
expect_eq "no CAP_NET_ADMIN: kernel-filtered dump is EPERM" \
	"$(nocap "$NLT" dump kernel udp 10.0.0.10:53 2>/dev/null)" EPERM
expect_eq "no CAP_NET_ADMIN: the table is unchanged" "$(snapshot)" "$before"

# ---- guarded delete ----------------------------------------------------
before=$(snapshot)
expect_eq "delete with a wrong ID: ENOENT" "$(nlt delete $A $(( idA ^ 1 )))" ENOENT
expect_eq "delete with a wrong ID: the table is unchanged" "$(snapshot)" "$before"
expect_eq "delete of a missing tuple: ENOENT" "$(nlt delete $MISSING "$idA")" ENOENT
expect_eq "delete of a missing tuple: the table is unchanged" "$(snapshot)" "$before"
expect_eq "delete of an entry without an ID is refused: EINVAL" "$(nlt unguarded $A)" EINVAL
expect_eq "refused unguarded delete: the table is unchanged" "$(snapshot)" "$before"

# deleted_exactly NAME TUPLE...: after a delete, the table is the
# snapshot taken before ($before) minus that one entry's line.
deleted_exactly() {
	name=$1; shift
	after=$(snapshot)
	expect_eq "$name: one entry fewer" \
		"$(echo "$after" | wc -l)" "$(( $(echo "$before" | wc -l) - 1 ))"
	expect_eq "$name: that entry gone, all others unchanged (ids too)" \
		"$after" "$(echo "$before" | without "$@")"
	expect_eq "$name: get is ENOENT afterwards" "$(nlt get "$@")" ENOENT
}
expect_eq "delete (IPv4 UDP, ID just read)" "$(nlt delete $A)" ok
deleted_exactly "delete (IPv4 UDP)" $A

before=$(snapshot)
expect_eq "delete with the ID from conntrack -L -o id (IPv6 DNAT'd)" "$(nlt delete $B6 "$(ctid $B6)")" ok
deleted_exactly "delete (IPv6 DNAT'd)" $B6

before=$(snapshot)
expect_eq "delete (IPv4 TCP ESTABLISHED)" "$(nlt delete $E)" ok
deleted_exactly "delete (IPv4 TCP)" $E

# A stale ID: the tester read the blackhole entry, then kube-proxy came
# back and the flow's entry was replaced by a DNAT'd one with the same
# original tuple before the delete. The new entry must survive.
# (The kernel's id hashes the entry's address and its tuple: a
# replacement that reuses the freed memory gets the same id - on 6.18 even
# a DNAT'd one. So a filler entry takes the freed slot first, and the
# replacement is retried until the kernel gives it another id.)
old=$(ctid $A6)
new=$old
tries=0
while [ "$new" = "$old" ] && [ $tries -lt 20 ]; do
	tries=$((tries + 1))
	X conntrack -D -p udp -s fd00::1 -d fd00::10 --sport 40000 --dport 53 >/dev/null 2>&1
	ins -p udp -s fd00::1 -d fd00::77 --sport $((41000 + tries)) --dport 9
	ins -p udp -s fd00::1 -d fd00::10 --sport 40000 --dport 53 --dst-nat fd00::98
	new=$(ctid $A6)
done
X conntrack -D -p udp -d fd00::77 --dport 9 >/dev/null 2>&1   # the fillers
if [ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ]; then
	pass "stale ID: the replacing DNAT'd entry has a new id ($old -> $new)"
else
	fail "stale ID: the replacing DNAT'd entry has a new id" "old '$old' new '$new'"
fi
before=$(snapshot)
expect_eq "delete with a stale ID: ENOENT" "$(nlt delete $A6 "$old")" ENOENT
expect_eq "delete with a stale ID: the table is unchanged" "$(snapshot)" "$before"
info_is "delete with a stale ID: the replacement is still there" \
	"id=$new dnat=1 seen_reply=0 mark=0" $A6

# ---- a few thousand entries --------------------------------------------
# conntrack -R reads "-I ..." lines: 2400 entries in one process. The
# dump spans many netlink batches, so entries at batch edges are read too.
i=0
while [ $i -lt 1200 ]; do     # to the IPv4 VIP:53, what a filter picks
	echo "-I -p udp -s 10.1.$((i / 200)).$((i % 200 + 1)) -d 10.0.0.10 --sport $((20000 + i)) --dport 53 -t 600"
	i=$((i + 1))
done >"$W/load.txt"
i=0
while [ $i -lt 400 ]; do      # decoys: other port, other protocol
	echo "-I -p udp -s 10.2.0.1 -d 10.0.0.10 --sport $((20000 + i)) --dport 5353 -t 600"
	echo "-I -p tcp -s 10.2.0.1 -d 10.0.0.10 --sport $((20000 + i)) --dport 53 --state ESTABLISHED -t 600"
	echo "-I -p udp -s fd00::2 -d fd00::10 --sport $((20000 + i)) --dport 53 -t 600"
	i=$((i + 1))
done >>"$W/load.txt"
X conntrack -R "$W/load.txt" >"$W/load.log" 2>&1
total=$(X conntrack -C)
if [ "$total" -ge 2400 ]; then pass "bulk insert: $total entries"; else fail "bulk insert" "only '$total' entries"; fi

X conntrack -L 2>/dev/null | mask | sort >"$W/big.want"
start=$(date +%s)
nlt dump all 2>"$W/big.err" | mask | sort >"$W/big.got"
expect_eq "big dump: all $total entries come back" "$(wc -l <"$W/big.got")" "$total"
if cmp -s "$W/big.got" "$W/big.want"; then
	pass "big dump: identical to conntrack -L ($(( $(date +%s) - start )) s)"
else
	fail "big dump: identical to conntrack -L" "$(diff "$W/big.want" "$W/big.got" | grep -c '^[<>]') lines differ"
fi
# 1200 + the fixture's three left at 10.0.0.10:53 (B, C and the zone-5 one).
dump_case "big, IPv4 udp VIP:53" 1203 udp 10.0.0.10:53

# ct_ntop prints addresses as conntrack-tools does (glibc's inet_ntop),
# also in the musl binary: the same 262,024 addresses through ct_ntop built
# with musl, against glibc's inet_ntop. musl's own inet_ntop differing on
# some of them is the positive control: the special cases are needed.
G=$OUT/ntop-glibc.txt M=$OUT/ntop-musl.txt
if "$TOP/build/host/ntop_diff" >"$G" && "$TOP/build/host/ntop_diff-musl" >"$M"; then
	n=$(wc -l <"$G")
	bad=$(paste -d' ' "$M" "$G" | awk '$1 != $4' | head -n 3 | tr '\n' ' ')
	gbad=$(awk '$1 != $2' "$G" | head -n 3 | tr '\n' ' ')
	differ=$(paste -d' ' "$M" "$G" | awk '$2 != $4' | wc -l)
	if [ "$n" -gt 250000 ] && [ -z "$bad" ] && [ -z "$gbad" ] && [ "$differ" -gt 0 ]; then
		pass "ct_ntop (musl build) = glibc's inet_ntop on all $n IPv6 addresses (musl's own inet_ntop differs on $differ: ::a.b.c.d and tied zero runs)"
	else
		fail "ct_ntop (musl build) prints as glibc's inet_ntop" "n=$n musl-vs-glibc: $bad glibc: $gbad musl_inet_ntop_differs=$differ"
	fi
else
	fail "ct_ntop differential test ran" "build/host/ntop_diff or ntop_diff-musl failed"
fi
