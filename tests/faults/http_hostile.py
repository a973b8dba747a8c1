#!/usr/bin/env python3
"""http_hostile.py - abuse the tester's --metrics-addr endpoint, then scrape.

  http_hostile.py HOST PORT [ROUNDS]

Each round sends every request below on its own connection, the way a
broken or hostile client would, then checks that a plain GET /metrics
still gets a 200 with the metrics in it. One line per request on stdout:

  <name> <status or what happened>

and a last line "ok" (exit 0) or "bad: <why>" (exit 1). What it asserts
is only what README's Metrics section promises: 200 for GET/HEAD
/metrics, 404 other paths, 405 other methods, 400 malformed, 431 beyond
2 KiB, 503 beyond 8 connections, a slow client dropped after 2 s; and
that the server is still there and answering afterwards.
Stdlib only.
"""
import socket
import sys
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
FAM = socket.AF_INET6 if ":" in HOST else socket.AF_INET


def conn():
    s = socket.socket(FAM, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((HOST, PORT))
    return s


def exchange(data, half_close=True):
    """Sends data, reads the whole answer; returns the status or a word."""
    s = conn()
    try:
        if data:
            s.sendall(data)
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass                      # already reset: read what came
        buf = b""
        while True:
            try:
                c = s.recv(65536)
            except OSError:
                return "reset" if not buf else status(buf)
            if not c:
                break
            buf += c
        return status(buf) if buf else "closed"
    finally:
        s.close()


def status(buf):
    line = buf.split(b"\r\n", 1)[0].split()
    return line[1].decode() if len(line) > 1 else "garbled"


CASES = [
    ("get", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
    ("head", b"HEAD /metrics HTTP/1.0\r\n\r\n", "200"),
    ("query-string", b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", "200"),
    ("lf-only", b"GET /metrics HTTP/1.1\n\n", "200"),
    ("other-path", b"GET /metricsx HTTP/1.1\r\n\r\n", "404"),
    ("root", b"GET / HTTP/1.1\r\n\r\n", "404"),
    ("post", b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "405"),
    ("lowercase-method", b"get /metrics HTTP/1.1\r\n\r\n", "400"),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400"),
    ("http09", b"GET /metrics\r\n\r\n", "400"),
    ("nul-in-target", b"GET /met\x00rics HTTP/1.1\r\n\r\n", "400"),
    ("ctl-in-target", b"GET /metrics\x7f HTTP/1.1\r\n\r\n", "400"),
    ("no-request-line", b"\r\n\r\n", "400"),
    ("spaces", b"   \r\n\r\n", "400"),
    ("binary", bytes(range(256)) + b"\r\n\r\n", "400"),
    # Beyond 2 KiB the server answers 431 and closes with our excess
    # unread, which TCP turns into a reset that may beat the answer.
    ("huge-headers", b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 3000 + b"\r\n\r\n", "431|reset"),
    ("huge-no-newline", b"A" * 5000, "431|reset"),
    ("empty-then-close", b"", "closed"),
]


def one_round():
    bad = []
    for name, data, want in CASES:
        try:
            got = exchange(data)
        except (BrokenPipeError, ConnectionResetError):
            got = "reset"
        except OSError as e:
            got = "error:" + str(e)
        print(name, got)
        if got not in want.split("|"):
            bad.append("%s: got %s, want %s" % (name, got, want))
    # A client that connects and resets at once, one that sends half a
    # request and resets, one that asks and never reads (closes with the
    # answer unread): none may hurt the server.
    for name, data in (("reset-at-once", b""), ("reset-mid-request", b"GET /met"),
                       ("never-reads", b"GET /metrics HTTP/1.1\r\n\r\n")):
        s = conn()
        if data:
            s.sendall(data)
        if name == "never-reads":
            time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                         # linger 0: RST
        print(name, "sent")
    # Eight slow clients hold every slot: the ninth gets 503; after the
    # 2 s deadline the slots are free again and a GET gets 200. (First a
    # moment for the server to see the resets above: it accepts before it
    # reads, so a reset still queued would hold a slot.)
    time.sleep(0.2)
    slow = [conn() for _ in range(8)]
    for s in slow:
        s.sendall(b"GET /metr")
    time.sleep(0.3)
    got = exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    print("ninth-connection", got)
    if got != "503":
        bad.append("ninth connection: got %s, want 503" % got)
    time.sleep(3.0)                       # the 2 s deadline, and a margin
    dropped = 0
    for s in slow:
        try:
            s.settimeout(0.5)
            dropped += s.recv(100) == b""
        except OSError:
            dropped += 1
        s.close()
    print("slow-clients-dropped", dropped)
    if dropped != 8:
        bad.append("slow clients dropped after the deadline: %d of 8" % dropped)
    got = exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    print("after-slow", got)
    if got != "200":
        bad.append("GET after the slow clients: got %s" % got)
    return bad


def main():
    bad = []
    for _ in range(ROUNDS):
        bad += one_round()
    # The body of a last scrape must be the metrics.
    s = conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    body = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        body += c
    s.close()
    if b"dns_blackhole_tester_queries_sent_total" not in body:
        bad.append("last scrape has no queries_sent_total")
    print("ok" if not bad else "bad: " + "; ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
