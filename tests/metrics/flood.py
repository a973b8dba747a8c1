#!/usr/bin/env python3
"""tests/metrics/flood.py - the scrapes that must still be served while
tests/metrics/flood.c floods the tester's socket (issue 21 item 8).

  flood.py scrape URL COUNT TIMEOUT  COUNT scrapes one after another, each
      given TIMEOUT seconds; prints "served K of COUNT unexpected=U" (U:
      unexpected_replies_total from the last page served).
"""
import re
import sys
import time
import urllib.request


def scrape(url, count, timeout):
    served, unexpected = 0, "?"
    for _ in range(count):
        try:
            body = urllib.request.urlopen(url, timeout=timeout).read().decode()
        except Exception:                 # a scrape not served in time
            continue
        served += 1
        m = re.search(r"^dns_blackhole_tester_unexpected_replies_total\{[^}]*\} (\d+)$", body, re.M)
        unexpected = m.group(1) if m else "?"
    print("served %d of %d unexpected=%s" % (served, count, unexpected))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["scrape"]:
        scrape(a[1], int(a[2]), float(a[3]))
    else:
        sys.exit(__doc__)
