#!/usr/bin/env python3
"""fleet.py - the moving parts of scripts/fleet.sh (`make fleet`). Stdlib only.

Every subcommand is started by fleet.sh with `ip netns exec` in a lab
namespace (never the root one), and reaches the node namespaces only by
name (/run/netns/NAME): setns(2) for sockets, `ip netns exec` for commands.

  clients  --nodes F --vip V --ports LO-HI --status F --ready F --seed S
           One process, every node's fixed-port DNS clients: each socket is
           created inside its node's namespace (a socket stays in the
           namespace it was created in) and kept for the whole run, like a
           pod's resolver (c-ares, Envoy, nginx). A client asks again after
           a TTL of --ttl LO-HI seconds (default 5.5-7.5) when answered, and retries every
           --timeout seconds from the same socket when not. Every second it
           writes --status (JSON, per node and port: sent, ok, last_ok_ms,
           fails_in_row, first_fail_ms).
  rollout  --nodes F --seed S --par K --wmin A --wmax B --rules DIR --log F
           kube-proxy's rolling restart: nodes in a seeded random order, K
           at a time (maxUnavailable), each node's window a seeded random
           length (log-uniform in [A, B] s): the window ruleset in, sleep,
           the full ruleset back. One line per node in --log.
  ksm      --nodes F --ports LO-HI --out F
           kube_pod_info (and kube_pod_status_phase) for the clients' pods.
  oracle   --nodes F --vip V [--out F]
           `conntrack -L` in each node namespace: the flows to VIP:53/udp
           whose reply does not come from a DNAT'd backend (reply src = VIP).
  prom     --url U QUERY|alerts|targets|ready
           Prometheus' HTTP API, printed as JSON.
  settle   see settle() below: poll oracle and alerts until they agree.
  report   the summary (see fleet.sh).
"""
import argparse
import calendar
import ctypes
import json
import math
import os
import random
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from logcheck import parse  # noqa: E402  (the tester's logfmt lines, with _ms)
from client import build_query  # noqa: E402  (the suite's DNS query)

QNAME = "kubernetes.default.svc.cluster.local"

CLONE_NEWNET = 0x40000000


def ms():
    return int(time.time() * 1000)


def read_nodes(path):
    """Lines: NS NODE_NAME IP MODE"""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 4:
                out.append({"ns": p[0], "node": p[1], "ip": p[2], "mode": p[3]})
    return out


# ------------------------------------------------------------------ clients

# A node's clients: the first keeps the node's address (a hostNetwork pod:
# kube_pod_info cannot name it, the alert names its address); each other
# is a pod with an address of its own, 10.(200+A).B.K for node 10.224.A.B
# and client K (fleet.sh adds them to the node; kube_pod_info lists them).
POD_NS = "fleet-apps"


def client_ip(n, k):
    if k == 0:
        return n["ip"]
    a, b = n["ip"].split(".")[2:]
    return "10.%d.%s.%d" % (200 + int(a), b, k)


def client_name(n, k):
    """What DNSBlackholeStuckPod must name client k of node n."""
    return n["ip"] if k == 0 else "%s/app-%s-%d" % (POD_NS, n["node"], k)


def ksm(a):
    """kube-state-metrics' kube_pod_info and kube_pod_status_phase for the
    fleet's client pods (and each node's hostNetwork kube-proxy pod, which
    shares the node's address), as a static exposition for Prometheus."""
    lo, hi = (int(x) for x in a.ports.split("-"))
    out = ["# HELP kube_pod_info [STABLE] Information about pod.", "# TYPE kube_pod_info gauge"]
    phase = ["# HELP kube_pod_status_phase [STABLE] The pods current phase.", "# TYPE kube_pod_status_phase gauge"]
    for n in read_nodes(a.nodes):
        pods = [("kube-system", "kube-proxy-" + n["node"], n["ip"], "true")]
        pods += [(POD_NS, "app-%s-%d" % (n["node"], k), client_ip(n, k), "false") for k in range(1, hi - lo + 1)]
        for ns, pod, ip, hn in pods:
            out.append('kube_pod_info{namespace="%s",pod="%s",uid="uid-%s",host_ip="%s",pod_ip="%s",node="%s",'
                       'created_by_kind="ReplicaSet",created_by_name="%s",priority_class="",host_network="%s"} 1'
                       % (ns, pod, pod, n["ip"], ip, n["node"], pod, hn))
            for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
                phase.append('kube_pod_status_phase{namespace="%s",pod="%s",uid="uid-%s",phase="%s"} %d'
                             % (ns, pod, pod, ph, ph == "Running"))
    with open(a.out, "w") as f:
        f.write("\n".join(out + phase) + "\n")
    return 0


def setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def clients(a):
    nodes = read_nodes(a.nodes)
    lo, hi = (int(x) for x in a.ports.split("-"))
    tlo, thi = (float(x) for x in a.ttl.split("-"))
    rnd = random.Random(a.seed)
    home = "/proc/self/ns/net"
    home_fd = os.open(home, os.O_RDONLY)
    libc = ctypes.CDLL(None, use_errno=True)
    sel = selectors.DefaultSelector()
    cl = []
    for n in nodes:
        setns("/run/netns/" + n["ns"])
        for p in range(lo, hi + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((client_ip(n, p - lo), p))
            s.setblocking(False)
            c = {"node": n["node"], "port": p, "s": s, "sent": 0, "ok": 0, "last_ok_ms": 0,
                 "fails": 0, "fails_in_row": 0, "first_fail_ms": 0, "qid": None,
                 "sent_at": 0.0, "next": time.monotonic() + rnd.uniform(0, 1.0)}
            sel.register(s, selectors.EVENT_READ, c)
            cl.append(c)
    # Back home: nothing else this process opens is in a node namespace.
    if libc.setns(home_fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns home")
    os.close(home_fd)
    vip = (a.vip, 53)
    last_status = 0.0
    ready = False
    while True:
        now = time.monotonic()
        for c in cl:
            if c["qid"] is not None and now - c["sent_at"] >= a.timeout:
                c["qid"] = None
                c["fails"] += 1
                c["fails_in_row"] += 1
                if c["fails_in_row"] == 1:
                    c["first_fail_ms"] = ms()
                c["next"] = now          # retry at once, same socket
            if c["qid"] is None and now >= c["next"]:
                c["qid"] = rnd.randrange(65536)
                c["sent_at"] = now
                c["sent"] += 1
                try:
                    c["s"].sendto(build_query(c["qid"], QNAME, 1), vip)
                except OSError:
                    pass
        if not ready and all(c["ok"] > 0 for c in cl):
            ready = True
            open(a.ready, "w").close()
        if now - last_status >= 1.0:
            last_status = now
            st = {}
            for c in cl:
                st.setdefault(c["node"], {})[str(c["port"])] = {
                    k: c[k] for k in ("sent", "ok", "last_ok_ms", "fails", "fails_in_row", "first_fail_ms")}
            tmp = a.status + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"ms": ms(), "clients": st}, f)
            os.rename(tmp, a.status)
        wait = 0.05
        for key, _ in sel.select(wait):
            c = key.data
            try:
                msg, peer = c["s"].recvfrom(4096)
            except OSError:
                continue
            if (peer == vip and c["qid"] is not None and len(msg) >= 12 and
                    struct.unpack(">H", msg[:2])[0] == c["qid"] and msg[2] & 0x80):
                c["qid"] = None
                c["ok"] += 1
                c["last_ok_ms"] = ms()
                c["fails_in_row"] = 0
                c["next"] = time.monotonic() + rnd.uniform(tlo, thi)


# ------------------------------------------------------------------ rollout

def run(cmd, stdin=None):
    r = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))


def apply_rules(ns, mode, which, rules):
    f = os.path.join(rules, "%s-%s" % (mode, which))
    if mode == "iptables":
        run(["ip", "netns", "exec", ns, "iptables-restore", "-w", "5", f])
    else:
        run(["ip", "netns", "exec", ns, "nft", "-f", f])


