#!/bin/sh
# tests/mutate.sh - the suite's checks can fail: each mutation below
# breaks one feature on purpose, in a scratch copy of the tree, runs the
# one group (and scenario) whose check guards it, and expects that check
# to FAIL. A mutation the suite does not catch is a check that cannot
# fail. Not part of test.sh (it rebuilds and reruns groups: see README).
#
#   sudo sh tests/mutate.sh            the quick ones (19; m26, m27 took 2 to 3 minutes each here)
#   sudo sh tests/mutate.sh --all      also the ship, soak, rules and image ones (401 s + 3 x 240 s + 4 image runs of 8 to 10 minutes on a loaded machine)
#   sudo sh tests/mutate.sh m01 m13    the named ones
#
# A mutation is data, one line:  ID ^ FILE ^ FIND ^ REPLACE ^ GROUP ^ ENV ^ CHECK
#   FILE     a path in the tree; FIND must occur in it exactly once (else
#            the mutation is stale: retarget it after a refactor); FIND and
#            REPLACE take \n and \t. FILE "-" changes nothing in the tree.
#   ENV      VAR=VALUE ... for the group's run (a filter keeps it short);
#            BIN=@NAME is one of the wrappers below, in place of the binary.
#   CHECK    the start of the check's name: "FAIL GROUP: CHECK" must appear.
# Lines of the form "long ID" mark the slow ones (not run without --all).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "mutate.sh: needs root (sudo)" >&2; exit 2; }

