#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Active-active template sharing: several real ipfixd-collector replicas share templates
# through a real redis-server (started here on a unix socket) and push to one ipfixd-tap.
# Templates sent to one replica decode data sent to another (TCP and UDP); redefinitions
# win everywhere; data ahead of its template is held; Redis outages degrade, recover and
# replay; PROXY protocol headers give the identity; a bounded soak with random reconnects
# loses nothing.
. "$(dirname "$0")/lib.sh"

if ! command -v redis-server > /dev/null; then
        echo "redis-server not installed: skipping"
        exit 77
fi

REDIS_SOCK=$T/redis.sock
start_redis() {
        redis-server --port 0 --unixsocket "$REDIS_SOCK" --save '' --appendonly no \
                --daemonize no > "$T/redis.log" 2>&1 &
        REDIS_PID=$!
        PIDS+=($REDIS_PID)
        for _ in $(seq 100); do [ -S "$REDIS_SOCK" ] && redis-cli -s "$REDIS_SOCK" ping > /dev/null 2>&1 && return 0; sleep 0.05; done
        echo "redis did not start"; cat "$T/redis.log"; return 1
}
start_redis

# replica NAME TAP [args...]: a collector on a fresh port using the shared store, pushing to
# the tap's socket; sets PORT_<NAME> and PID_<NAME>.
replica() {
        local name=$1 tap=$2; shift 2
        local p; p=$(free_port)
        "$IPFIXD_COLLECTOR" --listen "tcp://127.0.0.1:$p" --listen "udp://127.0.0.1:$p" \
                --set "output=ipc://$T/$tap.sock" --set "metrics_file=$T/$name.prom" \
                --set stats_interval_s=1 --set template_store=redis \
                --set "redis_address=unix:$REDIS_SOCK" --set hold_ms=5000 "$@" \
                2> "$T/$name.log" &
        local pid=$!
        PIDS+=($pid)
        for _ in $(seq 100); do grep -q "Collector ready" "$T/$name.log" 2>/dev/null && break; sleep 0.05; done
        for _ in $(seq 100); do grep -q "connected to Redis" "$T/$name.log" 2>/dev/null && break; sleep 0.05; done
        eval "PORT_$name=$p PID_$name=$pid"
}
stop_replica() { # NAME: SIGTERM must drain and exit 0, as with the in-process store
        local pid rc=0
        pid=$(eval echo "\$PID_$1")
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" || rc=$?
        check_eq "$1 exits 0 on SIGTERM" "$rc" 0
}
sum_eq() { # label expected_records expected_octets tap_summary
        check_eq "$1 records" "$(json_get "$4" records)" "$2"
        check_eq "$1 octets" "$(json_get "$4" octets)" "$3"
}

echo "# Templates to replica A, data to replica B (TCP, then UDP)"
start_tap ab --idle 3 --timeout 60
replica A ab
replica B ab
"$IPFIXD_GEN" --template-mode only --bind 127.0.0.11 "127.0.0.1:$PORT_A" > /dev/null
sleep 0.3
G=$("$IPFIXD_GEN" --template-mode none --bind 127.0.0.11 --records 50000 --connections 2 \
        --seed 61 "127.0.0.1:$PORT_B")
"$IPFIXD_GEN" --proto udp --template-mode only --bind 127.0.0.12 "127.0.0.1:$PORT_A" > /dev/null
sleep 0.3
U=$("$IPFIXD_GEN" --proto udp --template-mode none --bind 127.0.0.12 --records 20000 \
        --rate 100000 --seed 62 "127.0.0.1:$PORT_B")
tap_wait ab
sum_eq "A->B" $(( $(json_get "$G" records) + $(json_get "$U" records) )) \
        $(( $(json_get "$G" octets) + $(json_get "$U" octets) )) "$S"
check_ge "B learned the templates through Redis (events or fetches)" \
        $(( $(metric B ipfixd_collector_store_events_applied_total) + $(metric B ipfixd_collector_store_fetch_hits_total) )) 2
check_eq "B nothing expired" "$(metric B ipfixd_collector_held_expired_sets_total)" 0
stop_replica A
stop_replica B
check_eq "Redis holds the exporter's template" \
        "$(redis-cli -s "$REDIS_SOCK" hexists 'ipfixd:tmpl:{127.0.0.11}:1' 256)" 1

echo "# Redefinition on A wins on B"
start_tap redef --idle 3 --timeout 60
replica C redef
replica D redef
# D first learns the IPv4 layout of template 300 and decodes data with it ...
"$IPFIXD_GEN" --template-mode only --template-id 300 --bind 127.0.0.13 "127.0.0.1:$PORT_C" > /dev/null
sleep 0.3
G1=$("$IPFIXD_GEN" --template-mode none --template-id 300 --bind 127.0.0.13 --records 1000 \
        --seed 63 "127.0.0.1:$PORT_D")
