#!/bin/bash
# bench/run.sh - sluice side by side with its ceilings and with the scripts a
# user would write instead, in one run (issue 6). See docs/benchmarks.md.
#
#   bench/run.sh [--quick] [--rounds N] [--events N] [--only LIST] [--keep]
#
#   --quick       smoke check: small counts, one round, under a minute once built
#   --rounds N    repetitions of every measurement (default 5; medians, min, max)
#   --events N    ZeroMQ events per throughput run (default 1,000,000)
#   --burst N     files per file-drop burst (default 2,000; issue 15 uses 20,000)
#   --only LIST   comma-separated subset of: drops,zmq,pinned,latency,startup,http
#   --keep        keep the work folder (configs, logs, raw results)
#
# Environment: STOCK_INCRON=0 skips the stock incrond run; DROP_PEERS="..."
# picks the file-drop contenders (the forking peers take minutes at 20,000
# files); SLUICE_BENCH_BUILD (default /tmp/sluice-bench-build) is where
# sluice is built in Release and where the benchmark programs are compiled;
# BENCH_RESULTS_COPY=DIR keeps a copy of the raw results (bench/summarize.py DIR).
#
# Every daemon run gets its own temporary folder, its own sluice.json and
# free loopback ports. Rounds are interleaved (each round runs every
# contender once), so the ratios compare figures taken minutes apart at
# most on a machine whose load changes. Nothing here asserts a timing.
set -u -o pipefail

QUICK=0 ROUNDS="" EVENTS="" BURST_ARG="" ONLY="all" KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --events) EVENTS=$2; shift ;;
    --burst) BURST_ARG=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
BUILD=${SLUICE_BENCH_BUILD:-/tmp/sluice-bench-build}
BIN=$BUILD/bench-bin
SLUICE=$BUILD/sluice
PLUGINS=$BUILD/plugins
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sluice-bench.XXXXXX)
RES=$WORK/results
mkdir -p "$RES"
T_START=$(date +%s)

if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} EVENTS=${EVENTS:-20000} PIN_EVENTS=10000
    BURST=300 SPACED=20 LAT_N=500 HTTP_SECS=2 STOCK_INCRON=0
else
    ROUNDS=${ROUNDS:-5} EVENTS=${EVENTS:-1000000} PIN_EVENTS=$(( ${EVENTS:-1000000} / 5 ))
    BURST=2000 SPACED=150 LAT_N=10000 HTTP_SECS=5 STOCK_INCRON=${STOCK_INCRON:-1}
fi
BURST=${BURST_ARG:-$BURST}
SPACING_MS=50 HTTP_CONN=16

log() { printf '[%4ds] %s\n' $(( $(date +%s) - T_START )) "$*" >&2; }
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }

