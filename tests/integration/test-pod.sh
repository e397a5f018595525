#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One whole pod on this machine, against a real private dbus-daemon: `ipfixd-controller
# --spawn-pod` starts the bus, the collector and the mediator; the test drives the
# controller's HTTP API (real libmicrohttpd on 127.0.0.1) and the exporters (ipfixd-gen):
# readiness flips to 503 when the mediator is killed and back to 200 when the controller has
# restarted it; /api/v1/pod counters equal what the generator sent and what the mediator
# wrote; /metrics passes a strict Prometheus text parser; an invalid reload is refused and
# changes nothing, a valid one takes effect; drain under traffic loses no record that was
# read; the bearer token is enforced on mutating endpoints; SIGTERM stops everything.
. "$(dirname "$0")/lib.sh"

command -v dbus-daemon > /dev/null || { echo "dbus-daemon not installed: skipped"; exit 77; }
PROM="$(dirname "$0")/prom-check.py"
P=$(free_port)
Q=$(free_port)
H=$(free_port)
mkdir -p "$T/out"
echo "s3cret-token-for-tests" > "$T/token"
cat > "$T/collector.json" <<JSON
{ "listeners": [ { "transport": "tcp", "address": "127.0.0.1", "port": $P } ],
  "output": "ipc://$T/flows.sock", "metrics_file": "$T/collector.prom", "stats_interval_s": 1 }
JSON
MED_CFG='{ "input": "ipc://'$T'/flows.sock", "query_listen": "tcp://127.0.0.1:'$Q'",
  "stats_interval_s": 1,
  "pipelines": [ { "name": "all", "outputs": [ { "type": "json", "path": "'$T'/out/all" } ] } ] }'
echo "$MED_CFG" > "$T/mediator.json"
cat > "$T/controller.json" <<JSON
{ "pod_name": "pod-test", "bus_socket": "$T/bus", "http_listen": "127.0.0.1:$H",
  "token_file": "$T/token", "poll_interval_ms": 200,
  "collector_binary": "$IPFIXD_COLLECTOR", "mediator_binary": "$IPFIXD_MEDIATOR",
  "collector_config": "$T/collector.json", "mediator_config": "$T/mediator.json",
  "restart_min_ms": 300, "restart_max_ms": 2000 }
JSON

