#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The collector's D-Bus object (org.ipfixd.Collector1) against a real private dbus-daemon:
# the collector starts before the bus exists and appears once it does; properties, methods
# and signals as common/bus-names.h lists them; Validate/Reload name the bad key; a second
# collector does not take the name; losing the bus under traffic does not disturb the data
# path, and the collector comes back when the bus does; with template_store=redis it is
# degraded (still Ready) while Redis is away; Drain under traffic hands over every
# record that was decoded, then SIGTERM exits at once.
. "$(dirname "$0")/lib.sh"

command -v dbus-daemon > /dev/null || { echo "dbus-daemon not installed: skipped"; exit 77; }
command -v busctl > /dev/null || { echo "busctl not installed: skipped"; exit 77; }

A="unix:path=$T/bus"
OBJ=(org.ipfixd.Collector /org/ipfixd/Collector org.ipfixd.Collector1)
cat > "$T/bus.conf" <<XML
<busconfig><type>custom</type><listen>unix:path=$T/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>
XML
start_bus() {
        dbus-daemon --config-file="$T/bus.conf" --print-address --nofork > "$T/bus.addr" 2> /dev/null &
        BUS_PID=$!
        PIDS+=($BUS_PID)
        for _ in $(seq 50); do [ -S "$T/bus" ] && return 0; sleep 0.1; done
        echo "dbus-daemon did not start"; return 1
}
bc() { busctl --address="$A" "$@"; }
prop() { # NAME: the value of a property ("b true" -> "true")
        bc get-property "${OBJ[@]}" "$1" 2> /dev/null | cut -d' ' -f2-
}
call() { # METHOD [SIGNATURE ARGS...]
        bc --timeout=30 call "${OBJ[@]}" "$@"
}
wait_prop() { # NAME VALUE [tries of 0.1 s]: polls until the property has VALUE, prints it
        local v=""
        for _ in $(seq "${3:-50}"); do
                v=$(prop "$1")
                [ "$v" = "$2" ] && break
                sleep 0.1
        done
        echo "$v"
}
fnv() { # FILE: FNV-1a 64 of its text, 16 hex digits
        python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)' "$1"
}
tap_records() { # the running count from the tap's last progress line
        sed -n 's/^ipfixd-tap: records=\([0-9]*\).*/\1/p' "$T/a.tap.err" | tail -n 1
}

P=$(free_port)
cat > "$T/collector.json" <<JSON
{ "listeners": [ { "transport": "tcp", "address": "127.0.0.1", "port": $P } ],
  "workers": 2, "shutdown_timeout_ms": 3000 }
JSON

echo "# the collector starts before the bus exists"
start_tap a --progress 0.2 --timeout 240
export IPFIXD_BUS_ADDRESS="$A"
start_collector a --config "$T/collector.json"
unset IPFIXD_BUS_ADDRESS
sleep 0.5
for _ in $(seq 30); do grep -q "not reachable yet" "$T/a.log" && break; sleep 0.1; done
grep -q "not reachable yet" "$T/a.log" && ok "no bus yet: logged, still running" ||
        fail "no 'not reachable' line in the log"
start_bus
check_eq "appears on the bus once it exists: Ready" "$(wait_prop Ready true)" "true"
check_eq "State" "$(prop State)" '"running"'
bc introspect org.ipfixd.Collector /org/ipfixd/Collector > "$T/introspect" 2>&1
grep -q "^org.ipfixd.Collector1 " "$T/introspect" && ok "introspect: org.ipfixd.Collector1" ||
        fail "introspect: interface missing"
for m in .Drain .GetMetrics .ListExporters .ListTemplates .Reload .Validate .Listeners \
        .ConfigVersion .StartedMs .records .signals_dropped .ExporterConnected \
        .ExporterDisconnected .TemplateLearned .TemplateWithdrawn .Degraded .Recovered; do
        grep -q "^$m " "$T/introspect" || fail "introspect: $m missing"
