#!/usr/bin/env python3
"""ct_capture.py - the kernel's own ctnetlink messages, byte for byte.

    ct_capture.py events OUT.bin --ready FILE --stop FILE
        joins the NEW and DESTROY conntrack event groups and appends every
        message received to OUT.bin until FILE --stop exists
    ct_capture.py dump OUT.bin
        one IPCTNL_MSG_CT_GET dump of the table (both families): every
        reply message, NLMSG_DONE included, appended to OUT.bin

Run inside a lab namespace (tests/ct_capture.sh does). Nothing is parsed
here: the bytes are what the C unit tests read (tests/ct_data_test.c).
"""
import os
import select
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_NEW = 1
NFNLGRP_CONNTRACK_DESTROY = 3
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def events(out, ready, stop):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, (1 << (NFNLGRP_CONNTRACK_NEW - 1)) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1))))
    open(ready, "w").close()
    n = 0
    with open(out, "ab") as f:
        while True:
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                f.write(pad4(s.recv(1 << 16)))
                n += 1
            elif os.path.exists(stop):
                break
    print("events: %d messages" % n, file=sys.stderr)


def dump(out):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    body = struct.pack("BBH", socket.AF_UNSPEC, 0, 0)   # nfgenmsg
    hdr = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
                      NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    s.send(hdr + body)
    n = 0
    with open(out, "ab") as f:
        while True:
            buf = s.recv(1 << 16)
            f.write(pad4(buf))
            off = 0
            while off + 16 <= len(buf):
                ln, typ = struct.unpack_from("=IH", buf, off)
                if typ == NLMSG_ERROR:
                    sys.exit("dump: NLMSG_ERROR %d" % struct.unpack_from("=i", buf, off + 16))
                if typ == NLMSG_DONE:
                    print("dump: %d messages" % n, file=sys.stderr)
                    return
                n += 1
                off += (ln + 3) & ~3


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "events" and sys.argv[3] == "--ready" and sys.argv[5] == "--stop":
        events(sys.argv[2], sys.argv[4], sys.argv[6])
    elif len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        sys.exit(__doc__)
