#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mediator end to end on loopback with real peers: ipfixd-gen -> ipfixd-collector ->
# ipfixd-mediator. What the mediator writes is read back by independent decoders
# (ipfixDump from libfixbuf-tools, tshark) and by our own collector, and compared with what
# the generator sent: counts and octet/packet sums exactly, filters and anonymization
# record by record, aggregation by its totals. Also: the query service against the JSON
# ground truth, a downstream collector that goes away and comes back, SIGHUP reload
# (refused when invalid, lossless when valid) and SIGTERM flushing files.
. "$(dirname "$0")/lib.sh"

SUMMARY="$(dirname "$0")/flows-summary.py"
summary() { python3 "$SUMMARY" "$@"; }
jq_py() { # json python-expression-over-d
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
jq_file() { # file python-expression-over-d (answers too large for an argument)
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# start_mediator NAME CONFIG [args...]: PULLs ipc://$T/NAME.sock (where start_collector NAME
# pushes), metrics in $T/NAME-med.prom, log in $T/NAME-med.log; sets MED_PID.
start_mediator() {
        local name=$1 cfg=$2; shift 2
        "$IPFIXD_MEDIATOR" --config "$cfg" --set "input=ipc://$T/$name.sock" \
                --set "metrics_file=$T/$name-med.prom" --set stats_interval_s=1 \
                --set "pod_name=pod-$name" "$@" 2> "$T/$name-med.log" &
        MED_PID=$!
        PIDS+=($MED_PID)
        for _ in $(seq 100); do grep -q "Mediator pod-$name" "$T/$name-med.log" 2>/dev/null && return 0; sleep 0.05; done
        echo "mediator did not start"; cat "$T/$name-med.log"; return 1
}
stop_mediator() { # SIGTERM and wait; exit code in $RC
        kill -TERM "$MED_PID" 2>/dev/null
        RC=0
        wait "$MED_PID" || RC=$?
}
med_metric() { metric "$1-med" "$2"; }
wait_med_metric() { # NAME METRIC MIN: polls up to 30 s (the mediator may lag a loaded machine)
        local v=0
        for _ in $(seq 300); do
                v=$(med_metric "$1" "$2")
                [ "${v:-0}" -ge "$3" ] 2>/dev/null && break
                sleep 0.1
        done
        echo "$v"
}

mkdir -p "$T/out" "$T/anon"
head -c 32 /dev/urandom > "$T/cpan.key"

echo "# files: every record, a filter, aggregation, anonymization, JSON lines; queries"
P=$(free_port)
Q=$(free_port)
cat > "$T/files.json" <<JSON
{
  "query_listen": "tcp://127.0.0.1:$Q", "query_max_limit": 100000,
  "pipelines": [
    { "name": "all",
      "outputs": [ { "type": "ipfix-file", "path": "$T/out/all", "rotate_bytes": 2000000 },
                   { "type": "json", "path": "$T/out/alljson" } ] },
    { "name": "web", "filter": "proto == tcp and dst_port < 32768 and not src_addr in 10.128.0.0/9",
      "outputs": [ { "type": "ipfix-file", "path": "$T/out/web" } ] },
    { "name": "agg", "aggregate": { "keys": ["proto"], "window_s": 60 },
      "outputs": [ { "type": "ipfix-file", "path": "$T/out/agg" } ] },
    { "name": "anon",
      "anonymize": { "key_file": "$T/cpan.key", "src_addr": "truncate", "v4_prefix": 16,
                     "dst_addr": "cryptopan" },
      "outputs": [ { "type": "json", "path": "$T/anon/a" } ] }
  ]
}
JSON
start_mediator files "$T/files.json"
start_collector files --listen "tcp://127.0.0.1:$P"
G=$("$IPFIXD_GEN" --records 200000 --connections 4 --seed 21 "127.0.0.1:$P")
N=$(json_get "$G" records)
check_eq "files: mediator received every record" "$(wait_med_metric files ipfixd_mediator_records_total "$N")" "$N"

# Queries while the mediator holds the flows (store_source=input keeps every record).
QRY() { "$IPFIXD_QUERY" --endpoint "tcp://127.0.0.1:$Q" "$@"; }
A=$(QRY '{"v":1,"id":"p1","op":"ping"}')
check_eq "query ping ok" "$(jq_py "$A" 'd["ok"]')" True
check_eq "query ping echoes id and pod" "$(jq_py "$A" 'd["id"] + " " + d["pod"]')" "p1 pod-files"
# Ground truth: the "all" pipeline's JSON lines, still under their temp names (the files
# are complete up to the last batch: the json output writes whole lines per batch).
ALLJSON=$(find "$T/out" -name '*alljson*' | sort)
QRY '{"v":1,"op":"flows","filter":"proto == 17","limit":100000}' > "$T/a.json"
UDP_TRUTH=$(summary json $ALLJSON | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_proto"].get("17", 0))')
check_eq "query flows proto==17 count equals truth" "$(jq_file "$T/a.json" 'len(d["flows"])')" "$UDP_TRUTH"
check_eq "query flows all proto 17" "$(jq_file "$T/a.json" 'all(f["proto"] == 17 for f in d["flows"])')" True
check_eq "query flows sorted by end_ms desc" "$(jq_file "$T/a.json" 'all((a["end_ms"], a["seq"]) > (b["end_ms"], b["seq"]) for a, b in zip(d["flows"], d["flows"][1:]))')" True
# Cursor pagination: pages of 5000 cover the same set exactly once.
python3 - "$IPFIXD_QUERY" "tcp://127.0.0.1:$Q" "$UDP_TRUTH" > "$T/pages.out" <<'PY'
import json, subprocess, sys
q, ep, truth = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen, cursor, pages = set(), None, 0
while pages < 1000:
    req = {"v": 1, "op": "flows", "filter": "proto == 17", "limit": 5000}
    if cursor:
        req["cursor"] = cursor
    d = json.loads(subprocess.run([q, "--endpoint", ep, json.dumps(req)], capture_output=True,
                                  text=True, check=True).stdout)
    pages += 1
    for f in d["flows"]:
        if f["seq"] in seen:
            print("duplicate"); sys.exit(0)
        seen.add(f["seq"])
    cursor = d.get("next_cursor")
    if not cursor:
        break
print("ok" if len(seen) == truth else "got %d of %d" % (len(seen), truth), pages)
PY
check_eq "query cursor pages cover every flow once" "$(cut -d' ' -f1 "$T/pages.out")" ok
A=$(QRY '{"v":1,"op":"top","dim":"proto","metric":"octets","limit":10}')
TOP_TRUTH=$(python3 - $ALLJSON <<'PY'
import json, sys
s = {}
for p in sys.argv[1:]:
    for l in open(p):
        r = json.loads(l); s[str(r["proto"])] = s.get(str(r["proto"]), 0) + r["octets"]
print(sorted(s.items(), key=lambda kv: -kv[1]))
PY
)
check_eq "query top proto by octets equals truth" "$(jq_py "$A" 'sorted([(e["key"], e["octets"]) for e in d["entries"]], key=lambda kv: -kv[1])')" "$TOP_TRUTH"
check_eq "query top exact" "$(jq_py "$A" 'd["exact"]')" True
A=$(QRY '{"v":1,"op":"totals","step_s":60}')
check_eq "query totals octets" "$(jq_py "$A" 'sum(p["octets"] for p in d["points"])')" "$(json_get "$G" octets)"
A=$(QRY '{"v":1,"op":"exporters"}')
check_eq "query exporters" "$(jq_py "$A" '[(e["address"], e["odid"], e["flows"]) for e in d["exporters"]]')" "[('127.0.0.1', 1, $N)]"
A=$(QRY '{"v":1,"op":"flows","filter":"proto == ","limit":1}')
check_eq "query bad filter answered with an error naming the column" "$(jq_py "$A" 'd["ok"] == False and d["error"]["code"] == "bad_request" and "column" in d["error"]["message"]')" True
A=$(QRY '{"v":99,"op":"ping"}')
check_eq "query unknown version refused" "$(jq_py "$A" 'd["error"]["code"]')" unsupported_version

stop_collector
stop_mediator
check_eq "files: mediator exit code" "$RC" 0
check_eq "files: no temp files left" "$(ls -a "$T/out" | grep -c '\.tmp$')" 0
ALL=$(summary ipfixdump "$T"/out/all-*)
check_eq "ipfixDump reads every record" "$(json_get "$ALL" records)" "$N"
check_eq "ipfixDump octet sum" "$(json_get "$ALL" octets)" "$(json_get "$G" octets)"
check_eq "ipfixDump packet sum" "$(json_get "$ALL" packets)" "$(json_get "$G" packets)"
check_eq "ipfixDump count equals the mediator's output counter" "$(json_get "$ALL" records)" \
        "$(med_metric files 'ipfixd_mediator_output_records_total{pipeline="all",type="ipfix-file",target="'"$T"'/out/all"}')"
check_ge "size rotation produced several files" "$(ls "$T"/out/all-*.ipfix | wc -l)" 2
JS=$(summary json "$T"/out/alljson*)
check_eq "json lines: every record" "$(json_get "$JS" records)" "$N"
check_eq "json lines: octets" "$(json_get "$JS" octets)" "$(json_get "$G" octets)"
WEB_WHERE="r['proto'] == 6 and r['dst_port'] < 32768 and not (r['src_addr'].startswith('10.') and int(r['src_addr'].split('.')[1]) >= 128)"
WEB_TRUTH=$(summary json "$T"/out/alljson* --where "not ($WEB_WHERE)")
WEB=$(summary ipfixdump "$T"/out/web-* --where "$WEB_WHERE")
check_eq "filter: only matching flows written" "$(json_get "$WEB" failed)" 0
check_eq "filter: every matching flow written" "$(json_get "$WEB" records)" "$(json_get "$WEB_TRUTH" failed)"
check_eq "filter: pipeline counters add up" \
        "$(( $(med_metric files 'ipfixd_mediator_pipeline_filtered_total{pipeline="web"}') + $(json_get "$WEB" records) ))" "$N"
AGG=$(summary ipfixdump "$T"/out/agg-*)
check_eq "aggregation preserves octets" "$(json_get "$AGG" octets)" "$(json_get "$G" octets)"
check_eq "aggregation preserves packets" "$(json_get "$AGG" packets)" "$(json_get "$G" packets)"
check_eq "aggregation preserves the flow count" "$(json_get "$AGG" flows)" "$N"
check_eq "aggregation reduces records (3 protocols, <= 2 windows)" "$(jq_py "$AGG" 'd["records"] <= 6')" True
AN=$(summary json "$T"/anon/a*)
check_eq "anonymize: records" "$(json_get "$AN" records)" "$N"
check_eq "anonymize: sources truncated to /16" "$(jq_py "$AN" 'd["src_suffixes"]')" "['0.0']"
check_eq "anonymize: Crypto-PAn keeps distinct destinations distinct" "$(json_get "$AN" distinct_dst)" "$(json_get "$JS" distinct_dst)"
check_eq "anonymize: Crypto-PAn preserves the shared /8 prefix" "$(jq_py "$AN" 'len(d["dst_first_octets"])')" 1

echo "# de-duplication: the same flows from two exporters pass once"
P=$(free_port)
cat > "$T/dedup.json" <<JSON
{ "query_listen": "", "store_max_flows": 0,
  "pipelines": [ { "name": "dd", "dedup": { "tolerance_ms": 5000 },
                   "outputs": [ { "type": "json", "path": "$T/out/dd" } ] } ] }
JSON
start_mediator dedup "$T/dedup.json"
start_collector dedup --listen "tcp://127.0.0.1:$P"
"$IPFIXD_GEN" --records 20000 --seed 5 --bind 127.0.0.1 "127.0.0.1:$P" > /dev/null &
G1P=$!
"$IPFIXD_GEN" --records 20000 --seed 5 --bind 127.0.0.2 "127.0.0.1:$P" > /dev/null
wait "$G1P"
check_eq "dedup: both exporters received" "$(wait_med_metric dedup ipfixd_mediator_records_total 40000)" 40000
stop_collector
stop_mediator
check_eq "dedup: duplicates dropped" "$(med_metric dedup 'ipfixd_mediator_pipeline_duplicates_total{pipeline="dd"}')" 20000
check_eq "dedup: each flow written once" "$(json_get "$(summary json "$T"/out/dd*)" records)" 20000

echo "# TCP IPFIX output to a second collector (ours) and to tshark"
P=$(free_port)
P2=$(free_port)
cat > "$T/fwd.json" <<JSON
{ "query_listen": "",
  "pipelines": [ { "name": "fwd", "outputs": [ { "type": "ipfix-tcp", "target": "127.0.0.1:$P2", "odid": 77 } ] } ] }
JSON
start_tap down --expect 50000 --timeout 60
start_collector down --listen "tcp://127.0.0.1:$P2"
DOWN_PID=$COLL_PID
timeout 60 dumpcap -q -i lo -f "tcp port $P2" -w "$T/fwd.pcapng" > "$T/dumpcap.log" 2>&1 &
DUMP_PID=$!
PIDS+=($DUMP_PID)
for _ in $(seq 50); do grep -q "Capturing" "$T/dumpcap.log" 2>/dev/null && break; sleep 0.1; done
start_mediator fwd "$T/fwd.json"
start_collector fwd --listen "tcp://127.0.0.1:$P"
G=$("$IPFIXD_GEN" --records 50000 --connections 2 --seed 31 "127.0.0.1:$P")
tap_wait down
check_eq "forwarded records" "$(json_get "$S" records)" 50000
check_eq "forwarded octets" "$(json_get "$S" octets)" "$(json_get "$G" octets)"
check_eq "forwarded packets" "$(json_get "$S" packets)" "$(json_get "$G" packets)"
check_eq "downstream sees the mediator's ODID" \
        "$(wait_metric down 'ipfixd_collector_exporter_records_total{exporter="127.0.0.1",odid="77",transport="tcp"}' 50000)" 50000
stop_collector
stop_mediator
COLL_PID=$DOWN_PID stop_collector
sleep 0.5
kill -INT "$DUMP_PID" 2>/dev/null; wait "$DUMP_PID" 2>/dev/null
TS=$(tshark -r "$T/fwd.pcapng" -d "tcp.port==$P2,cflow" -q -z io,stat,0,"cflow.octets","_ws.malformed" 2>&1)
TSREC=$(tshark -r "$T/fwd.pcapng" -d "tcp.port==$P2,cflow" -T fields -e cflow.octets 2>/dev/null | tr ',' '\n' | grep -c .)
check_eq "tshark decodes every forwarded record" "$TSREC" 50000
check_eq "tshark finds nothing malformed" "$(tshark -r "$T/fwd.pcapng" -d "tcp.port==$P2,cflow" -Y '_ws.malformed || _ws.expert.severity >= error' 2>/dev/null | wc -l)" 0
: "$TS"

echo "# a downstream collector that goes away and comes back"
P=$(free_port)
P3=$(free_port)
cat > "$T/flap.json" <<JSON
{ "query_listen": "",
  "pipelines": [ { "name": "flap", "outputs": [ { "type": "ipfix-tcp", "target": "127.0.0.1:$P3",
      "buffer_records": 5000, "reconnect_min_ms": 50, "reconnect_max_ms": 300 } ] } ] }
JSON
start_mediator flap "$T/flap.json"
start_collector flap --listen "tcp://127.0.0.1:$P"
FLAP_PID=$COLL_PID
"$IPFIXD_GEN" --records 20000 --seed 41 "127.0.0.1:$P" > /dev/null
wait_med_metric flap ipfixd_mediator_records_total 20000 > /dev/null
F='{pipeline="flap",type="ipfix-tcp",target="127.0.0.1:'$P3'"}'
check_ge "flap: records dropped while nobody listens are counted" "$(wait_med_metric flap "ipfixd_mediator_output_dropped_total$F" 15000)" 15000
start_tap back --idle 2 --timeout 30
start_collector back --listen "tcp://127.0.0.1:$P3"
BACK_PID=$COLL_PID
COLL_PID=$FLAP_PID
check_eq "flap: connected once the collector listens" "$(wait_med_metric flap "ipfixd_mediator_output_up$F" 1)" 1
"$IPFIXD_GEN" --records 10000 --seed 42 "127.0.0.1:$P" > /dev/null
tap_wait back
SENT=$(med_metric flap "ipfixd_mediator_output_records_total$F")
DROP=$(med_metric flap "ipfixd_mediator_output_dropped_total$F")
check_eq "flap: the returning collector gets what was buffered and what followed" "$(json_get "$S" records)" "$SENT"
check_eq "flap: all that followed the reconnect was sent" "$SENT" 15000
check_eq "flap: sent + dropped = received" "$((SENT + DROP))" 30000
# It goes away again (after the mediator connected) and comes back: a reconnect.
COLL_PID=$BACK_PID stop_collector
"$IPFIXD_GEN" --records 10000 --seed 43 "127.0.0.1:$P" > /dev/null
wait_med_metric flap ipfixd_mediator_records_total 40000 > /dev/null
start_tap again --idle 2 --timeout 30
start_collector again --listen "tcp://127.0.0.1:$P3"
AGAIN_PID=$COLL_PID
COLL_PID=$FLAP_PID
check_eq "flap: connected again" "$(wait_med_metric flap "ipfixd_mediator_output_up$F" 1)" 1
"$IPFIXD_GEN" --records 10000 --seed 44 "127.0.0.1:$P" > /dev/null
tap_wait again
check_ge "flap: records reach the collector that came back" "$(json_get "$S" records)" 10000
check_ge "flap: reconnected" "$(wait_med_metric flap "ipfixd_mediator_output_reconnects_total$F" 1)" 1
SENT=$(med_metric flap "ipfixd_mediator_output_records_total$F")
DROP=$(med_metric flap "ipfixd_mediator_output_dropped_total$F")
check_eq "flap: every record sent or counted as dropped" "$((SENT + DROP))" 50000
kill -0 "$MED_PID" && ok "flap: mediator still running" || fail "flap: mediator died"
stop_collector
stop_mediator
check_eq "flap: mediator exit code" "$RC" 0
COLL_PID=$AGAIN_PID stop_collector

echo "# reload: an invalid configuration is refused, a valid one applies without loss"
P=$(free_port)
cat > "$T/rl.json" <<JSON
{ "query_listen": "", "pipelines": [ { "name": "a", "outputs": [] } ] }
JSON
start_mediator rl "$T/rl.json"
start_collector rl --listen "tcp://127.0.0.1:$P"
cat > "$T/rl.json" <<JSON
{ "query_listen": "", "pipelines": [ { "name": "a", "outputs": [] }, { "name": "b", "filter": "proto = = 6" } ] }
JSON
kill -HUP "$MED_PID"
check_eq "reload: invalid refused" "$(wait_med_metric rl ipfixd_mediator_reload_failures_total 1)" 1
grep -q "pipelines\[1\] (b).filter: column" "$T/rl-med.log" && ok "reload: the error names the pipeline and column" || fail "reload: error message"
"$IPFIXD_GEN" --records 300000 --rate 150000 --seed 51 "127.0.0.1:$P" > /dev/null &
GP=$!
sleep 1
cat > "$T/rl.json" <<JSON
{ "query_listen": "", "pipelines": [ { "name": "a", "outputs": [] }, { "name": "b", "filter": "proto == 6" } ] }
JSON
kill -HUP "$MED_PID"
wait $GP
check_eq "reload: applied" "$(wait_med_metric rl ipfixd_mediator_reloads_total 1)" 1
check_eq "reload: every record received" "$(wait_med_metric rl ipfixd_mediator_records_total 300000)" 300000
check_eq "reload: the unchanged pipeline lost nothing" "$(med_metric rl 'ipfixd_mediator_pipeline_in_total{pipeline="a"}')" 300000
check_ge "reload: the new pipeline runs" "$(med_metric rl 'ipfixd_mediator_pipeline_in_total{pipeline="b"}')" 1
stop_collector
stop_mediator

finish
