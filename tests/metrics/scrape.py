#!/usr/bin/env python3
"""scrape.py - raw-socket HTTP clients for the tester's /metrics server, and
the checks t_metrics.sh needs. Stdlib only.

  scrape.py get URL OUT                    GET: body to OUT, status line to stdout
  scrape.py consistent URL LOG STATE OUT   scrape once and compare every series
                                         with what LOG says at that moment;
                                         STATE: blackholed | healed | healthy
  scrape.py hostile HOST PORT              malformed, oversized, slow and
                                         concurrent requests; one line each:
                                         "ok NAME: detail" or "bad NAME: detail"
  scrape.py ticks LOG FROM_MS TO_MS IV_MS  send times of the queries (reply
                                         ts - rtt_ms) between FROM and TO:
                                         largest gap, consecutive seq
"""
import re
import socket
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), ".."))
from logcheck import parse  # noqa: E402

M = "dns_blackhole_tester_"


def split_url(url):
    m = re.fullmatch(r"http://(\[[^]]+\]|[^:/]+):(\d+)(/.*)?", url)
    host = m.group(1).strip("[]")
    return host, int(m.group(2)), m.group(3) or "/"


def connect(host, port, timeout=5.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def read_all(s):
    """Everything until EOF. A reset after data is reported, not raised."""
    data, err = b"", None
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            err = "timeout"
            break
        except ConnectionResetError:
            err = "reset"
            break
        if not b:
            break
        data += b
    return data, err


def parse_response(data):
    """(status, headers dict lower-case, body) or (None, {}, data)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, data
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
    if not m:
        return None, {}, data
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr[k.strip().lower()] = v.strip()
    return int(m.group(1)), hdr, body


def request(host, port, raw, timeout=5.0):
    """Send raw bytes, read to EOF: (status, headers, body, err, seconds)."""
    t = time.monotonic()
    s = connect(host, port, timeout)
    try:
        s.sendall(raw)
        data, err = read_all(s)
    finally:
        s.close()
    st, hdr, body = parse_response(data)
    return st, hdr, body, err, time.monotonic() - t


# ---- metrics text ---------------------------------------------------

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {labels}, value)]"""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        if not m:
            raise ValueError("not a series line: %r" % line)
        out.append((m.group(1), dict(LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def one(series, name, **want):
    v = [x[2] for x in series if x[0] == M + name and all(x[1].get(k) == w for k, w in want.items())]
    if len(v) != 1:
        raise KeyError("%s%s: %d series" % (name, want, len(v)))
    return v[0]


# ---- consistent: one scrape against the log -------------------------

def consistent(url, log, state, outfile):
    host, port, path = split_url(url)
    n0 = len(open(log, "rb").read())
    t_req = time.time()
    st, hdr, body, err, _ = request(host, port, ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    n1 = len(open(log, "rb").read())
    open(outfile, "wb").write(body)
    if st != 200:
        print("status %s err %s" % (st, err))
        return 1
    s = parse_metrics(body.decode())
    before, after = log + ".before", log + ".after"
    raw = open(log, "rb").read()
    open(before, "wb").write(raw[:n0])
    open(after, "wb").write(raw[:n1])
    lo, hi = parse(before), parse(after)
    start = [l for l in lo if l["event"] == "start"][0]
    bad = []

    def cnt(lines, ev, **kv):
        return len([l for l in lines if l["event"] == ev and all(l.get(k) == v for k, v in kv.items())])

    def between(name, got, ev, extra=0, **kv):
        a, b = cnt(lo, ev, **kv), cnt(hi, ev, **kv) + extra
        ok = a <= got <= b
        if not ok:
            bad.append("%s=%g, log says %d..%d" % (name, got, a, b))
        return "%s=%g" % (name, got)

    # every series but build_info carries the start line's server and src
    for name, lab, _ in s:
        if name == M + "build_info":
            continue
        if lab.get("server") != start["server"] or lab.get("src") != start["src"]:
            bad.append("%s labels %s, start says server=%s src=%s" % (name, lab, start["server"], start["src"]))
            break
    out = []
    out.append(between("answered", one(s, "queries_answered_total"), "reply"))
    fails = [l for l in lo if l["event"] in ("reply", "timeout", "refused", "send_failed")]
    fails_hi = [l for l in hi if l["event"] in ("reply", "timeout", "refused", "send_failed")]
    sent = one(s, "queries_sent_total")
    # the query in flight is counted as sent before its line is written
    if not len(fails) <= sent <= len(fails_hi) + 1:
        bad.append("sent=%g, log has %d..%d finished queries" % (sent, len(fails), len(fails_hi)))
    out.append("sent=%g" % sent)
    for c in ("blackhole", "no_reply", "no_entry", "unknown", "nat_missing", "gone_backend"):
        out.append(between("timeouts{%s}" % c, one(s, "timeouts_total", cause=c), "timeout", cause=c))
    for k in ("no_dnat", "gone_backend"):
        out.append(between("blackholes{%s}" % k, one(s, "blackholes_total", kind=k), "blackhole", kind=k))
    out.append(between("windows", one(s, "restart_windows_total"), "nat_missing"))
    if any(l["event"] == "probe" for l in hi):      # probes are logged with -v
        out.append(between("probes", one(s, "probes_total"), "probe"))
    restored = [l for l in hi if l["event"] == "nat_restored"]
    last_w = one(s, "restart_window_last_seconds")
    if restored and abs(last_w * 1000 - int(restored[-1]["window_ms"])) > 1.5 and \
            len([l for l in lo if l["event"] == "nat_restored"]) == len(restored):
        bad.append("restart_window_last_seconds=%g, log says window_ms=%s" % (last_w, restored[-1]["window_ms"]))
    wc = one(s, "restart_window_seconds_count")
    if not len([l for l in lo if l["event"] == "nat_restored"]) <= wc <= len(restored):
        bad.append("restart_window_seconds_count=%g, log has %d nat_restored" % (wc, len(restored)))
    out.append(between("heals", one(s, "heals_total"), "healed"))
    out.append(between("deletions", one(s, "conntrack_deletions_total"), "conntrack_deleted"))
    out.append(between("refused", one(s, "refused_total"), "refused"))
    out.append(between("send_errors", one(s, "send_errors_total"), "send_failed"))
    out.append(between("unexpected", one(s, "unexpected_replies_total"), "unexpected_reply"))
    # the histogram: cumulative, +Inf == count == answered
    buckets = sorted(((float(l["le"]), v) for n, l, v in s if n == M + "reply_latency_seconds_bucket"))
    if any(b[1] > c[1] for b, c in zip(buckets, buckets[1:])) or buckets[-1][0] != float("inf"):
        bad.append("histogram buckets not cumulative: %s" % buckets)
    hc = one(s, "reply_latency_seconds_count")
    if hc != buckets[-1][1] or hc != one(s, "queries_answered_total"):
        bad.append("histogram count %g, +Inf %g, answered %g" % (hc, buckets[-1][1], one(s, "queries_answered_total")))
    if hc and not one(s, "reply_latency_seconds_sum") > 0:
        bad.append("histogram sum 0 with %g observations" % hc)
    out.append("latency_count=%g" % hc)
    # the state: blackholed gauge, and the outage's age against the log
    g, age = one(s, "blackholed"), one(s, "outage_seconds")
    if state in ("blackholed", "healed"):
        for name, series, kv in (('blackholes_total{kind="no_dnat"}', "blackholes_total", {"kind": "no_dnat"}),
                                 ('timeouts_total{cause="blackhole"}', "timeouts_total", {"cause": "blackhole"})):
            if one(s, series, **kv) < 1:
                bad.append("%s is 0 after a blackhole" % name)
    if state == "healed" and one(s, "heals_total") < 1:
        bad.append("heals_total is 0 after --heal healed")
    last_ok = max([l["_ms"] for l in lo if l["event"] in ("reply", "recovered")] + [0])
    open_fails = [l["_ms"] for l in lo if l["event"] in ("timeout", "refused", "send_failed") and l["_ms"] >= last_ok]
    if state == "blackholed":
        if g != 1:
            bad.append("blackholed=%g during a blackhole" % g)
        if not open_fails:
            bad.append("the log shows no open outage")
        else:
            want = t_req - open_fails[0] / 1000.0
            if not (age > 0 and abs(age - want) < 0.3):
                bad.append("outage_seconds=%g, log says the outage began %.3f s before the scrape" % (age, want))
    else:
        if g != 0 or age != 0:
            bad.append("blackholed=%g outage_seconds=%g while healthy" % (g, age))
    out.append("blackholed=%g outage_seconds=%g" % (g, age))
    if one(s, "build_info", version=start["version"]) != 1:
        bad.append("build_info")
    print(" ".join(out))
    for b in bad:
        print("MISMATCH " + b)
    return 1 if bad else 0


# ---- hostile --------------------------------------------------------

def hostile(host, port):
    res = []

    def say(ok, name, detail):
        res.append(("ok " if ok else "bad ") + name + ": " + detail)
        print(res[-1], flush=True)

    def expect(name, raw, want, check=None):
        try:
            st, hdr, body, err, dt = request(host, port, raw)
        except OSError as e:
            say(False, name, "%s" % e)
            return
        extra = check(hdr, body) if check else None
        ok = st == want and not extra
        cl = hdr.get("content-length")
        if ok and cl is not None and not raw.startswith(b"HEAD") and int(cl) != len(body):
            ok, extra = False, "Content-Length %s but %d bytes" % (cl, len(body))
        say(ok, name, "%s%s%s (%.0f ms)" % (st, " " + extra if extra else "", " then " + err if err else "", dt * 1000))

    def has_metrics(hdr, body):
        if b"dns_blackhole_tester_queries_sent_total{" not in body:
            return "no metrics in body"
        if hdr.get("connection") != "close":
            return "no Connection: close"
        return None

    expect("HTTP/1.0 request without headers -> 200", b"GET /metrics HTTP/1.0\r\n\r\n", 200, has_metrics)
    expect("HTTP/1.1 with Host -> 200", b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 200, has_metrics)
    expect("bare LF line ends -> 200", b"GET /metrics HTTP/1.0\n\n", 200, has_metrics)
    expect("query string -> 200", b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", 200, has_metrics)
    expect("HEAD -> 200, headers only", b"HEAD /metrics HTTP/1.1\r\n\r\n", 200,
           lambda h, b: None if not b and int(h.get("content-length", 0)) > 0 else "body %d bytes, Content-Length %s" % (len(b), h.get("content-length")))
    allow = lambda h, b: None if h.get("allow") == "GET, HEAD" else "Allow: %r" % h.get("allow")
    expect("POST -> 405 with Allow", b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nx=1", 405, allow)
    expect("DELETE -> 405 with Allow", b"DELETE /metrics HTTP/1.1\r\n\r\n", 405, allow)
    for path in (b"/other", b"/", b"/metricsx", b"/metrics/", b"/Metrics"):
        expect("GET %s -> 404" % path.decode(), b"GET " + path + b" HTTP/1.1\r\n\r\n", 404)
    for what, raw in (("no version", b"GET /metrics\r\n\r\n"),
                      ("one word", b"BLAH\r\n\r\n"),
                      ("lower-case method", b"get /metrics HTTP/1.1\r\n\r\n"),
                      ("HTTP/2.0", b"GET /metrics HTTP/2.0\r\n\r\n"),
                      ("HTTP/1.10", b"GET /metrics HTTP/1.10\r\n\r\n"),
                      ("two spaces", b"GET  /metrics HTTP/1.1\r\n\r\n"),
                      ("control byte in target", b"GET /met\x01rics HTTP/1.1\r\n\r\n"),
                      ("DEL byte in target", b"GET /metrics\x7f HTTP/1.1\r\n\r\n"),
                      ("NUL in method", b"G\x00T /metrics HTTP/1.1\r\n\r\n"),
                      ("empty request", b"\r\n\r\n"),
                      ("binary garbage", bytes(range(1, 256)) + b"\r\n\r\n")):
        expect("malformed (%s) -> 400" % what, raw, 400)
    expect("3 KB of headers -> 431", b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 3000 + b"\r\n\r\n", 431)
    expect("2 KiB without a line end -> 431", b"G" * 2100, 431)
    pad = b"GET /metrics HTTP/1.1\r\nX-Pad: %s\r\n\r\n"
    expect("a request of exactly 2048 bytes -> 200", pad % (b"a" * 2014), 200, has_metrics)
    expect("a request of 2049 bytes -> 431", pad % (b"a" * 2015), 431)

    # a whole request one byte at a time, well inside the 2 s: answered
    s = connect(host, port)
    t = time.monotonic()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n":
        s.send(bytes([b]))
        time.sleep(0.02)
    data, err = read_all(s)
    s.close()
    st, hdr, body = parse_response(data)
    say(st == 200 and has_metrics(hdr, body) is None, "request sent one byte per 20 ms -> 200",
        "%s after %.2f s%s" % (st, time.monotonic() - t, " then " + err if err else ""))

    # slowloris: connects and sends nothing; must be dropped after ~2 s
    def slow(name, drip):
        t = time.monotonic()
        s = connect(host, port, 6)
        data, err = b"", None
        try:
            if drip:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
                s.settimeout(0.3)
                while time.monotonic() - t < 5:
                    try:
                        s.send(b"X")
                        b = s.recv(4096)
                        if not b:
                            break
                        data += b
                    except socket.timeout:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        err = "reset"
                        break
            else:
                data, err = read_all(s)
        finally:
            s.close()
        dt = time.monotonic() - t
        # not before the 2 s deadline; after it, by a margin no busy
        # machine needs (a client never dropped is still here at 5 s)
        say(1.8 <= dt <= 4.5 and not data, name, "closed after %.2f s, %d bytes%s" % (dt, len(data), " (" + err + ")" if err else ""))
    slow("silent client (slowloris) dropped after ~2 s, no answer", False)
    slow("client dripping a header byte every 0.3 s dropped after ~2 s", True)

    # 8 silent clients take every slot: a 9th gets 503 at once
    idle = [connect(host, port) for _ in range(8)]
    time.sleep(0.3)
    st, hdr, body, err, dt = request(host, port, b"GET /metrics HTTP/1.1\r\n\r\n")
    # "at once": a queued 9th would wait until the 8 close (never) and
    # time out at 6 s; 1.5 s leaves a busy machine its margin
    say(st == 503 and dt < 1.5, "9th connection while 8 are open -> 503 at once", "%s in %.0f ms%s" % (st, dt * 1000, " then " + err if err else ""))
    for s in idle:
        s.close()
    time.sleep(0.3)
    expect("a slot is free again once they close -> 200", b"GET /metrics HTTP/1.0\r\n\r\n", 200, has_metrics)

    # a client that resets the connection right after its request
    s = connect(host, port)
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    time.sleep(0.2)
    expect("after a client reset its connection -> 200", b"GET /metrics HTTP/1.0\r\n\r\n", 200, has_metrics)

    # 20 concurrent scrapers
    got = [None] * 20
    go = threading.Barrier(20)

    def scraper(i):
        try:
            s = connect(host, port)
            go.wait()
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            data, err = read_all(s)
            s.close()
            got[i] = (parse_response(data)[0], err)
        except OSError as e:
            got[i] = (None, str(e))
    t = time.monotonic()
    th = [threading.Thread(target=scraper, args=(i,)) for i in range(20)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    dt = time.monotonic() - t
    sts = [g[0] for g in got]
    n200, n503 = sts.count(200), sts.count(503)
    errs = [g for g in got if g[0] not in (200, 503)]
    say(n200 >= 1 and n200 + n503 == 20 and dt < 10, "20 concurrent scrapers: each 200 or 503",
        "%d x 200, %d x 503, others %s, %.2f s" % (n200, n503, errs, dt))
    expect("afterwards -> 200", b"GET /metrics HTTP/1.0\r\n\r\n", 200, has_metrics)
    return 0 if all(r.startswith("ok ") for r in res) else 1


# ---- ticks ----------------------------------------------------------

def ticks(log, frm, to, iv):
    lines = [l for l in parse(log) if l["event"] in ("reply", "timeout")]
    sends = [(int(l["seq"]), l["_ms"] - float(l.get("rtt_ms", l.get("waited_ms", 0)))) for l in lines]
    sends = [x for x in sends if frm <= x[1] <= to]
    if len(sends) < 2:
        print("bad: %d queries in the span" % len(sends))
        return 1
    gaps = [b[1] - a[1] for a, b in zip(sends, sends[1:])]
    seqs_ok = all(b[0] == a[0] + 1 for a, b in zip(sends, sends[1:]))
    # distance from the absolute grid through the first send
    dev = max(abs(t - sends[0][1] - (q - sends[0][0]) * iv) for q, t in sends)
    print("queries=%d max_gap_ms=%.0f min_gap_ms=%.0f max_off_grid_ms=%.0f consecutive_seq=%s" %
          (len(sends), max(gaps), min(gaps), dev, seqs_ok))
    # a loop held by one slow client until its 2 s deadline leaves a gap
    # of 20 ticks; 5 is beyond any scheduling delay of a busy machine
    return 0 if seqs_ok and max(gaps) <= 5 * iv else 1


def main(a):
    if a[0] == "get":
        host, port, path = split_url(a[1])
        st, hdr, body, err, _ = request(host, port, ("GET %s HTTP/1.1\r\n\r\n" % path).encode())
        open(a[2], "wb").write(body)
        print(st, err or "")
        return 0 if st == 200 else 1
    if a[0] == "consistent":
        return consistent(a[1], a[2], a[3], a[4])
    if a[0] == "hostile":
        return hostile(a[1], int(a[2]))
    if a[0] == "ticks":
        return ticks(a[1], int(a[2]), int(a[3]), float(a[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
