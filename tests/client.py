#!/usr/bin/env python3
"""client.py - a plain fixed-source-port DNS client for the namespace lab.

It keeps ONE UDP socket bound to SRC:PORT for its whole life, the way a
long-lived resolver socket does, so a stale conntrack entry for that
5-tuple keeps catching every query it sends. It is deliberately naive:
no retries from another port, no TCP fallback.

  client.py --bind 10.224.0.8 --port 40000 --server 10.0.0.10 \
            --count 5 --interval 0.2 --timeout 0.5 --qtype A --expect 10.96.0.1

One line per query on stdout:
  ok <ms>        an answer with the right id, from SERVER:53, NOERROR, and
                 (with --expect) holding that address
  timeout        nothing acceptable within --timeout
  bad <why>      an answer came but is wrong (rcode, missing address, ...)
Exit 0 if every query was ok, 1 otherwise, 2 on a usage or socket error.
Stdlib only: it runs wherever python3 does.

With --tcp, each query goes over a TCP connection of its own from
SRC:PORT (port 0: a fresh port each time), as a DNS client falls back to
TCP; the lines are the same ("timeout" also when the connection fails).
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


def build_query(qid, name, qtype):
    """A standard query with RD set, one question, no EDNS."""
    out = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError("bad label in %r" % name)
        out += bytes([len(raw)]) + raw
    return out + b"\x00" + struct.pack(">HH", qtype, 1)


def skip_name(msg, off):
    """Offset just past the (possibly compressed) name at off."""
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def parse_reply(msg, qid, qtype):
    """(error or None, addresses of qtype in the answer section)."""
    if len(msg) < 12:
        return "short", []
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid:
        return "id", []
    if not flags & 0x8000:
        return "not a response", []
    rcode = flags & 0xF
    if rcode != 0:
        return "rcode=%d" % rcode, []
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs = []
    for _ in range(an):
        off = skip_name(msg, off)
        if off + 10 > len(msg):
            return "truncated answer", addrs
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == qtype and rdlen in (4, 16):
            addrs.append(str(ipaddress.ip_address(rdata)))
    return None, addrs


def tcp_query(a, fam, server, qid, qtype):
    """One query over its own TCP connection: the result line."""
    sent = time.monotonic()
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as t:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.settimeout(a.timeout)
            t.bind((a.bind, a.port))
            t.connect(server)
            q = build_query(qid, a.name, qtype)
            t.sendall(struct.pack(">H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                left = a.timeout - (time.monotonic() - sent)
                if left <= 0:
                    return "timeout"
                t.settimeout(left)
                more = t.recv(4096)
                if not more:
                    return "bad connection closed"
                buf += more
    except (socket.timeout, OSError):
        return "timeout"
    msg = buf[2:2 + struct.unpack(">H", buf[:2])[0]]
    err, addrs = parse_reply(msg, qid, qtype)
    if err:
        return "bad %s" % err
    if a.expect and str(ipaddress.ip_address(a.expect)) not in addrs:
        return "bad answer %s" % (",".join(addrs) or "empty")
    return "ok %.1f" % ((time.monotonic() - sent) * 1000)


def main():
    ap = argparse.ArgumentParser(description="fixed-source-port DNS client")
    ap.add_argument("--bind", required=True, help="source address")
    ap.add_argument("--port", type=int, required=True,
                    help="source port (0: let the kernel choose once)")
    ap.add_argument("--server", required=True, help="server address (the VIP)")
    ap.add_argument("--server-port", type=int, default=53)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--interval", type=float, default=1.0,
                    help="seconds between the starts of two queries")
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--qtype", choices=sorted(QTYPES), default="A")
    ap.add_argument("--name", default="kubernetes.default.svc.cluster.local")
    ap.add_argument("--expect", help="an address the answer must hold")
    ap.add_argument("--tcp", action="store_true",
                    help="each query over a TCP connection of its own")
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
    server = (a.server, a.server_port)
    qtype = QTYPES[a.qtype]
    if a.tcp:
        all_ok = True
        start = time.monotonic()
        for i in range(a.count):
            delay = start + i * a.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            result = tcp_query(a, fam, server, struct.unpack(">H", os.urandom(2))[0], qtype)
            print(result, flush=True)
            all_ok = all_ok and result.startswith("ok ")
        return 0 if all_ok else 1
    try:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((a.bind, a.port))
    except OSError as e:
        print("client.py: bind %s port %d: %s" % (a.bind, a.port, e), file=sys.stderr)
        return 2

    all_ok = True
    start = time.monotonic()
    for i in range(a.count):
        # Keep a steady pace: query i starts at start + i*interval, or at
        # once if the previous one used up its slot waiting.
        delay = start + i * a.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        qid = struct.unpack(">H", os.urandom(2))[0]
        sent = time.monotonic()
        try:
            s.sendto(build_query(qid, a.name, qtype), server)
        except OSError as e:
            # e.g. EPERM from a firewall: report it as this query's failure.
            print("bad send: %s" % e.strerror, flush=True)
            all_ok = False
            continue
        result = "timeout"
        deadline = sent + a.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            try:
                msg, peer = s.recvfrom(4096)
            except OSError:
                continue  # an ICMP error queued on the socket: keep waiting
            # Late answers to earlier queries, or datagrams from elsewhere,
            # are not this query's answer.
            if peer[0] != str(ipaddress.ip_address(a.server)) or peer[1] != a.server_port:
                continue
            err, addrs = parse_reply(msg, qid, qtype)
            if err == "id":
                continue
            ms = (time.monotonic() - sent) * 1000
            if err:
                result = "bad %s" % err
            elif a.expect and str(ipaddress.ip_address(a.expect)) not in addrs:
                result = "bad answer %s" % (",".join(addrs) or "empty")
            else:
                result = "ok %.1f" % ms
            break
        print(result, flush=True)
        all_ok = all_ok and result.startswith("ok ")
    return 0 if all_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(1)
