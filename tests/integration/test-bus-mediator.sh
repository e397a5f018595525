#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# org.ipfixd.Mediator1 end to end over a private dbus-daemon, driven with busctl: a mediator
# started before the bus exists appears on it; introspection, properties and counters after
# real traffic (ipfixd-gen -> ipfixd-collector -> ipfixd-mediator); ListPipelines,
# GetMetrics, Validate and Reload (errors name the key; a new pipeline appears in the changes
# and the metrics; Reload("") re-reads the file); OutputStateChanged, Degraded and Recovered
# for an ipfix-tcp output nobody listens to; the signal rate limit; the bus going away and
# coming back while the data path runs on; Drain() under traffic (every record the mediator
# received reached its outputs, aggregations flushed); SIGTERM after the drain.
# Skips (77) without dbus-daemon or busctl.
. "$(dirname "$0")/lib.sh"

command -v dbus-daemon > /dev/null || { echo "dbus-daemon not found: skipping"; exit 77; }
command -v busctl > /dev/null || { echo "busctl not found: skipping"; exit 77; }

PROM="$(dirname "$0")/prom-check.py"
BUS="unix:path=$T/bus"
DEST=(org.ipfixd.Mediator /org/ipfixd/Mediator)
IFACE=org.ipfixd.Mediator1

cat > "$T/bus.conf" <<XML
<busconfig><type>custom</type><listen>unix:path=$T/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>
XML

