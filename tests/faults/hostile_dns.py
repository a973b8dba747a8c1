#!/usr/bin/env python3
"""hostile_dns.py - a DNS server that misbehaves on purpose, for t_faults.sh.

Run it in the lab's pod namespace on the pod's addresses, port 53, in
place of dnsmasq/unbound:

  hostile_dns.py --bind 10.244.0.2 --bind fd00:244::2 --mode garbage --log FILE

For every query it receives it sends, back to the asker, what the mode
says, and appends one line to --log:

  q peer=<addr> id=<n> bad=<datagrams that are not the answer> answered=<0|1>

so the test can hold the tester's counters (stats unexpected=, answered=)
against exactly what was sent.

Modes (the "bad" datagrams are never a valid answer to the query):
  garbage    one datagram of junk per query, cycling through: empty, 1 byte,
             11 bytes, random bytes with QR set, 5000 bytes, 65000 bytes;
             never the answer
  wrongid    the right answer with another ID; never the answer
  question   the right ID, a question for another name or type; never the answer
  notreply   the query echoed back (QR clear); never the answer
  cut        the right answer cut short (TC clear) at a different point
             each time: header, question, answer; never the answer
  loop       the right header and question, an answer whose name is a
             compression-pointer loop; never the answer
  flood      FLOOD (default 50) datagrams of the small kinds above (all but
             the 5000 and 65000 byte ones, so that the flood fits the
             tester's socket buffer and the answer is not dropped by the
             kernel), then the right answer: every query is answered
  late       the right answer, then the same answer again 30 ms later
  tc         the right answer with TC set and its answer record cut off
             (a server telling the client to retry over TCP): an answer
  good       the right answer only
  slow       the right answer only, --delay seconds (default 0.6) late: a
             real server that is slow, never a blackhole

Whatever the mode, a datagram that is not a well-formed standard query is
not answered (and, with --dump, recorded).
Stdlib only.
"""
import argparse
import os
import random
import select
import signal
import socket
import struct
import sys
import time

A_ANSWER = bytes([10, 96, 0, 1])
AAAA_ANSWER = socket.inet_pton(socket.AF_INET6, "fd00:96::1")


def question_end(q):
    """Offset just past the question of a query we parse ourselves."""
    off = 12
    while off < len(q) and q[off]:
        off += 1 + q[off]
    return off + 5                      # the zero label, type, class


def is_query(q):
    """A standard query with one question that ends inside the datagram."""
    if len(q) < 17 or q[2] & 0xF8 or struct.unpack(">H", q[4:6])[0] != 1:
        return False
    off = 12
    while off < len(q) and q[off]:
        if q[off] > 63:
            return False
        off += 1 + q[off]
    return off + 5 <= len(q)


def answer(q, qid=None):
    """A correct NOERROR answer to q (A or AAAA), with qid if given."""
    qend = question_end(q)
    qtype = struct.unpack(">H", q[qend - 4:qend - 2])[0]
    rid = struct.unpack(">H", q[:2])[0] if qid is None else qid
    rdata = A_ANSWER if qtype == 1 else AAAA_ANSWER if qtype == 28 else b""
    an = 1 if rdata else 0
    hdr = struct.pack(">HHHHHH", rid, 0x8580, 1, an, 0, 0)
    rr = b""
    if rdata:
        rr = b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 30, len(rdata)) + rdata
    return hdr + q[12:qend] + rr


def bad_kinds(q, i):
    """The i-th kind of not-an-answer for query q (cycles)."""
    good = answer(q)
    qid = struct.unpack(">H", q[:2])[0]
    qend = question_end(q)
    kinds = [
        lambda: b"",
        lambda: b"\x00",
        lambda: os.urandom(11),
        lambda: os.urandom(2) + b"\x80" + os.urandom(random.randint(9, 500)),
        lambda: os.urandom(5000),
        lambda: os.urandom(65000),
        lambda: answer(q, qid ^ 0x5A5A),                                  # wrong ID
        lambda: good[:12] + b"\x04evil\x07example\x00" + good[qend - 4:qend],   # other name
        lambda: good[:qend - 4] + b"\x00\x10" + good[qend - 2:],          # other type (TXT)
        lambda: q,                                                        # QR clear
        lambda: good[:random.randint(2, 11)],                             # cut in the header
        lambda: good[:random.randint(13, qend - 1)],                      # cut in the question
        lambda: good[:random.randint(qend + 1, len(good) - 1)],           # cut in the answer
        lambda: good[:qend] + b"\xc0" + bytes([qend]) + struct.pack(">HHIH", 1, 1, 30, 4) + A_ANSWER,  # pointer to itself
    ]
    return kinds[i % len(kinds)]()


MODE_KINDS = {
    "garbage": range(0, 6),
    "wrongid": [6],
    "question": [7, 8],
    "notreply": [9],
    "cut": [10, 11, 12],
    "loop": [13],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", action="append", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--mode", required=True,
                    choices=sorted(MODE_KINDS) + ["flood", "late", "tc", "good", "slow"])
    ap.add_argument("--delay", type=float, default=0.6)
    ap.add_argument("--flood", type=int, default=50)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready", help="file to create once listening")
    ap.add_argument("--dump", help="append every datagram received, as a Python literal")
    a = ap.parse_args()

    socks = []
    for addr in a.bind:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.bind((addr, a.port))
        socks.append(s)
    log = open(a.log, "a", buffering=1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.ready:
        open(a.ready, "w").close()
    n = 0
    late = []                        # (when, sock, data, peer)
    while True:
        timeout = max(0.0, late[0][0] - time.monotonic()) if late else None
        r, _, _ = select.select(socks, [], [], timeout)
        now = time.monotonic()
        while late and late[0][0] <= now:
            _, s, data, peer = late.pop(0)
            s.sendto(data, peer)
        for s in r:
            q, peer = s.recvfrom(65536)
            if a.dump:
                with open(a.dump, "a") as d:
                    d.write("%s %d %r\n" % (peer[0], len(q), q[:300]))
            if not is_query(q):
                continue                 # not a query: ignore, like a server
            bad = answered = 0
            if a.mode in MODE_KINDS:
                kinds = list(MODE_KINDS[a.mode])
                s.sendto(bad_kinds(q, kinds[n % len(kinds)]), peer)
                bad = 1
            elif a.mode == "flood":
                small = [k for k in range(14) if k not in (4, 5)]
                for i in range(a.flood):
                    s.sendto(bad_kinds(q, small[(n + i) % len(small)]), peer)
                bad = a.flood
                s.sendto(answer(q), peer)
                answered = 1
            elif a.mode == "tc":
                good = answer(q)
                tc = good[:2] + bytes([good[2] | 0x02]) + good[3:question_end(q)]
                s.sendto(tc, peer)
                answered = 1
            elif a.mode == "slow":
                late.append((time.monotonic() + a.delay, s, answer(q), peer))
                late.sort(key=lambda x: x[0])
                answered = 1
            else:
                s.sendto(answer(q), peer)
                answered = 1
                if a.mode == "late":
                    late.append((time.monotonic() + 0.03, s, answer(q), peer))
            n += 1
            log.write("q peer=%s id=%d bad=%d answered=%d\n" %
                      (peer[0], struct.unpack(">H", q[:2])[0], bad, answered))


if __name__ == "__main__":
    main()
