#!/usr/bin/env python3
"""ct_dump.py DIR - dump the conntrack table of this network namespace the
way nl.c does (one NETLINK_NETFILTER socket, IPCTNL_MSG_CT_GET with
NLM_F_DUMP) and write every message the kernel sends, nlmsghdr through
nlmsg_len, to DIR/ct-NN (the closing NLMSG_DONE too). fuzz_ct seeds."""
import os
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET = 1, 1
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3

out = sys.argv[1]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.bind((0, 0))
# nlmsghdr (len, type, flags, seq, pid) + nfgenmsg (AF_UNSPEC: every
# family, NFNETLINK_V0, res_id 0)
req = struct.pack("=IHHII", 20, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET,
                  NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + struct.pack("=BBH", 0, 0, 0)
s.send(req)
n, done = 0, False
while not done:
    buf = s.recv(65536)
    off = 0
    while off + 16 <= len(buf):
        mlen, mtype = struct.unpack_from("=IH", buf, off)
        if mlen < 16 or off + mlen > len(buf):
            sys.exit("ct_dump: bad message length %d" % mlen)
        n += 1
        with open(os.path.join(out, "ct-%02d" % n), "wb") as f:
            f.write(buf[off:off + mlen])
        if mtype == NLMSG_ERROR:
            err = struct.unpack_from("=i", buf, off + 16)[0]
            if err:
                sys.exit("ct_dump: kernel error %d" % err)
        if mtype == NLMSG_DONE:
            done = True
        off += (mlen + 3) & ~3
print("ct_dump: %d messages" % n)
