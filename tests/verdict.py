#!/usr/bin/env python3
"""verdict.py - holds the tester's verdicts against the restart windows the
test itself made (t_verdict.sh).

  verdict.py windows LOG WINDOWS INTERVAL_MS [--heal]
      WINDOWS has one line per window: "open O in I restore R close C"
      (epoch ms): O just before the window's ruleset went in, I just
      after it was in, R just before the full one went back, C just after
      it was in. Checks, and prints one line saying what it found:
        - one event=nat_missing per window, stamped inside it [O, C];
        - one event=nat_restored per window, after R and before the next
          window, stuck=true, window_ms within one interval (+100 ms for
          the scheduler) of the window the script made: at least R - I
          (the rules surely missing), at most C - O;
        - every event=blackhole stamped after R of its window, never
          while the rules were absent, proof= DNAT'd, one per window
          (with --heal each is healed, so each window proves anew);
        - no timeout called cause=blackhole while the rules were absent,
          and cause=nat_missing only for queries sent in a window.
  verdict.py probes LOG CONNTRACK_L
      The probe ports (event=probe sport=, with -v) against a `conntrack
      -L` taken after the run: no entry of a probe's flow is left.
"""
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from logcheck import parse  # noqa: E402


def dnatd(entry):
    """An entry as conntrack prints it is DNAT'd when its reply comes from
    somewhere other than where the original went (either family)."""
    src = re.findall(r"\bsrc=(\S+)", entry)
    dst = re.findall(r"\bdst=(\S+)", entry)
    return len(src) >= 2 and len(dst) >= 1 and src[1] != dst[0]


def load_windows(path):
    """(O, R, C, I) per line: the window's four times, by name."""
    out = []
    for line in open(path):
        p = line.split()
        t = {p[k]: int(p[k + 1]) for k in range(0, len(p) - 1, 2)}
        out.append((t["open"], t["restore"], t["close"], t["in"]))
    return out


def which(wins, t, lo, hi):
    """Index of the window whose [lo(w), hi(w)] holds t, or None."""
    for i, w in enumerate(wins):
        if lo(i, w) <= t <= hi(i, w):
            return i
    return None


def check_windows(log, wpath, interval, heal):
    lines = parse(log)
    wins = load_windows(wpath)
    bad = []
    nxt = lambda i: wins[i + 1][0] if i + 1 < len(wins) else 1 << 62
    miss = [l for l in lines if l["event"] == "nat_missing"]
    hit = [which(wins, l["_ms"], lambda i, w: w[0] - 1, lambda i, w: w[2] + 1) for l in miss]
    if None in hit or sorted(hit) != list(range(len(wins))):
        bad.append(f"nat_missing in windows {hit}, want one in each of {len(wins)}")
    rest = [l for l in lines if l["event"] == "nat_restored"]
    errs = []
    for l in rest:
        i = which(wins, l["_ms"], lambda i, w: w[1] - 1, lambda i, w: nxt(i))
        if i is None:
            bad.append(f"nat_restored at {l['_ms']} not after a window's restore")
            continue
        o, r, c, ii = wins[i]
        wm = int(l["window_ms"])
        lo, hi = (r - ii) - interval - 100, (c - o) + interval + 100
        errs.append(wm - (c - o))
        if not lo <= wm <= hi or l.get("stuck") != "true":
            bad.append(f"window {i}: window_ms={wm} stuck={l.get('stuck')}, script's {r - ii}-{c - o} ms")
    if len(rest) != len(wins):
        bad.append(f"{len(rest)} nat_restored for {len(wins)} windows")
    bh = [l for l in lines if l["event"] == "blackhole"]
    for l in bh:
        if which(wins, l["_ms"], lambda i, w: w[0], lambda i, w: w[1] - 1) is not None:
            bad.append(f"blackhole claimed at {l['_ms']} while the rules were absent")
        if not dnatd(l.get("proof", "")):
            bad.append(f"blackhole proof is not DNAT'd: {l.get('proof')}")
    want_bh = len(wins) if heal else 1
    if len(bh) != want_bh:
        bad.append(f"{len(bh)} blackholes, want {want_bh}")
    for l in lines:
        if l["event"] != "timeout":
            continue
        sent = l["_ms"] - float(l.get("waited_ms", 0))
        # classified (the line's ts) while the rules were absent
        absent = which(wins, l["_ms"], lambda i, w: w[0], lambda i, w: w[1] - 1) is not None
        inside = which(wins, sent, lambda i, w: w[0] - 1, lambda i, w: w[2] + 1) is not None
        if l.get("cause") == "blackhole" and absent:
            bad.append(f"timeout cause=blackhole at {l['_ms']}, rules absent")
        if l.get("cause") == "nat_missing" and not inside:
            bad.append(f"timeout cause=nat_missing for a query sent at {sent:.0f}, outside every window")
    # proven by the first query sent after the rules were back: no later
    # query is still put down to the missing rule (the wall-clock delay,
    # one interval plus the look delay at most, is reported, not judged)
    lat = []
    for i, (o, r, c, _) in enumerate(wins):
        after = [l for l in lines if l["event"] == "timeout" and
                 c + 2 < l["_ms"] - float(l.get("waited_ms", 0)) < nxt(i)]
        late = [l for l in after if l.get("cause") == "nat_missing"]
        if late:
            bad.append(f"a query sent {late[0]['_ms'] - c:.0f} ms after the rules were back still cause=nat_missing")
        first = [l["_ms"] for l in bh if l["_ms"] >= r]
        if first:
            lat.append(first[0] - c)
    worst = max((abs(e) for e in errs), default=0)
    print(f"windows={len(wins)} nat_missing={len(miss)} nat_restored={len(rest)} blackholes={len(bh)} "
          f"window_ms_error_max={worst}ms blackhole_after_rules_max={max(lat, default=0)}ms")
    for b in bad[:6]:
        print("  " + b)
    return 1 if bad else 0


def check_probes(log, ctl):
    ports = {l["sport"] for l in parse(log) if l["event"] == "probe" and "sport" in l}
    left = []
    for line in open(ctl):
        if not line.startswith("udp"):
            continue
        for p in ports:
            if re.search(rf"sport={p} dport=53 |sport=53 dport={p}( |$)", line):
                left.append(line.strip())
    print(f"probes={len(ports)} left_in_conntrack={len(left)}")
    for l in left[:3]:
        print("  " + l)
    return 1 if left or not ports else 0


def main(a):
    if a[0] == "windows":
        return check_windows(a[1], a[2], int(a[3]), "--heal" in a[4:])
    if a[0] == "probes":
        return check_probes(a[1], a[2])
    print("verdict.py windows|probes ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
