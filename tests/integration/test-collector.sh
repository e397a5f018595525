#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Collector end to end on loopback with real peers: ipfixd-gen and softflowd export IPFIX
# (and NetFlow v9) to a real ipfixd-collector, whose batches ipfixd-tap counts. Record counts
# and octet/packet sums must equal what the exporters sent; malformed peers are counted and
# do not disturb a good exporter; TCP backpressure loses nothing; SIGTERM drains.
. "$(dirname "$0")/lib.sh"

same_sums() { # label gen_json tap_json
        check_eq "$1 records" "$(json_get "$3" records)" "$(json_get "$2" records)"
        check_eq "$1 octets" "$(json_get "$3" octets)" "$(json_get "$2" octets)"
        check_eq "$1 packets" "$(json_get "$3" packets)" "$(json_get "$2" packets)"
}

echo "# TCP, 8 connections, IPv4 records"
P=$(free_port)
start_tap tcp --idle 2 --timeout 60
start_collector tcp --listen "tcp://127.0.0.1:$P" --set workers=2
G=$("$IPFIXD_GEN" --records 300000 --connections 8 --seed 11 "127.0.0.1:$P")
tap_wait tcp
same_sums "tcp" "$G" "$S"
stop_collector
check_eq "tcp collector exit code" "$RC" 0
check_eq "tcp records counted" "$(metric tcp ipfixd_collector_records_total)" 300000
check_eq "tcp nothing dropped" "$(metric tcp ipfixd_collector_drop_output_records_total)" 0
# Per-exporter totals outlive the connections that produced them.
check_eq "tcp per-exporter records after disconnect" \
        "$(metric tcp 'ipfixd_collector_exporter_records_total{exporter="127.0.0.1",odid="1",transport="tcp"}')" 300000

echo "# UDP, 4 exporters, paced"
P=$(free_port)
start_tap udp --idle 2 --timeout 60
start_collector udp --listen "udp://127.0.0.1:$P"
G=$("$IPFIXD_GEN" --proto udp --records 120000 --rate 200000 --connections 4 --seed 12 "127.0.0.1:$P")
tap_wait udp
same_sums "udp" "$G" "$S"
stop_collector
check_eq "udp collector exit code" "$RC" 0
check_eq "udp no backpressure drops" "$(metric udp ipfixd_collector_drop_backpressure_records_total)" 0

echo "# IPv6 transport and IPv6 records, TCP and UDP on ::1"
P=$(free_port)
start_tap v6 --idle 2 --timeout 60
start_collector v6 --listen "tcp://[::1]:$P" --listen "udp://[::1]:$P"
G1=$("$IPFIXD_GEN" --ipv6 --records 50000 --connections 2 --seed 13 "[::1]:$P")
G2=$("$IPFIXD_GEN" --ipv6 --proto udp --rate 100000 --records 20000 --seed 14 "[::1]:$P")
tap_wait v6
check_eq "v6 records" "$(json_get "$S" records)" $(( $(json_get "$G1" records) + $(json_get "$G2" records) ))
check_eq "v6 octets" "$(json_get "$S" octets)" $(( $(json_get "$G1" octets) + $(json_get "$G2" octets) ))
stop_collector

