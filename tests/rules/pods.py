#!/usr/bin/env python3
"""pods.py - promtool unit tests for the pod-named alert
(deploy/prometheus-rules.yaml: dns_blackhole_tester:stuck_client:pod and
DNSBlackholeStuckPod), with kube-state-metrics' kube_pod_info and
kube_pod_status_phase as kube-state-metrics exports them.

  pods.py OUT.yaml      (beside OUT: rules.yaml, from series.py rules)

Cases, each a promtool test group:
  named      a pod's address: the alert names namespace/pod; an address
             a Succeeded pod still holds is named for the Running pod that
             has it now; a hostNetwork client (two pods share the node's
             address) keeps its address; the tester's own namespace/pod
             target labels never leak in; healed clients' alerts go.
  no-ksm     kube-state-metrics absent: every alert names the address.
  bound      a tester at its bound (100 named, 20 flows omitted): 100
             alerts, DNSBlackholeOnNode still counts all 120 stuck flows."""
import sys
import yaml

JOB = 'job="dns-blackhole-tester",instance="10.1.0.4:9797",node="n1"'
# the tester's own target labels, as a kubernetes-pods scrape job adds them
OWN = 'namespace="dns-blackhole-tester",pod="dns-blackhole-tester-x7k2p",server="10.96.0.10:53",src="10.1.0.4:40417"'
VIP = "10.96.0.10:53"


def stuck(client, values):
    return {"series": 'dns_blackhole_tester_stuck_client{%s,%s,vip="%s",client="%s",kind="no_dnat"}'
            % (JOB, OWN, VIP, client), "values": values}


def pod(ns, name, ip, phase, host_network="false"):
    ksm = 'job="kube-state-metrics",instance="10.244.0.9:8080"'
    out = [{"series": 'kube_pod_info{%s,namespace="%s",pod="%s",uid="u-%s",host_ip="10.1.0.4",pod_ip="%s",node="n1",'
                      'created_by_kind="ReplicaSet",created_by_name="%s",priority_class="",host_network="%s"}'
                      % (ksm, ns, name, name, ip, name, host_network), "values": "1x12"}]
    for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
        out.append({"series": 'kube_pod_status_phase{%s,namespace="%s",pod="%s",uid="u-%s",phase="%s"}'
                              % (ksm, ns, name, name, ph), "values": "%dx12" % (ph == phase)})
    return out


def alert(client, ns=None, name=None):
    labels = {"severity": "warning", "job": "dns-blackhole-tester", "instance": "10.1.0.4:9797", "node": "n1",
              "vip": VIP, "client": client, "kind": "no_dnat"}
    who = "Client %s (no pod matches)" % client
    if name:
        labels.update(namespace=ns, pod=name)
        who = "Pod %s/%s" % (ns, name)
    return {"exp_labels": labels, "exp_annotations": {
        "summary": "%s on node n1 is stuck on a stale DNS conntrack entry to %s (no_dnat)" % (who, VIP)}}


def on_node(n):
    return {"exp_labels": {"severity": "critical", "node": "n1", "instance": "10.1.0.4:9797"},
            "exp_annotations": {"summary": "DNS blackhole on node n1: %d flow(s) stuck on a stale conntrack entry" % n}}


def gauge(name, v, extra=""):
    return {"series": "dns_blackhole_tester_%s{%s,%s%s}" % (name, JOB, OWN, extra), "values": v}


def named():
    series = [stuck("10.244.1.5", "1x6 stale"), stuck("10.244.1.9", "1x12"), stuck("10.1.0.4", "1x12"),
              gauge("node_stuck_flows", "3x6 2x6", ',vip="%s"' % VIP)]
    series += pod("shop", "cart-7d9f", "10.244.1.5", "Running")
    series += pod("batch", "report-28391", "10.244.1.9", "Succeeded")     # finished; its IP reused
    series += pod("web", "front-5c8d", "10.244.1.9", "Running")
    series += pod("kube-system", "kube-proxy-n1", "10.1.0.4", "Running", "true")
    series += pod("monitoring", "node-exporter-n1", "10.1.0.4", "Running", "true")
    both = [alert("10.244.1.5", "shop", "cart-7d9f"), alert("10.244.1.9", "web", "front-5c8d"), alert("10.1.0.4")]
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "5m", "alertname": "DNSBlackholeStuckPod", "exp_alerts": both},
        {"eval_time": "10m", "alertname": "DNSBlackholeStuckPod", "exp_alerts": both[1:]},
        {"eval_time": "10m", "alertname": "DNSBlackholeOnNode", "exp_alerts": [on_node(2)]},
    ]}


def no_ksm():
    series = [stuck("10.244.1.5", "1x12"), stuck("10.1.0.4", "1x12")]
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "5m", "alertname": "DNSBlackholeStuckPod",
         "exp_alerts": [alert("10.244.1.5"), alert("10.1.0.4")]}]}


def bound():
    ips = ["10.244.%d.%d" % (2 + i // 200, 10 + i % 200) for i in range(100)]
    series = [stuck(ip, "1x12") for ip in ips]
    series += [gauge("node_stuck_flows", "120x12", ',vip="%s"' % VIP), gauge("stuck_clients_omitted", "20x12")]
    for i, ip in enumerate(ips):
        series += pod("ns%d" % (i % 7), "app-%03d" % i, ip, "Running")
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": "5m", "alertname": "DNSBlackholeStuckPod",
         "exp_alerts": [alert(ip, "ns%d" % (i % 7), "app-%03d" % i) for i, ip in enumerate(ips)]},
        {"eval_time": "5m", "alertname": "DNSBlackholeOnNode", "exp_alerts": [on_node(120)]},
    ], "promql_expr_test": [
        {"expr": "count(dns_blackhole_tester:stuck_client:pod)", "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 100}]},
        {"expr": "sum(dns_blackhole_tester_stuck_clients_omitted)", "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 20}]},
    ]}


def main():
    doc = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [named(), no_ksm(), bound()]}
    with open(sys.argv[1], "w") as f:
        f.write("# generated by tests/rules/pods.py\n")
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)


if __name__ == "__main__":
    main()
