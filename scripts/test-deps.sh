#!/bin/sh
# Installs, as Debian packages, what the build and the tests need.
# Idempotent and quiet when everything is already there.
set -eu
# prometheus: for promtool (check metrics, check rules, test rules);
# python3-yaml: tests/rules/series.py and the PrometheusRule check;
# nodejs: tests/cares_client.js, a real c-ares client (Node's dns.Resolver);
# mandoc: tests/t_docs.sh lints and renders the man page.
pkgs="musl-tools linux-libc-dev gcc make iproute2 iptables nftables conntrack
      dnsmasq-base unbound libcap2-bin util-linux python3 valgrind file strace
      prometheus python3-yaml nodejs mandoc"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "test-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# unbound's package would start a system resolver where an init system
# runs: policy-rc.d keeps it (and any other daemon) from starting.
pol=/usr/sbin/policy-rc.d
if [ ! -e $pol ]; then printf '#!/bin/sh\nexit 101\n' >$pol; chmod +x $pol; trap 'rm -f $pol' EXIT; fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