done
grep -q '^\.Ready .*emits-change' "$T/introspect" && ok "Ready emits PropertiesChanged" ||
        fail "Ready not emits-change"
check_eq "ConfigVersion is FNV-1a of the file" "$(prop ConfigVersion)" "\"$(fnv "$T/collector.json")\""
STARTED=$(prop StartedMs)
NOW=$(date +%s%3N)
[ "$STARTED" -gt $((NOW - 60000)) ] && [ "$STARTED" -le "$NOW" ] && ok "StartedMs ($STARTED)" ||
        fail "StartedMs $STARTED not within the last minute of $NOW"

echo "# traffic: counters, lists, metrics, signals"
timeout 6 busctl --address="$A" monitor \
        --match="type='signal',interface='org.ipfixd.Collector1'" > "$T/monitor" 2>&1 &
MON=$!
sleep 0.5
G=$("$IPFIXD_GEN" --records 50000 --connections 2 --seed 21 "127.0.0.1:$P")
check_eq "gen sent" "$(json_get "$G" records)" 50000
check_eq "records property equals what gen sent" "$(wait_prop records "50000")" 50000
check_eq "tcp_accepted property" "$(prop tcp_accepted)" 2
check_eq "Listeners" "$(prop Listeners)" "1 \"tcp\" \"127.0.0.1\" $P false 2 50000"
L=$(call ListExporters)
check_eq "ListExporters" "$(echo "$L" | cut -d' ' -f1-6)" "a(sustttu) 1 \"127.0.0.1\" 1 \"tcp\" 50000"
check_eq "ListExporters: one template" "$(echo "$L" | awk '{ print $NF }')" 1
check_eq "ListTemplates" "$(call ListTemplates)" 'a(suqqq) 1 "127.0.0.1" 1 256 12 0'
call GetMetrics > "$T/metrics" 2>&1
grep -q 'ipfixd_collector_records_total 50000' "$T/metrics" && ok "GetMetrics has the records" ||
        fail "GetMetrics: $(head -c 300 "$T/metrics")"
wait "$MON" 2> /dev/null
for s in ExporterConnected ExporterDisconnected TemplateLearned; do
        grep -qi "member=$s" "$T/monitor" && ok "signal $s seen" || fail "signal $s not seen"
done
grep -i -A6 "member=TemplateLearned" "$T/monitor" | grep -q "UINT16 256" &&
        ok "TemplateLearned carries template 256" || fail "TemplateLearned without template 256"
check_eq "signals_dropped" "$(prop signals_dropped)" 0

echo "# Validate and Reload"
if call Validate s '{"workers": 0}' > "$T/validate" 2>&1; then
        fail "Validate accepted workers=0"
else
        grep -q "workers" "$T/validate" && ok "Validate names the key: $(cat "$T/validate")" ||
                fail "Validate error: $(cat "$T/validate")"
fi
dbus-send --bus="$A" --print-reply --dest=org.ipfixd.Collector /org/ipfixd/Collector \
        org.ipfixd.Collector1.Validate string:'{"nonsense": 1}' > "$T/validate2" 2>&1
grep -q "org.ipfixd.Error.InvalidConfig" "$T/validate2" && grep -q nonsense "$T/validate2" &&
        ok "Validate: org.ipfixd.Error.InvalidConfig" || fail "Validate error name: $(cat "$T/validate2")"
call Validate s '{"workers": 4}' > /dev/null 2>&1 && ok "Validate accepts a valid config" ||
        fail "Validate refused a valid config"
if call Reload s '{"log_level": "loud"}' > "$T/reload0" 2>&1; then
        fail "Reload accepted log_level=loud"
else
        grep -q "log_level" "$T/reload0" && ok "Reload refuses an invalid config, naming the key" ||
                fail "Reload error: $(cat "$T/reload0")"
