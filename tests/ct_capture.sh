#!/bin/sh
# tests/ct_capture.sh - captures real ctnetlink messages for the unit
# tests (tests/ct_data_test.c) into tests/data/ct/, with conntrack-tools'
# own view of the same entries at the same moment as the oracle:
#
#   sudo sh tests/ct_capture.sh [DIR]      (default tests/data/ct)
#
# In a lab (tests/lab.sh; nothing outside its namespaces), with
# tests/ct_capture.py and `conntrack -E -o id` both listening to the NEW
# and DESTROY groups of the node namespace, it makes these flows:
#   udp 30001 -> VIP4:53 DNAT'd to the pod, replied      (rules in place)
#   udp 30002 -> VIP6:53 DNAT'd, replied
#   tcp 30003 -> VIP4:53 DNAT'd, a DNS query over TCP, closed
#   tcp 30004 -> VIP6:53 DNAT'd, the same
#   udp 30005 -> VIP4:53 no DNAT, unreplied              (kube-proxy window)
#   udp 30006 -> VIP6:53 no DNAT, unreplied
#   tcp 30007 -> VIP4:9153 no DNAT, SYN only (unreplied)
# then dumps the table (ct_capture.py dump, and `conntrack -L -o id`
# right after) and flushes it, which sends a DESTROY for each entry.
# Writes events.bin / events.conntrack and dump.bin / dump.conntrack.
. "$(dirname "$0")/lab.sh"
TOP=$LAB_TOP
D=${1:-$TOP/tests/data/ct}
CAP="$LAB_PY $TOP/tests/ct_capture.py"
mkdir -p "$D"
rm -f "$D/events.bin" "$D/events.conntrack" "$D/dump.bin" "$D/dump.conntrack"

# tcp_query PORT SERVER: one DNS query over TCP from NODE:PORT, answered
tcp_query() {
	lab_node "$LAB_PY" -c '
import socket, struct, sys
port, server = int(sys.argv[1]), sys.argv[2]
fam = socket.AF_INET6 if ":" in server else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
s.settimeout(2)
s.connect((server, 53))
q = struct.pack(">HHHHHH", 0x1234, 0x100, 1, 0, 0, 0) + b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00" + struct.pack(">HH", 1, 1)
s.sendall(struct.pack(">H", len(q)) + q)
n = struct.unpack(">H", s.recv(2))[0]
assert len(s.recv(n)) > 12
s.close()' "$1" "$2"
}
# syn_only PORT SERVER DPORT: a connect that gets no answer (gw drops it)
syn_only() {
	lab_node "$LAB_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.3)
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
except OSError:
    pass' "$1" "$2" "$3"
}

lab_up || exit 1
lab_ct -F 2>/dev/null
lab_node $CAP events "$D/events.bin" --ready "$LAB_DIR/ready" --stop "$LAB_DIR/stop" &
cap=$!
lab_ct -E -o id -e NEW,DESTROY >"$D/events.conntrack" 2>/dev/null &
ev=$!
i=0; while [ ! -e "$LAB_DIR/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.5     # conntrack -E has joined its groups by then

lab_client 30001 4 1 0.1 1 >/dev/null || { echo "ct_capture: udp v4 DNAT'd client failed" >&2; exit 1; }
lab_client 30002 6 1 0.1 1 >/dev/null || { echo "ct_capture: udp v6 DNAT'd client failed" >&2; exit 1; }
tcp_query 30003 "$VIP4" || { echo "ct_capture: tcp v4 query failed" >&2; exit 1; }
tcp_query 30004 "$VIP6" || { echo "ct_capture: tcp v6 query failed" >&2; exit 1; }
lab_rules window
lab_client 30005 4 1 0.1 0.3 >/dev/null
lab_client 30006 6 1 0.1 0.3 >/dev/null
syn_only 30007 "$VIP4" 9153
lab_rules full
sleep 0.3
lab_node $CAP dump "$D/dump.bin" || { echo "ct_capture: dump failed" >&2; exit 1; }
lab_ct -L -o id >"$D/dump.conntrack" 2>/dev/null
lab_ct -F 2>/dev/null
sleep 0.5
touch "$LAB_DIR/stop"
wait $cap
kill $ev; wait $ev 2>/dev/null
uname -r >"$D/kernel"
conntrack --version >>"$D/kernel" 2>&1
echo "ct_capture: $(wc -l <"$D/events.conntrack") events, $(wc -l <"$D/dump.conntrack") dumped entries in $D"
