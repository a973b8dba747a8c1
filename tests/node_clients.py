#!/usr/bin/env python3
"""node_clients.py - many fixed-port clients in one process, for t_node.sh.

Each client keeps ONE UDP socket bound to ADDR:PORT for its whole life (a
resolver like Envoy's or c-ares's), and sends one request every interval;
one process serves them all, so 30 clients cost one interpreter, not 30.

  node_clients.py --bind 10.224.0.8 --ports 22000-22029 --server 10.0.0.10 \\
      [--server-port 53] [--mode dns|echo] [--qtype A|AAAA] --interval 0.1 \\
      --duration 6 --log FILE [--ready FILE]
      Lines in FILE: "sent PORT EPOCH_MS" and "ok PORT EPOCH_MS" (an answer
      with our ID from SERVER:PORT; for echo, our own payload back).
      --ready is created once every socket has sent its first request.
  node_clients.py --bind ... --ports 21000-21199 --server ... --once
      One request from each socket, waits 1 s for the answers, prints
      "N answered" and exits 0 if all were: healthy, DNAT'd, replied flows.
  node_clients.py --echo-server ADDR:PORT [ADDR:PORT...]
      A UDP echo server (a non-DNS Service's backend), until killed.
Stdlib only.
"""
import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

QTYPES = {"A": 1, "AAAA": 28}


def query(qid, qtype):
    out = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in "kubernetes.default.svc.cluster.local".split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00" + struct.pack(">HH", qtype, 1)


def ms():
    return int(time.time() * 1000)


def echo_server(addrs):
    socks = []
    for a in addrs:
        host, port = a.rsplit(":", 1)
        host = host.strip("[]")
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, int(port)))
        socks.append(s)
    while True:
        for s in select.select(socks, [], [])[0]:
            msg, peer = s.recvfrom(4096)
            s.sendto(msg, peer)


def open_clients(a):
    lo, hi = (int(x) for x in a.ports.split("-"))
    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    socks = {}
    for p in range(lo, hi + 1):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((a.bind, p))
        s.setblocking(False)
        socks[s] = p
    return socks


def request(a, s, pending):
    qid = struct.unpack(">H", os.urandom(2))[0]
    msg = query(qid, QTYPES[a.qtype]) if a.mode == "dns" else b"echo %d" % qid
    pending[s] = msg if a.mode == "echo" else qid
    try:
        s.sendto(msg, (a.server, a.server_port))
    except OSError:
        pass


def answered(a, s, pending, msg, peer):
    if peer[0] != str(ipaddress.ip_address(a.server)) or peer[1] != a.server_port:
        return False
    if a.mode == "echo":
        return msg == pending.get(s)
    return len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == pending.get(s) and msg[2] & 0x80


def run(a, socks, out):
    pending, got = {}, 0
    end = time.monotonic() + (1.0 if a.once else a.duration)
    nxt = time.monotonic()
    first = True
    while time.monotonic() < end:
        if time.monotonic() >= nxt and (first or not a.once):
            for s, p in socks.items():
                request(a, s, pending)
                out.write("sent %d %d\n" % (p, ms()))
            if first and a.ready:
                open(a.ready, "w").close()
            first = False
            nxt += a.interval
        wait = max(0.0, min(nxt, end) - time.monotonic())
        for s in select.select(list(socks), [], [], wait)[0]:
            try:
                msg, peer = s.recvfrom(4096)
            except OSError:
                continue
            if answered(a, s, pending, msg, peer):
                pending.pop(s, None)
                got += 1
                out.write("ok %d %d\n" % (socks[s], ms()))
        out.flush()
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo-server", nargs="+")
    ap.add_argument("--bind")
    ap.add_argument("--ports")
    ap.add_argument("--server")
    ap.add_argument("--server-port", type=int, default=53)
    ap.add_argument("--mode", choices=["dns", "echo"], default="dns")
    ap.add_argument("--qtype", choices=sorted(QTYPES), default="A")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--ready")
    a = ap.parse_args()
    if a.echo_server:
        echo_server(a.echo_server)
    socks = open_clients(a)
    out = open(a.log, "a") if a.log else open(os.devnull, "w")
    got = run(a, socks, out)
    if a.once:
        print("%d answered" % got)
        return 0 if got == len(socks) else 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
