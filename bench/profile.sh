#!/bin/bash
# bench/profile.sh - where sluice's time goes per event, with perf.
#
#   bench/profile.sh [zmq-thread] [zmq-process] [drops] [invoke] [http]   (default: all)
#
# Builds sluice in Release with debug information (-g -fno-omit-frame-pointer:
# same -O3 code, symbols for perf) in $SLUICE_PROFILE_BUILD (default
# /tmp/sluice-profile-build), runs each scenario with the daemon under
# `perf record -e cpu-clock --call-graph dwarf` (threads and worker processes
# included), and prints bench/perf_summary.py's breakdown: by thread, by the
# library a sample landed in, by the nearest sluice function, by system call.
# Needs perf (Debian: linux-perf) and what bench/run.sh builds.
set -u -o pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
PROF=${SLUICE_PROFILE_BUILD:-/tmp/sluice-profile-build}
BIN=${SLUICE_BENCH_BUILD:-/tmp/sluice-bench-build}/bench-bin
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sluice-profile.XXXXXX)
trap 'rm -rf "${WORK:?}"' EXIT
scenarios=${*:-zmq-thread zmq-process drops invoke http}
N_THREAD=${N_THREAD:-200000} N_PROCESS=${N_PROCESS:-100000} N_FILES=${N_FILES:-2000}
HZ=${HZ:-999}

command -v perf >/dev/null || { echo "profile.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
[ -x "$BIN/zpush" ] || { echo "profile.sh: run bench/run.sh --quick once first (it builds $BIN)" >&2; exit 1; }
cmake -S "$ROOT" -B "$PROF" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_C_FLAGS="-g -fno-omit-frame-pointer" >"$WORK/cmake.log" 2>&1 &&
    cmake --build "$PROF" -j2 >>"$WORK/cmake.log" 2>&1 || { tail -20 "$WORK/cmake.log"; exit 1; }

ports() { "$PY" -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'; }

# profile NAME EVENTS PIPELINE_JSON -- then the load command runs with $DB, $PULL, $ROUTER, $HTTP, $DPID
profile() {
    local name=$1 events=$2 pipeline=$3 load=$4 d=$WORK/$1
    mkdir -p "$d/pipelines" "$d/inbox" "$d/stage"
    read -r PULL ROUTER HTTP < <(ports)
    cat >"$d/sluice.json" <<EOF
{ "state_dir": "$d/var", "pipelines_dir": "$d/pipelines", "plugin_path": ["$PROF/plugins", "$BIN"],
  "zmq": { "pull": "tcp://127.0.0.1:$PULL", "router": "tcp://127.0.0.1:$ROUTER" },
  "http": { "listen": "127.0.0.1:$HTTP" } }
EOF
    echo "$pipeline" | sed "s#@INBOX@#$d/inbox#" >"$d/pipelines/p.json"
    perf record -F "$HZ" -e cpu-clock --call-graph dwarf,16384 -o "$d/perf.data" -- \
        "$PROF/sluice" run -c "$d/sluice.json" 2>"$d/err.log" &
    local perfpid=$! i
    for i in $(seq 300); do grep -q "sluice info: running " "$d/err.log" 2>/dev/null && break; sleep 0.02; done
    DPID=$(pgrep -P "$perfpid" | head -1)
    DB=$d/var/sluice.db INBOX=$d/inbox STAGE=$d/stage
    eval "$load" >"$d/load.txt" 2>&1
    kill -TERM "$DPID"
    wait "$perfpid" 2>/dev/null
    if [ "$events" = 0 ]; then  # wrk: the number of requests it made
        events=$(awk '/requests in/ {print $1}' "$d/load.txt")
    fi
    echo
    echo "=================== $name: $(grep -E '^(rate|files_per_s|p50_us|cpu_per_file_us)=|Requests/sec' "$d/load.txt" | tr '\n' ' ')"
    perf script -i "$d/perf.data" 2>/dev/null |
        "$PY" "$BENCH/perf_summary.py" --events "$events" --hz "$HZ" \
            --callers __vsnprintf_internal,sqlite3_prepare_v2,loader_file_version
}

for s in $scenarios; do
    case $s in
    zmq-thread)
        profile zmq-thread "$N_THREAD" \
            '{"name":"p","trigger":{"zmq":{"topic":"bench."}},"steps":[{"name":"s","handler":"echo.handler"}],"isolation":"thread"}' \
            '"$BIN/zpush" --endpoint tcp://127.0.0.1:$PULL --count $N_THREAD --db $DB --pid $DPID' ;;
    zmq-process)
        profile zmq-process "$N_PROCESS" \
            '{"name":"p","trigger":{"zmq":{"topic":"bench."}},"steps":[{"name":"s","handler":"echo.handler"}],"isolation":"process"}' \
            '"$BIN/zpush" --endpoint tcp://127.0.0.1:$PULL --count $N_PROCESS --db $DB --pid $DPID' ;;
    drops)
        profile drops "$N_FILES" \
            '{"name":"p","trigger":{"directory":"@INBOX@"},"steps":[{"name":"s","handler":"bench.stamp"}],"isolation":"thread"}' \
            '"$BIN/filedrop" --watch $INBOX --stage $STAGE --count $N_FILES --name b --db $DB --pid $DPID' ;;
    invoke)
        profile invoke 5000 \
            '{"name":"p","trigger":{"zmq":{"topic":"bench."}},"steps":[{"name":"s","handler":"echo.handler"}],"isolation":"thread"}' \
            '"$BIN/zlat" invoke tcp://127.0.0.1:$ROUTER p 5000 0' ;;
    http)
        command -v wrk >/dev/null || continue
        profile http 0 \
            '{"name":"p","trigger":{"http":{"method":"GET","path":"/hello"}},"steps":[{"name":"s","handler":"bench.hello"}],"isolation":"thread"}' \
            'wrk -t1 -c16 -d5s http://127.0.0.1:$HTTP/hello' ;;
    *) echo "profile.sh: unknown scenario $s" >&2 ;;
    esac
done