URL="http://127.0.0.1:$H"
http() { # METHOD PATH [BODY] [AUTH]: prints "STATUS BODY" on one line
        local auth=()
        [ -n "${4:-}" ] && auth=(-H "Authorization: Bearer $4")
        curl -s -o "$T/resp" -w '%{http_code}' -X "$1" "${auth[@]}" \
                ${3:+--data-binary "$3"} -H 'Content-Type: application/json' "$URL$2"
        echo " $(tr -d '\n' < "$T/resp")"
}
status() { http "$@" | cut -d' ' -f1; }
body() { http "$@" | cut -d' ' -f2-; }
pyget() { # JSON EXPR
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
wait_status() { # EXPECTED PATH [tries of 0.1 s]
        local s=""
        for _ in $(seq "${3:-100}"); do
                s=$(status GET "$2")
                [ "$s" = "$1" ] && break
                sleep 0.1
        done
        echo "$s"
}
TOKEN=$(cat "$T/token")
pod_counter() { # component counter
        pyget "$(body GET /api/v1/pod)" "d['components']['$1']['counters'].get('$2', -1)"
}
wait_pod_counter() { # component counter value
        local v=""
        for _ in $(seq 100); do
                v=$(pod_counter "$1" "$2" 2>/dev/null)
                [ "$v" = "$3" ] && break
                sleep 0.1
        done
        echo "$v"
}
json_lines() { # lines in every file of the "all" output, finished or not (a killed mediator
        # leaves its temp file behind)
        find "$T/out" -name '*all*' -exec cat {} + 2>/dev/null | wc -l
}

echo "# a pod comes up"
"$IPFIXD_CONTROLLER" --config "$T/controller.json" --spawn-pod 2> "$T/controller.log" &
CTL=$!
PIDS+=($CTL)
check_eq "healthz" "$(wait_status 200 /healthz)" 200
check_eq "readyz once both components are on the bus" "$(wait_status 200 /readyz 150)" 200
busctl --address="unix:path=$T/bus" introspect org.ipfixd.Collector /org/ipfixd/Collector > "$T/introspect.c" 2>&1 &&
        grep -q "org.ipfixd.Collector1" "$T/introspect.c" && ok "busctl introspects the collector" || fail "busctl introspect collector"
busctl --address="unix:path=$T/bus" introspect org.ipfixd.Mediator /org/ipfixd/Mediator > "$T/introspect.m" 2>&1 &&
        grep -q "org.ipfixd.Mediator1" "$T/introspect.m" && ok "busctl introspects the mediator" || fail "busctl introspect mediator"

echo "# /api/v1/pod counters match the traffic sent"
G=$("$IPFIXD_GEN" --records 50000 --connections 2 --seed 61 "127.0.0.1:$P")
check_eq "pod: collector records" "$(wait_pod_counter collector records 50000)" 50000
check_eq "pod: mediator records" "$(wait_pod_counter mediator records 50000)" 50000
POD=$(body GET /api/v1/pod)
check_eq "pod: name" "$(pyget "$POD" 'd["pod"]')" pod-test
check_eq "pod: exporter listed with its records" \
        "$(pyget "$POD" '[(e[0] if isinstance(e, list) else e.get("address")) for e in d["components"]["collector"]["exporters"]]')" "['127.0.0.1']"
check_ge "pod: templates listed" "$(pyget "$POD" 'len(d["components"]["collector"]["templates"])')" 1
check_eq "pod: pipeline counters" "$(pyget "$POD" '[(p["name"], p["counters"]["out"]) for p in d["components"]["mediator"]["pipelines"]]')" "[('all', 50000)]"
for _ in $(seq 30); do [ "$(json_lines)" -ge 50000 ] && break; sleep 0.1; done
check_eq "the mediator's output holds what the exporter sent" "$(json_lines)" "$(json_get "$G" records)"

echo "# /metrics is strict Prometheus text with every counter of both components"
curl -s -D "$T/metrics.h" "$URL/metrics" > "$T/metrics.txt"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/metrics.h" && ok "metrics content type" || fail "metrics content type"
M=$(python3 "$PROM" "$T/metrics.txt" ipfixd_collector_records_total ipfixd_mediator_records_total 'ipfixd_mediator_pipeline_out_total{pipeline="all"}')
check_eq "metrics parse; collector records" "$(pyget "$M" 'int(d["values"]["ipfixd_collector_records_total"])')" 50000
check_eq "metrics: mediator records" "$(pyget "$M" 'int(d["values"]["ipfixd_mediator_records_total"])')" 50000
check_ge "metrics: series" "$(pyget "$M" 'd["series"]')" 60

echo "# the bearer token and request checks"
check_eq "reload without a token" "$(status POST /api/v1/reload '')" 401
check_eq "reload with a wrong token" "$(status POST /api/v1/reload '' wrong)" 401
check_eq "drain without a token" "$(status POST /api/v1/drain '')" 401
check_eq "GET needs no token" "$(status GET /api/v1/pod)" 200
check_eq "malformed JSON" "$(status POST /api/v1/reload '{"mediator": ' "$TOKEN")" 400
check_eq "unknown path" "$(status GET /api/v1/nope)" 404
check_eq "wrong method" "$(status GET /api/v1/reload)" 405
{ printf '{"x":"'; head -c 2000000 /dev/zero | tr '\0' ' '; printf '"}'; } > "$T/big.json"
check_eq "body over the cap" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" --data-binary @"$T/big.json" "$URL/api/v1/reload")" 413

echo "# reload: invalid refused and nothing changes; valid applied"
V0=$(pyget "$(body GET /api/v1/pod)" 'd["components"]["mediator"]["config_version"]')
BAD=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["pipelines"].append({"name":"web","filter":"proto = = 6"}); print(json.dumps({"mediator": c}))' "$MED_CFG")
R=$(http POST /api/v1/reload "$BAD" "$TOKEN")
check_eq "reload invalid: 400" "${R%% *}" 400
echo "${R#* }" | grep -q "filter" && ok "reload invalid: the error names the key" || fail "reload invalid: message ${R#* }"
check_eq "reload invalid: config version unchanged" "$(pyget "$(body GET /api/v1/pod)" 'd["components"]["mediator"]["config_version"]')" "$V0"
check_eq "reload invalid: pipelines unchanged" "$(pyget "$(body GET /api/v1/pod)" '[p["name"] for p in d["components"]["mediator"]["pipelines"]]')" "['all']"
GOOD=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c["pipelines"].append({"name":"web","filter":"proto == 6"}); print(json.dumps({"mediator": c}))' "$MED_CFG")
R=$(http POST /api/v1/reload "$GOOD" "$TOKEN")
check_eq "reload valid: 200" "${R%% *}" 200
echo "${R#* }" | grep -q "pipeline web: added" && ok "reload valid: says what changed" || fail "reload valid: ${R#* }"
for _ in $(seq 30); do
        PL=$(pyget "$(body GET /api/v1/pod)" '[p["name"] for p in d["components"]["mediator"]["pipelines"]]')
        [ "$PL" = "['all', 'web']" ] && break
        sleep 0.1
done
check_eq "reload valid: the new pipeline runs" "$PL" "['all', 'web']"

echo "# SIGHUP: both components re-read their files (the pipeline added in memory goes)"
kill -HUP "$CTL"
for _ in $(seq 50); do
        PL=$(pyget "$(body GET /api/v1/pod)" '[p["name"] for p in d["components"]["mediator"]["pipelines"]]')
        [ "$PL" = "['all']" ] && break
        sleep 0.1
done
check_eq "SIGHUP: the mediator runs its file's pipelines again" "$PL" "['all']"
grep -q "SIGHUP: both components re-read" "$T/controller.log" && ok "SIGHUP logged" || fail "SIGHUP not logged"
kill -0 "$CTL" && ok "SIGHUP: the controller runs on" || fail "SIGHUP killed the controller"

echo "# readiness follows the mediator: killed, then restarted by the controller"
MPID=$(pgrep -f "ipfixd-mediator --config $T/mediator.json" | head -1)
kill -9 "$MPID"
R=$(http GET /readyz)
for _ in $(seq 20); do [ "${R%% *}" = 503 ] && break; sleep 0.05; R=$(http GET /readyz); done
check_eq "readyz 503 within a second of the mediator's death" "${R%% *}" 503
echo "${R#* }" | grep -q mediator && ok "readyz says why (${R#* })" || fail "readyz reason: ${R#* }"
check_eq "readyz 200 once the mediator is back" "$(wait_status 200 /readyz 150)" 200
NEWPID=$(pgrep -f "ipfixd-mediator --config $T/mediator.json" | head -1)
[ -n "$NEWPID" ] && [ "$NEWPID" != "$MPID" ] && ok "the controller restarted the mediator" || fail "mediator not restarted"

echo "# drain under traffic loses nothing that was read"
BEFORE=$(json_lines)
"$IPFIXD_GEN" --records 400000 --rate 100000 --seed 62 "127.0.0.1:$P" > "$T/gen-drain.json" 2> /dev/null &
GP=$!
sleep 1
R=$(http POST /api/v1/drain '' "$TOKEN")
check_eq "drain: 200" "${R%% *}" 200
wait "$GP" 2>/dev/null
CREC=$(pod_counter collector records)
check_ge "drain: the collector had read records under traffic" "$CREC" 50001
# The mediator restarted above (its counters with it) after the first 50000 records.
check_eq "drain: the mediator received every record the collector decoded" \
        "$(wait_pod_counter mediator records $((CREC - 50000)))" $((CREC - 50000))
for _ in $(seq 30); do [ "$(json_lines)" -ge "$CREC" ] && break; sleep 0.1; done
check_eq "drain: every record the collector read is in the mediator's output" "$(json_lines)" "$CREC"
check_eq "drain: readyz is 503 while drained" "$(status GET /readyz)" 503

echo "# SIGTERM stops the pod"
kill -TERM "$CTL"
RC=0
wait "$CTL" || RC=$?
check_eq "controller exit code" "$RC" 0
check_eq "no component left" "$(pgrep -fc "$T/(collector|mediator).json" || true)" 0
check_eq "no dbus-daemon left" "$(pgrep -fc "dbus-daemon.*$T" || true)" 0
: "$BEFORE"

finish