# --- processes we start, and only those, are stopped on exit ---------------
PIDS=() PGIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for g in "${PGIDS[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for g in "${PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
    if [ "$KEEP" = 1 ]; then
        log "work folder kept: $WORK"
    else
        rm -rf "${WORK:?}"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget_pid() { local p=$1 i; for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$p" ] && unset 'PIDS[i]'; done; }
forget_pgid() { local p=$1 i; for i in "${!PGIDS[@]}"; do [ "${PGIDS[$i]}" = "$p" ] && unset 'PGIDS[i]'; done; }

# --- peers and build dependencies, from Debian, only when missing -----------
install_missing() {
    local pkgs=()
    command -v cmake >/dev/null || pkgs+=(cmake)
    command -v cc >/dev/null || pkgs+=(gcc)
    command -v pkg-config >/dev/null || pkgs+=(pkg-config)
    pkg-config --exists libzmq 2>/dev/null || pkgs+=(libzmq3-dev)
    pkg-config --exists sqlite3 2>/dev/null || pkgs+=(libsqlite3-dev)
    pkg-config --exists libcjson 2>/dev/null || pkgs+=(libcjson-dev)
    pkg-config --exists libmicrohttpd 2>/dev/null || pkgs+=(libmicrohttpd-dev)
    pkg-config --exists libsodium 2>/dev/null || pkgs+=(libsodium-dev)
    pkg-config --exists libseccomp 2>/dev/null || pkgs+=(libseccomp-dev)
    command -v incrond >/dev/null || pkgs+=(incron)
    command -v inotifywait >/dev/null || pkgs+=(inotify-tools)
    command -v wrk >/dev/null || pkgs+=(wrk)
    command -v taskset >/dev/null || pkgs+=(util-linux)
    [ -x "$PY" ] || pkgs+=(python3)
    "$PY" -c 'import zmq' 2>/dev/null || pkgs+=(python3-zmq)
    "$PY" -c 'import watchdog' 2>/dev/null || pkgs+=(python3-watchdog)
    [ ${#pkgs[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing from Debian: ${pkgs[*]}"
        apt-get update -qq >"$WORK/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >>"$WORK/apt.log" 2>&1 ||
            log "apt-get failed (see $WORK/apt.log); the peers that are missing are skipped"
    else
        log "missing (not root, not installing): ${pkgs[*]}; those peers are skipped"
    fi
}

CFLAGS="-O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wno-format-truncation"
compile() { # NAME SOURCE[,SOURCE...] PKGS...
    local name=$1 srcs s stale=0; shift
    IFS=, read -r -a srcs <<<"$1"; shift
    [ -x "$BIN/$name" ] && [ ! "$BENCH/src/common.h" -nt "$BIN/$name" ] || stale=1
    for s in "${srcs[@]}"; do [ "$s" -nt "$BIN/$name" ] && stale=1; done
    if [ "$stale" = 1 ]; then
        # shellcheck disable=SC2046
        cc $CFLAGS -I"$ROOT/core" -o "$BIN/$name" "${srcs[@]}" $(pkg-config --cflags --libs "$@") \
            -lm -lpthread || return 1
    fi
}

build() {
    log "building sluice (Release) in $BUILD"
    local tries=0
    until cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
            >"$WORK/cmake.log" 2>&1 &&
          cmake --build "$BUILD" -j2 >>"$WORK/cmake.log" 2>&1; do
        tries=$((tries + 1))
        if [ $tries -ge 3 ]; then
            tail -30 "$WORK/cmake.log" >&2
            echo "run.sh: sluice does not build (someone mid-edit? retry in a minute)" >&2
            exit 1
        fi
        log "build failed; retrying in 30 s (another engineer may be mid-edit)"
        sleep 30
    done
    mkdir -p "$BIN"
    chmod 755 "$BIN"
    compile zpush "$BENCH/src/zpush.c" libzmq sqlite3 &&
    compile zsink "$BENCH/src/zsink.c" libzmq &&
    compile sqlceil "$BENCH/src/sqlceil.c,$ROOT/core/walbuf.c" sqlite3 &&
    compile zlat "$BENCH/src/zlat.c" libzmq &&
    compile naive_zmq "$BENCH/src/naive_zmq.c" libzmq sqlite3 libcjson &&
    compile mhd_hello "$BENCH/src/mhd_hello.c" libmicrohttpd &&
    compile filedrop "$BENCH/src/filedrop.c" sqlite3 &&
    compile startup "$BENCH/src/startup.c" libzmq || { echo "run.sh: benchmark programs do not build" >&2; exit 1; }
    if [ ! -f "$BIN/bench.so" ] || [ "$BENCH/plugin/bench.c" -nt "$BIN/bench.so" ]; then
        cc -O2 -shared -fPIC -fvisibility=hidden -I"$ROOT/include" -o "$BIN/bench.so" \
            "$BENCH/plugin/bench.c" || exit 1
    fi
    if [ ! -f "$BIN/nosyslog.so" ] || [ "$BENCH/src/nosyslog.c" -nt "$BIN/nosyslog.so" ]; then
        cc -O2 -shared -fPIC -o "$BIN/nosyslog.so" "$BENCH/src/nosyslog.c" || exit 1
    fi
}

# --- helpers -------------------------------------------------------------------
free_ports() { # N -> N free loopback TCP ports, one per line
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# new_daemon_dir NAME -> prints DIR; writes DIR/sluice.json with free ports;
# sets nothing global (ports are read back from DIR/ports)
new_daemon_dir() { # NAME [DURABILITY]
    local d=$WORK/$1 durability=${2:-power}
    mkdir -p "$d/pipelines"
    local ports
    mapfile -t ports < <(free_ports 3)
    printf 'PULL=%s\nROUTER=%s\nHTTP=%s\n' "${ports[@]}" >"$d/ports"
    cat >"$d/sluice.json" <<EOF
{
  "state_dir": "$d/var",
  "pipelines_dir": "$d/pipelines",
  "plugin_path": ["$PLUGINS", "$BIN"],
  "durability": "$durability",
  "zmq": { "pull": "tcp://127.0.0.1:${ports[0]}", "router": "tcp://127.0.0.1:${ports[1]}" },
  "http": { "listen": "127.0.0.1:${ports[2]}" }
}
EOF
    echo "$d"
}
port_of() { sed -n "s/^$2=//p" "$1/ports"; }

pipeline() { # DIR NAME TRIGGER_JSON HANDLER ISOLATION
    cat >"$1/pipelines/$2.json" <<EOF
{ "name": "$2", "trigger": $3,
  "steps": [ { "name": "step", "handler": "$4" } ],
  "isolation": "$5" }
EOF
}

SPID=""
start_sluice() { # DIR [CPULIST]
    local d=$1 pin=${2:-}
    if [ -n "$pin" ]; then
        taskset -c "$pin" "$SLUICE" run -c "$d/sluice.json" 2>"$d/err.log" &
    else
        "$SLUICE" run -c "$d/sluice.json" 2>"$d/err.log" &
    fi
    SPID=$!
    PIDS+=("$SPID")
    local i
    for i in $(seq 500); do
        grep -q "sluice info: running " "$d/err.log" 2>/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.02
    done
    echo "run.sh: sluice did not start; its log:" >&2
    tail -20 "$d/err.log" >&2
    return 1
}
stop_sluice() { # DIR
    kill -TERM "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    local rc=$?
    forget_pid "$SPID"
    [ $rc -eq 0 ] || log "sluice exited with status $rc (see $1/err.log)"
    SPID=""
}

record() { # MEASURE VARIANT ROUND  (key=value lines on stdin; the load average is added)
    mkdir -p "$RES/$1/$2"
    { cat; echo "loadavg=$(cut -d' ' -f1 /proc/loadavg)"; } >"$RES/$1/$2/r$3.txt"
}
kv() { sed -n "s/^$2=//p" "$1" | head -1; }  # FILE KEY

# ================================================================================
# 4. File drops
# ================================================================================
drop_peer() { # ROUND PEER
    local r=$1 peer=$2 d=$WORK/drops/r$1/$2 pid="" pgid=""
    mkdir -p "$d/inbox" "$d/stage"
    local log=$d/handled.log
    case $peer in
    sluice_thread|sluice_process)
        local sd
        sd=$(new_daemon_dir "drops/r$r/$peer-daemon")
        pipeline "$sd" drop "{\"directory\": \"$d/inbox\"}" bench.stamp "${peer#sluice_}"
        start_sluice "$sd" || return 1
        pid=$SPID
        local src=(--db "$sd/var/sluice.db")
        ;;
    incron|incron_stock)
        command -v incrond >/dev/null || return 0
        mkdir -p "$d/tables" "$d/user" "$d/lock"
        printf 'system_table_dir = %s\nuser_table_dir = %s\nlockfile_dir = %s\nlockfile_name = incrond\n' \
            "$d/tables" "$d/user" "$d/lock" >"$d/incron.conf"
        echo "$d/inbox IN_CLOSE_WRITE,IN_MOVED_TO $BENCH/peer_handler.sh $log \$@/\$#" >"$d/tables/bench"
        if [ "$peer" = incron ]; then
            LD_PRELOAD=$BIN/nosyslog.so incrond -n -f "$d/incron.conf" 2>"$d/err.log" &
        else
            incrond -n -f "$d/incron.conf" 2>"$d/err.log" &
        fi
        pid=$!
        PIDS+=("$pid")
        sleep 0.5
        local src=(--log "$log")
        ;;
    inotifywait_script|inotifywait_builtin)
        command -v inotifywait >/dev/null || return 0
        setsid "$BENCH/peer_inotifywait.sh" "${peer#inotifywait_}" "$d/inbox" "$log" 2>"$d/err.log" &
        pid=$! pgid=$!
        PGIDS+=("$pgid")
        sleep 0.5
        local src=(--log "$log")
        ;;
    watchdog)
        "$PY" -c 'import watchdog' 2>/dev/null || return 0
        "$PY" "$BENCH/peer_watchdog.py" "$d/inbox" "$log" >"$d/out.log" 2>"$d/err.log" &
        pid=$!
        PIDS+=("$pid")
        local i
        for i in $(seq 250); do grep -q ready "$d/out.log" 2>/dev/null && break; sleep 0.02; done
        local src=(--log "$log")
        ;;
    esac
    "$BIN/filedrop" --watch "$d/inbox" --stage "$d/stage" --count "$BURST" --name burst \
        "${src[@]}" --pid "$pid" --idle 10 --timeout 300 >"$d/burst.txt" 2>"$d/burst.err"
    record drops_burst "$peer" "$r" <"$d/burst.txt"
    if [ "$peer" != incron_stock ]; then
        sleep 0.5
        "$BIN/filedrop" --watch "$d/inbox" --stage "$d/stage" --count "$SPACED" --name spaced \
            --interval-ms "$SPACING_MS" "${src[@]}" --pid "$pid" --idle 10 --timeout 300 \
            >"$d/spaced.txt" 2>"$d/spaced.err"
        record drops_spaced "$peer" "$r" <"$d/spaced.txt"
    fi
    case $peer in
    sluice_*) stop_sluice "$sd" ;;
    inotifywait_*) kill -TERM -- "-$pgid" 2>/dev/null; sleep 0.1; forget_pgid "$pgid" ;;
    *) kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; forget_pid "$pid" ;;
    esac
    log "  drops r$r $peer: burst $(kv "$d/burst.txt" files_per_s) files/s, backlog x$(kv "$d/burst.txt" backlog_ratio), cpu/file $(kv "$d/burst.txt" cpu_per_file_us) us, missed $(kv "$d/burst.txt" missed)$([ -f "$d/spaced.txt" ] && echo "; spaced p50 $(kv "$d/spaced.txt" lat_p50_ms) ms")"
}

