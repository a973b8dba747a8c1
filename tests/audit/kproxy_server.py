#!/usr/bin/env python3
"""tests/audit/kproxy_server.py - plays kube-proxy's metrics endpoint in
the lab's node namespace (t_audit.sh): GET /metrics and /proxyMode, as
kube-proxy's Go server answers an HTTP/1.1 request (chunked body), in its
real exposition format, for the profile named in PROFILE_FILE (re-read on
each connection, so a test can "upgrade" kube-proxy under a running
tester). Hostile profiles: slow (drips), huge (past the tester's cap),
malformed, noreply (accepts, never answers), status (500).

  kproxy_server.py ADDR PORT PROFILE_FILE LOG

Each request is appended to LOG as "PROFILE PATH"."""
import socket
import sys
import threading
import time

# The metric names and label sets are kube-proxy's own: kubernetes_build_info
# (k8s.io/component-base/metrics/prometheus/version), the kubeproxy_sync_*
# family (pkg/proxy/metrics/metrics.go); from 1.33 the ip_family label
# (kubernetes#129173) and the conntrack reconciler's two metrics
# (#130200, #130204). Values are made up; only names and shapes matter.
BUILD = ('# HELP kubernetes_build_info [ALPHA] A metric with a constant \'1\' value labeled by major, minor, '
         'git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes '
         'was built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\n'
         'kubernetes_build_info{build_date="%s",compiler="gc",git_commit="%s",git_tree_state="clean",'
         'git_version="%s",go_version="%s",major="1",minor="%s",platform="linux/amd64"} 1\n')


def hist(name, help_, labels=""):
    out = ["# HELP %s [ALPHA] %s" % (name, help_), "# TYPE %s histogram" % name]
    sep = "," if labels else ""
    acc = 0
    for i, le in enumerate(["0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256",
                            "0.512", "1.024", "2.048", "4.096", "8.192", "16.384", "+Inf"]):
        acc += 3 if i < 6 else 0
        out.append('%s_bucket{%s%sle="%s"} %d' % (name, labels, sep, le, acc))
    out.append("%s_sum%s %s" % (name, "{%s}" % labels if labels else "", "0.047"))
    out.append("%s_count%s %d" % (name, "{%s}" % labels if labels else "", acc))
    return "\n".join(out) + "\n"


def gauge(name, kind, help_, value, labels=""):
    lab = "{%s}" % labels if labels else ""
    return "# HELP %s [ALPHA] %s\n# TYPE %s %s\n%s%s %s\n" % (name, help_, name, kind, name, lab, value)


def metrics(version, minor, family_label, reconciler):
    fam = 'ip_family="IPv4"' if family_label else ""
    text = BUILD % ("2024-09-11T21:22:08Z", "948afe5ca072329a73c8e79ed5938717a5cb3d21", version, "go1.22.6", minor)
    text += hist("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", fam)
    text += gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
                  "The last time proxy rules were successfully synced", "1.7331e+09", fam)
    text += gauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending", "gauge",
                  "Pending proxy rules Endpoint changes", "0", fam)
    text += gauge("kubeproxy_sync_proxy_rules_endpoint_changes_total", "counter",
                  "Cumulative proxy rules Endpoint changes", "12", fam)
    text += gauge("kubeproxy_sync_proxy_rules_service_changes_total", "counter",
                  "Cumulative proxy rules Service changes", "40", fam)
    text += gauge("kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "counter",
                  "Cumulative proxy iptables restore failures", "0", fam)
    if reconciler:
        text += hist("kubeproxy_conntrack_reconciler_sync_duration_seconds",
                     "ReconcileConntrackFlowsLatency latency in seconds", fam)
        text += gauge("kubeproxy_conntrack_reconciler_deleted_entries_total", "counter",
                      "Cumulative conntrack flows deleted by conntrack reconciler", "2", fam)
    text += gauge("process_open_fds", "gauge", "Number of open file descriptors.", "17")
    return text


PROFILES = {
    # 1.29.8: the last 1.29 without #126689 (1.29.9)
    "old": (metrics("v1.29.8", "29", False, False), "iptables"),
    # 1.31.1: #126687; no reconciler yet
    "fixed": (metrics("v1.31.1", "31", False, False), "nftables"),
    # 1.33.1: the reconciler, and its metrics
    "reconciler": (metrics("v1.33.1", "33", True, True), "iptables"),
    # no kubernetes_build_info at all: the version is unknown, not guessed
    "unversioned": ((lambda t: t[t.index("# HELP kubeproxy_sync"):])(metrics("v1.31.1", "31", False, False)),
                    "iptables"),
}


def chunked(status, body):
    """As Go's net/http answers an HTTP/1.1 request with no length set."""
    head = "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" \
           "Date: Fri, 04 Dec 2026 10:00:00 GMT\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % status
    data = body.encode()
    out = head.encode()
    for i in range(0, len(data), 4096):
        part = data[i:i + 4096]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def request_path(conn):
    buf = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in buf and len(buf) < 8192:
        d = conn.recv(4096)
        if not d:
            break
        buf += d
    parts = buf.split(b" ", 2)
    return parts[1].decode(errors="replace") if len(parts) > 2 else "?"


def serve(conn, profile, log):
    path = request_path(conn)
    with open(log, "a") as f:
        f.write("%s %s\n" % (profile, path))
    if profile in PROFILES:
        text, mode = PROFILES[profile]
        body = text if path == "/metrics" else mode if path == "/proxyMode" else None
        conn.sendall(chunked("200 OK", body) if body is not None else chunked("404 Not Found", "404 page not found\n"))
    elif profile == "slow":
        for b in chunked("200 OK", PROFILES["fixed"][0]):
            conn.sendall(bytes([b]))
            time.sleep(0.1)
    elif profile == "huge":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n")
        conn.sendall(b"#" * 3145728)
    elif profile == "malformed":
        conn.sendall(b"HTTP/1.1 OK 200\r\nContent-Length: 2\r\n\r\nhi")
    elif profile == "noreply":
        time.sleep(10)
    elif profile == "status":
        conn.sendall(chunked("500 Internal Server Error", "boom\n"))


def main():
    addr, port, profile_file, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        with open(profile_file) as f:
            profile = f.read().strip()

        def one(c=conn, p=profile):
            try:
                serve(c, p, log)
            except OSError:
                pass              # the tester gave up on us: what the hostile cases want
            finally:
                c.close()
        threading.Thread(target=one, daemon=True).start()


if __name__ == "__main__":
    main()