MUTATIONS=$(cat <<'EOF_M'
m01 ^ - ^  ^  ^ e2e ^ BIN=@exit2 E2E_ONLY=decoys ^ decoys: the 6 tester runs really ran
m02 ^ tester.c ^ if (stop_signal || t->fatal)\n\t\t\treturn WAIT_STOP; ^ if ((stop_signal || t->fatal) && now_ns() >= deadline)\n\t\t\treturn WAIT_STOP; ^ faults ^ FAULTS_ONLY=signals ^ SIGTERM between ticks
m03 ^ tester.c ^ dns_build_query(t->query, sizeof t->query, 0, ^ dns_build_query(t->query, 260, 0, ^ cli ^  ^ a 253-byte name is accepted
m04 ^ tests/t_scan.sh ^ --reply-port-src 5353 --reply-port-dst 31006 ^ --reply-port-src 5353 --reply-port-dst 31006 --no-such-flag ^ scan ^ SCAN_ONLY=caught ^ expected checks: scenario caught
m05 ^ - ^  ^  ^ cli ^ BIN=@nostdout ^ logfmt line shape
m06 ^ - ^  ^  ^ metrics ^ BIN=@crash_unless_metrics METRICS_ONLY=blackhole ^ blackhole: without --metrics-addr no TCP socket listens
m07 ^ tests/t_faults.sh ^ FAULT_NL_RCVBUF=1 FAULT_REPORT="$W/enobufs-tiny.rep" ^ FAULT_NL_RCVBUF_UNSET=1 FAULT_REPORT="$W/enobufs-tiny.rep" ^ faults ^ FAULTS_ONLY=enobufs ^ tiny netlink buffer, tester
m08 ^ tests/t_verdict.sh ^ \t_o=$(now_ms); lab_rules window || return 1\n ^ \t[ "$(wc -l <"$2")" -lt 3 ] || return 0\n\t_o=$(now_ms); lab_rules window || return 1\n ^ verdict ^ VERDICT_ONLY=repeated ^ repeated: 20 windows made
m09 ^ - ^  ^  ^ cli ^ BIN=@exit2 ^ refuses an unparsable server
m09s ^ - ^  ^  ^ scan ^ BIN=@exit2 SCAN_ONLY=usage ^ scan refuses an unknown protocol
m10 ^ Makefile ^ -Wl,-z,norelro ^ -Wl,-z,norelro -Wl,-N ^ ship ^  ^ amd64: W^X and non-executable .rodata
m11 ^ tests/t_ship.sh ^ ticks=$(awk '{print $14 + $15}' "/proc/$mp/stat" 2>/dev/null) ^ ticks=0 ^ ship ^  ^ measured RSS and CPU
m12 ^ tests/k8s/validate.js ^ \twalkDts(modelsDir);\n ^ \twalkDts(modelsDir); throw new Error("mutant");\n ^ ship ^  ^ validator refuses ds.yaml with s/readOnlyRootFilesystem
m13 ^ metrics.c ^ if (nlen > 253)\n\t\tnlen = 253; ^ if (nlen > 40)\n\t\tnlen = 40; ^ metrics ^ METRICS_ONLY=labels ^ labels: label values whole
m14 ^ flow.c ^ flow_begin(f, &l, "error", "blackhole");\n\t\tlog_entry(&l, "entry", e); ^ flow_begin(f, &l, "error", "blackhole"); ^ e2e ^ E2E_ONLY=window ^ window iptables/dnsmasq/IPv4: blackhole entry= is conntrack -G's line
m14s ^ metrics.c ^ F("refused", "refused_total" ^ F("refusd", "refused_total" ^ soak ^ SOAK_CYCLES=3000 ^ queries accounted for
m15 ^ tester.c ^ log_failure(t, c == CAUSE_REFUSED ? "refused" : "send_failed", c, r, why); ^ log_failure(t, c == CAUSE_REFUSED ? "refused" : "send_failed", c, r, why);\n\t\tif (t->st.sent % 2) log_failure(t, c == CAUSE_REFUSED ? "refused" : "send_failed", c, r, why); ^ faults ^ FAULTS_ONLY=route ^ VIP route removed, IPv4
m16 ^ nl.c ^ if (lead == 6 && w[6]) { ^ if (0) { ^ nl ^  ^ ct_ntop (musl build) prints as glibc's inet_ntop
m17 ^ tester.c ^ if (r < 0 && errno != EINTR)\n\t\t\tt->fatal = errno; ^ (void)0; ^ faults ^ FAULTS_ONLY=ppoll ^ ppoll failing for good
m18 ^ flow.c ^ if (lk->pv == PROBE_DNAT) { ^ if (lk->pv != PROBE_FAILED) { ^ verdict ^ VERDICT_ONLY=direct ^ direct silent server, IPv4
m19 ^ scripts/kubectl-dns_blackhole ^ [ "$nbh" -gt 0 ] && exit 3 ^ [ "$nbh" -gt 0 ] && exit 0 ^ plugin ^  ^ scan: exit 3
m20 ^ deploy/prometheus-rules.yaml ^ sum by (node, instance) ({__name__=~"dns_blackhole_tester_(node_stuck_flows|blackholed)"}) > 0 ^ max by (node, instance) (dns_blackhole_tester_node_stuck_flows) > 0\n          or\n          max by (node, instance) (dns_blackhole_tester_blackholed) > 0 ^ rules ^  ^ promtool test rules, watch-blackhole
m21 ^ tests/rules/expect.yaml ^ - at: 183      # down for under 3 minutes: pending, not firing ^ - at: 183      # down for under 3 minutes: pending, not firing\n        firing: {DNSBlackholeTesterDown: [{labels: {severity: warning, job: dns-blackhole-tester, instance: "127.0.0.1:9798"}, summary: "dns-blackhole-tester on 127.0.0.1:9798 does not answer scrapes"}]} ^ rules ^  ^ promtool test rules, tester-killed
m22 ^ deploy/prometheus-rules.yaml ^ (dns_blackhole_tester_node_clients_healed_total unless dns_blackhole_tester_node_clients_healed_total offset 15m) ^ (increase(dns_blackhole_tester_node_clients_healed_total[15m])) ^ rules ^  ^ promtool test rules, rollout
m23 ^ ds.yaml ^ add: ["NET_ADMIN"] ^ add: ["NET_ADMIN", "NET_RAW"] ^ image ^  ^ without CAP_NET_RAW
m24 ^ ds.yaml ^ memory: 8Mi ^ memory: 64Ki ^ image ^  ^ kube play: peak RSS within ds.yaml's memory request
m25 ^ Dockerfile.scratch ^ USER 65534:65534 ^ RUN ["/dns-blackhole-tester", "--version"]\nUSER 65534:65534 ^ image ^  ^ amd64: history: one step made a layer, a COPY; no RUN step
m26 ^ ctfilter.c ^ {BPF_ALU | BPF_AND | BPF_K, 0, 0, IPS_DST_NAT}, ^ {BPF_ALU | BPF_AND | BPF_K, 0, 0, IPS_SRC_NAT}, ^ unit ^  ^ ct_data_test under make check
m27 ^ nl.c ^ {CTA_TIMEOUT, CT_HAVE_TIMEOUT, offsetof(struct ct_entry, timeout)}, ^ {CTA_TIMEOUT, CT_HAVE_TIMEOUT, offsetof(struct ct_entry, mark)}, ^ unit ^  ^ ct_data_test under make check
m28 ^ scripts/image.sh ^ echo "suite=bookworm variant=minbase mirror=${IMAGE_MIRROR:-$(mirror)}" ^ echo "suite=bookworm variant=minbase" ^ image ^  ^ the base cache's key changes with the mirror
long m10
long m11
long m12
long m14s
long m20
long m21
long m22
long m23
long m24
long m25
long m28
d01 ^ dns-blackhole-tester.8 ^ .Sh CAVEATS\n ^ .Sh CAVEATS\n.Zz not a macro\n ^ docs ^  ^ mandoc -Tlint is clean
d02 ^ dns-blackhole-tester.8 ^ .Sh CAVEATS\n ^ .Sh LIMITS\n ^ docs ^  ^ the man page renders with every section
d03 ^ opts.c ^ "      --monitor ^ "      --sneaky              an option nobody documented\x0a"\n"      --monitor ^ docs ^  ^ --help options = the man page's options
d04 ^ dns-blackhole-tester.8 ^ .It Fl \-monitor\n ^ .It Fl \-ghost\nAn option the program does not have.\n.It Fl \-monitor\n ^ docs ^  ^ --help options = the man page's options
d05 ^ scan.c ^ "      --fix                 delete ^ "      --fixit               delete ^ docs ^  ^ scan --help options = the man page's scan options
d06 ^ dns-blackhole-tester.8 ^ .Op Fl \-no\-conntrack\n ^  ^ docs ^  ^ --help options are in SYNOPSIS, and no other
d07 ^ scan.c ^ {"fix", no_argument, NULL, 'f'}, ^ {"fix", no_argument, NULL, 'f'}, {"fixall", no_argument, NULL, 'f'}, ^ docs ^  ^ every long option the code accepts is in the man page
d08 ^ flow.c ^ flow_begin(f, &l, "info", "nat_learned"); ^ flow_begin(f, &l, "info", "nat_learnt"); ^ docs ^  ^ every event the code logs is in DIAGNOSTICS, and back
d09 ^ flow.c ^ flow_begin(f, &l, "info", "nat_learned"); ^ const char *ev = "nat_learned";\n\tflow_begin(f, &l, "info", ev); ^ docs ^  ^ every event the code logs is in DIAGNOSTICS, and back
d10 ^ dns-blackhole-tester.8 ^ .It Cm scan_retry Pq warn\n ^ .It Cm scan_paused Pq warn\nNothing logs this.\n.It Cm scan_retry Pq warn\n ^ docs ^  ^ every event the code logs is in DIAGNOSTICS, and back
d11 ^ tester.c ^ log_kvu(&l, "outage_ms", ^ log_kvu(&l, "outage_sec", ^ docs ^  ^ every key the code logs is in DIAGNOSTICS
d12 ^ README ^ More\n----\n ^ More\n----\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n ^ docs ^  ^ README is at most 150 lines
d13 ^ README ^ sudo ./test.sh\n ^ sudo make test\n ^ docs ^  ^ README holds the test command
d14 ^ README ^ (bench/RESULTS.md) ^ (bench/RESULT.md) ^ docs ^  ^ links in README, HACKING.md and docs/ name files that exist
EOF_M
)

all=0; pick=
for a in "$@"; do case $a in --all) all=1 ;; *) pick="$pick $a" ;; esac; done
W=$TOP/build/mutate
mkdir -p "$W"
: >"$W/report.txt"
start=$(date +%s)

# wrappers NAME: stand-ins for the binary, written into the scratch tree
wrappers() {
	d=$1/build/mutants real=$1/dns-blackhole-tester
	mkdir -p "$d"
	# any run: a usage error at once (what a tester killed by a bad flag does)
	printf '#!/bin/sh\necho "dns-blackhole-tester: usage error (see --help)" >&2\nexit 2\n' >"$d/exit2"
	# the real tester, its log lost (an empty log file)
	printf '#!/bin/sh\nexec "%s" "$@" >/dev/null\n' "$real" >"$d/nostdout"
	# the real tester when serving metrics; otherwise a crash at start
	printf '#!/bin/sh\ncase " $* " in *" --metrics-addr "*) exec "%s" "$@" ;; esac\nkill -SEGV $$\n' "$real" >"$d/crash_unless_metrics"
	chmod +x "$d"/*
}

caught=0 missed=0 stale=0
printf "%s\n" "$MUTATIONS" | grep -v '^long ' | while IFS='^' read -r id file find repl group envs check; do
	id=$(echo $id) file=$(echo $file) group=$(echo $group) envs=$(echo $envs)
	check=$(echo "$check" | sed 's/^ *//; s/ *$//')
	if [ -n "$pick" ]; then
		case " $pick " in *" $id "*) ;; *) continue ;; esac
	elif [ $all = 0 ] && printf "%s\n" "$MUTATIONS" | grep -qx "long $id"; then
		continue
	fi
	t0=$(date +%s)
	S=$W/$id
	rm -rf "$S"; mkdir -p "$S"
	# the tree as it is now, built parts and fetched deps included; no logs
	x=--exclude=./build/ship-root; [ "$group" = ship ] && x=
	(cd "$TOP" && tar -cf - --exclude=./build/out --exclude=./build/mutate --exclude='./build/lab-*' \
		--exclude=./build/results.txt --exclude=./build/fuzz $x . ) | (cd "$S" && tar -xf -)
	if [ "$file" != - ]; then
		if ! python3 - "$S/$file" "$find" "$repl" <<'EOF_P'
import sys
p, f, r = sys.argv[1], sys.argv[2].strip(" "), sys.argv[3].strip(" ")
f = f.replace("\\n", "\n").replace("\\t", "\t")
r = r.replace("\\n", "\n").replace("\\t", "\t")
s = open(p).read()
if s.count(f) != 1:
    print("found %d times" % s.count(f)); sys.exit(1)
open(p, "w").write(s.replace(f, r))
EOF_P
		then
			echo "STALE $id: '$find' is not once in $file: retarget it" | tee -a "$W/report.txt"
			continue
		fi
	fi
	wrappers "$S"
	(cd "$S" && make -s && make -s host) >"$S/build.log" 2>&1 ||
		{ echo "STALE $id: the mutant does not build: $(tail -n 1 "$S/build.log")" | tee -a "$W/report.txt"; continue; }
	envs=$(echo "$envs" | sed "s|BIN=@|BIN=$S/build/mutants/|")
	mkdir -p "$S/build/out"
	: >"$S/build/results.txt"
	# shellcheck disable=SC2086
	(cd "$S" && env TOP="$S" RESULTS="$S/build/results.txt" OUT="$S/build/out" GROUP="$group" $envs \
		sh "tests/t_$group.sh" >"$S/run.log" 2>&1)
	# as test.sh does: the counts too
	(cd "$S" && TOP="$S" sh tests/counts.sh "$group" "$S/build/results.txt") |
		sed "s/^/FAIL $group: expected checks: /" >>"$S/build/results.txt"
	took=$(($(date +%s) - t0))
	if grep -q -F "FAIL $group: $check" "$S/build/results.txt"; then
		echo "caught $id ($took s): FAIL $group: $check" | tee -a "$W/report.txt"
	else
		echo "MISSED $id ($took s): no 'FAIL $group: $check' ($(grep -c '^FAIL' "$S/build/results.txt") FAIL lines)" | tee -a "$W/report.txt"
	fi
	rm -rf "$S/build/deps" "$S/build/k8s" "$S/build/ship-root"
done
n_c=$(grep -c '^caught' "$W/report.txt") n_m=$(grep -c '^MISSED' "$W/report.txt") n_s=$(grep -c '^STALE' "$W/report.txt")
echo "mutate.sh: $n_c caught, $n_m missed, $n_s stale in $(($(date +%s) - start)) s"
[ "$n_m" = 0 ] && [ "$n_s" = 0 ] && [ "$n_c" -gt 0 ]