bench_drops() {
    log "4. file drops: burst of $BURST files, then $SPACED drops ${SPACING_MS} ms apart ($ROUNDS rounds)"
    local r peer
    for r in $(seq "$ROUNDS"); do
        for peer in ${DROP_PEERS:-sluice_thread sluice_process incron inotifywait_script inotifywait_builtin watchdog}; do
            drop_peer "$r" "$peer"
        done
        if [ "$STOCK_INCRON" = 1 ] && [ "$r" = 1 ]; then
            drop_peer "$r" incron_stock
        fi
    done
}

# ================================================================================
# 1-2. ZeroMQ throughput
# ================================================================================
TEMPLATE_DB=""
make_template() {
    local d
    d=$(new_daemon_dir template)
    pipeline "$d" noop '{"zmq": {"topic": "bench."}}' echo.handler thread
    start_sluice "$d" || exit 1
    stop_sluice "$d"
    TEMPLATE_DB=$d/var/sluice.db
}

# zmq_peer MEASURE ROUND COUNT VARIANT COMMAND...: a consumer script timed
# exactly like sluice (same producer, rows polled in its database, CPU of its
# process); ENDPOINT and DB in the command are replaced. Uses dcpu/pcpu of
# the calling zmq_round.
zmq_peer() {
    local m=$1 r=$2 n=$3 v=$4 d port a cmd=() prun=() drun=()
    shift 4
    [ -n "$pcpu" ] && prun=(taskset -c "$pcpu")
    [ -n "$dcpu" ] && drun=(taskset -c "$dcpu")
    d=$WORK/$m-r$r-$v; mkdir -p "$d"
    port=$(free_ports 1)
    for a in "$@"; do
        case $a in
        ENDPOINT) cmd+=("tcp://127.0.0.1:$port") ;;
        DB) cmd+=("$d/peer.db") ;;
        *) cmd+=("$a") ;;
        esac
    done
    "${drun[@]}" "${cmd[@]}" >"$d/out.log" 2>"$d/err.log" &
    local pid=$!
    PIDS+=("$pid")
    local i
    for i in $(seq 250); do grep -q ready "$d/out.log" 2>/dev/null && break; sleep 0.02; done
    "${prun[@]}" "$BIN/zpush" --endpoint "tcp://127.0.0.1:$port" --count "$n" --topic bench.tp \
        --db "$d/peer.db" --pid "$pid" --timeout 3600 >"$d/push.txt" || kill -TERM "$pid"
    wait "$pid"
    forget_pid "$pid"
    record "$m" "$v" "$r" <"$d/push.txt"
    rm -rf "${d:?}"
}

