#!/usr/bin/env python3
"""http_capture.py PORT DIR NAME... - listen on 127.0.0.1:PORT, and for each
NAME in turn accept one connection, record what the client sends (up to
the end of its headers, plus a Content-Length body; or whatever came
within a second, for clients that never send a blank line) to DIR/NAME,
answer 200 with an empty body and close. fuzz_http seeds."""
import os
import socket
import sys

port, out, names = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
print("ready", flush=True)
for name in names:
    c, _ = ls.accept()
    c.settimeout(1.0)
    data = b""
    try:
        while True:
            end = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1)
            if end >= 0:
                head = data[:end].decode("latin-1").lower()
                want = 0
                for line in head.splitlines():
                    if line.startswith("content-length:"):
                        want = int(line.split(":", 1)[1])
                body = len(data) - end - (4 if data[end:end + 4] == b"\r\n\r\n" else 2)
                if body >= want:
                    break
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    c.close()