echo "# softflowd exports flows from a pcap written here (IPFIX over TCP/UDP, NetFlow v9)"
# softflowd 1.1.0 silently cuts the pcap path to 16 characters: keep it short.
PCAP=$(mktemp /tmp/sfXXXXXX)
E=$(python3 "$(dirname "$0")/make-pcap.py" "$PCAP" --flows 40 --seed 3)
run_softflowd() { # name softflowd-args...: expects every flow of the pcap at the tap
        local name=$1; shift
        local p; p=$(free_port)
        start_tap "$name" --idle 2 --timeout 30 --json
        start_collector "$name" --listen "tcp://127.0.0.1:$p" --listen "udp://127.0.0.1:$p"
        softflowd -r "$PCAP" -n "127.0.0.1:$p" -d -p "$T/$name.pid" -c "$T/$name.ctl" "$@" \
                > "$T/$name.softflowd" 2>&1 &
        local sp=$!
        PIDS+=($sp)
        # softflowd 1.1.0 reading a file blocks on its control socket and reads a chunk of
        # the pcap after each command: ask for statistics until every packet is processed,
        # then "shutdown" expires all flows, exports them and exits.
        for _ in $(seq 50); do [ -S "$T/$name.ctl" ] && break; sleep 0.1; done
        for _ in $(seq 200); do
                softflowctl -c "$T/$name.ctl" statistics 2>/dev/null |
                        grep -q "Packets processed: $(json_get "$E" packets)\$" && break
        done
        softflowctl -c "$T/$name.ctl" shutdown > /dev/null 2>&1
        wait "$sp" 2>/dev/null
        tap_wait "$name"
        check_eq "softflowd $name flows" "$(json_get "$S" records)" "$(json_get "$E" flows)"
        check_eq "softflowd $name packets" "$(json_get "$S" packets)" "$(json_get "$E" packets)"
        check_eq "softflowd $name octets" "$(json_get "$S" octets)" "$(json_get "$E" octets)"
        stop_collector
}
run_softflowd sf_tcp -v 10 -P tcp
run_softflowd sf_udp_ms -v 10 -P udp -a -A milli
run_softflowd sf_udp_s -v 10 -P udp -a -A sec
run_softflowd sf_udp_us -v 10 -P udp -a -A micro
run_softflowd sf_udp_ns -v 10 -P udp -a -A nano
run_softflowd sf_v9 -v 9 -a
rm -f "$PCAP"
# With -a the flows carry the pcap's own times (first packet at 1700000000.000 s): the
# canonical start time must be that, whatever encoding the exporter chose.
for name in sf_udp_ms sf_udp_s sf_udp_us sf_udp_ns sf_v9; do
        first=$(grep -o '"start_ms":[0-9]*' "$T/$name.tap" | cut -d: -f2 | sort -n | head -1)
        if [ -n "$first" ] && [ "$first" -ge 1699999999000 ] && [ "$first" -le 1700000001000 ]; then
                ok "softflowd $name earliest start_ms is the pcap's ($first)"
        else
                fail "softflowd $name earliest start_ms: got '$first', expected ~1700000000000"
        fi
done

echo "# Malformed peers next to a good exporter"
P=$(free_port)
start_tap bad --idle 3 --timeout 60
start_collector bad --listen "tcp://127.0.0.1:$P" --listen "udp://127.0.0.1:$P" --set max_message_size=20000
"$IPFIXD_GEN" --records 100000 --rate 50000 --connections 2 --seed 21 "127.0.0.1:$P" > "$T/good.json" &
GP=$!
python3 - "$P" <<'PY'
import os, socket, struct, sys, time
port = int(sys.argv[1])
def tcp(payload, close=True):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    time.sleep(0.05)
    if close:
        s.close()
    return s
hdr = lambda length: struct.pack(">HHIII", 10, length, 0, 0, 1)
tcp(os.urandom(4096))                          # garbage: wrong version
tcp(hdr(60000) + b"\0" * 100)                  # length above max_message_size
tcp(hdr(0))                                    # length below 16
tcp(hdr(200) + b"\1" * 50)                     # truncated, then closed
tcp(hdr(24) + struct.pack(">HH", 256, 400) + b"\0" * 4)   # set overruns the message
tcp(struct.pack(">HH", 9, 0) + b"\0" * 40)     # NetFlow v9 header on TCP
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(50):
    u.sendto(os.urandom(200), ("127.0.0.1", port))
u.sendto(hdr(100) + b"\0" * 10, ("127.0.0.1", port))          # truncated datagram
u.sendto(struct.pack(">HH", 9, 1) + b"\xff" * 30, ("127.0.0.1", port))  # bad v9
PY
wait "$GP"
tap_wait bad
same_sums "good exporter beside bad ones" "$(cat "$T/good.json")" "$S"
sleep 1.2
check_ge "bad: version errors counted" "$(metric bad ipfixd_collector_err_version_total)" 2
check_ge "bad: length errors counted" "$(metric bad ipfixd_collector_err_length_total)" 3
check_ge "bad: malformed sets counted" "$(metric bad ipfixd_collector_err_set_total)" 1
check_ge "bad: truncated close counted" "$(metric bad ipfixd_collector_tcp_truncated_close_total)" 1
check_ge "bad: bad v9 counted" "$(metric bad ipfixd_collector_err_netflow9_total)" 1
if kill -0 "$COLL_PID" 2>/dev/null; then ok "bad: collector still running"; else fail "bad: collector died"; fi
stop_collector
check_eq "bad collector exit code" "$RC" 0

echo "# Data ahead of its template is held, then decoded when the template comes on another session"
P=$(free_port)
start_tap hold --idle 2 --timeout 30
start_collector hold --listen "tcp://127.0.0.1:$P" --listen "udp://127.0.0.1:$P" --set hold_ms=5000
G1=$("$IPFIXD_GEN" --records 3000 --template-mode none --seed 51 "127.0.0.1:$P")
G2=$("$IPFIXD_GEN" --proto udp --records 2000 --template-mode none --seed 52 "127.0.0.1:$P")
sleep 0.5
"$IPFIXD_GEN" --template-mode only "127.0.0.1:$P" > /dev/null
tap_wait hold
check_eq "hold: records decoded after the template came" "$(json_get "$S" records)" \
        $(( $(json_get "$G1" records) + $(json_get "$G2" records) ))