start_bus() {
        rm -f "$T/bus"
        dbus-daemon --config-file="$T/bus.conf" --print-address --nofork > "$T/bus.addr" 2>> "$T/bus.err" &
        BUS_PID=$!
        PIDS+=($BUS_PID)
        for _ in $(seq 100); do [ -S "$T/bus" ] && return 0; sleep 0.05; done
        echo "dbus-daemon did not start"; cat "$T/bus.err"; return 1
}
stop_bus() {
        kill "$BUS_PID" 2>/dev/null
        wait "$BUS_PID" 2>/dev/null
        rm -f "$T/bus"
}
bctl() { busctl --address="$BUS" "$@"; }
mcall() { bctl --timeout=60 call "${DEST[@]}" "$IFACE" "$@"; }
# mcall_s METHOD [SIG ARGS]: the string the method returns, as is (busctl --json=short).
mcall_s() {
        bctl --timeout=60 --json=short call "${DEST[@]}" "$IFACE" "$@" |
                python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["data"][0])'
}
prop() { bctl get-property "${DEST[@]}" "$IFACE" "$1" 2>/dev/null | cut -d' ' -f2- | tr -d '"'; }
wait_prop() { # NAME VALUE [tries x 0.1 s]: polls until the property equals VALUE; prints it
        local v=""
        for _ in $(seq "${3:-100}"); do
                v=$(prop "$1")
                [ "$v" = "$2" ] && break
                sleep 0.1
        done
        echo "$v"
}
on_bus() { # waits up to 15 s for the mediator's name on the bus
        for _ in $(seq 150); do
                bctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                        NameHasOwner s org.ipfixd.Mediator 2>/dev/null | grep -q true && return 0
                sleep 0.1
        done
        return 1
}
fnv() { # FNV-1a 64 of a file's bytes or of a string
        python3 - "$@" <<'PY'
import os, sys
a = sys.argv[1]
data = open(a, "rb").read() if os.path.exists(a) else a.encode()
h = 0xcbf29ce484222325
for b in data:
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)
PY
}
pyget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
json_lines() { cat "$T"/out/"$1"* "$T"/out/."$1"* 2>/dev/null | grep -c . ; }
monitor() { # FILE SECONDS: records the mediator's signals in the background
        timeout "$2" busctl --address="$BUS" monitor \
                --match "type='signal',path='/org/ipfixd/Mediator'" > "$1" 2>&1 &
        MON_PID=$!
        sleep 0.5
}
wait_grep() { # FILE PATTERN [tries x 0.1 s]
        for _ in $(seq "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
        return 1
}

mkdir -p "$T/out"
P=$(free_port)
DEAD=$(free_port)
cat > "$T/med.json" <<JSON
{ "input": "ipc://$T/in.sock", "query_listen": "", "store_max_flows": 0,
  "metrics_file": "$T/med.prom", "stats_interval_s": 1, "shutdown_timeout_ms": 20000,
  "pipelines": [
    { "name": "all", "outputs": [ { "type": "json", "path": "$T/out/all" } ] },
    { "name": "agg", "aggregate": { "keys": ["proto"], "window_s": 86400, "late_s": 3600 },
      "outputs": [ { "type": "json", "path": "$T/out/agg" } ] } ] }
JSON
# reload_doc EXTRA_PIPELINES_JSON: the file's configuration with more pipelines appended
reload_doc() {
        python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["pipelines"] += json.loads(sys.argv[2]); print(json.dumps(c))' "$T/med.json" "$1"
}

echo "# the mediator starts before the bus exists, retries and appears"
IPFIXD_BUS_ADDRESS="$BUS" "$IPFIXD_MEDIATOR" --config "$T/med.json" 2> "$T/med.log" &
MED_PID=$!
PIDS+=($MED_PID)
for _ in $(seq 100); do grep -q "^<6>Mediator " "$T/med.log" 2>/dev/null && break; sleep 0.05; done
sleep 1
start_bus
on_bus && ok "mediator appeared on a bus started after it" || fail "mediator not on the bus"
bctl introspect "${DEST[@]}" > "$T/introspect" 2>&1
for m in .GetMetrics .Validate .Reload .Drain .ListPipelines .OutputStateChanged .Reloaded \
         .Degraded .Recovered .Ready .State .ConfigVersion .StartedMs .records .signals_dropped; do
        grep -q "^\\$m " "$T/introspect" || fail "introspect: $m missing"
done
grep -q "^$IFACE " "$T/introspect" && ok "busctl introspect shows $IFACE" || fail "introspect"
check_eq "State running once the first tick saw the outputs" "$(wait_prop State running)" running
check_eq "Ready" "$(prop Ready)" true
check_eq "ConfigVersion is FNV-1a 64 of the file" "$(prop ConfigVersion)" "$(fnv "$T/med.json")"
NOW=$(date +%s%3N)
check_eq "StartedMs within the last minute" "$(( NOW - $(prop StartedMs) < 60000 ))" 1

echo "# traffic: properties, ListPipelines and GetMetrics agree with the generator"
start_collector in --listen "tcp://127.0.0.1:$P"        # pushes to ipc://$T/in.sock
G=$("$IPFIXD_GEN" --records 20000 --connections 2 --seed 7 "127.0.0.1:$P")
N=$(json_get "$G" records)
check_eq "records property equals what the generator sent" "$(wait_prop records "$N" 300)" "$N"
check_ge "batches property" "$(prop batches)" 1
check_eq "bad_batches" "$(prop bad_batches)" 0
L=$(mcall_s ListPipelines)
check_eq "ListPipelines: names" "$(pyget "$L" '[p["name"] for p in d]')" "['all', 'agg']"
check_eq "ListPipelines: all in/out" "$(pyget "$L" '[d[0]["counters"][k] for k in ("in", "passed", "out", "filtered")]')" "[$N, $N, $N, 0]"
check_eq "ListPipelines: every counter key" "$(pyget "$L" 'sorted(d[0]["counters"])')" \
        "['aggregated', 'duplicates', 'filtered', 'in', 'out', 'output_errors', 'passed']"
check_eq "ListPipelines: the json output" "$(pyget "$L" '[(o["type"], o["target"], o["state"], o["counters"]["records"]) for o in d[0]["outputs"]]')" \
        "[('json', '$T/out/all', 'open', $N)]"
check_eq "ListPipelines: output counter keys" "$(pyget "$L" 'sorted(d[0]["outputs"][0]["counters"])')" \
        "['bytes', 'dropped', 'errors', 'files', 'messages', 'reconnects', 'records']"
check_eq "the json output holds what the counters say" "$(json_lines all)" "$N"
mcall_s GetMetrics > "$T/metrics.txt"
M=$(python3 "$PROM" "$T/metrics.txt" ipfixd_mediator_records_total ipfixd_mediator_signals_dropped_total ipfixd_mediator_ready)
[ $? -eq 0 ] && ok "GetMetrics is valid Prometheus text" || fail "GetMetrics format: $M"
check_eq "GetMetrics: ipfixd_mediator_records_total" "$(pyget "$M" 'int(d["values"]["ipfixd_mediator_records_total"])')" "$N"
check_eq "GetMetrics: ready gauge" "$(pyget "$M" 'int(d["values"]["ipfixd_mediator_ready"])')" 1

echo "# Validate and Reload"
V0=$(prop ConfigVersion)
BAD=$(reload_doc '[{"name":"web","filter":"proto = = 6"}]')
if command -v dbus-send > /dev/null; then
        E=$(dbus-send --bus="$BUS" --print-reply --dest=org.ipfixd.Mediator /org/ipfixd/Mediator \
                "$IFACE.Validate" string:"$BAD" 2>&1)
        echo "$E" | grep -q "org.ipfixd.Error.InvalidConfig" && ok "Validate: error org.ipfixd.Error.InvalidConfig" || fail "Validate error name: $E"
fi
E=$(mcall Validate s "$BAD" 2>&1) && fail "Validate accepted a bad filter" || true
echo "$E" | grep -q 'pipelines\[2\] (web).filter: column' && ok "Validate: the error names the key ($E)" || fail "Validate message: $E"
E=$(mcall Validate s '{"no_such_key": 1}' 2>&1)
echo "$E" | grep -q "no_such_key" && ok "Validate: unknown key named" || fail "Validate unknown key: $E"
E=$(mcall Validate s '{"pipelines": [' 2>&1)
echo "$E" | grep -q "line 1" && ok "Validate: JSON syntax error placed" || fail "Validate syntax: $E"
mcall Validate s "$(reload_doc '[{"name":"web","filter":"proto == 6"}]')" > /dev/null && ok "Validate: a good document passes" || fail "Validate good"
check_eq "Validate changes nothing" "$(prop ConfigVersion) $(prop reloads) $(prop reload_failures)" "$V0 0 0"
E=$(mcall Reload s "$BAD" 2>&1) && fail "Reload accepted a bad filter" || true
echo "$E" | grep -q 'pipelines\[2\] (web).filter: column' && ok "Reload invalid: the error names the key" || fail "Reload message: $E"
check_eq "Reload invalid: counted, version unchanged" "$(prop reload_failures) $(prop ConfigVersion)" "1 $V0"
monitor "$T/mon-reload" 6
GOOD=$(reload_doc "[{\"name\":\"extra\",\"filter\":\"proto == 6\",\"outputs\":[{\"type\":\"json\",\"path\":\"$T/out/extra\"}]}]")
C=$(mcall_s Reload s "$GOOD")
check_eq "Reload: the changes name the new pipeline" "$(pyget "$C" '"pipeline extra: added" in d')" True
check_eq "Reload: ConfigVersion is the new text's" "$(prop ConfigVersion)" "$(fnv "$GOOD")"
check_eq "Reload: counted" "$(prop reloads)" 1
wait_grep "$T/mon-reload" "extra: added" && ok "Reloaded signal carries the changes" || fail "Reloaded signal: $(cat "$T/mon-reload")"
"$IPFIXD_GEN" --records 5000 --seed 8 "127.0.0.1:$P" > /dev/null
N=$((N + 5000))
check_eq "records after the reload" "$(wait_prop records "$N" 300)" "$N"
mcall_s GetMetrics > "$T/metrics.txt"
grep -q '^ipfixd_mediator_pipeline_in_total{pipeline="extra"} 5000$' "$T/metrics.txt" && ok "metrics show the new pipeline" || fail "metrics: $(grep extra "$T/metrics.txt")"
check_eq "the unchanged pipeline kept its counters" "$(pyget "$(mcall_s ListPipelines)" 'd[0]["counters"]["out"]')" "$N"
C=$(mcall_s Reload s "")
check_eq "Reload(\"\") re-reads the file" "$(pyget "$C" '"pipeline extra: removed" in d')" True
check_eq "Reload(\"\"): ConfigVersion of the file again" "$(prop ConfigVersion)" "$V0"

echo "# an ipfix-tcp output nobody listens to: OutputStateChanged, Degraded, Recovered"
monitor "$T/mon-out" 15
C=$(mcall_s Reload s "$(reload_doc "[{\"name\":\"down\",\"outputs\":[{\"type\":\"ipfix-tcp\",\"target\":\"127.0.0.1:$DEAD\",\"reconnect_min_ms\":50,\"reconnect_max_ms\":200}]}]")")
wait_grep "$T/mon-out" "127.0.0.1:$DEAD" && ok "OutputStateChanged seen for 127.0.0.1:$DEAD" || fail "no OutputStateChanged: $(cat "$T/mon-out")"
grep -A8 "Member=OutputStateChanged" "$T/mon-out" | grep -qE 'STRING "(connecting|backoff)"' && ok "OutputStateChanged says connecting/backoff" || fail "state in signal"
check_eq "State degraded while the output is down" "$(wait_prop State degraded)" degraded
check_eq "degraded is still Ready" "$(prop Ready)" true
wait_grep "$T/mon-out" "Member=Degraded" && ok "Degraded signal" || fail "no Degraded signal"
grep -A6 "Member=Degraded" "$T/mon-out" | grep -q "127.0.0.1:$DEAD" && ok "Degraded names the output" || fail "Degraded reason"
check_eq "ListPipelines: the output's state" "$(pyget "$(mcall_s ListPipelines)" '[o["state"] in ("connecting", "backoff") for p in d if p["name"] == "down" for o in p["outputs"]]')" "[True]"
grep -q "PropertiesChanged" "$T/mon-out" && ok "PropertiesChanged for State" || fail "no PropertiesChanged"
mcall_s Reload s "" > /dev/null
check_eq "State running once the output is gone" "$(wait_prop State running)" running
wait_grep "$T/mon-out" "Member=Recovered" && ok "Recovered signal" || fail "no Recovered signal"
wait_grep "$T/mon-out" 'STRING "removed"' && ok "OutputStateChanged removed" || fail "no removed signal"

echo "# signals beyond $((20)) per second are dropped and counted"
MANY=$(python3 -c 'import json; print(json.dumps([{"name": "burst%d" % p, "outputs": [{"type": "ipfix-tcp", "target": "127.0.0.1:%d" % port, "reconnect_min_ms": 1000} for port in range(1, 17)]} for p in (1, 2)]))')
mcall_s Reload s "$(reload_doc "$MANY")" > /dev/null
for _ in $(seq 50); do [ "$(prop signals_dropped)" -gt 0 ] 2>/dev/null && break; sleep 0.1; done
check_ge "signals_dropped counts the excess" "$(prop signals_dropped)" 1
mcall_s Reload s "" > /dev/null
check_eq "back to running" "$(wait_prop State running)" running
mcall_s GetMetrics > "$T/metrics.txt"
check_ge "ipfixd_mediator_signals_dropped_total" "$(awk '$1 == "ipfixd_mediator_signals_dropped_total" { print $2 }' "$T/metrics.txt")" 1

echo "# the bus goes away: the data path runs on; it comes back: so does the object"
stop_bus
"$IPFIXD_GEN" --records 10000 --seed 9 "127.0.0.1:$P" > /dev/null
N=$((N + 10000))
check_eq "records processed without a bus" "$(for _ in $(seq 300); do v=$(metric med ipfixd_mediator_records_total); [ "$v" = "$N" ] && break; sleep 0.1; done; echo "$v")" "$N"
check_eq "json output complete without a bus" "$(json_lines all)" "$N"
kill -0 "$MED_PID" && ok "mediator still running" || fail "mediator died with the bus"
start_bus
on_bus && ok "mediator back on the restarted bus" || fail "mediator did not come back"
check_eq "records property after the reconnect" "$(prop records)" "$N"
check_eq "State after the reconnect" "$(prop State)" running

echo "# Drain under traffic"
agg_flows() { cat "$T"/out/agg* "$T"/out/.agg* 2>/dev/null | python3 -c 'import json,sys; print(sum(json.loads(l)["flows"] for l in sys.stdin if l.strip()))'; }
R0=$(prop records)
# One-day windows (emitted an hour after midnight UTC): the aggregation holds its records.
check_eq "agg holds its records until flushed" "$(( $(agg_flows) < R0 ))" 1
"$IPFIXD_GEN" --records 40000 --rate 20000 --connections 2 --seed 10 "127.0.0.1:$P" > "$T/gen-drain.out" &
GEN_PID=$!
sleep 0.5
mcall Drain > "$T/drain.out" 2>&1 &
DRAIN_PID=$!
sleep 0.3
E=$(mcall Drain 2>&1) && fail "a second Drain was accepted" || true
echo "$E" | grep -qi "already running" && ok "a second Drain is refused while one runs" || fail "second Drain: $E"
E=$(mcall Reload s "" 2>&1) && fail "Reload accepted during a drain" || true
echo "$E" | grep -q "drain" && ok "Reload refused while draining" || fail "Reload while draining: $E"
check_eq "State draining" "$(prop State)" draining
check_eq "not Ready while draining" "$(prop Ready)" false
wait "$DRAIN_PID" && ok "Drain() replied" || fail "Drain failed: $(cat "$T/drain.out")"
DONE_RECORDS=$(prop records)
wait "$GEN_PID"
G=$(cat "$T/gen-drain.out")
check_eq "Drain waited for the traffic: every record sent arrived before the reply" "$((DONE_RECORDS - R0))" "$(json_get "$G" records)"
check_eq "State drained" "$(prop State)" drained
check_eq "not Ready once drained" "$(prop Ready)" false
L=$(mcall_s ListPipelines)
N=$DONE_RECORDS
check_eq "drained: pass-through pipeline out == in" "$(pyget "$L" '(d[0]["counters"]["in"], d[0]["counters"]["out"])')" "($N, $N)"
check_eq "drained: every record in the json output" "$(json_lines all)" "$N"
check_eq "drained: the aggregation was flushed (flows conserved)" \
        "$(agg_flows)" "$N"
check_eq "drained: agg pipeline in" "$(pyget "$L" 'd[1]["counters"]["in"]')" "$N"
kill -0 "$MED_PID" && ok "the mediator keeps running after the drain" || fail "mediator exited after Drain"

stop_collector
kill -TERM "$MED_PID"
RC=0
wait "$MED_PID" || RC=$?
check_eq "SIGTERM after the drain: exit code" "$RC" 0
check_eq "no temp files left" "$(ls -a "$T/out" | grep -c '\.tmp$')" 0
finish
