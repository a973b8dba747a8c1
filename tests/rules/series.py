#!/usr/bin/env python3
"""series.py - turns captured scrapes (scrape_loop.py) into promtool unit
tests, with the expected alerts written by hand in tests/rules/expect.yaml.

  series.py rules RULES OUT
      RULES with each alert's description and runbook annotations left
      out (the tests compare labels and summary; promtool check rules
      checks every template): what the generated tests load.
  series.py build TEMPLATE CAPTURE_DIR RULES OUT_DIR
      One promtool test file per case of TEMPLATE: OUT_DIR/CASE.yaml.
      Prints one line per case: "CASE FILE series=N steps=N scrapes=N failed=N".

The series are what a Prometheus scrape job would have stored: the scrape
at or before each step of the test's interval (the latest one; the
capture scrapes every second, Prometheus every interval), each series
with job= and instance= (the address scraped) added, and up{job,instance}
1 for a scrape that answered 200 and 0 for one that did not. When a
scrape fails, or a series is missing from a scrape, the series gets a
staleness marker ("stale"), as Prometheus writes, then no samples ("_").

In the template's expectations (the spec), a summary may hold
<sample:METRIC>: the value of that series of the case's node at that
step, as Prometheus' {{ $value }} prints it. At each step listed, every
alert of RULES is asserted: those not listed must not fire.
"""
import json
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "metrics"))
from scrape import parse_metrics  # noqa: E402  (t_metrics' exposition parser)


def parse_body(body):
    """{(name, ((label, value), ...)): float} of a text exposition."""
    return {(name, tuple(labels.items())): v for name, labels, v in parse_metrics(body)}


def series_name(name, labels):
    return name + "{" + ",".join('%s="%s"' % kv for kv in labels) + "}"


def fmt(v):
    """A value as Go's %v prints a float64 (shortest form), e.g. 6, 69.123."""
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    return repr(v)


def seconds(s):
    m = re.fullmatch(r"(\d+)(ms|s|m)", str(s))
    if not m:
        raise ValueError("duration %r" % s)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def load_capture(path, targets):
    recs = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["target"] in targets:
                recs.append(r)
    recs.sort(key=lambda r: r["t"])
    return recs


def convert(recs, job, interval, end):
    """[(series string, [values])], per step the record used, and counts."""
    steps = int(end // interval) + 1
    by_target = {}
    for r in recs:
        by_target.setdefault(r["target"], []).append(r)
    out, used = [], {}
    for target, rs in sorted(by_target.items()):
        inst = (("job", job), ("instance", rs[0]["addr"]))
        cols, up, present_prev = {}, [], set()
        j = -1
        for k in range(steps):
            t = k * interval
            while j + 1 < len(rs) and rs[j + 1]["t"] <= t:
                j += 1
            rec = rs[j] if j >= 0 else None
            used.setdefault(target, []).append(rec)
            now = {}
            if rec is None:
                up.append("_")
            elif rec["ok"]:
                up.append("1")
                now = parse_body(rec["body"])
            else:
                up.append("0")
            for key in now:
                if key not in cols:
                    cols[key] = ["_"] * k
            for key, col in cols.items():
                if key in now:
                    col.append(fmt(now[key]))
                else:
                    col.append("stale" if key in present_prev else "_")
            present_prev = set(now)
        out.append((series_name("up", inst), up))
        for (name, labels), col in sorted(cols.items()):
            out.append((series_name(name, labels + inst), col))
    return out, used


def strip_rules(src, dst):
    doc = yaml.safe_load(open(src))
    for g in doc["groups"]:
        for r in g["rules"]:
            for k in ("description", "runbook"):
                r.get("annotations", {}).pop(k, None)
    with open(dst, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)
    return [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def sample_at(series, name, node, step):
    """The value the case's node's METRIC series holds at step (the latest
    real sample at or before it)."""
    hits = [vals for s, vals in series if s.startswith(name + "{") and ('node="%s"' % node) in s]
    if len(hits) != 1:
        raise ValueError("<sample:%s>: %d series for node %s" % (name, len(hits), node))
    for v in reversed(hits[0][: step + 1]):
        if v not in ("_", "stale"):
            return fmt(float(v))
    raise ValueError("<sample:%s>: no sample at step %d" % (name, step))


def build(template, capdir, rules, outdir):
    tpl = yaml.safe_load(open(template))
    alerts = strip_rules(rules, os.path.join(outdir, "rules.yaml"))
    job, interval = tpl["job"], seconds(tpl["interval"])
    for case in tpl["cases"]:
        recs = load_capture(os.path.join(capdir, case["capture"] + ".jsonl"), case["targets"])
        series, used = convert(recs, job, interval, case["end"])
        tests = []
        for exp in case["expect"]:
            at = exp["at"]
            step = int(at // interval)
            firing = exp.get("firing") or {}
            unknown = set(firing) - set(alerts)
            if unknown:
                raise ValueError("%s: alerts not in the rules: %s" % (case["name"], sorted(unknown)))
            for a in alerts:
                want = []
                for e in firing.get(a) or []:
                    summ = re.sub(r"<sample:([a-z_]+)>",
                                  lambda m: sample_at(series, m.group(1), e["labels"].get("node", ""), step),
                                  e["summary"])
                    want.append({"exp_labels": dict(e["labels"]), "exp_annotations": {"summary": summ}})
                tests.append({"eval_time": "%ds" % at, "alertname": a, "exp_alerts": want})
        doc = {
            "rule_files": ["rules.yaml"],
            "evaluation_interval": tpl["interval"],
            "tests": [{
                "interval": tpl["interval"],
                "input_series": [{"series": s, "values": " ".join(v)} for s, v in series],
                "alert_rule_test": tests,
            }],
        }
        path = os.path.join(outdir, case["name"] + ".yaml")
        with open(path, "w") as f:
            f.write("# generated by tests/rules/series.py from %s and %s.jsonl\n" % (template, case["capture"]))
            yaml.safe_dump(doc, f, sort_keys=False, width=1000)
        n = sum(len(rs) for rs in used.values())
        failed = sum(1 for rs in used.values() for r in rs if r is not None and not r["ok"])
        print("%s %s series=%d steps=%d asserts=%d scrapes_used=%d failed=%d" % (
            case["name"], path, len(series), len(series[0][1]), len(tests), n, failed))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "rules":
        strip_rules(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "build":
        build(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
