#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The public API end to end: two real pods (`ipfixd-controller --spawn-pod`, each with its
# own dbus-daemon, collector and mediator; both collectors share templates through one real
# redis-server) behind one `ipfixd-api`, all on 127.0.0.1 and unix sockets.
#
# Ground truth: every exporter stream is generated once (ipfixd-gen into a recorder) and
# replayed byte for byte, from a fixed exporter address per pod (127.0.0.2 -> pod-0,
# 127.0.0.3 -> pod-1), to the pod and to a separate collector whose ipfixd-tap writes every
# decoded record as JSON. api-check.py compares the API's answers with that truth: /flows
# (filters, paging, order) as exact multisets of records, /flows/top against top-N computed
# from the truth, /flows/timeseries totals, /exporters, /templates against the template sets
# in the recorded streams, /pods against the pods' counters, the SSE stream against new
# traffic sent while it is open, the error statuses (400 naming the parameter, 404, 405,
# 414, 429), and a killed pod (partial answers naming it, exactly the other pod's flows).
. "$(dirname "$0")/lib.sh"

command -v redis-server > /dev/null || { echo "redis-server not installed: skipped"; exit 77; }
command -v dbus-daemon > /dev/null || { echo "dbus-daemon not installed: skipped"; exit 77; }
CHECK="$(dirname "$0")/api-check.py"
T0=$(date +%s)

