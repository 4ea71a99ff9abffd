#!/usr/bin/env bash
# chatd's send benchmark: durable Send against a trivial actix-web JSON echo, in one run.
#
#   bench/run.sh [-d SECS] [-c CONNS] [--rounds N] [--chats N] [--warmup SECS] [--no-build]
#                [--skeleton] [--redis] [--no-perf] [--wait-quiet SECS]
#
# Builds chatd and the bench tools in release, then, on loopback only:
#   1. starts chatd with fsync = "always" on a free port and a fresh temporary data dir,
#      and creates N chats (default 100) with POST /chat/New, each with its own user set;
#   2. alternates, ROUNDS times (default 2): echo baseline, then chatd durable Send, each for
#      SECS seconds (default 10, after a 1 s warm-up) with C connections (default 32), one request
#      in flight per connection, the same request bodies for both; with --skeleton, each round
#      also runs bench/src/bin/skeleton.rs (chatd's send path reduced to its thread hops) in
#      eight variants, to price the architecture apart from chatd's own code;
#   3. checks that chatd stores exactly as many messages as it answered 200 to;
#   4. runs chatd with fsync = "never" once, for information;
#   5. optionally (--redis) Redis XADD with appendfsync always via redis-benchmark, as a reference;
#   6. prints a table: req/s, p50/p99 latency, errors, CPU split, and chatd's ratio to the echo
#      baseline; with perf installed, also fsyncs/s, sends per fsync (the group-commit batch) and
#      context switches per request. Everything lands in bench/results/<time>/.
# With --wait-quiet SECS it first waits (at most SECS) until the machine has been nearly idle for
# a few seconds: the machine is shared, and other people's builds skew every figure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
DURATION=10
CONNS=32
ROUNDS=2
CHATS=100
WARMUP=1
BUILD=1
REDIS=0
USE_PERF=1
SKELETON=0
WAIT_QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        -d|--duration) DURATION=$2; shift 2 ;;
        -c|--connections) CONNS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --chats) CHATS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --redis) REDIS=1; shift ;;
        --skeleton) SKELETON=1; shift ;;
        --wait-quiet) WAIT_QUIET=$2; shift 2 ;;
        --no-perf) USE_PERF=0; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$BUILD" = 1 ]; then
    echo "== building chatd (release) and the bench tools (release)"
    (cd "$ROOT" && cargo build --release --bin chatd)
    (cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release)
fi
CHATD="${CARGO_TARGET_DIR:-$ROOT/target}/release/chatd"
TOOLS="$BENCH/target/release"
for bin in "$CHATD" "$TOOLS/echo" "$TOOLS/skeleton" "$TOOLS/loadgen" "$TOOLS/fsyncbench"; do
    [ -x "$bin" ] || { echo "missing $bin (run without --no-build)" >&2; exit 1; }
done