zmq_round() { # MEASURE ROUND COUNT DAEMON_CPUS PRODUCER_CPUS
    local m=$1 r=$2 n=$3 dcpu=$4 pcpu=$5 d out
    local prun=() drun=()
    [ -n "$pcpu" ] && prun=(taskset -c "$pcpu")
    [ -n "$dcpu" ] && drun=(taskset -c "$dcpu")

    d=$WORK/$m-r$r-ceil; mkdir -p "$d"
    "${drun[@]}" "$BIN/sqlceil" --db "$d/ceil.db" --schema-from "$TEMPLATE_DB" --count "$n" \
        --mode inv | record "$m" ceiling_inv "$r"
    rm -f "${d:?}"/ceil.db*
    "${drun[@]}" "$BIN/sqlceil" --db "$d/ceil.db" --schema-from "$TEMPLATE_DB" --count "$n" \
        --mode full | record "$m" ceiling_full "$r"
    rm -f "${d:?}"/ceil.db*
    # what the daemon's writer does under a flood, with the naive peers' durability
    "${drun[@]}" "$BIN/sqlceil" --db "$d/ceil.db" --schema-from "$TEMPLATE_DB" --count "$n" \
        --mode merged --walbuf --sync normal | record "$m" ceiling_merged "$r"
    rm -rf "${d:?}"

    local port
    port=$(free_ports 1)
    out=$WORK/$m-r$r-raw.txt
    "${drun[@]}" "$BIN/zsink" --endpoint "tcp://127.0.0.1:$port" --count "$n" >"$out" &
    local sink=$!
    PIDS+=("$sink")
    sleep 0.2
    "${prun[@]}" "$BIN/zpush" --endpoint "tcp://127.0.0.1:$port" --count "$n" >"$out.push"
    wait "$sink"
    forget_pid "$sink"
    { cat "$out"; sed 's/^/push_/' "$out.push"; } | record "$m" raw_pushpull "$r"

    local iso dur v
    for v in thread process thread_dproc process_dproc; do
        iso=${v%_dproc} dur=power
        [ "$v" != "$iso" ] && dur=process
        d=$(new_daemon_dir "$m-r$r-$v" "$dur")
        pipeline "$d" noop '{"zmq": {"topic": "bench."}}' echo.handler "$iso"
        start_sluice "$d" "$dcpu" || return 1
        "${prun[@]}" "$BIN/zpush" --endpoint "tcp://127.0.0.1:$(port_of "$d" PULL)" --count "$n" \
            --topic bench.tp --db "$d/var/sluice.db" --pid "$SPID" --timeout 1800 >"$d/push.txt"
        stop_sluice "$d"
        { cat "$d/push.txt"
          echo "errors=$("$PY" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from invocations where status<>'ok'\").fetchone()[0])" "$d/var/sluice.db")"
        } | record "$m" "sluice_$v" "$r"
        rm -rf "${d:?}/var"
    done

    if "$PY" -c 'import zmq' 2>/dev/null; then
        zmq_peer "$m" "$r" "$n" python_peer "$PY" "$BENCH/peer_zmq.py" ENDPOINT DB "$TEMPLATE_DB" "$n"
        zmq_peer "$m" "$r" "$n" python_naive "$PY" "$BENCH/peer_zmq_naive.py" ENDPOINT DB "$n"
    fi
    zmq_peer "$m" "$r" "$n" c_naive "$BIN/naive_zmq" --endpoint ENDPOINT --db DB --count "$n"
    log "  $m r$r: ceiling $(kv "$RES/$m/ceiling_inv/r$r.txt" rate)/s, full-work ceiling $(kv "$RES/$m/ceiling_full/r$r.txt" rate)/s, sluice's flood writes $(kv "$RES/$m/ceiling_merged/r$r.txt" rate)/s, raw zmq $(kv "$RES/$m/raw_pushpull/r$r.txt" rate)/s, sluice thread $(kv "$RES/$m/sluice_thread/r$r.txt" rate)/s, process $(kv "$RES/$m/sluice_process/r$r.txt" rate)/s (durability process: $(kv "$RES/$m/sluice_thread_dproc/r$r.txt" rate)/s, $(kv "$RES/$m/sluice_process_dproc/r$r.txt" rate)/s), python (same work) $(kv "$RES/$m/python_peer/r$r.txt" rate 2>/dev/null)/s, naive python $(kv "$RES/$m/python_naive/r$r.txt" rate 2>/dev/null)/s, naive C $(kv "$RES/$m/c_naive/r$r.txt" rate 2>/dev/null)/s"
}