# TAP-style lines: "ok N - what" / "not ok N - what" (lib.sh's check_eq and check_ge use these).
N=0
ok() { N=$((N + 1)); PASSED=$((PASSED + 1)); echo "ok $N - $*"; }
fail() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
report() { # numbers api-check.py's "ok - " / "not ok - " lines; passes the rest through
        local l
        while IFS= read -r l; do
                case "$l" in
                "ok - "*) ok "${l#ok - }" ;;
                "not ok - "*) fail "${l#not ok - }" ;;
                *) echo "$l" ;;
                esac
        done
}
checks() { report < <(python3 "$CHECK" check "$@" 2>&1 || echo "not ok - api-check.py $1 crashed"); }
pyjson() { # JSON python-expression-over-d
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
wait_code() { # EXPECTED URL [tries of 0.1 s]
        local s=""
        for _ in $(seq "${3:-150}"); do
                s=$(code "$2")
                [ "$s" = "$1" ] && break
                sleep 0.1
        done
        echo "$s"
}

# ---- cleanup: the pods first (controller SIGTERM stops its children), then lib.sh's ------
CTL=()
stop_pods() {
        local i c
        for i in "${!CTL[@]}"; do
                c=${CTL[$i]}
                if [ -z "$c" ] || ! kill -0 "$c" 2>/dev/null; then continue; fi
                CHILDREN[i]=$(pgrep -P "$c" | tr '\n' ' ')
                kill -TERM "$c" 2>/dev/null
        done
        for i in "${!CTL[@]}"; do
                c=${CTL[$i]}
                for _ in $(seq 50); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
                # shellcheck disable=SC2086
                kill -9 "$c" ${CHILDREN[$i]:-} 2>/dev/null
        done
}
CHILDREN=()
trap 'stop_pods; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- Redis and two pods --------------------------------------------------------------------
REDIS_SOCK=$T/redis.sock
redis-server --port 0 --unixsocket "$REDIS_SOCK" --save '' --appendonly no --daemonize no \
        > "$T/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -s "$REDIS_SOCK" ping > /dev/null 2>&1 && break; sleep 0.05; done

declare -a P Q F H
start_pod() { # I: pod-I with its own ports and directory
        local i=$1 d=$T/pod-$1
        mkdir -p "$d"
        P[i]=$(free_port)
        Q[i]=$(free_port)
        F[i]=$(free_port)
        H[i]=$(free_port)
        cat > "$d/collector.json" <<JSON
{ "listeners": [ { "transport": "tcp", "address": "127.0.0.1", "port": ${P[$i]} } ],
  "output": "ipc://$d/flows.sock", "collector_id": $((i + 1)), "stats_interval_s": 1,
  "template_store": "redis", "redis_address": "unix:$REDIS_SOCK" }
JSON
        # rollup_top_k above the keys of any minute here: sealing (two minutes after a minute
        # ends) keeps every key, so /flows/top stays exact however slow the machine is.
        cat > "$d/mediator.json" <<JSON
{ "input": "ipc://$d/flows.sock", "query_listen": "tcp://127.0.0.1:${Q[$i]}",
  "pod_name": "pod-$i", "stats_interval_s": 1, "rollup_top_k": 100000,
  "rollup_horizon_min": 120,
  "pipelines": [ { "name": "live",
                   "outputs": [ { "type": "zmq-pub", "endpoint": "tcp://127.0.0.1:${F[$i]}" } ] } ] }
JSON
        cat > "$d/controller.json" <<JSON
{ "pod_name": "pod-$i", "bus_socket": "$d/bus", "http_listen": "127.0.0.1:${H[$i]}",
  "poll_interval_ms": 200,
  "collector_binary": "$IPFIXD_COLLECTOR", "mediator_binary": "$IPFIXD_MEDIATOR",
  "collector_config": "$d/collector.json", "mediator_config": "$d/mediator.json",
  "restart_min_ms": 300, "restart_max_ms": 2000 }
JSON
        "$IPFIXD_CONTROLLER" --config "$d/controller.json" --spawn-pod 2> "$d/controller.log" &
        CTL[i]=$!
}
start_pod 0
start_pod 1
for i in 0 1; do
        check_eq "pod-$i: controller /readyz" "$(wait_code 200 "http://127.0.0.1:${H[$i]}/readyz" 200)" 200
done

# ---- the API: the instance under test, and one with a strict rate limit -------------------
A=$(free_port)
AL=$(free_port)
API="http://127.0.0.1:$A"
PODS="pod-0=tcp://127.0.0.1:${Q[0]};feed=${F[0]};http=${H[0]},pod-1=tcp://127.0.0.1:${Q[1]};feed=${F[1]};http=${H[1]}"
cat > "$T/api.json" <<JSON
{ "listen": "127.0.0.1:$A", "pods": "$PODS", "rate_limit_rps": 0, "deadline_ms": 1000,
  "pods_refresh_s": 5, "redis_address": "unix:$REDIS_SOCK", "feed_pipeline": "live",
  "max_streams": 2 }
JSON
cat > "$T/api-limited.json" <<JSON
{ "listen": "127.0.0.1:$AL", "pods": "$PODS", "rate_limit_rps": 1, "rate_limit_burst": 1,
  "deadline_ms": 1000 }
JSON
"$IPFIXD_API" --config "$T/api.json" 2> "$T/api.log" &
API_PID=$!
PIDS+=("$API_PID")
"$IPFIXD_API" --config "$T/api-limited.json" 2> "$T/api-limited.log" &
PIDS+=($!)

echo "# 1. readiness and the OpenAPI document"
check_eq "API /healthz" "$(wait_code 200 "$API/healthz")" 200
check_eq "API /readyz 200 once a pod answers a ping" "$(wait_code 200 "$API/readyz")" 200
for _ in $(seq 100); do
        E=$(curl -s --max-time 5 "$API/api/v1/exporters")
        [ "$(pyjson "$E" 'd["answered"]')" = 2 ] && break
        sleep 0.1
done
check_eq "both pods answer queries (exporters: answered, partial)" \
        "$(pyjson "$E" '(d["answered"], d["partial"], d["exporters"])')" "(2, False, [])"
curl -s "$API/openapi.json" > "$T/openapi.json"
check_eq "/openapi.json is JSON with openapi 3.1.x" \
        "$(python3 -c 'import json,sys,re; d=json.load(open(sys.argv[1])); print(bool(re.fullmatch(r"3\.1\.\d+", d["openapi"])) and "paths" in d)' "$T/openapi.json" 2>&1)" True

echo "# traffic: recorded once, replayed to the pods and to the truth collector"
rec() { # NAME GEN-ARGS...: records one TCP stream of ipfixd-gen into $T/NAME.ipfix
        local n=$1
        shift
        python3 "$CHECK" record "$T/$n.ipfix" -- "$IPFIXD_GEN" --connections 1 "$@"
}
replay() { python3 "$CHECK" replay "$T/$1.ipfix" "$2" "${@:3}"; }
store_appended() { # I: records pod-I's flow store has taken (its query service, directly)
        pyjson "$("$IPFIXD_QUERY" --endpoint "tcp://127.0.0.1:${Q[$1]}" '{"v":1,"op":"ping"}' 2>/dev/null)" 'd["store"]["appended"]'
}
wait_stored() { # I N: until pod-I's store has N records (up to 30 s); prints the count
        local v=""
        for _ in $(seq 300); do
                v=$(store_appended "$1")
                [ "$v" = "$2" ] && break
                sleep 0.1
        done
        echo "$v"
}
truth() { # NAME RECORDS STREAM=BIND...: a collector + tap --json that decode the streams
        local name=$1 n=$2 pt s
        shift 2
        pt=$(free_port)
        start_tap "$name" --json --expect "$n" --timeout 60 || return 1
        start_collector "$name" --listen "tcp://127.0.0.1:$pt" || return 1
        for s in "$@"; do replay "${s%=*}" "${s#*=}" "127.0.0.1:$pt"; done
        tap_wait "$name"
        stop_collector
        check_eq "truth $name: the tap decoded every record" "$(json_get "$S" records)" "$n"
}
G=$(rec a --records 3000 --seed 101 --odid 1)
check_eq "generator a" "$(json_get "$G" records)" 3000
G=$(rec b --records 2500 --seed 102 --odid 2)
check_eq "generator b" "$(json_get "$G" records)" 2500
G=$(rec c --records 1000 --seed 103 --odid 2 --ipv6)
check_eq "generator c (IPv6)" "$(json_get "$G" records)" 1000
truth truth1 6500 a=127.0.0.2 b=127.0.0.3 c=127.0.0.3
replay a 127.0.0.2 "127.0.0.1:${P[0]}"
replay b 127.0.0.3 "127.0.0.1:${P[1]}"
replay c 127.0.0.3 "127.0.0.1:${P[1]}"
check_eq "pod-0 stored every record sent to it" "$(wait_stored 0 3000)" 3000
check_eq "pod-1 stored every record sent to it" "$(wait_stored 1 3500)" 3500
T1=$(date +%s)

echo "# 2. /flows against the truth"
checks flows --api "$API" --truth "$T/truth1.tap" --expect-records 6500
echo "# 3. /flows/top (rollups: open minutes are exact, see the note in api-check.py)"
checks top --api "$API" --truth "$T/truth1.tap"
echo "# 4. /flows/timeseries"
checks timeseries --api "$API" --truth "$T/truth1.tap"
echo "# 5. /exporters"
checks exporters --api "$API" --truth "$T/truth1.tap"
echo "# 6. /templates (from Redis) against the template sets in the recorded streams"
GT=$(python3 -c 'import json,subprocess,sys
c, t = sys.argv[1], sys.argv[2]
def tm(*n): return json.loads(subprocess.run(["python3", c, "templates"] + [t + "/" + x + ".ipfix" for x in n], capture_output=True, text=True, check=True).stdout)
print(json.dumps({"127.0.0.2,1": tm("a"), "127.0.0.3,2": tm("b", "c")}))' "$CHECK" "$T")
checks templates --api "$API" --gen-templates "$GT"
echo "# 7. /pods: both controllers' documents"
checks pods --api "$API" --truth "$T/truth1.tap"

echo "# 8. the SSE stream against new traffic"
G=$(rec d --records 1500 --seed 201 --odid 1)
G=$(rec e --records 1500 --seed 202 --odid 2)
truth truth2 3000 d=127.0.0.2 e=127.0.0.3
# 30 destination ports of the new traffic (some seen on both pods)
SSE_PORTS=$(python3 -c 'import json,sys
ps = sorted({json.loads(l)["dst_port"] for l in open(sys.argv[1]) if "src_addr" in l})
print(",".join(map(str, ps[::max(1, len(ps) // 30)][:30])))' "$T/truth2.tap")
python3 "$CHECK" sse "$API/api/v1/flows/stream?dst_port=$SSE_PORTS" "$T/sse-a.jsonl" 2> "$T/sse-a.err" &
SSE_A=$!
PIDS+=("$SSE_A")
python3 "$CHECK" sse "$API/api/v1/flows/stream?proto=udp&src=10.0.0.0/9" "$T/sse-b.jsonl" 2> "$T/sse-b.err" &
SSE_B=$!
PIDS+=("$SSE_B")
for _ in $(seq 100); do
        grep -q '"event": "hello"' "$T/sse-a.jsonl" 2>/dev/null && grep -q '"event": "hello"' "$T/sse-b.jsonl" 2>/dev/null && break
        sleep 0.1
done
check_eq "two streams opened (event: hello on both)" "$(cat "$T"/sse-[ab].jsonl 2>/dev/null | grep -c '"event": "hello"')" 2
R=$(curl -s -D "$T/503.h" --max-time 10 "$API/api/v1/flows/stream")
check_eq "max_streams 2 reached: the next stream gets 503 too_many_streams with Retry-After" \
        "$(head -1 "$T/503.h" | cut -d' ' -f2) $(pyjson "$R" 'd["error"]["code"]') $(grep -ci '^retry-after: [0-9]' "$T/503.h")" \
        "503 too_many_streams 1"
sleep 1 # ZeroMQ subscriptions reach the pods' XPUB sockets asynchronously
replay d 127.0.0.2 "127.0.0.1:${P[0]}"
replay e 127.0.0.3 "127.0.0.1:${P[1]}"
check_eq "pod-0 stored the new records" "$(wait_stored 0 4500)" 4500
check_eq "pod-1 stored the new records" "$(wait_stored 1 5000)" 5000
# the events have left the mediators; wait until both streams are quiet for a second
last=""
for _ in $(seq 50); do
        sleep 0.5
        now=$(cat "$T"/sse-[ab].jsonl 2>/dev/null | wc -l)
        [ "$now" = "$last" ] && break
        last=$now
done
kill "$SSE_A" "$SSE_B" 2>/dev/null
wait "$SSE_A" "$SSE_B" 2>/dev/null
checks stream --api "$API" --truth "$T/truth2.tap" --sse "$T/sse-a.jsonl=ports:$SSE_PORTS" \
        --sse "$T/sse-b.jsonl=udp"
SSE_CLOSED=$(date +%s)

echo "# 9. errors"
checks errors --api "$API" --limited-api "http://127.0.0.1:$AL"

echo "# 10. a pod killed: partial answers"
MED1=$(pgrep -f "ipfixd-mediator --config $T/pod-1/mediator.json" | head -1)
if running "${MED1:-0}"; then ok "pod-1's mediator runs (pid $MED1)"; else fail "pod-1's mediator not found"; fi
C1=$(pgrep -P "${CTL[1]}" | tr '\n' ' ')
kill -9 "${CTL[1]}" 2>/dev/null      # first the supervisor, so nothing restarts the mediator
# shellcheck disable=SC2086
kill -9 $C1 "${MED1:-}" 2>/dev/null
{ wait "${CTL[1]}"; } 2>/dev/null
alive=""
for _ in $(seq 50); do
        alive=""
        for p in $C1 ${MED1:-}; do running "$p" && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
done
check_eq "pod-1 is gone (controller and its children: $(echo $C1))" "${alive:-none}" none
CTL[1]=""
checks partial --api "$API" --truth "$T/truth1.tap" --truth "$T/truth2.tap" --dead pod-1 --alive pod-0

echo "# stream slots of clients that went away"
# A parked (suspended) stream notices its client left only when it next writes: at the
# latest with the keepalive (15 s idle, checked every 7.5 s).
s=""
while [ $(($(date +%s) - SSE_CLOSED)) -le 25 ]; do
        s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$API/api/v1/flows/stream")
        [ "$s" = 200 ] && break
        sleep 0.2
done
check_eq "the closed streams' slots are free again $(($(date +%s) - SSE_CLOSED)) s after their clients left (a new stream gets 200)" "$s" 200

echo "# shutdown"
kill -TERM "$API_PID"
RC=0
wait "$API_PID" || RC=$?
check_eq "ipfixd-api exits 0 on SIGTERM" "$RC" 0
grep -E '^<[0-3]>' "$T/api.log" | head -5
check_eq "no error in the API's log" "$(grep -cE '^<[0-3]>' "$T/api.log")" 0
echo "# $((T1 - T0)) s to set up and send, $(($(date +%s) - T0)) s in all"
echo "1..$N"
finish
