#!/bin/bash
# bench/scale.sh - issue 15 item 5: sluice with 1, 10, 100 and 1,000
# pipelines (time to ready, idle RSS, threads, events/s spread over all of
# them, CPU per event) and with payloads of 200 B, 10 KiB and 1 MiB.
#
#   bench/scale.sh [--rounds N] [--events N] [--pipelines "1 10 100 1000"]
#
# Needs the programs bench/run.sh builds (run it once, e.g. --quick) in
# $SLUICE_BENCH_BUILD (default /tmp/sluice-bench-build). Thread isolation,
# one echo.handler step per pipeline, pipeline j on ZeroMQ topic "s<j>/";
# zpush --spread sends event i to pipeline i mod N. Prints key=value lines
# per run and a table. Nothing here asserts a timing.
set -u -o pipefail
ROUNDS=3 EVENTS=100000 COUNTS="1 10 100 1000" DUR=${DURABILITY:-power}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --events) EVENTS=$2; shift ;;
    --pipelines) COUNTS=$2; shift ;;
    *) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
BUILD=${SLUICE_BENCH_BUILD:-/tmp/sluice-bench-build}
BIN=$BUILD/bench-bin
WORK=$(mktemp -d /tmp/sluice-scale.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "${WORK:?}"' EXIT
[ -x "$BIN/zpush" ] || { echo "scale.sh: run bench/run.sh --quick first" >&2; exit 1; }

ports() { /usr/bin/python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])'; }

# run LABEL PIPELINES EVENTS PAYLOAD_BYTES
run() {
    local label=$1 np=$2 n=$3 bytes=$4 d p
    d=$(mktemp -d "$WORK/run.XXXX")
    mkdir -p "$d/pipelines"
    read -r pull router < <(ports)
    cat >"$d/sluice.json" <<J
{"state_dir": "$d/var", "pipelines_dir": "$d/pipelines", "plugin_path": ["$BUILD/plugins"],
 "durability": "$DUR", "admin": {"listen": ""},
 "zmq": {"pull": "tcp://127.0.0.1:$pull", "router": "tcp://127.0.0.1:$router",
         "max_message_bytes": 4194304}}
J
    for p in $(seq 0 $((np - 1))); do
        printf '{"name": "p%d", "trigger": {"zmq": {"topic": "s%d/"}}, "isolation": "thread",
 "steps": [{"name": "step", "handler": "echo.handler"}]}\n' "$p" "$p" >"$d/pipelines/p$p.json"
    done
    local t0 t1
    t0=$(date +%s%N)
    "$BUILD/sluice" run -c "$d/sluice.json" 2>"$d/err.log" &
    PID=$!
    local i
    for i in $(seq 3000); do
        grep -q "sluice info: running " "$d/err.log" 2>/dev/null && break
        sleep 0.01
    done
    t1=$(date +%s%N)
    sleep 1
    local rss threads
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$PID/status")
    threads=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$PID/status")
    "$BIN/zpush" --endpoint "tcp://127.0.0.1:$pull" --count "$n" --topic s --spread "$np" \
        --payload-bytes "$bytes" --db "$d/var/sluice.db" --pid "$PID" --timeout 900 >"$d/push.txt"
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null
    PID=""
    echo "$label pipelines=$np payload_bytes=$(sed -n "s/^payload_bytes=//p" "$d/push.txt") events=$n ready_ms=$(( (t1 - t0) / 1000000 )) rss_idle_kb=$rss threads=$threads rate=$(sed -n 's/^rate=//p' "$d/push.txt") cpu_per_event_us=$(sed -n 's/^cpu_per_event_us=//p' "$d/push.txt") rows=$(sed -n 's/^rows=//p' "$d/push.txt") load=$(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$d"
}

for r in $(seq "$ROUNDS"); do
    for np in $COUNTS; do
        run "r$r" "$np" "$EVENTS" 0
    done
    run "r$r" 1 $(( EVENTS / 5 )) 10240
    run "r$r" 1 $(( EVENTS / 500 > 50 ? EVENTS / 500 : 50 )) 1048576
done