def rollout(a):
    nodes = read_nodes(a.nodes)
    rnd = random.Random(a.seed)
    order = nodes[:]
    rnd.shuffle(order)
    for n in order:   # drawn up front, so the seed alone fixes every length
        n["win"] = math.exp(rnd.uniform(math.log(a.wmin), math.log(a.wmax)))
    lock = threading.Lock()
    queue = list(order)
    errors = []
    out = open(a.log, "w")

    def worker():
        while True:
            with lock:
                if not queue or errors:
                    return
                n = queue.pop(0)
            try:
                t_open = ms()
                apply_rules(n["ns"], n["mode"], "window", a.rules)
                t_in = ms()
                time.sleep(n["win"])
                apply_rules(n["ns"], n["mode"], "full", a.rules)
                t_close = ms()
            except Exception as e:   # noqa: BLE001 - reported, run fails
                with lock:
                    errors.append(str(e))
                return
            with lock:
                out.write("%s %s %s open=%d in=%d close=%d drawn_s=%.3f window_ms=%d\n" % (
                    n["node"], n["ns"], n["mode"], t_open, t_in, t_close, n["win"], t_close - t_open))
                out.flush()
            time.sleep(a.gap)

    ts = [threading.Thread(target=worker) for _ in range(max(1, a.par))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.close()
    if errors:
        print("rollout: " + errors[0], file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------ oracle

def ct_list(ns, vip):
    r = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-p", "udp",
                        "--orig-dst", vip, "--dport", "53"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("conntrack -L in %s: %s" % (ns, r.stderr.strip()))
    flows = []
    for line in r.stdout.splitlines():
        f = line.split()
        kv = [x.split("=", 1) for x in f if "=" in x]
        srcs = [v for k, v in kv if k == "src"]
        sports = [v for k, v in kv if k == "sport"]
        if len(srcs) < 2 or not sports:
            continue
        flows.append({"sport": int(sports[0]), "reply_src": srcs[1],
                      "dnat": srcs[1] != vip, "unreplied": "[UNREPLIED]" in f, "line": line})
    return flows


def oracle_once(nodes, vip, threads=8):
    """{node: [stale flows]} for every node (empty list: none stale)."""
    res, errs = {}, []
    lock = threading.Lock()
    q = list(nodes)

    def w():
        while True:
            with lock:
                if not q:
                    return
                n = q.pop()
            try:
                fl = [x for x in ct_list(n["ns"], vip) if not x["dnat"]]
            except Exception as e:  # noqa: BLE001
                with lock:
                    errs.append(str(e))
                continue
            with lock:
                res[n["node"]] = fl
    ts = [threading.Thread(target=w) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise RuntimeError(errs[0])
    return res


def oracle(a):
    res = oracle_once(read_nodes(a.nodes), a.vip)
    s = json.dumps(res, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(s)
    else:
        print(s)
    return 0


# ------------------------------------------------------------------ prometheus

def api(url, path, params=None):
    u = url.rstrip("/") + path
    if params:
        u += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(u, timeout=10) as r:
        body = r.read()
    if path.startswith("/-/"):
        return body.decode()
    d = json.loads(body)
    if d.get("status") != "success":
        raise RuntimeError("prometheus %s: %s" % (path, d))
    return d["data"]


def firing(url, alertname):
    """{node: activeAt (epoch ms)} of the firing alerts named alertname."""
    out = {}
    for al in api(url, "/api/v1/alerts")["alerts"]:
        lb = al.get("labels", {})
        if lb.get("alertname") == alertname and al.get("state") == "firing":
            t = al.get("activeAt", "")
            out[lb.get("node", "?")] = iso_ms(t)
    return out


def stuck_pods(url):
    """{node: [namespace/pod, or the client address]} of the firing
    DNSBlackholeStuckPod alerts."""
    out = {}
    for al in api(url, "/api/v1/alerts")["alerts"]:
        lb = al.get("labels", {})
        if lb.get("alertname") == "DNSBlackholeStuckPod" and al.get("state") == "firing":
            who = "%s/%s" % (lb["namespace"], lb["pod"]) if lb.get("pod") else lb.get("client", "?")
            out.setdefault(lb.get("node", "?"), []).append(who)
    return {n: sorted(v) for n, v in out.items()}


def expected_pods(nodes, orc, lo, hi):
    """What DNSBlackholeStuckPod must name, from the oracle's stale flows."""
    byname = {n["node"]: n for n in nodes}
    out = {}
    for node, fl in orc.items():
        names = sorted(set(client_name(byname[node], x["sport"] - lo) for x in fl if lo <= x["sport"] <= hi))
        if names:
            out[node] = names
    return out


def iso_ms(t):
    # 2026-12-03T10:59:01.123456789Z -> epoch ms
    if not t:
        return 0
    t = t.rstrip("Z")
    main, _, frac = t.partition(".")
    sec = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return sec * 1000 + int((frac + "000")[:3])


def gauge_nodes(url, metric):
    """The nodes where max by (node) (metric) > 0 now."""
    r = api(url, "/api/v1/query", {"query": "max by (node) (%s) > 0" % metric})["result"]
    return sorted(x["metric"].get("node", "?") for x in r)


def prom(a):
    if a.what == "ready":
        print(api(a.url, "/-/ready"))
    elif a.what == "alerts":
        print(json.dumps(api(a.url, "/api/v1/alerts"), indent=1))
    elif a.what == "targets":
        print(json.dumps(api(a.url, "/api/v1/targets", {"state": "active"}), indent=1))
    else:
        print(json.dumps(api(a.url, "/api/v1/query", {"query": a.what}), indent=1))
    return 0


def wait_ready(a):
    """Until Prometheus is ready and every target is up (or the deadline)."""
    end = time.monotonic() + a.deadline
    want = set(n["ip"] + ":9797" for n in read_nodes(a.nodes))
    last = "not asked"
    while time.monotonic() < end:
        try:
            api(a.url, "/-/ready")
            tg = api(a.url, "/api/v1/targets", {"state": "active"})["activeTargets"]
            up = set(t["labels"].get("instance") for t in tg if t.get("health") == "up")
            last = "%d of %d targets up" % (len(up & want), len(want))
            if want <= up:
                print(last)
                return 0
        except Exception as e:  # noqa: BLE001 - not up yet
            last = str(e)
        time.sleep(0.5)
    print(last)
    return 1


# ------------------------------------------------------------------ settle

def settle(a):
    """Polls the oracle (conntrack -L per node) and Prometheus' firing
    alerts until the two node sets are equal on two polls in a row, or the
    deadline passes; writes the last poll (both sets, every stale flow,
    activeAt of each alert) to --out. Exit 0 if they agreed."""
    nodes = read_nodes(a.nodes)
    lo, hi = (int(x) for x in a.ports.split("-"))
    end = time.monotonic() + a.deadline
    agree = 0
    polls = 0
    while True:
        polls += 1
        orc = oracle_once(nodes, a.vip)
        stuck = sorted(n for n, fl in orc.items() if fl)
        # split: the clients' flows (their fixed ports), and the rest (the
        # testers' own sockets; a probe would show here too)
        by_clients = sorted(n for n, fl in orc.items() if any(lo <= x["sport"] <= hi for x in fl))
        by_others = sorted(n for n, fl in orc.items() if any(not lo <= x["sport"] <= hi for x in fl))
        try:
            fire = firing(a.url, a.alert)
            g_stuck = gauge_nodes(a.url, "dns_blackhole_tester_node_stuck_flows")
            g_own = gauge_nodes(a.url, "dns_blackhole_tester_blackholed")
        except Exception as e:  # noqa: BLE001
            fire, g_stuck, g_own = {"?error": 0}, ["?error"], ["?error"]
            print("settle: %s" % e, file=sys.stderr)
        alerted = sorted(fire)
        want_pods = expected_pods(nodes, orc, lo, hi)
        try:
            pods = stuck_pods(a.url)
        except Exception as e:  # noqa: BLE001
            pods = {"?error": [str(e)]}
        same = (stuck == alerted and g_stuck == by_clients and g_own == by_others and
                pods == want_pods and (a.want_empty == 0 or not stuck))
        if a.healed_logs:
            # the heal alert is evaluated after the scrape that shows the
            # heal: wait for it as for the others, then compare exactly
            healed = healed_nodes(nodes, a.healed_logs)
            try:
                healing = sorted(firing(a.url, "DNSBlackholeNodeHealing"))
            except Exception as e:  # noqa: BLE001
                healing = ["?error %s" % e]
            same = same and healing == healed
        agree = agree + 1 if same else 0
        done = agree >= 2 or time.monotonic() >= end
        if done:
            res = {"ms": ms(), "polls": polls, "agree": agree >= 2, "stuck": stuck,
                   "alerted": alerted, "active_at": fire, "flows": orc,
                   "stuck_by_clients": by_clients, "stuck_by_others": by_others,
                   "gauge_node_stuck_flows": g_stuck, "gauge_blackholed": g_own,
                   "pods_expected": want_pods, "pods_alerted": pods}
            if a.healed_logs:
                res["healed_nodes"], res["healing_alerted"] = healed, healing
            for extra in a.also:
                try:
                    res["also_" + extra] = sorted(firing(a.url, extra))
                except Exception as e:  # noqa: BLE001
                    res["also_" + extra] = ["?error %s" % e]
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1, sort_keys=True)
            return 0 if agree >= 2 else 1
        time.sleep(a.every)


def healed_nodes(nodes, pattern):
    """The nodes whose tester log (pattern % node) has a heal: event=
    client_healed (--heal-node) or event=healed (--heal, its own flow)."""
    return sorted(n["node"] for n in nodes
                  if log_events(pattern % n["node"], "client_healed", "healed"))


# ------------------------------------------------------------------ report

def q1(url, expr, at):
    """One instant query at time at (s); the single value, or None."""
    r = api(url, "/api/v1/query", {"query": expr, "time": "%.3f" % at})["result"]
    return float(r[0]["value"][1]) if r else None


def log_events(path, *events):
    """The tester's log lines (logcheck.parse: fields and _ms) of those
    events; none when there is no log."""
    try:
        return [l for l in parse(path) if l.get("event") in events]
    except OSError:
        return []


def stats(xs):
    xs = sorted(xs)
    if not xs:
        return "n/a"
    return "min %s, median %s, max %s" % (xs[0], xs[len(xs) // 2], xs[-1])


def read_windows(W):
    """{node: {mode, open, close, ms}} from rollout.log."""
    win = {}
    with open(os.path.join(W, "rollout.log")) as f:
        for line in f:
            p = line.split()
            kv = dict(x.split("=", 1) for x in p[3:])
            win[p[0]] = {"mode": p[2], "open": int(kv["open"]), "close": int(kv["close"]),
                         "ms": int(kv["window_ms"])}
    return win


def alert_phase(res, s1, win, own, lo, hi):
    """Phase 1, the oracle against the alerts (settle1.json): into res;
    returns the stale flows (clients', testers') the heal phase needs."""
    stuck, alerted = s1["stuck"], s1["alerted"]
    res["stuck_nodes"] = len(stuck)
    res["alerted_nodes"] = len(alerted)
    res["sets_equal"] = "yes" if stuck == alerted else "no"
    res["settle1_agreed"] = "yes" if s1["agree"] else "no"
    res["stuck_list"] = ",".join(stuck) or "-"
    res["alerted_list"] = ",".join(alerted) or "-"
    res["stuck_iptables"] = sum(1 for n in stuck if win.get(n, {}).get("mode") == "iptables")
    res["stuck_nftables"] = sum(1 for n in stuck if win.get(n, {}).get("mode") == "nftables")
    flows = [(n, fl["sport"]) for n, fls in s1["flows"].items() for fl in fls]
    stuck_clients = [f for f in flows if lo <= f[1] <= hi]
    stuck_other = [f for f in flows if not lo <= f[1] <= hi]
    stuck_testers = [(n, p) for n, p in stuck_other if own.get(n) == p]
    res["gauges_equal"] = "yes" if (s1["gauge_node_stuck_flows"] == s1["stuck_by_clients"] and
                                    s1["gauge_blackholed"] == s1["stuck_by_others"]) else "no"
    res["gauge_stuck_flows_nodes"] = len(s1["gauge_node_stuck_flows"])
    res["gauge_blackholed_nodes"] = len(s1["gauge_blackholed"])
    res["clients_only_nodes"] = len(set(s1["stuck_by_clients"]) - set(s1["stuck_by_others"]))
    res["stuck_clients"] = len(stuck_clients)
    res["stuck_tester_flows"] = len(stuck_testers)
    res["stuck_other_flows"] = len(stuck_other) - len(stuck_testers)
    res["alert_latency_ms"] = stats([s1["active_at"][n] - win[n]["close"]
                                     for n in stuck if n in s1["active_at"] and n in win])
    res["window_ms_stuck"] = stats([w["ms"] for n, w in win.items() if n in stuck])
    res["window_ms_others"] = stats([w["ms"] for n, w in win.items() if n not in stuck])
    res["proven_nodes"] = len(s1.get("also_DNSBlackholeProven", []))
    # the pod-named alert against the oracle's stuck clients, by name
    pe, pa = s1.get("pods_expected", {}), s1.get("pods_alerted", {})
    res["pod_alerts_equal"] = "yes" if pe == pa else "no"
    names = [x for v in pe.values() for x in v]
    res["pod_alerts_by_pod"] = sum(1 for x in names if "/" in x)
    res["pod_alerts_by_address"] = len(names) - res["pod_alerts_by_pod"]
    res["pod_alerts_diff"] = ",".join(sorted("%s:%s" % (n, x) for n in set(pe) | set(pa)
                                             for x in set(pe.get(n, [])) ^ set(pa.get(n, [])))) or "-"
    res["window_seen_nodes"] = len(s1.get("also_DNSRestartWindowSeen", []))
    return stuck_clients, stuck_testers


def heal_phase(res, W, names, win, own, stuck_clients, stuck_testers):
    """Phase 2, the --heal-node rollout (settle2.json, the clients' last
    status, the new testers' logs): into res."""
    s2 = json.load(open(os.path.join(W, "settle2.json")))
    res["heal_stuck_nodes"] = len(s2["stuck"])
    res["heal_alerted_nodes"] = len(s2["alerted"])
    res["heal_settled"] = "yes" if (s2["agree"] and not s2["stuck"] and not s2["alerted"] and
                                    not s2["gauge_node_stuck_flows"] and not s2["gauge_blackholed"]) else "no"
    with open(os.path.join(W, "restarts")) as f:
        restart = {n: int(t) for n, t in (line.split() for line in f)}
    # a stuck client answered again after its node's new tester started
    cl = json.load(open(os.path.join(W, "clients.end.json")))["clients"]
    unhealed = ["%s:%d" % (n, p) for n, p in stuck_clients
                if not (cl.get(n, {}).get(str(p), {}).get("last_ok_ms", 0) > restart.get(n, 1 << 62) and
                        cl.get(n, {}).get(str(p), {}).get("fails_in_row", 1) == 0)]
    res["clients_healed"] = len(stuck_clients) - len(unhealed)
    res["clients_unhealed"] = ",".join(unhealed) or "-"
    healed_by, heal_ms, healed_ports = {}, [], set()
    for n in names:
        ev = log_events(os.path.join(W, "t", n + ".heal.log"), "client_healed")
        if ev:
            healed_by[n] = len(ev)
        for e in ev:
            healed_ports.add((n, int(e.get("sport", 0))))
            if n in win:   # rules back -> entry deleted
                heal_ms.append(e["_ms"] - win[n]["close"])
    # each stuck client's own entry deleted by its node's tester (a
    # client retrying every second keeps it alive: nothing else goes)
    missed = ["%s:%d" % c for c in stuck_clients if c not in healed_ports]
    res["clients_healed_by_tester"] = len(stuck_clients) - len(missed)
    res["clients_not_healed_by_tester"] = ",".join(missed) or "-"
    res["heal_events"] = sum(healed_by.values())
    res["healed_nodes"] = len(healed_by)
    res["healed_nodes_list"] = ",".join(sorted(healed_by)) or "-"
    res["orphans_healed"] = sum(1 for n, p in healed_ports if own.get(n) == p)
    res["orphans_stuck"] = len(stuck_testers)
    res["heal_stuck_ms"] = stats(heal_ms)
    # settle waited for the heal alert too (--healed-logs): its last poll
    hl, healed_any = s2.get("healing_alerted", []), s2.get("healed_nodes", [])
    res["healing_alert_nodes"] = len(hl)
    res["healing_alert_list"] = ",".join(hl) or "-"
    res["healing_alert_equal"] = "yes" if hl == healed_any else "no"
    res["healed_any_nodes"] = len(healed_any)


def resource_use(res, W, a):
    """CPU and memory: /proc/PID/schedstat (ns on CPU, exact), utime+stime
    (ticks), VmHWM/VmRSS, read just before each SIGTERM (procstats)."""
    hz = os.sysconf("SC_CLK_TCK")
    per = {}
    prom_line = None
    with open(os.path.join(W, "procstats")) as f:
        for line in f:
            p = line.split()
            if p[0] == "prometheus":
                prom_line = p
                continue
            if len(p) < 9:
                continue
            d = per.setdefault(p[1], {"ns": 0, "ticks": 0, "hwm": 0, "rss": 0})
            d["ns"] += int(p[4]) - a.chain_ns
            d["ticks"] += int(p[5]) + int(p[6])
            d["hwm"] = max(d["hwm"], int(p[7]))
            d["rss"] = max(d["rss"], int(p[8]))
    run_s = (a.t1 - a.t0) / 1000.0
    tot_ns = sum(d["ns"] for d in per.values())
    res["run_s"] = round(run_s, 1)
    res["tester_cpu_total_s"] = round(tot_ns / 1e9, 3)
    res["tester_cpu_ticks_total_s"] = round(sum(d["ticks"] for d in per.values()) / hz, 2)
    res["tester_cpu_per_node_ms"] = round(tot_ns / 1e6 / max(1, len(per)), 1)
    res["tester_cpu_per_node_pct"] = round(100.0 * tot_ns / 1e9 / max(1, len(per)) / run_s, 4)
    for k in ("hwm", "rss"):
        v = sorted(d[k] for d in per.values())
        res["tester_vm%s_kib" % k] = "avg %d, max %d" % (sum(v) // max(1, len(v)), v[-1] if v else 0)
    if prom_line and len(prom_line) >= 9:
        # utime+stime: every thread (schedstat is the main thread's alone)
        res["prometheus_cpu_s"] = round((int(prom_line[5]) + int(prom_line[6])) / hz, 2)
        res["prometheus_vmhwm_mib"] = round(int(prom_line[7]) / 1024, 1)


def scrape_stats(res, a):
    """Prometheus' own view of its scrapes, up to T1 (before the last stop)."""
    at = a.t1 / 1000.0 - 0.5
    rng = "%ds" % max(5, int((a.t1 - a.prom_t0) / 1000))
    sel = 'scrape_duration_seconds{job="dns-blackhole-tester"}'
    up = 'up{job="dns-blackhole-tester"}'
    try:
        mn = q1(a.url, "min(min_over_time(%s[%s]))" % (sel, rng), at)
        mx = q1(a.url, "max(max_over_time(%s[%s]))" % (sel, rng), at)
        sm = q1(a.url, "sum(sum_over_time(%s[%s]))" % (sel, rng), at)
        ct = q1(a.url, "sum(count_over_time(%s[%s]))" % (sel, rng), at)
        p99 = q1(a.url, "quantile(0.99, quantile_over_time(0.99, %s[%s]))" % (sel, rng), at)
        ups = q1(a.url, "sum(sum_over_time(%s[%s]))" % (up, rng), at)
        res["scrapes"] = int(ct or 0)
        res["scrapes_failed"] = int((ct or 0) - (ups or 0))
        # of which before the --heal-node rollout (its restarts make some)
        at0 = a.h0 / 1000.0
        rng0 = "%ds" % max(5, int((a.h0 - a.prom_t0) / 1000))
        ct0 = q1(a.url, "sum(count_over_time(%s[%s]))" % (sel, rng0), at0)
        up0 = q1(a.url, "sum(sum_over_time(%s[%s]))" % (up, rng0), at0)
        res["scrapes_failed_before_heal"] = int((ct0 or 0) - (up0 or 0))
        res["scrape_ms"] = "min %.2f, avg %.2f, p99 %.2f, max %.2f" % (
            1e3 * (mn or 0), 1e3 * (sm or 0) / max(1, ct or 0), 1e3 * (p99 or 0), 1e3 * (mx or 0))
        # the heal counters as Prometheus holds them, per node
        hs = api(a.url, "/api/v1/query", {
            "query": "max by (node) (dns_blackhole_tester_node_clients_healed_total) > 0",
            "time": "%.3f" % at})["result"]
        res["heal_counter_nodes"] = len(hs)
    except Exception as e:  # noqa: BLE001
        res["scrape_ms"] = "query failed: %s" % e


def summary_alerts(say, res, a, s1):
    say("")
    say("The fleet: %d nodes (%d iptables, %d nftables), seed %d, %d at a time, windows %s-%s s" % (
        res["nodes"], res["iptables_nodes"], res["nftables_nodes"], a.seed, a.par, a.wmin, a.wmax))
    say("  testers started         %d of %d (ds.yaml args, NODE_NAME); Prometheus targets up: %d" % (
        a.started, res["nodes"], a.targets_up))
    say("  rollout                 %d windows in %.1f s; window lengths (ms) of stuck nodes: %s; of the others: %s" % (
        res["windows"], (a.r1 - a.r0) / 1000.0, res["window_ms_stuck"], res["window_ms_others"]))
    say("  stuck (conntrack -L)    %d nodes (%d iptables, %d nftables): %d client flows, %d testers' own flows, %d other" % (
        res["stuck_nodes"], res["stuck_iptables"], res["stuck_nftables"], res["stuck_clients"],
        res["stuck_tester_flows"], res["stuck_other_flows"]))
    say("    %s" % res["stuck_list"])
    say("  alerted (Prometheus)    %d nodes firing DNSBlackholeOnNode" % res["alerted_nodes"])
    say("    %s" % res["alerted_list"])
    say("  the same set?           %s (%d polls, settled %.1f s after the rollout)" % (
        res["sets_equal"].upper(), s1["polls"], (a.s1 - a.r1) / 1000.0))
    stuck, alerted = set(s1["stuck"]), set(s1["alerted"])
    if stuck != alerted:
        say("    stuck, not alerted: %s" % (",".join(sorted(stuck - alerted)) or "-"))
        say("    alerted, not stuck: %s" % (",".join(sorted(alerted - stuck)) or "-"))
    say("  by metric               node_stuck_flows > 0 on %d nodes (nodes with a stuck client: %d), blackholed on %d (tester's own flow stuck: %d): %s" % (
        res["gauge_stuck_flows_nodes"], len(s1["stuck_by_clients"]), res["gauge_blackholed_nodes"],
        len(s1["stuck_by_others"]), "the same" if res["gauges_equal"] == "yes" else "DIFFERENT"))
    say("                          %d nodes stuck by clients alone (the tester's own flow not stuck)" % res["clients_only_nodes"])
    say("  DNSBlackholeStuckPod    %s: %d clients named by pod (kube_pod_info), %d by address (hostNetwork); differences: %s" % (
        "the stuck clients exactly" if res["pod_alerts_equal"] == "yes" else "NOT the stuck clients",
        res["pod_alerts_by_pod"], res["pod_alerts_by_address"], res["pod_alerts_diff"]))
    say("  alert latency           rules back -> alert firing (activeAt), ms: %s" % res["alert_latency_ms"])
    say("  also firing             DNSBlackholeProven %d nodes, DNSRestartWindowSeen %d nodes" % (
        res["proven_nodes"], res["window_seen_nodes"]))
    if res["stuck_nodes"] in (0, res["nodes"]):
        say("  NOTE: %s nodes got stuck this run: no contrast between stuck and not stuck" % (
            "no" if not stuck else "all"))


def summary_heal(say, res):
    say("  --heal-node rollout     stale flows left: %d nodes; DNSBlackholeOnNode still firing: %d nodes (%s)" % (
        res["heal_stuck_nodes"], res["heal_alerted_nodes"], "settled" if res["heal_settled"] == "yes" else "NOT settled"))
    say("    stuck clients healed  %d of %d (answered again after their node's restart): unhealed %s" % (
        res["clients_healed"], res["stuck_clients"], res["clients_unhealed"]))
    say("    client_healed events  %d on %d nodes: %d of the %d stuck clients' entries, %d of the %d old testers' own" % (
        res["heal_events"], res["healed_nodes"], res["clients_healed_by_tester"], res["stuck_clients"],
        res["orphans_healed"], res["orphans_stuck"]))
    say("                          (an old tester's entry outlives its socket up to the UDP timeout, 5 s: the")
    say("                          new tester deletes it, or it times out first - both leave the node clean)")
    say("    stuck for, ms         %s (rules back -> deleted by the new --heal-node tester; includes the wait for the alerts and the rollout's reaching the node)" % res["heal_stuck_ms"])
    say("    DNSBlackholeNodeHealing firing on %d nodes (healed nodes: %d; with the heal counter > 0 in Prometheus: %s)" % (
        res["healing_alert_nodes"], res["healed_nodes"], res.get("heal_counter_nodes", "?")))
    say("      on exactly the %d nodes whose tester logged a heal: %s" % (
        res["healed_any_nodes"], res["healing_alert_equal"]))


def summary_resources(say, res, a):
    say("  testers' CPU            %.3f s in all (schedstat; utime+stime %.2f s), %.1f ms a node = %.4f%% of a core over %.0f s" % (
        res["tester_cpu_total_s"], res["tester_cpu_ticks_total_s"], res["tester_cpu_per_node_ms"],
        res["tester_cpu_per_node_pct"], res["run_s"]))
    say("                          (less %.1f ms a process for ip netns exec + unshare + sh before the exec, measured)" % (
        a.chain_ns / 1e6))
    say("  testers' memory         VmHWM %s KiB, VmRSS %s KiB a node" % (res["tester_vmhwm_kib"], res["tester_vmrss_kib"]))
    if "prometheus_cpu_s" in res:
        say("  Prometheus              %.2f s CPU, VmHWM %.1f MiB; %s scrapes, %s failed (%s before the --heal-node restarts)" % (
            res["prometheus_cpu_s"], res["prometheus_vmhwm_mib"], res.get("scrapes", "?"),
            res.get("scrapes_failed", "?"), res.get("scrapes_failed_before_heal", "?")))
        say("    scrape_duration_seconds, ms: %s" % res.get("scrape_ms"))
    say("  total run time          %.0f s" % res["run_s"])


def report(a):
    """The run's results (key=value lines to --results) and its summary."""
    W = a.work
    nodes = read_nodes(os.path.join(W, "nodes"))
    names = [n["node"] for n in nodes]
    lo, hi = (int(x) for x in a.ports.split("-"))
    res = {"nodes": len(nodes), "testers_started": a.started, "targets_up": a.targets_up,
           "iptables_nodes": sum(1 for n in nodes if n["mode"] == "iptables"),
           "nftables_nodes": sum(1 for n in nodes if n["mode"] == "nftables")}
    win = read_windows(W)
    res["windows"] = len(win)
    # the watch testers' own sockets (a stale flow from one is the tester's)
    own = {}
    for n in names:
        for e in log_events(os.path.join(W, "t", n + ".watch.log"), "start"):
            own[n] = int(e.get("src", ":0").rsplit(":", 1)[1])
    s1 = json.load(open(os.path.join(W, "settle1.json")))
    stuck_clients, stuck_testers = alert_phase(res, s1, win, own, lo, hi)
    if a.heal == 1:
        heal_phase(res, W, names, win, own, stuck_clients, stuck_testers)
    resource_use(res, W, a)
    scrape_stats(res, a)
    out = []
    summary_alerts(out.append, res, a, s1)
    if a.heal == 1:
        summary_heal(out.append, res)
    summary_resources(out.append, res, a)
    print("\n".join(out))
    with open(a.results, "w") as f:
        for k in sorted(res):
            f.write("%s=%s\n" % (k, str(res[k]).replace("\n", " ")))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    c = sp.add_parser("clients")
    c.add_argument("--nodes", required=True)
    c.add_argument("--vip", required=True)
    c.add_argument("--ports", required=True)
    c.add_argument("--ttl", default="5.5-7.5")
    c.add_argument("--timeout", type=float, default=1.0)
    c.add_argument("--status", required=True)
    c.add_argument("--ready", required=True)
    c.add_argument("--seed", type=int, default=1)
    r = sp.add_parser("rollout")
    r.add_argument("--nodes", required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--par", type=int, required=True)
    r.add_argument("--wmin", type=float, required=True)
    r.add_argument("--wmax", type=float, required=True)
    r.add_argument("--gap", type=float, default=0.2)
    r.add_argument("--rules", required=True)
    r.add_argument("--log", required=True)
    k = sp.add_parser("ksm")
    k.add_argument("--nodes", required=True)
    k.add_argument("--ports", required=True)
    k.add_argument("--out", required=True)
    o = sp.add_parser("oracle")
    o.add_argument("--nodes", required=True)
    o.add_argument("--vip", required=True)
    o.add_argument("--out")
    p = sp.add_parser("prom")
    p.add_argument("--url", required=True)
    p.add_argument("what")
    w = sp.add_parser("wait-ready")
    w.add_argument("--url", required=True)
    w.add_argument("--nodes", required=True)
    w.add_argument("--deadline", type=float, default=60)
    s = sp.add_parser("settle")
    s.add_argument("--url", required=True)
    s.add_argument("--nodes", required=True)
    s.add_argument("--vip", required=True)
    s.add_argument("--alert", default="DNSBlackholeOnNode")
    s.add_argument("--also", action="append", default=[])
    s.add_argument("--deadline", type=float, default=90)
    s.add_argument("--every", type=float, default=2)
    s.add_argument("--want-empty", type=int, default=0)
    s.add_argument("--healed-logs", help="%%s = node: agree only once DNSBlackholeNodeHealing fires on exactly the nodes healed")
    s.add_argument("--ports", required=True)
    s.add_argument("--out", required=True)
    rp = sp.add_parser("report")
    rp.add_argument("--url", required=True)
    rp.add_argument("--work", required=True)
    rp.add_argument("--results", required=True)
    rp.add_argument("--ports", required=True)
    for k in ("t0", "t1", "prom-t0", "r0", "r1", "s1", "h0", "heal", "seed", "par", "clients",
              "started", "targets-up", "chain-ns"):
        rp.add_argument("--" + k, type=int, required=True)
    rp.add_argument("--wmin", required=True)
    rp.add_argument("--wmax", required=True)
    a = ap.parse_args()
    fn = {"report": report, "clients": clients, "rollout": rollout, "oracle": oracle, "prom": prom,
          "wait-ready": wait_ready, "settle": settle, "ksm": ksm}[a.cmd]
    return fn(a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