fi
check_eq "ConfigVersion unchanged after a refused reload" "$(prop ConfigVersion)" "\"$(fnv "$T/collector.json")\""
NEW='{"listeners": [{"transport": "tcp", "address": "127.0.0.1", "port": '$P'}], "workers": 3, "log_level": "debug", "shutdown_timeout_ms": 3000}'
R=$(call Reload s "$NEW")
echo "$R" | grep -q 'log_level: info -> debug' && ok "Reload: log_level applied" || fail "Reload: $R"
echo "$R" | grep -q 'workers: changed; takes effect after a restart' &&
        ok "Reload: workers needs a restart" || fail "Reload: $R"
echo "$R" | grep -q 'listeners' && fail "Reload: listeners reported changed: $R" ||
        ok "Reload: same listeners are not a change"
printf '%s' "$NEW" > "$T/new.json"
check_eq "ConfigVersion follows the reload" "$(prop ConfigVersion)" "\"$(fnv "$T/new.json")\""
R=$(call Reload s "")
echo "$R" | grep -q 'log_level: debug -> info' && ok "Reload \"\" re-reads the file" || fail "Reload '': $R"
check_eq "ConfigVersion is the file's again" "$(prop ConfigVersion)" "\"$(fnv "$T/collector.json")\""

echo "# a second collector does not take the name"
OWNER=$(bc status org.ipfixd.Collector 2> /dev/null | sed -n 's/^PID=//p')
check_eq "the name belongs to the first collector" "$OWNER" "$COLL_PID"
P2=$(free_port)
IPFIXD_BUS_ADDRESS="$A" "$IPFIXD_COLLECTOR" --listen "tcp://127.0.0.1:$P2" \
        --set "output=ipc://$T/b.sock" 2> "$T/b.log" &
B_PID=$!
PIDS+=($B_PID)
for _ in $(seq 50); do grep -q "belongs to another process" "$T/b.log" && break; sleep 0.1; done
grep -q "belongs to another process" "$T/b.log" && ok "second collector: name refused, logged" ||
        fail "second collector log: $(cat "$T/b.log")"
check_eq "the name still belongs to the first" \
        "$(bc status org.ipfixd.Collector 2> /dev/null | sed -n 's/^PID=//p')" "$COLL_PID"
kill "$B_PID"; wait "$B_PID" 2> /dev/null

echo "# the bus goes away under traffic and comes back"
"$IPFIXD_GEN" --records 60000 --rate 20000 --seed 22 "127.0.0.1:$P" > "$T/gen2" &
GEN=$!
sleep 1
kill -9 "$BUS_PID"; wait "$BUS_PID" 2> /dev/null
BEFORE=$(tap_records)
sleep 1
AFTER=$(tap_records)
[ "$AFTER" -gt "$BEFORE" ] && ok "without the bus the data path goes on ($BEFORE -> $AFTER)" ||
        fail "tap stalled without the bus: $BEFORE -> $AFTER"
grep -q "Lost the bus" "$T/a.log" && ok "the loss is logged" || fail "no 'Lost the bus' in the log"
start_bus
T0=$(date +%s%N)
check_eq "back on the bus" "$(wait_prop Ready true 80)" "true"
echo "# (reappeared after $(( ($(date +%s%N) - T0) / 1000000 )) ms)"
wait "$GEN"
check_eq "gen sent (bus lost)" "$(json_get "$(cat "$T/gen2")" records)" 60000
check_eq "records after the bus came back" "$(wait_prop records 110000)" 110000
check_eq "connected twice, logged twice" "$(grep -c "Connected to the bus" "$T/a.log")" 2

