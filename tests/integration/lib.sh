# SPDX-License-Identifier: MIT
# Shared helpers for the integration scripts: a temp dir, free ports, starting the collector
# and the tap, reading the collector's metrics file, and a pass/fail tally that ends with the
# plain "N passed, N failed" line test runners read. Every process started here is killed on
# exit. Binaries come from the environment (set by meson): IPFIXD_COLLECTOR, IPFIXD_GEN,
# IPFIXD_TAP.

set -u
T=$(mktemp -d /tmp/ipfixd-it.XXXXXX)
PIDS=()
PASSED=0
FAILED=0
cleanup() {
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
        wait 2>/dev/null
        if [ "$FAILED" -eq 0 ]; then rm -rf "$T"; else echo "logs kept in $T"; fi
}
trap cleanup EXIT

free_port() {
        python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
PY
}

ok() { echo "ok   - $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $*"; FAILED=$((FAILED + 1)); }
check_eq() { # name got expected
        if [ "$2" = "$3" ]; then ok "$1 ($2)"; else fail "$1: got '$2', expected '$3'"; fi
}
check_ge() { # name got min
        if [ "${2:-0}" -ge "$3" ] 2>/dev/null; then ok "$1 ($2 >= $3)"; else fail "$1: got '${2:-}', expected >= $3"; fi
}
json_get() { # json key
        python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"
}

# start_tap NAME [args...]: binds ipc://$T/NAME.sock, output in $T/NAME.tap
start_tap() {
        local name=$1; shift
        "$IPFIXD_TAP" --bind "ipc://$T/$name.sock" "$@" > "$T/$name.tap" 2> "$T/$name.tap.err" &
        PIDS+=($!)
        TAP_PID=$!
        for _ in $(seq 100); do grep -q listening "$T/$name.tap.err" 2>/dev/null && return 0; sleep 0.05; done
        echo "tap did not start"; cat "$T/$name.tap.err"; return 1
}
tap_wait() { # NAME: waits for the tap to exit; its summary line is then in $S
        wait "$TAP_PID" 2>/dev/null
        S=$(tail -n 1 "$T/$1.tap")
}

# start_collector NAME [ipfixd-collector args...]: pushes to ipc://$T/NAME.sock, metrics in
# $T/NAME.prom, log in $T/NAME.log; sets COLL_PID.
start_collector() {
        local name=$1; shift
        "$IPFIXD_COLLECTOR" --set "output=ipc://$T/$name.sock" --set "metrics_file=$T/$name.prom" \
                --set stats_interval_s=1 "$@" 2> "$T/$name.log" &
        COLL_PID=$!
        PIDS+=($COLL_PID)
        for _ in $(seq 100); do grep -q "Collector ready" "$T/$name.log" 2>/dev/null && return 0; sleep 0.05; done
        echo "collector did not start"; cat "$T/$name.log"; return 1
}
stop_collector() { # sends SIGTERM and waits; the exit code is then in $RC
        kill -TERM "$COLL_PID" 2>/dev/null
        RC=0
        wait "$COLL_PID" || RC=$?
}
metric() { # NAME METRIC: a counter from the metrics file (0 when absent)
        awk -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }' "$T/$1.prom" 2>/dev/null || echo 0
}
wait_metric() { # NAME METRIC MIN: polls the metrics file up to 5 s, prints the last value
        local v=0
        for _ in $(seq 50); do
                v=$(metric "$1" "$2")
                [ "${v:-0}" -ge "$3" ] 2>/dev/null && break
                sleep 0.1
        done
        echo "$v"
}
finish() {
        echo "$PASSED passed, $FAILED failed"
        [ "$FAILED" -eq 0 ]
}