bench_zmq() {
    log "1-2. ZeroMQ -> no-op C handler -> logged row: $EVENTS events, unpinned ($ROUNDS rounds)"
    local r
    for r in $(seq "$ROUNDS"); do zmq_round zmq "$r" "$EVENTS" "" ""; done
}
bench_pinned() {
    log "1-2b. the same, daemon (and its workers) pinned to CPU 1, producer to CPU 0: $PIN_EVENTS events"
    local r
    for r in $(seq "$ROUNDS"); do zmq_round zmq_pinned "$r" "$PIN_EVENTS" 1 0; done
}

# ================================================================================
# 3. Invoke latency
# ================================================================================
latency_round() { # ROUND VARIANT CPU(empty: unpinned)
    local r=$1 v=$2 cpu=$3 run=() d dur suffix
    [ -n "$cpu" ] && run=(taskset -c "$cpu")
    for dur in power process; do # the default, then the naive peers' promise
        suffix=""
        [ "$dur" = process ] && suffix=_dproc
        d=$(new_daemon_dir "latency-$v-$dur-r$r" "$dur")
        pipeline "$d" noop '{"zmq": {"topic": "noop."}}' echo.handler thread
        pipeline "$d" noop_process '{"zmq": {"topic": "noopp."}}' echo.handler process
        start_sluice "$d" "$cpu" || return 1
        "${run[@]}" "$BIN/zlat" invoke "tcp://127.0.0.1:$(port_of "$d" ROUTER)" noop "$LAT_N" 200 \
            | record "latency_$v" "sluice_thread$suffix" "$r"
        "${run[@]}" "$BIN/zlat" invoke "tcp://127.0.0.1:$(port_of "$d" ROUTER)" noop_process \
            "$LAT_N" 200 | record "latency_$v" "sluice_process$suffix" "$r"
        stop_sluice "$d"
        rm -rf "${d:?}/var"
    done
    local port
    port=$(free_ports 1)
    "${run[@]}" "$BIN/zlat" rep "tcp://127.0.0.1:$port" >/dev/null &
    local rep=$!
    PIDS+=("$rep")
    sleep 0.2
    "${run[@]}" "$BIN/zlat" req "tcp://127.0.0.1:$port" "$LAT_N" 200 | record "latency_$v" raw_reqrep "$r"
    kill -TERM "$rep"; wait "$rep" 2>/dev/null; forget_pid "$rep"
    log "  latency $v r$r: sluice thread p50 $(kv "$RES/latency_$v/sluice_thread/r$r.txt" p50_us) us, process $(kv "$RES/latency_$v/sluice_process/r$r.txt" p50_us) us (durability process: $(kv "$RES/latency_$v/sluice_thread_dproc/r$r.txt" p50_us), $(kv "$RES/latency_$v/sluice_process_dproc/r$r.txt" p50_us) us), raw REQ/REP $(kv "$RES/latency_$v/raw_reqrep/r$r.txt" p50_us) us"
}
bench_latency() {
    log "3. invoke round trip, $LAT_N requests one at a time: unpinned, and all on CPU 0"
    local r
    for r in $(seq "$ROUNDS"); do
        latency_round "$r" unpinned ""
        latency_round "$r" samecpu 0
    done
}