# ... then the exporter redefines 300 as the IPv6 layout on C; data in the new layout to D.
"$IPFIXD_GEN" --template-mode only --ipv6 --template-id 300 --bind 127.0.0.13 "127.0.0.1:$PORT_C" > /dev/null
sleep 0.5
G2=$("$IPFIXD_GEN" --template-mode none --ipv6 --template-id 300 --bind 127.0.0.13 \
        --records 1000 --seed 64 "127.0.0.1:$PORT_D")
tap_wait redef
sum_eq "redefinition" $(( $(json_get "$G1" records) + $(json_get "$G2" records) )) \
        $(( $(json_get "$G1" octets) + $(json_get "$G2" octets) )) "$S"
check_ge "D applied the change event" "$(metric D ipfixd_collector_store_events_applied_total)" 1
kill -HUP "$PID_C"
sleep 0.3
if kill -0 "$PID_C" 2>/dev/null; then ok "C survives SIGHUP (reload)"; else fail "C died on SIGHUP"; fi
stop_replica C
stop_replica D

echo "# Data to B before its template reaches A: held, then decoded; never: expired"
start_tap hold --idle 3 --timeout 60
replica E hold
replica F hold --set hold_ms=1500
G=$("$IPFIXD_GEN" --template-mode none --bind 127.0.0.14 --records 5000 --seed 65 "127.0.0.1:$PORT_E")
sleep 1
"$IPFIXD_GEN" --template-mode only --bind 127.0.0.14 "127.0.0.1:$PORT_F" > /dev/null
"$IPFIXD_GEN" --template-mode none --bind 127.0.0.15 --records 500 "127.0.0.1:$PORT_F" > /dev/null
sleep 2.5
tap_wait hold
sum_eq "held until the template came" "$(json_get "$G" records)" "$(json_get "$G" octets)" "$S"
check_ge "E held sets" "$(metric E ipfixd_collector_held_sets_total)" 1
check_ge "F: never-resolved data expired and counted" "$(wait_metric F ipfixd_collector_held_expired_sets_total 1)" 1
stop_replica E
stop_replica F

echo "# Redis killed under traffic, then restarted"
start_tap outage --idle 15 --timeout 90
replica G outage
replica H outage
"$IPFIXD_GEN" --template-mode only --bind 127.0.0.16 "127.0.0.1:$PORT_G" > /dev/null
sleep 0.3
"$IPFIXD_GEN" --template-mode none --bind 127.0.0.16 --records 10000 "127.0.0.1:$PORT_H" > "$T/o1.json"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
sleep 0.5
# Known templates keep decoding; a new exporter is learned while Redis is down.
"$IPFIXD_GEN" --template-mode first --bind 127.0.0.16 --records 100000 --rate 100000 \
        --connections 2 "127.0.0.1:$PORT_H" > "$T/o2.json"
"$IPFIXD_GEN" --template-mode only --bind 127.0.0.17 "127.0.0.1:$PORT_G" > /dev/null
sleep 1.2
check_eq "G reports Redis down" "$(metric G ipfixd_collector_store_redis_connected)" 0
check_ge "G queued the write" "$(metric G ipfixd_collector_store_writes_queued)" 1
if grep -q "Template store degraded" "$T/G.log"; then ok "G logged degraded"; else fail "G did not log degraded"; fi
start_redis
sleep 3
check_eq "G reconnected" "$(wait_metric G ipfixd_collector_store_redis_connected 1)" 1
check_eq "G replayed the queue" "$(metric G ipfixd_collector_store_writes_queued)" 0
check_eq "the template learned during the outage is in Redis" \
        "$(redis-cli -s "$REDIS_SOCK" hexists 'ipfixd:tmpl:{127.0.0.17}:1' 256)" 1
check_ge "H re-read its cache after reconnecting" "$(wait_metric H ipfixd_collector_store_resyncs_total 1)" 1
for _ in $(seq 50); do
        [ "$(redis-cli -s "$REDIS_SOCK" hexists 'ipfixd:tmpl:{127.0.0.16}:1' 256)" = 1 ] && break
        sleep 0.1
done
check_eq "the restarted (empty) Redis was refilled from the replicas' caches" \
        "$(redis-cli -s "$REDIS_SOCK" hexists 'ipfixd:tmpl:{127.0.0.16}:1' 256)" 1
"$IPFIXD_GEN" --template-mode none --bind 127.0.0.17 --records 3000 "127.0.0.1:$PORT_H" > "$T/o3.json"
tap_wait outage
sum_eq "through the outage" \
        $(( $(json_get "$(cat "$T/o1.json")" records) + $(json_get "$(cat "$T/o2.json")" records) + $(json_get "$(cat "$T/o3.json")" records) )) \
        $(( $(json_get "$(cat "$T/o1.json")" octets) + $(json_get "$(cat "$T/o2.json")" octets) + $(json_get "$(cat "$T/o3.json")" octets) )) "$S"
stop_replica G
stop_replica H