OUT="$BENCH/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatd-bench.XXXXXX")
cleanup() {
    # Only this script's own background jobs (servers, perf counters) still running.
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Busy share of all cores over the next N seconds, in % (100 = every core busy).
busy_pct() {
    local a b t=0 idle i
    read -ra a < <(head -1 /proc/stat)
    sleep "$1"
    read -ra b < <(head -1 /proc/stat)
    for i in 1 2 3 4 5 6 7 8; do t=$((t + b[i] - a[i])); done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $((100 * (t - idle) / (t > 0 ? t : 1)))
}
if [ "$WAIT_QUIET" -gt 0 ]; then
    echo "== waiting (at most ${WAIT_QUIET}s) for the machine to be quiet (< 10% busy for 6 s)"
    deadline=$((SECONDS + WAIT_QUIET))
    quiet=0
    while [ $SECONDS -lt $deadline ]; do
        b=$(busy_pct 3)
        if [ "$b" -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ $quiet -ge 2 ] && break
    done
    [ $quiet -ge 2 ] && echo "quiet" || echo "still busy (${b}%) after ${WAIT_QUIET}s; going on anyway"
fi

{
    echo "== machine"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpus:    $(nproc) × $(lscpu | sed -n 's/^Model name: *//p')"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version)"
    echo "chatd:   $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && [ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ] && echo ' (+ uncommitted changes in src/)')"
    echo "command: bench/run.sh -d $DURATION -c $CONNS --rounds $ROUNDS --chats $CHATS --warmup $WARMUP"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# Starts chatd with the given fsync mode on a free loopback port; sets CHATD_PID and CHATD_PORT.
start_chatd() {
    local mode=$1 dir="$WORK/data-$1" log="$OUT/chatd-$1.log"
    mkdir -p "$dir"
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$dir" \
        CHATD__STORAGE__FSYNC="$mode" CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info \
        "$CHATD" --config /nonexistent serve >"$log" 2>&1 &
    CHATD_PID=$!
    CHATD_PORT=
    for _ in $(seq 100); do
        CHATD_PORT=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'listening.*port=[0-9]*' | grep -o '[0-9]*$' | head -1 || true)
        [ -n "$CHATD_PORT" ] && break
        kill -0 "$CHATD_PID" 2>/dev/null || { cat "$log" >&2; echo "chatd did not start" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$CHATD_PORT" ] || { cat "$log" >&2; echo "chatd did not report its port" >&2; exit 1; }
    echo "chatd (fsync = $mode) pid $CHATD_PID on 127.0.0.1:$CHATD_PORT, data in $dir"
}

stop() { # pid of a server this script started: SIGTERM, then SIGKILL if it is still up after 15 s
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then
        echo "pid $1 did not stop within 15 s; killing it" >&2
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

total_ok() { # the 200s a phase got in all, warm-up and tail included
    sed -n 's/.*"total_ok": *\([0-9]*\).*/\1/p' "$1"
}

# perf, when present, counts the server's fdatasyncs and context switches during each window
# (a few counters, no sampling: it does not slow the server down measurably).
PERF=0
if [ "$USE_PERF" = 1 ] && command -v perf >/dev/null \
    && perf list tracepoint 2>/dev/null | grep 'syscalls:sys_enter_fdatasync' >/dev/null; then
    PERF=1
fi

load() { # label url server-pid chats-file
    local counter=
    if [ "$PERF" = 1 ]; then
        (sleep "$WARMUP"; exec perf stat -x, -e context-switches,syscalls:sys_enter_fdatasync \
            -p "$3" -o "$OUT/$1.perf.csv" -- sleep "$DURATION") &
        counter=$!
    fi
    "$TOOLS/loadgen" run --label "$1" --url "$2" --server-pid "$3" --chats "$4" \
        -c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --json "$OUT/$1.json" | tee -a "$OUT/phases.txt"
    [ -z "$counter" ] || wait "$counter" || true
}

echo "== fsync cost on this disk (the data dir's filesystem)"
"$TOOLS/fsyncbench" --dir "$WORK" --n 2000 | tee "$OUT/fsync.txt"
"$TOOLS/fsyncbench" --dir "$WORK" --n 2000 --prealloc | tee -a "$OUT/fsync.txt"

echo "== phases: $CONNS connections, ${DURATION}s each after ${WARMUP}s warm-up, $CHATS chats"
start_chatd always
ALWAYS_PID=$CHATD_PID
ALWAYS_URL="http://127.0.0.1:$CHATD_PORT"
"$TOOLS/loadgen" setup --url "$ALWAYS_URL" --chats "$CHATS" --out "$WORK/chats-always.tsv"

# Starts a bench tool that prints "listening on PORT"; sets TOOL_PID and TOOL_PORT.
start_tool() { # log-file command...
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    TOOL_PID=$!
    TOOL_PORT=
    for _ in $(seq 300); do
        TOOL_PORT=$(awk '/listening/ {print $3}' "$log")
        [ -n "$TOOL_PORT" ] && return 0
        sleep 0.1
    done
    cat "$log" >&2
    echo "$1 did not start" >&2
    exit 1
}

start_tool "$OUT/echo.log" "$TOOLS/echo" --port 0
ECHO_PID=$TOOL_PID
ECHO_URL="http://127.0.0.1:$TOOL_PORT/echo"

EXPECT=0
PHASES=()
for round in $(seq "$ROUNDS"); do
    load "echo#$round" "$ECHO_URL" "$ECHO_PID" "$WORK/chats-always.tsv"
    PHASES+=("$OUT/echo#$round.json")
    load "chatd-always#$round" "$ALWAYS_URL/chat/Send" "$ALWAYS_PID" "$WORK/chats-always.tsv"
    PHASES+=("$OUT/chatd-always#$round.json")
    EXPECT=$((EXPECT + $(total_ok "$OUT/chatd-always#$round.json")))
    if [ "$SKELETON" = 1 ]; then
        # "+prealloc": the log file is pre-zeroed (512 MiB) and overwritten in place.
        for variant in inline actor wal fsync direct-wal direct-fsync fsync+prealloc direct-fsync+prealloc; do
            mode=${variant%+prealloc}
            name=skel-${variant/+/-}
            extra=()
            [ "$mode" = "$variant" ] || extra=(--prealloc-mib 512)
            mkdir -p "$WORK/skeleton"
            start_tool "$OUT/$name.log" "$TOOLS/skeleton" --mode "$mode" --port 0 --dir "$WORK/skeleton" "${extra[@]}"
            load "$name#$round" "http://127.0.0.1:$TOOL_PORT/chat/Send" "$TOOL_PID" "$WORK/chats-always.tsv"
            PHASES+=("$OUT/$name#$round.json")
            stop "$TOOL_PID"
        done
    fi
done
stop "$ECHO_PID"
"$TOOLS/loadgen" verify --url "$ALWAYS_URL" --chats "$WORK/chats-always.tsv" --expect "$EXPECT" | tee -a "$OUT/phases.txt"
stop "$ALWAYS_PID"

start_chatd never
"$TOOLS/loadgen" setup --url "http://127.0.0.1:$CHATD_PORT" --chats "$CHATS" --out "$WORK/chats-never.tsv"
load "chatd-never#1" "http://127.0.0.1:$CHATD_PORT/chat/Send" "$CHATD_PID" "$WORK/chats-never.tsv"
PHASES+=("$OUT/chatd-never#1.json")
"$TOOLS/loadgen" verify --url "http://127.0.0.1:$CHATD_PORT" --chats "$WORK/chats-never.tsv" \
    --expect "$(total_ok "$OUT/chatd-never#1.json")" | tee -a "$OUT/phases.txt"
stop "$CHATD_PID"

if [ "$REDIS" = 1 ]; then
    echo "== reference: Redis XADD, appendonly yes, appendfsync always ($CONNS connections, $CHATS streams)"
    if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
        RPORT=$(( 20000 + RANDOM % 20000 ))
        mkdir -p "$WORK/redis"
        redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$WORK/redis" --appendonly yes \
            --appendfsync always --save '' --daemonize no >"$OUT/redis.log" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
        redis-server --version | tee -a "$OUT/redis.txt"
        # About DURATION seconds' worth at ~45k/s.
        N=$(( DURATION * 45000 ))
        redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$CONNS" -n "$N" -r "$CHATS" -P 1 -q \
            XADD 'chat:__rand_int__' '*' user_id bench-user text "bench message xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
            2>&1 | tr '\r' '\n' | grep -v 'rps=' | grep -v '^ *$' | tee -a "$OUT/redis.txt"
        redis-cli -p "$RPORT" info persistence | grep -E 'aof_enabled|aof_last_write_status' | tee -a "$OUT/redis.txt"
        stop "$REDIS_PID"
    else
        echo "redis-server / redis-benchmark not installed (apt-get install -y redis-server); skipped" | tee "$OUT/redis.txt"
    fi
fi

echo "== fsync cost again, after the phases"
"$TOOLS/fsyncbench" --dir "$WORK" --n 2000 | tee -a "$OUT/fsync.txt"
"$TOOLS/fsyncbench" --dir "$WORK" --n 2000 --prealloc | tee -a "$OUT/fsync.txt"

echo
echo "== results (ratio target: chatd-always / echo >= 0.5)"
"$TOOLS/loadgen" table "${PHASES[@]}" | tee "$OUT/table.md"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "all output in $OUT"