if command -v redis-server > /dev/null; then
        echo "# template_store=redis: degraded while Redis is away, recovered when it comes"
        # Its own bus, so the name is free: this collector owns it there.
        A2="unix:path=$T/bus2"
        sed "s#$T/bus<#$T/bus2<#" "$T/bus.conf" > "$T/bus2.conf"
        dbus-daemon --config-file="$T/bus2.conf" --nofork > /dev/null 2>&1 &
        PIDS+=($!)
        for _ in $(seq 50); do [ -S "$T/bus2" ] && break; sleep 0.1; done
        P3=$(free_port)
        IPFIXD_BUS_ADDRESS="$A2" "$IPFIXD_COLLECTOR" --listen "tcp://127.0.0.1:$P3" \
                --set "output=ipc://$T/r.sock" --set template_store=redis \
                --set "redis_address=unix:$T/redis.sock" 2> "$T/r.log" &
        R_PID=$!
        PIDS+=($R_PID)
        timeout 10 busctl --address="$A2" monitor \
                --match="type='signal',interface='org.ipfixd.Collector1'" > "$T/monitor3" 2>&1 &
        MON=$!
        prop2() { busctl --address="$A2" get-property "${OBJ[@]}" "$1" 2> /dev/null | cut -d' ' -f2-; }
        S2=""
        for _ in $(seq 60); do S2=$(prop2 State); [ "$S2" = '"degraded"' ] && break; sleep 0.1; done
        check_eq "Redis away: State" "$S2" '"degraded"'
        check_eq "Redis away: still Ready" "$(prop2 Ready)" "true"
        redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --appendonly no \
                > "$T/redis.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 100); do S2=$(prop2 State); [ "$S2" = '"running"' ] && break; sleep 0.1; done
        check_eq "Redis back: State" "$S2" '"running"'
        sleep 0.3
        kill "$MON" 2> /dev/null; wait "$MON" 2> /dev/null
        grep -qi "member=Degraded" "$T/monitor3" && grep -q "Redis at unix:$T/redis.sock" "$T/monitor3" &&
                ok "Degraded signal names Redis" || fail "no Degraded signal"
        grep -qi "member=Recovered" "$T/monitor3" && ok "Recovered signal" || fail "no Recovered signal"
        kill "$R_PID"; wait "$R_PID" 2> /dev/null
fi

echo "# Drain under traffic"
"$IPFIXD_GEN" --records 400000 --rate 40000 --connections 2 --seed 23 "127.0.0.1:$P" \
        > "$T/gen3" 2>&1 &
GEN=$!
PIDS+=($GEN)
sleep 1.5
timeout 6 busctl --address="$A" monitor \
        --match="type='signal',interface='org.freedesktop.DBus.Properties'" > "$T/monitor2" 2>&1 &
MON=$!
sleep 0.3
T0=$(date +%s%N)
call Drain > "$T/drain" 2>&1 && ok "Drain replied after $(( ($(date +%s%N) - T0) / 1000000 )) ms" ||
        fail "Drain: $(cat "$T/drain")"
check_eq "State after Drain" "$(prop State)" '"drained"'
check_eq "Ready after Drain" "$(prop Ready)" "false"
REC=$(prop records)
[ "$REC" -gt 110000 ] && [ "$REC" -lt 510000 ] && ok "drained while traffic flowed (records $REC)" ||
        fail "records after drain: $REC"
check_eq "records_sent equals records" "$(prop records_sent)" "$REC"
sleep 1
kill "$GEN" 2> /dev/null
check_eq "nothing is read after the drain" "$(prop records)" "$REC"
wait "$MON" 2> /dev/null
grep -q 'STRING "draining"' "$T/monitor2" && grep -q 'STRING "drained"' "$T/monitor2" &&
        ok "PropertiesChanged: draining, drained" || fail "PropertiesChanged not seen"
call Drain > /dev/null 2>&1 && ok "Drain again replies at once" || fail "second Drain"
kill -TERM "$TAP_PID"
tap_wait a
check_eq "every record the collector decoded reached the tap" "$(json_get "$S" records)" "$REC"

echo "# SIGTERM after the drain"
T0=$(date +%s%N)
stop_collector
MS=$(( ($(date +%s%N) - T0) / 1000000 ))
check_eq "exit code" "$RC" 0
[ "$MS" -lt 1500 ] && ok "exits at once after a drain ($MS ms)" || fail "exit took $MS ms"
finish
