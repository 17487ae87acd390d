#!/bin/bash
# bench/nats.sh - events/s through 1, 2 and 3 sluice daemons sharing one NATS JetStream
# durable pull consumer (issue 18), against the ceiling: a plain libnats pull consumer writing
# one SQLite row per message (bench/src/nats_ceiling.c), acknowledging each message without
# waiting (ack) and with a round trip each (acksync: the cost of the ack round trip).
# See docs/scaling.md#benchmark.
#
#   bench/nats.sh [--rounds N] [--messages N] [--keep]
#
# Each run: a fresh `nats-server -js` on a free loopback port (store in the work folder), the
# stream filled first with `sluice publish --nats --lines` (not timed), then the consumers
# started; a daemon run is timed from the first message a node received to the last outcome
# committed (events.received_at / finished_at over the nodes' databases). Daemons run the
# bundled echo plugin in thread isolation. Rounds are interleaved. Nothing asserts a timing.
#
# Environment: SLUICE_BIN (default build/sluice; build Release first), NATS_SERVER.
set -u -o pipefail

ROUNDS=3 MESSAGES=20000 KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --messages) MESSAGES=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "nats.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
SLUICE=${SLUICE_BIN:-$ROOT/build/sluice}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
WORK=$(mktemp -d /tmp/sluice-bench-nats.XXXXXX)
CEILING=$WORK/nats_ceiling

# runs happen in $(...) subshells: their processes are listed in a file, for the cleanup
cleanup() {
    [ -f "$WORK/pids" ] && while read -r p; do kill -9 "$p" 2>/dev/null; done <"$WORK/pids"
    wait 2>/dev/null
    [ "$KEEP" = 1 ] && echo "work folder kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

gcc -O2 -o "$CEILING" "$BENCH/src/nats_ceiling.c" -lnats -lsqlite3 || exit 1
[ -x "$SLUICE" ] || { echo "nats.sh: no sluice binary at $SLUICE (build Release first)" >&2; exit 1; }

# A server with the stream made and filled: sets URL and SERVER_PID.
start_filled_server() {
    local dir=$1 port
    port=$(free_port)
    mkdir -p "$dir/js"
    "$NATS_SERVER" -js -a 127.0.0.1 -p "$port" -sd "$dir/js" >"$dir/nats.log" 2>&1 &
    SERVER_PID=$!
    echo "$SERVER_PID" >>"$WORK/pids"
    URL=nats://127.0.0.1:$port
    for _ in $(seq 100); do "$CEILING" "$URL" BENCH sluice-bench "bench.>" create 2>/dev/null && break; sleep 0.1; done
    seq "$MESSAGES" | sed 's/.*/{"n":&}/' | "$SLUICE" publish --nats "$URL" --lines bench.x || exit 1
}

stop_server() {
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}

# The ceiling: prints events/s.
run_ceiling() {
    local mode=$1
    local dir=$WORK/ceiling-$mode-$2
    mkdir -p "$dir"
    start_filled_server "$dir"
    "$CEILING" "$URL" BENCH sluice-bench "$MESSAGES" "$dir/ceiling.db" "$mode" | awk '{print $3}'
    stop_server
}

# n sluice daemons on the same consumer: prints events/s.
run_sluice() {
    local n=$1 dir=$WORK/sluice-$1-$2 dbs=() pids=()
    mkdir -p "$dir"
    start_filled_server "$dir"
    for i in $(seq "$n"); do
        local node=$dir/node$i
        mkdir -p "$node/pipelines"
        cat >"$node/sluice.json" <<JSON
{"state_dir": "var", "database": "var/sluice.db", "pipelines_dir": "pipelines",
 "zmq": {"pull": "ipc://$node/pull.sock", "router": "ipc://$node/router.sock"},
 "admin": {"listen": ""}}
JSON
        cat >"$node/pipelines/bench.json" <<JSON
{"name": "bench", "isolation": "thread",
 "trigger": {"nats": {"url": "$URL", "stream": "BENCH", "subject": "bench.>",
                      "consumer": "sluice-bench"}},
 "steps": [{"name": "echo", "handler": "echo.handler"}]}
JSON
        dbs+=("$node/var/sluice.db")
        "$SLUICE" run -c "$node/sluice.json" >"$node/stderr" 2>&1 &
        pids+=($!)
        echo $! >>"$WORK/pids"
    done
    local done_n=0
    for _ in $(seq 3000); do
        done_n=0
        for db in "${dbs[@]}"; do
            [ -f "$db" ] && done_n=$((done_n + $(sqlite3 "$db" "SELECT count(*) FROM events WHERE state <> 'pending'" 2>/dev/null || echo 0)))
        done
        [ "$done_n" -ge "$MESSAGES" ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null; done
    stop_server
    local attach="" i=0
    for db in "${dbs[@]}"; do
        [ $i -gt 0 ] && attach="$attach ATTACH '$db' AS n$i;"
        i=$((i + 1))
    done
    local union="SELECT received_at, finished_at FROM main.events" k
    for k in $(seq 1 $((n - 1))); do union="$union UNION ALL SELECT received_at, finished_at FROM n$k.events"; done
    sqlite3 "${dbs[0]}" "$attach SELECT printf('%.0f', count(*) / ((julianday(max(finished_at)) - julianday(min(received_at))) * 86400.0)) FROM ($union);"
}

declare -A RESULTS
for r in $(seq "$ROUNDS"); do
    for c in ceiling-ack ceiling-acksync sluice-1 sluice-2 sluice-3; do
        case $c in
        ceiling-*) v=$(run_ceiling "${c#ceiling-}" "$r") ;;
        sluice-*) v=$(run_sluice "${c#sluice-}" "$r") ;;
        esac
        echo "round $r: $c ${v:-failed} events/s" >&2
        RESULTS[$c]="${RESULTS[$c]:-} ${v:-0}"
    done
done

printf '%-18s %10s %10s %10s   (%d messages, %d rounds)\n' contender median min max "$MESSAGES" "$ROUNDS"
for c in ceiling-ack ceiling-acksync sluice-1 sluice-2 sluice-3; do
    echo "${RESULTS[$c]}" | tr ' ' '\n' | grep -v '^$' | sort -n | awk -v c="$c" '
        {v[NR]=$1} END {printf "%-18s %10d %10d %10d\n", c, v[int((NR+1)/2)], v[1], v[NR]}'
done
