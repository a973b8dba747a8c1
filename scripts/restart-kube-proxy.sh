#!/bin/sh
# restart-kube-proxy.sh - step 6 of the original write-up, as a loop.
#
# Restarts the kube-proxy DaemonSet RESTARTS times, each time waiting for
# the rollout to finish and then SETTLE seconds (the tester queries every
# second; a blackholed flow shows at its next query), and reads the
# dns-blackhole-tester pods' logs since the loop began. A blackhole is a
# tester line
#   level=error event=blackhole ...                 (the non-DNAT'd entry)
#   level=error event=timeout ... cause=blackhole   (a query it swallowed)
# Ends with "reproduced on nodes X, Y after K restarts" or "not reproduced
# after K restarts".
#
#   scripts/restart-kube-proxy.sh [[-r] RESTARTS] [--stop-when-reproduced]
#       [--settle SECONDS] [--timeout DURATION] [-n TESTER_NAMESPACE]
#
#   -r, --restarts N          restarts, 1..100 (default 5)
#   --stop-when-reproduced    stop after the first restart that reproduced it
#   --settle SECONDS          wait after each rollout, 0..600 (default 15)
#   --timeout DURATION        for each `kubectl rollout status` (default 5m)
#   -n, --namespace NS        the tester's namespace (default
#                             dns-blackhole-tester, as in ds.yaml)
# Exit: 3 reproduced, 0 not reproduced, 1 kubectl failed, 2 bad arguments.
set -eu

prog=restart-kube-proxy.sh
die() { echo "$prog: $*" >&2; echo "usage: $prog [-r RESTARTS] [--stop-when-reproduced] [--settle SECONDS] [--timeout DURATION] [-n NAMESPACE]" >&2; exit 2; }

# number NAME VALUE MIN MAX: a whole number in range, or exit 2.
number() {
	case $2 in
	''|*[!0-9]*) die "$1 must be a whole number, not '$2'" ;;
	esac
	v=$(printf '%s\n' "$2" | sed 's/^0*//')
	[ -n "$v" ] || v=0
	if [ ${#v} -gt 6 ] || [ "$v" -lt "$3" ] || [ "$v" -gt "$4" ]; then
		die "$1 must be from $3 to $4, not '$2'"
	fi
	echo "$v"
}

restarts=5 settle=15 timeout=5m ns=dns-blackhole-tester stop=0
while [ $# -gt 0 ]; do
	case $1 in
	-r|--restarts|--settle|--timeout|-n|--namespace)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		-r|--restarts) restarts=$(number "$1" "$2" 1 100) || exit 2 ;;
		--settle) settle=$(number "$1" "$2" 0 600) || exit 2 ;;
		--timeout) timeout=$2 ;;
		-n|--namespace) ns=$2 ;;
		esac
		shift 2 ;;
	--stop-when-reproduced) stop=1; shift ;;
	[0-9]*) restarts=$(number RESTARTS "$1" 1 100) || exit 2; shift ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
done
printf '%s\n' "$timeout" | grep -Eqx '[0-9]+(s|m|h)' || die "--timeout wants a duration like 90s or 5m, not '$timeout'"
printf '%s\n' "$ns" | grep -Eqx '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?' || die "bad namespace '$ns'"
command -v kubectl >/dev/null 2>&1 || { echo "$prog: kubectl not found on PATH" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Logs are read from this moment on (kubectl's clock is the API server's;
# keep the machine's clock in sync).
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# scan: each tester pod's error lines since $since; writes $tmp/nodes
# (the nodes with a blackhole, sorted, one a line) and $tmp/first (one
# example line per such node).
scan() {
	: >"$tmp/nodes"
	: >"$tmp/first"
	kubectl get pods -n "$ns" -l name=dns-blackhole-tester \
		-o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\n"}{end}' >"$tmp/pods" ||
		{ echo "$prog: cannot list the tester pods in namespace $ns" >&2; exit 1; }
	[ -s "$tmp/pods" ] || { echo "$prog: no dns-blackhole-tester pods in namespace $ns (kubectl apply -f ds.yaml)" >&2; exit 1; }
	while read -r pod node; do
		[ -n "$pod" ] || continue
		if ! kubectl logs -n "$ns" "$pod" --since-time="$since" --timestamps >"$tmp/log" 2>"$tmp/err"; then
			echo "$prog: warning: no logs from pod $pod (node $node): $(head -n 1 "$tmp/err")" >&2
			continue
		fi
		grep 'level=error' "$tmp/log" |
			grep -E 'event=blackhole( |$)|event=timeout( .*)? cause=blackhole( |$)' >"$tmp/bh" || true
		if [ -s "$tmp/bh" ]; then
			echo "${node:-$pod}" >>"$tmp/nodes"
			printf '%s: %s\n' "${node:-$pod}" "$(head -n 1 "$tmp/bh")" >>"$tmp/first"
		fi
	done <"$tmp/pods"
	sort -u "$tmp/nodes" -o "$tmp/nodes"
}

done_n=0 first_k=
i=1
while [ "$i" -le "$restarts" ]; do
	echo "$prog: restart $i of $restarts: kubectl rollout restart -n kube-system ds/kube-proxy" >&2
	kubectl rollout restart -n kube-system ds/kube-proxy >/dev/null ||
		{ echo "$prog: kubectl rollout restart failed" >&2; exit 1; }
	kubectl rollout status -n kube-system ds/kube-proxy --timeout="$timeout" >/dev/null ||
		{ echo "$prog: kube-proxy rollout did not finish within $timeout" >&2; exit 1; }
	done_n=$i
	[ "$settle" -gt 0 ] && sleep "$settle"
	scan
	if [ -s "$tmp/nodes" ] && [ -z "$first_k" ]; then
		first_k=$i
		echo "$prog: blackhole seen after restart $i" >&2
		[ $stop = 1 ] && break
	fi
	i=$((i + 1))
done

plural() { if [ "$1" = 1 ]; then echo "1 restart"; else echo "$1 restarts"; fi; }
if [ -s "$tmp/nodes" ]; then
	sed 's/^/  /' "$tmp/first"
	[ "$done_n" = "$first_k" ] || echo "(first seen after restart $first_k; $done_n restarts done)"
	echo "reproduced on nodes $(paste -sd, "$tmp/nodes" | sed 's/,/, /g') after $(plural "$first_k")"
	exit 3
fi
echo "not reproduced after $(plural "$done_n")"
