#!/bin/sh
# create-a-lot-of-services.sh - load for the kube-proxy DNS blackhole repro.
#
# The original write-up reproduced kubernetes/kubernetes#126468 with about
# 2,000 Services: enough rules to make kube-proxy's first sync after a
# restart slow, which keeps open the window in which the kube-dns DNAT
# rules are missing. This makes COUNT ClusterIP Services in one
# `kubectl apply -f -` of a generated multi-document stream (one process,
# not one per Service), all carrying one label, so --delete removes exactly
# these and nothing else.
#
#   scripts/create-a-lot-of-services.sh [-n NAMESPACE] [--endpoints] [--dry-run] COUNT
#   scripts/create-a-lot-of-services.sh [-n NAMESPACE] [--dry-run] --delete
#
#   COUNT          1..10000 Services, named dbt-load-00001 ... (re-running
#                  with the same or a larger COUNT only adds what is missing)
#   -n NAMESPACE   where (default: dns-blackhole-tester, which ds.yaml
#                  creates); it must exist
#   --endpoints    select the dns-blackhole-tester pods (name=dns-blackhole-
#                  tester, the ds.yaml DaemonSet, port 9797), so every Service
#                  has one endpoint per node and kube-proxy writes per-endpoint
#                  chains too, as in a busy cluster. Services select pods of
#                  their own namespace only: keep the default namespace.
#                  Without it the Services select nothing (like the
#                  original's plain Services with random names).
#   --dry-run      print the YAML (or the delete command) and change nothing
#   --delete       delete every Service with the label below
# Exit: 0 done, 1 kubectl failed, 2 bad arguments.
set -eu

LABEL_KEY=dns-blackhole-tester/load
LABEL_VAL=services
MAX=10000

prog=create-a-lot-of-services.sh
die() { echo "$prog: $*" >&2; echo "usage: $prog [-n NAMESPACE] [--endpoints] [--dry-run] COUNT | [-n NAMESPACE] [--dry-run] --delete" >&2; exit 2; }

ns=dns-blackhole-tester dry=0 del=0 endpoints=0 count=
while [ $# -gt 0 ]; do
	case $1 in
	-n|--namespace)
		[ $# -ge 2 ] || die "$1 needs a namespace"
		ns=$2; shift 2 ;;
	--namespace=*) ns=${1#*=}; shift ;;
	--dry-run) dry=1; shift ;;
	--delete) del=1; shift ;;
	--endpoints) endpoints=1; shift ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	--) shift; break ;;
	-[0-9]*) die "COUNT must be a positive whole number, not '$1'" ;;
	-*) die "unknown option '$1'" ;;
	*) [ -z "$count" ] || die "one COUNT only (got '$count' and '$1')"
	   count=$1; shift ;;
	esac
done
if [ $# -gt 0 ]; then
	if [ -n "$count" ] || [ $# -ne 1 ]; then die "unexpected arguments: $*"; fi
	count=$1
fi

# A namespace name is a DNS-1123 label.
printf '%s\n' "$ns" | grep -Eqx '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?' || die "bad namespace '$ns'"

if [ $del = 1 ]; then
	[ -z "$count" ] || die "--delete takes no COUNT"
	[ $endpoints = 0 ] || die "--delete takes no --endpoints"
	if [ $dry = 1 ]; then
		echo "kubectl delete service -n $ns -l $LABEL_KEY=$LABEL_VAL"
		exit 0
	fi
	command -v kubectl >/dev/null 2>&1 || { echo "$prog: kubectl not found on PATH" >&2; exit 1; }
	exec kubectl delete service -n "$ns" -l "$LABEL_KEY=$LABEL_VAL" --wait=false
fi

[ -n "$count" ] || die "COUNT is missing"
case $count in
*[!0-9]*) die "COUNT must be a positive whole number, not '$count'" ;;
esac
# Strip leading zeros (so 010 is 10, not octal) and refuse long numbers
# before any arithmetic can overflow.
count=$(printf '%s\n' "$count" | sed 's/^0*//')
[ -n "$count" ] || die "COUNT must be at least 1, not 0"
if [ ${#count} -gt 5 ] || [ "$count" -gt $MAX ]; then die "COUNT $count is too many (at most $MAX)"; fi

gen() {
	awk -v n="$count" -v ns="$ns" -v key="$LABEL_KEY" -v val="$LABEL_VAL" -v ep="$endpoints" 'BEGIN {
		for (i = 1; i <= n; i++) {
			name = sprintf("dbt-load-%05d", i)
			printf "---\napiVersion: v1\nkind: Service\nmetadata:\n"
			printf "  name: %s\n  namespace: %s\n", name, ns
			printf "  labels:\n    %s: %s\n    app.kubernetes.io/part-of: dns-blackhole-tester\n", key, val
			printf "spec:\n  type: ClusterIP\n  selector:\n"
			if (ep == 1) {
				printf "    name: dns-blackhole-tester\n"
				printf "  ports:\n    - name: metrics\n      protocol: TCP\n      port: 80\n      targetPort: 9797\n"
			} else {
				printf "    %s: %s\n", key, name
				printf "  ports:\n    - name: http\n      protocol: TCP\n      port: 80\n      targetPort: 80\n"
			}
		}
	}'
}

if [ $dry = 1 ]; then
	gen
	exit 0
fi
command -v kubectl >/dev/null 2>&1 || { echo "$prog: kubectl not found on PATH" >&2; exit 1; }
echo "$prog: applying $count Services in namespace $ns (label $LABEL_KEY=$LABEL_VAL)" >&2
gen | kubectl apply -f - >/dev/null
echo "$prog: done; remove them with: $0 -n $ns --delete" >&2
