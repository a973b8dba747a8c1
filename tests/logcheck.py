#!/usr/bin/env python3
"""logcheck.py - reads the tester's logfmt lines and answers one question.

  logcheck.py count LOG EVENT [KEY=VALUE...]      lines of EVENT (with those fields)
  logcheck.py after LOG EVENT EPOCH_MS [K=V...]    lines of EVENT stamped after EPOCH_MS
  logcheck.py windows LOG WINDOWS_LOG SLACK_MS     blackholed queries' send times against restart windows
  logcheck.py gap LOG EVENT_A EVENT_B              ms from first EVENT_A to first EVENT_B after it
  logcheck.py field LOG EVENT KEY                  KEY of the first EVENT line

Timestamps are the lines' own ts= (RFC 3339, UTC, ms); windows come from
the lab's windows.log ("open <epoch ms> close <epoch ms>" per line).
"""
import datetime
import re
import sys

PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse(path):
    out = []
    for line in open(path, errors="replace"):
        if not line.startswith("ts="):
            continue
        f = {}
        for k, v in PAIR.findall(line):
            f[k] = v[1:-1] if v.startswith('"') else v
        ts = datetime.datetime.strptime(f["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        f["_ms"] = int(ts.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        out.append(f)
    return out


def select(lines, event, conds):
    want = dict(c.split("=", 1) for c in conds)
    return [l for l in lines if l.get("event") == event and all(l.get(k) == v for k, v in want.items())]


def sent_at(lines, i):
    """When the query that line i (a blackhole) is about was sent: the
    ts of the failure line that ends that query, less its waited_ms. A
    busy machine may name a blackhole late; when the query left is what
    the restart window decides. Without such a line (the tester stopped
    first), the blackhole line's own ts, the latest it can have been."""
    for l in lines[i + 1:]:
        if l.get("event") in ("timeout", "refused") and "waited_ms" in l:
            return l["_ms"] - float(l["waited_ms"])
        if l.get("event") == "blackhole":
            break
    return lines[i]["_ms"]


def windows(log, wlog, slack):
    lines = parse(log)
    wins = []
    for w in open(wlog):
        p = w.split()
        wins.append((int(p[1]), int(p[3])))
    bh = [sent_at(lines, i) for i, l in enumerate(lines) if l.get("event") == "blackhole"]
    false = [t for t in bh if not any(o <= t <= c + slack for o, c in wins)]
    missed = [i for i, (o, c) in enumerate(wins) if not any(o <= t <= c + slack for t in bh)]
    print(f"windows={len(wins)} blackholes={len(bh)} outside_windows={len(false)} windows_without_report={len(missed)}")
    for t in false:
        print(f"  blackhole at {t} outside every window")
    for i in missed:
        print(f"  window {i} {wins[i]} has no report")
    return 0 if not false and not missed else 1


def main(a):
    cmd = a[0]
    if cmd == "count":
        print(len(select(parse(a[1]), a[2], a[3:])))
    elif cmd == "after":
        print(len([l for l in select(parse(a[1]), a[2], a[4:]) if l["_ms"] > int(a[3])]))
    elif cmd == "windows":
        return windows(a[1], a[2], int(a[3]))
    elif cmd == "gap":
        lines = parse(a[1])
        first = next((l for l in lines if l.get("event") == a[2]), None)
        if not first:
            print("none")
            return 1
        later = next((l for l in lines if l.get("event") == a[3] and l["_ms"] >= first["_ms"]), None)
        print(later["_ms"] - first["_ms"] if later else "none")
        return 0 if later else 1
    elif cmd == "field":
        l = select(parse(a[1]), a[2], [])
        print(l[0].get(a[3], "") if l else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