# ================================================================================
# 5. Memory and start-up
# ================================================================================
bench_startup() {
    log "5. start-up: time to ready, idle RSS, C worker cold start ($ROUNDS rounds)"
    local r d
    for r in $(seq "$ROUNDS"); do
        d=$(new_daemon_dir "startup-r$r")
        pipeline "$d" noop '{"zmq": {"topic": "noop."}}' echo.handler thread
        pipeline "$d" proc '{"zmq": {"topic": "proc."}}' echo.handler process
        local router
        router="tcp://127.0.0.1:$(port_of "$d" ROUTER)"
        # first start: creates the database; cold starts of both workers
        "$BIN/startup" --sluice "$SLUICE" --config "$d/sluice.json" --log "$d/first.log" \
            --router "$router" --invoke proc --invokes 4 --idle-ms 1000 >"$d/first.txt"
        # restart on the existing database
        "$BIN/startup" --sluice "$SLUICE" --config "$d/sluice.json" --log "$d/second.log" \
            --idle-ms 300 >"$d/second.txt"
        {
            cat "$d/first.txt"
            echo "restart_ready_ms=$(kv "$d/second.txt" ready_ms)"
            "$PY" - "$d/var/sluice.db" <<'EOF'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT init_ms, duration_ms FROM invocations WHERE pipeline = 'proc' ORDER BY id").fetchall()
cold = [r[0] for r in rows if r[0] is not None]
print("cold_starts=%d" % len(cold))
for i, v in enumerate(cold):
    print("init_ms_%d=%.3f" % (i + 1, v))
print("init_ms=%.3f" % (sorted(cold)[len(cold) // 2] if cold else -1))
warm = [r[1] for r in rows if r[0] is None]
print("warm_duration_ms=%.4f" % (warm[-1] if warm else -1))
EOF
        } | record startup sluice "$r"
        log "  startup r$r: ready $(kv "$RES/startup/sluice/r$r.txt" ready_ms) ms, RSS idle $(kv "$RES/startup/sluice/r$r.txt" rss_idle_kb) kB, init_ms $(kv "$RES/startup/sluice/r$r.txt" init_ms_1)/$(kv "$RES/startup/sluice/r$r.txt" init_ms_2)"
    done
}

# ================================================================================
# 6. HTTP
# ================================================================================
wrk_run() { # URL [CPU] -> key=value
    local url=$1 cpu=${2:-} run=()
    [ -n "$cpu" ] && run=(taskset -c "$cpu")
    "${run[@]}" wrk -t1 -c"$HTTP_CONN" -d1s "$url" >/dev/null 2>&1  # warm-up
    "${run[@]}" wrk -t1 -c"$HTTP_CONN" -d"${HTTP_SECS}s" --latency "$url" 2>&1 | awk '
        function tous(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return (v + 0) * 1000;
                           if (v ~ /s$/) return (v + 0) * 1e6; return v }
        /Requests\/sec/ { print "rps=" $2 }
        /^ +50%/ { print "p50_us=" tous($2) }
        /^ +99%/ { print "p99_us=" tous($2) }
        /requests in/ { print "requests=" $1 }
        /Non-2xx/ { print "non2xx=" $NF }
        /Socket errors/ { print "socket_errors=" $0 }'
}
bench_http() {
    command -v wrk >/dev/null || { log "6. HTTP: wrk missing, skipped"; return 0; }
    log "6. HTTP: wrk -t1 -c$HTTP_CONN -d${HTTP_SECS}s on a no-op route vs a bare libmicrohttpd hello-world"
    local r v d
    for r in $(seq "$ROUNDS"); do
        for v in unpinned pinned; do
            local scpu="" ccpu=""
            [ "$v" = pinned ] && scpu=1 ccpu=0
            local dur
            for dur in power process; do
                d=$(new_daemon_dir "http-$v-$dur-r$r" "$dur")
                pipeline "$d" hello '{"http": {"method": "GET", "path": "/hello"}}' bench.hello thread
                start_sluice "$d" "$scpu" || return 1
                wrk_run "http://127.0.0.1:$(port_of "$d" HTTP)/hello" "$ccpu" |
                    record "http_$v" "sluice$([ "$dur" = process ] && echo _dproc)" "$r"
                stop_sluice "$d"
                rm -rf "${d:?}/var"
            done
            local port mrun=()
            port=$(free_ports 1)
            [ -n "$scpu" ] && mrun=(taskset -c "$scpu")
            "${mrun[@]}" "$BIN/mhd_hello" "$port" >/dev/null &
            local mhd=$!
            PIDS+=("$mhd")
            sleep 0.2
            wrk_run "http://127.0.0.1:$port/hello" "$ccpu" | record "http_$v" mhd_hello "$r"
            kill -TERM "$mhd"; wait "$mhd" 2>/dev/null; forget_pid "$mhd"
            log "  http $v r$r: sluice $(kv "$RES/http_$v/sluice/r$r.txt" rps) req/s (durability process $(kv "$RES/http_$v/sluice_dproc/r$r.txt" rps)) p99 $(kv "$RES/http_$v/sluice/r$r.txt" p99_us) us; MHD $(kv "$RES/http_$v/mhd_hello/r$r.txt" rps) req/s p99 $(kv "$RES/http_$v/mhd_hello/r$r.txt" p99_us) us"
        done
    done
}

# ================================================================================
install_missing
build
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command=bench/run.sh$([ "$QUICK" = 1 ] && echo " --quick")$([ "$ONLY" != all ] && echo " --only $ONLY") (rounds $ROUNDS, events $EVENTS)"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "kernel=$(uname -sr)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sluice_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
    echo "sqlite=$(pkg-config --modversion sqlite3) libzmq=$(pkg-config --modversion libzmq) libmicrohttpd=$(pkg-config --modversion libmicrohttpd)"
} >"$RES/machine.txt"
log "work folder $WORK; machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
make_template

# File drops first: the other benchmarks delete large files, and creating
# many files right after deletions is slow on these machines (MACHINE-NOTES 3).
want drops && bench_drops
want zmq && bench_zmq
want pinned && bench_pinned
want latency && bench_latency
want startup && bench_startup
want http && bench_http
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/machine.txt"
echo "duration_s=$(( $(date +%s) - T_START ))" >>"$RES/machine.txt"

"$PY" "$BENCH/summarize.py" "$RES"
if [ -n "${BENCH_RESULTS_COPY:-}" ]; then
    rm -rf "$BENCH_RESULTS_COPY" && cp -r "$RES" "$BENCH_RESULTS_COPY"
    log "raw results copied to $BENCH_RESULTS_COPY"
fi
log "done in $(( $(date +%s) - T_START )) s"