check_eq "hold: octets" "$(json_get "$S" octets)" $(( $(json_get "$G1" octets) + $(json_get "$G2" octets) ))
stop_collector
check_eq "hold: nothing expired" "$(metric hold ipfixd_collector_held_expired_sets_total)" 0
check_ge "hold: sets were held" "$(metric hold ipfixd_collector_held_sets_total)" 1

echo "# Data whose template never comes expires and is counted"
P=$(free_port)
start_tap notmpl --idle 1 --timeout 20
start_collector notmpl --listen "udp://127.0.0.1:$P" --set hold_ms=300
"$IPFIXD_GEN" --proto udp --records 1000 --template-mode none "127.0.0.1:$P" > /dev/null
sleep 1.5
tap_wait notmpl
check_eq "no-template records at the tap" "$(json_get "$S" records)" "0"
stop_collector
check_ge "no-template: held sets expired and counted" "$(metric notmpl ipfixd_collector_held_expired_sets_total)" 1

echo "# TCP backpressure: the output is down, reading stops, nothing is lost"
P=$(free_port)
start_collector bp --listen "tcp://127.0.0.1:$P" --set output_hwm=2 --set workers=1
"$IPFIXD_GEN" --records 1000000 --connections 2 --seed 31 "127.0.0.1:$P" > "$T/bp.json" &
GP=$!
sleep 2
sleep 1.2
check_ge "bp: connections paused while the output is full" "$(metric bp ipfixd_collector_tcp_paused_total)" 1
if kill -0 "$GP" 2>/dev/null; then ok "bp: exporter is held back by TCP flow control"; else fail "bp: exporter finished although nothing consumed the output"; fi
start_tap bp --idle 3 --timeout 60
wait "$GP"
tap_wait bp
same_sums "bp" "$(cat "$T/bp.json")" "$S"
stop_collector
check_eq "bp collector exit code" "$RC" 0
check_eq "bp nothing dropped" "$(metric bp ipfixd_collector_drop_output_records_total)" 0

echo "# SIGTERM under load drains what was read"
P=$(free_port)
start_tap term --idle 3 --timeout 60
start_collector term --listen "tcp://127.0.0.1:$P"
"$IPFIXD_GEN" --records 3000000 --connections 4 "127.0.0.1:$P" > /dev/null 2>&1 &
GP=$!
sleep 0.4
start=$(date +%s%N)
stop_collector
rc=$RC
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "term: exit code" "$rc" 0
if [ "$ms" -lt 5000 ]; then ok "term: exited in ${ms} ms"; else fail "term: took ${ms} ms"; fi
tap_wait term
check_eq "term: every decoded record reached the tap" "$(json_get "$S" records)" "$(metric term ipfixd_collector_records_total)"
check_eq "term: nothing dropped at shutdown" "$(metric term ipfixd_collector_drop_shutdown_batches_total)" 0
check_ge "term: it was under load" "$(json_get "$S" records)" 1
wait "$GP" 2>/dev/null

echo "# 2000 concurrent exporters, and one that sends half a message and stalls"
P=$(free_port)
start_tap many --idle 3 --timeout 120
start_collector many --listen "tcp://127.0.0.1:$P"
python3 - "$P" > "$T/stall.out" <<'PY' &
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">HHIII", 10, 1000, 0, 0, 1) + b"\0" * 100)   # 116 of 1000 octets
time.sleep(15)
PY
SP=$!
PIDS+=($SP)
sleep 0.3
G=$("$IPFIXD_GEN" --records 200000 --connections 2000 --seed 41 "127.0.0.1:$P")
tap_wait many
same_sums "2000 connections beside a stalled one" "$G" "$S"
check_ge "many: connections accepted" "$(metric many ipfixd_collector_tcp_accepted_total)" 2001
kill "$SP" 2>/dev/null
stop_collector
check_eq "many: collector exit code" "$RC" 0

echo "# max_connections refuses and counts"
P=$(free_port)
start_collector lim --listen "tcp://127.0.0.1:$P" --set max_connections=2
python3 - "$P" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(3)
PY
check_eq "limit: one connection refused" "$(wait_metric lim ipfixd_collector_tcp_rejected_limit_total 1)" 1
stop_collector

finish
