#!/usr/bin/env bash
# chatd's fan-out benchmark: one chat, N WebSocket subscribers, R messages/s sent over HTTP.
#
#   bench/fanout.sh [-n SUBSCRIBERS] [-r RATE] [-d SECS] [--warmup SECS] [--idle SECS]
#                   [--threads N] [--rounds N] [--mem-scan STEPS] [--no-build] [--wait-quiet SECS]
#
# Builds chatd and the bench tools in release, then, on loopback only, ROUNDS times (default 1):
#   1. starts chatd (fsync = "always", membership = "open") on a free port with a fresh temporary
#      data dir, its open-file limit raised to the hard limit;
#   2. runs `fanout run` (bench/src/bin/fanout.rs): creates one chat, reads chatd's RSS, opens N
#      WebSocket subscribers (default 1000) to it, lets them sit idle (default 5 s) and reads the
#      RSS again (memory per idle connection), then sends RATE messages/s (default 200) for a 2 s
#      warm-up plus SECS seconds (default 20) and checks that every subscriber got every message
#      exactly once, in seq order; reports deliveries/s, p50/p90/p99/max send-to-delivery latency
#      and the sends' HTTP latency;
#   3. stops chatd.
# With --mem-scan STEPS (e.g. 1000,2000,4000) it also runs, on another fresh chatd, a memory-only
# pass that connects idle subscribers in those steps and reads chatd's RSS after each: the RSS
# growth between two steps ÷ the connections added is the cost of one more connection.
# --threads N sets the client's worker threads (default 2; the client's own CPU, printed with
# chatd's, is mostly the kernel's recv of each frame).
# Prints the tables; everything lands in bench/results/fanout-<time>/ (git-ignored).
# With --wait-quiet SECS it first waits (at most SECS) until the machine has been nearly idle for
# 6 s, as bench/run.sh does: the machine is shared, and other people's builds skew every figure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SUBS=1000
RATE=200
DURATION=20
WARMUP=2
IDLE=5
THREADS=2
ROUNDS=1
MEM_SCAN=
BUILD=1
WAIT_QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--subscribers) SUBS=$2; shift 2 ;;
        -r|--rate) RATE=$2; shift 2 ;;
        -d|--duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --mem-scan) MEM_SCAN=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --wait-quiet) WAIT_QUIET=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$BUILD" = 1 ]; then
    echo "== building chatd (release) and the bench tools (release)"
    (cd "$ROOT" && cargo build --release --bin chatd)
    (cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release --bin fanout)
fi
CHATD="${CARGO_TARGET_DIR:-$ROOT/target}/release/chatd"
FANOUT="$BENCH/target/release/fanout"
for bin in "$CHATD" "$FANOUT"; do
    [ -x "$bin" ] || { echo "missing $bin (run without --no-build)" >&2; exit 1; }
done

# Each subscriber is one socket in chatd and one in fanout (plus a few for the senders).
ulimit -n "$(ulimit -Hn)"
SCAN_MAX=${MEM_SCAN##*,}
NEED=$(( ${SCAN_MAX:-0} > SUBS ? ${SCAN_MAX:-0} : SUBS ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((NEED + 200)) ]; then
    echo "the open-file limit ($(ulimit -n)) is too low for $NEED subscribers" >&2
    exit 1
fi

OUT="$BENCH/results/fanout-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatd-fanout.XXXXXX")
cleanup() {
    # Only this script's own background jobs (chatd) still running.
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
wait_quiet() {
    [ "$WAIT_QUIET" -gt 0 ] || return 0
    echo "== waiting (at most ${WAIT_QUIET}s) for the machine to be quiet (< 10% busy for 6 s)"
    local deadline=$((SECONDS + WAIT_QUIET)) quiet=0 b=0
    while [ $SECONDS -lt $deadline ]; do
        b=$(busy_pct 3)
        if [ "$b" -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
        [ $quiet -ge 2 ] && break
    done
    [ $quiet -ge 2 ] && echo "quiet" || echo "still busy (${b}%) after ${WAIT_QUIET}s; going on anyway"
}

wait_quiet
{
    echo "== machine"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpus:    $(nproc) × $(lscpu | sed -n 's/^Model name: *//p')"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version)"
    echo "chatd:   $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && [ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ] && echo ' (+ uncommitted changes in src/)')"
    echo "command: bench/fanout.sh -n $SUBS -r $RATE -d $DURATION --warmup $WARMUP --idle $IDLE --threads $THREADS --rounds $ROUNDS${MEM_SCAN:+ --mem-scan $MEM_SCAN}"
    echo "open files: $(ulimit -n)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# Starts chatd on a free loopback port with a fresh data dir; sets CHATD_PID and CHATD_PORT.
start_chatd() { # name
    local dir="$WORK/data-$1" log="$OUT/chatd-$1.log"
    mkdir -p "$dir"
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$dir" \
        CHATD__STORAGE__FSYNC=always CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info \
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
    echo "chatd pid $CHATD_PID on 127.0.0.1:$CHATD_PORT (open files: $(awk '/open files/ {print $4}' /proc/$CHATD_PID/limits)), data in $dir"
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

STATUS=0
RUNS=()
for round in $(seq "$ROUNDS"); do
    [ "$round" = 1 ] || wait_quiet
    echo "== round $round: $SUBS subscribers, $RATE messages/s, ${WARMUP}s warm-up + ${DURATION}s"
    start_chatd "fanout$round"
    "$FANOUT" run --url "http://127.0.0.1:$CHATD_PORT" --server-pid "$CHATD_PID" --label "fanout#$round" \
        --subscribers "$SUBS" --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" --idle "$IDLE" \
        --threads "$THREADS" --json "$OUT/fanout#$round.json" | tee "$OUT/fanout#$round.txt" || STATUS=$?
    RUNS+=("$OUT/fanout#$round.json")
    stop "$CHATD_PID"
done

if [ -n "$MEM_SCAN" ]; then
    wait_quiet
    echo "== memory scan: idle subscribers in steps $MEM_SCAN"
    start_chatd memscan
    "$FANOUT" run --url "http://127.0.0.1:$CHATD_PORT" --server-pid "$CHATD_PID" --label "memscan" \
        --subscribers "${MEM_SCAN##*,}" --steps "$MEM_SCAN" --duration 0 --idle "$IDLE" \
        --threads "$THREADS" --json "$OUT/memscan.json" | tee "$OUT/memscan.txt" || STATUS=$?
    RUNS+=("$OUT/memscan.json")
    stop "$CHATD_PID"
fi

echo
echo "== results (targets: p99 send-to-delivery < 50 ms; chatd memory per idle connection <= 16 KiB)"
"$FANOUT" table "${RUNS[@]}" | tee "$OUT/table.md"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "all output in $OUT"
exit "$STATUS"
