#!/usr/bin/env python3
"""oracle.py - the blackholed set, computed from `conntrack -L -o id` alone,
and the set `scan` listed, in one comparable form: one key a line,
"proto src sport dst dport zone id", sorted.

  oracle.py expect CT_FILE PROTO VIP[:PORT]...   what scan must list
  oracle.py listed SCAN_LOG [EVENT]              what scan listed (EVENT
                                                 defaults to blackholed; logfmt
                                                 or json lines)
  oracle.py fixed PRE_CT POST_CT EXPECT_KEYS     after --fix: every expected
                                                 entry gone (that id), every
                                                 other PRE entry still there,
                                                 same id; prints what is wrong

Blackholed, independently of scan's code: the original tuple's protocol is
PROTO and its destination address and port are one of the VIPs; the entry
is [UNREPLIED]; and the reply tuple comes from the VIP itself (reply src ==
original dst, reply sport == original dport), i.e. no DNAT. Addresses are
compared as addresses (ipaddress), not as text.
"""
import ipaddress
import json
import re
import sys

PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_ct(line):
    """One conntrack-tools line -> dict, or None."""
    t = line.split()
    if len(t) < 3 or t[0] not in ("udp", "tcp"):
        return None
    tup = []                       # [(src, dst, sport, dport), (reply...)]
    cur = {}
    e = {"proto": t[0], "unreplied": "[UNREPLIED]" in t, "zone": "0", "id": "?"}
    for tok in t[1:]:
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        if k in ("src", "dst", "sport", "dport"):
            if k in cur:           # a second src= starts the reply tuple
                tup.append(cur)
                cur = {}
            cur[k] = v
        elif k in ("zone", "id"):
            e[k] = v
    tup.append(cur)
    if len(tup) < 2 or any(len(x) != 4 for x in tup[:2]):
        return None
    o, r = tup[0], tup[1]
    e["orig"] = (ipaddress.ip_address(o["src"]), ipaddress.ip_address(o["dst"]), int(o["sport"]), int(o["dport"]))
    e["reply"] = (ipaddress.ip_address(r["src"]), ipaddress.ip_address(r["dst"]), int(r["sport"]), int(r["dport"]))
    return e


def key(e):
    s, d, sp, dp = e["orig"]
    return "%s %s %d %s %d zone=%s id=%s" % (e["proto"], s, sp, d, dp, e["zone"], e["id"])


def vip(s):
    """10.0.0.10, 10.0.0.10:53, [fd00::a], [fd00::a]:53 -> (address, port)"""
    m = re.fullmatch(r"\[([^]]+)\](?::(\d+))?", s)
    if m:
        return ipaddress.ip_address(m.group(1)), int(m.group(2) or 53)
    a, _, p = s.partition(":")
    return ipaddress.ip_address(a), int(p or 53)


def read_ct(path):
    return [e for e in (parse_ct(l) for l in open(path)) if e]


def expect(ct, proto, vips):
    want = {vip(v) for v in vips}
    out = []
    for e in read_ct(ct):
        s, d, sp, dp = e["orig"]
        rs, _, rsp, _ = e["reply"]
        if e["proto"] == proto and (d, dp) in want and e["unreplied"] and rs == d and rsp == dp:
            out.append(key(e))
    return out


def listed(log, event):
    out = []
    for line in open(log):
        line = line.strip()
        if line.startswith("{"):
            f = json.loads(line)
        elif line.startswith("ts="):
            f = {k: (v[1:-1] if v.startswith('"') else v) for k, v in PAIR.findall(line)}
        else:
            continue
        if f.get("event") != event:
            continue
        e = parse_ct(f["entry"])
        e["id"] = str(f["id"])
        out.append(key(e))
    return out


def fixed(pre, post, keys):
    gone = {l.strip() for l in open(keys) if l.strip()}
    now = {key(e) for e in read_ct(post)}
    bad = 0
    for e in read_ct(pre):
        k = key(e)
        if k in gone and k in now:
            print("not deleted: " + k)
            bad = 1
        elif k not in gone and k not in now:
            print("deleted but not blackholed: " + k)
            bad = 1
    return bad


def main(a):
    if a[0] == "expect":
        out = expect(a[1], a[2], a[3:])
    elif a[0] == "listed":
        out = listed(a[1], a[2] if len(a) > 2 else "blackholed")
    elif a[0] == "fixed":
        return fixed(a[1], a[2], a[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    # duplicates are kept: a set listed twice must not compare equal
    if out:
        print("\n".join(sorted(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
