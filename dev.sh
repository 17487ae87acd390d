#!/bin/sh
# dev.sh - set up, build and run sluice on a fresh Debian machine.
#
#   ./dev.sh run     install what is missing, build, run the daemon on the sample pipelines
#   ./dev.sh test    install what is missing, build, run the whole test suite: once in the
#                    release build (gcc), once under AddressSanitizer+UBSan (clang), once
#                    under ThreadSanitizer (clang), then the fuzzers
#   ./dev.sh build   install what is missing and build only
set -eu
cd "$(dirname "$0")"

PACKAGES="cmake make gcc clang pkg-config libzmq3-dev libcjson-dev libsqlite3-dev libsodium-dev
libmicrohttpd-dev libseccomp-dev libsystemd-dev libvips-dev libclang-rt-14-dev python3 python3-zmq python3-pil nodejs sqlite3 curl
systemd dpkg-dev tzdata libnats-dev nats-server"

install_missing() {
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "dev.sh: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
}

build() { # build DIR [cmake args...]
    dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

# Each fuzz target runs for a few seconds from its seed corpus; what it
# finds is written to a temporary folder, never into the repository.
fuzz_briefly() {
    for f in build-fuzz/tests/fuzz_*; do
        name=$(basename "$f")
        out=$(mktemp -d)
        echo "dev.sh: fuzzing $name for $1 s"
        "$f" -max_total_time="$1" -print_final_stats=0 "$out" "tests/fuzz/corpus/$name" \
            >"$out.log" 2>&1 || { tail -40 "$out.log"; echo "dev.sh: $name failed" >&2; exit 1; }
        rm -rf "$out" "$out.log"
    done
}

cmd=${1:-}
case "$cmd" in
run)
    install_missing
    build build
    shift
    exec ./build/sluice run "$@"
    ;;
test)
    install_missing
    build build -DCMAKE_C_COMPILER=gcc
    ctest --test-dir build -j 2 --output-on-failure
    build build-asan -DCMAKE_C_COMPILER=clang -DSLUICE_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan -j 2 --output-on-failure
    # ThreadSanitizer checks sluice's own threads (loop, executor pool, writer).
    # It cannot follow a child that shares the daemon's memory (spawn.c's clone
    # with CLONE_VM, and the PID namespace's init): in this build workers start
    # with a plain fork and without a namespace, so the tests of that mechanism
    # run in the two builds above only; nor can it see inside the threaded
    # libraries the thumbnail (libvips, glib, libpng) and zmq_forward (libzmq)
    # plugins run in their workers, so those plugins' tests are left out too.
    # Workers that crash on purpose die of their signal, as in a normal build.
    # test_nats is left out too: Debian's libnats is not instrumented, so TSan
    # cannot see the locks its own threads (flusher, reconnect, async publish
    # acks) take around the messages and connections sluice shares with them.
    build build-tsan -DCMAKE_C_COMPILER=clang -DSLUICE_TSAN=ON
    TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp second_deadlock_stack=1 handle_segv=0" \
        ctest --test-dir build-tsan -j 2 --output-on-failure \
        -E 'test_spawn|test_containment|test_plugin_thumbnail|test_plugin_zmq_forward|test_nats'
    build build-fuzz -DCMAKE_C_COMPILER=clang -DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=ON
    ctest --test-dir build-fuzz -R '^fuzz\.' --output-on-failure
    fuzz_briefly "${FUZZ_SECONDS:-5}"
    ;;
build)
    install_missing
    build build
    ;;
*)
    echo "usage: ./dev.sh run|test|build" >&2
    exit 2
    ;;
esac