echo "# PROXY protocol v1/v2: identity from the header; a required header is enforced"
start_tap proxy --idle 9 --timeout 30 --json
P=$(free_port)
"$IPFIXD_COLLECTOR" --listen "tcp+proxy://127.0.0.1:$P" --set "output=ipc://$T/proxy.sock" \
        --set "metrics_file=$T/proxy.prom" --set stats_interval_s=1 2> "$T/proxy.log" &
PX=$!
PIDS+=($PX)
for _ in $(seq 100); do grep -q "Collector ready" "$T/proxy.log" 2>/dev/null && break; sleep 0.05; done
python3 - "$P" > "$T/proxy.py.out" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def message(odid, n):
    tmpl = struct.pack(">HH", 256, 3) + struct.pack(">HHHHHH", 8, 4, 12, 4, 1, 8)
    recs = b"".join(bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack(">Q", 100 + i) for i in range(n))
    body = struct.pack(">HH", 2, 4 + len(tmpl)) + tmpl + struct.pack(">HH", 256, 4 + len(recs)) + recs
    return struct.pack(">HHIII", 10, 16 + len(body), 1700000000, 0, odid) + body
def send(prefix, payload):
    s = socket.create_connection(("127.0.0.1", port))
    for i in range(0, len(prefix), 7):          # the header arrives in pieces
        s.sendall(prefix[i:i + 7]); time.sleep(0.01)
    s.sendall(payload); time.sleep(0.2); s.close()
send(b"PROXY TCP4 192.0.2.77 10.9.9.9 40000 4739\r\n", message(5, 3))
sig = b"\r\n\r\n\x00\r\nQUIT\n"
addrs = socket.inet_pton(socket.AF_INET6, "2001:db8::77") + socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack(">HH", 40001, 4739)
send(sig + bytes([0x21, 0x21]) + struct.pack(">H", len(addrs)) + addrs, message(6, 4))
send(b"", message(7, 5))                        # no header: must be rejected
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PROXY TCP4 192.0.2.9")             # half a header, then silence
time.sleep(6.5)                                 # the collector gives up after 5 s
try:
    closed = s.recv(1) == b""
except ConnectionResetError:
    closed = True
print("stalled-proxy-closed" if closed else "stalled-proxy-open")
PY
tap_wait proxy
check_eq "proxy: records from the two valid connections" "$(json_get "$S" records)" 7
check_eq "proxy: v1 identity" "$(grep -c '"exporter":"192.0.2.77","odid":5' "$T/proxy.tap")" 3
check_eq "proxy: v2 identity" "$(grep -c '"exporter":"2001:db8::77","odid":6' "$T/proxy.tap")" 4
check_eq "proxy: connections without a (complete) header rejected" "$(wait_metric proxy ipfixd_collector_tcp_proxy_rejected_total 2)" 2
check_eq "proxy: a stalled header is closed after 5 s" "$(cat "$T/proxy.py.out")" "stalled-proxy-closed"
kill -TERM "$PX"; wait "$PX" 2>/dev/null

echo "# Soak: 3 replicas, 12 exporters, random reconnects to random replicas"
start_tap soak --idle 4 --timeout 120
replica R1 soak
replica R2 soak
replica R3 soak
python3 - "$IPFIXD_GEN" "$PORT_R1" "$PORT_R2" "$PORT_R3" > "$T/soak.json" <<'PY'
import json, random, subprocess, sys
gen, ports = sys.argv[1], sys.argv[2:]
rnd = random.Random(7)
total = {"records": 0, "octets": 0, "packets": 0}
procs = []
for e in range(12):
    addr = "127.0.1.%d" % (e + 1)
    proto = "udp" if e % 3 == 0 else "tcp"
    subprocess.run([gen, "--proto", proto, "--template-mode", "only", "--bind", addr,
                    "127.0.0.1:%s" % rnd.choice(ports)], check=True, stdout=subprocess.DEVNULL)
for rnd_round in range(8):                      # each round every exporter reconnects somewhere
    for e in range(12):
        addr = "127.0.1.%d" % (e + 1)
        proto = "udp" if e % 3 == 0 else "tcp"
        args = [gen, "--proto", proto, "--template-mode", "none", "--bind", addr,
                "--records", str(rnd.randint(500, 3000)), "--seed", str(rnd.randint(1, 10**6)),
                "127.0.0.1:%s" % rnd.choice(ports)]
        if proto == "udp":
            args[1:1] = ["--rate", "50000"]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE))
    for p in procs:
        out, _ = p.communicate()
        r = json.loads(out)
        for k in total:
            total[k] += r[k]
    procs = []
print(json.dumps(total))
PY
tap_wait soak
E=$(cat "$T/soak.json")
sum_eq "soak" "$(json_get "$E" records)" "$(json_get "$E" octets)" "$S"
for r in R1 R2 R3; do
        check_eq "soak $r: nothing expired" "$(metric $r ipfixd_collector_held_expired_sets_total)" 0
        stop_replica $r
done

finish
