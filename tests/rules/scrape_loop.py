#!/usr/bin/env python3
"""scrape_loop.py - scrapes testers' /metrics on a fixed grid, like a
Prometheus scrape job, and records every scrape (t_rules.sh's capture).

  scrape_loop.py --t0-ms EPOCH_MS --period S --timeout S --out FILE \\
      --stop-file FILE NAME=HOST:PORT...

Every target is scraped at t0 + k * period (one thread each, so a target
that hangs never delays another). One JSON object per line in FILE:
  {"target": NAME, "addr": "HOST:PORT", "t": seconds since t0 (the
   scrape's start), "ok": true, "body": "..."}            HTTP 200
  {"target": ..., "t": ..., "ok": false, "err": "..."}    anything else
(refused, timed out, not 200): what Prometheus records as up=0. Runs
until STOP_FILE exists. Stdlib only.
"""
import argparse
import json
import os
import threading
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--t0-ms", type=int, required=True)
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    out = open(a.out, "a")
    lock = threading.Lock()
    t0 = a.t0_ms / 1000.0

    def loop(name, addr):
        k = 0
        while not os.path.exists(a.stop_file):
            due = t0 + k * a.period
            k += 1
            now = time.time()
            if now < due:
                time.sleep(due - now)
            elif now - due > a.period:
                continue          # behind: skip missed slots, never burst
            t = time.time() - t0
            rec = {"target": name, "addr": addr, "t": round(t, 3)}
            try:
                with urllib.request.urlopen("http://%s/metrics" % addr, timeout=a.timeout) as r:
                    body = r.read().decode()
                    rec.update(ok=(r.status == 200), body=body)
            except Exception as e:  # noqa: BLE001 - any failure is up=0
                rec.update(ok=False, err=type(e).__name__ + ": " + str(e)[:100])
            with lock:
                out.write(json.dumps(rec) + "\n")
                out.flush()

    threads = []
    for spec in a.targets:
        name, addr = spec.split("=", 1)
        th = threading.Thread(target=loop, args=(name, addr), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join()


if __name__ == "__main__":
    main()
