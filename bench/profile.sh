#!/usr/bin/env bash
# Where a request's time goes: runs one server under the same load as bench/run.sh and counts,
# with `perf stat` on the server process, what each request costs in CPU time, context
# switches, syscalls and fsyncs; with --record it also samples a CPU profile (perf record).
#
#   bench/profile.sh [echo|always|never] [-d SECS] [-c CONNS] [--chats N] [--record] [--no-build]
#
# Needs `perf` (tracepoints for the syscall counts; software events are enough for the rest).
# It reuses the binaries that bench/run.sh builds. Output lands in bench/results/profile-<time>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
KIND=always
DURATION=10
CONNS=32
CHATS=100
RECORD=0
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        echo|always|never) KIND=$1; shift ;;
        -d|--duration) DURATION=$2; shift 2 ;;
        -c|--connections) CONNS=$2; shift 2 ;;
        --chats) CHATS=$2; shift 2 ;;
        --record) RECORD=1; shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --bin chatd)
    (cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release)
fi
CHATD="${CARGO_TARGET_DIR:-$ROOT/target}/release/chatd"
TOOLS="$BENCH/target/release"
OUT="$BENCH/results/profile-$KIND-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatd-profile.XXXXXX")
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$KIND" = echo ]; then
    "$TOOLS/echo" --port 0 >"$OUT/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 50); do grep -q listening "$OUT/server.log" && break; sleep 0.1; done
    PORT=$(awk '/listening/ {print $3}' "$OUT/server.log")
    # The echo takes the very bodies a Send takes; their chat ids need not exist.
    for i in $(seq 0 $((CHATS - 1))); do printf 'chat-%s\tuser-%s\n' "$i" "$i"; done >"$WORK/chats.tsv"
    URL="http://127.0.0.1:$PORT/echo"
else
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$WORK/data" \
        CHATD__STORAGE__FSYNC="$KIND" CHATD__CHAT__MEMBERSHIP=open \
        "$CHATD" --config /nonexistent serve >"$OUT/server.log" 2>&1 &
    PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/server.log" | grep -o 'listening.*port=[0-9]*' | grep -o '[0-9]*$' | head -1 || true)
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { cat "$OUT/server.log" >&2; exit 1; }
    "$TOOLS/loadgen" setup --url "http://127.0.0.1:$PORT" --chats "$CHATS" --out "$WORK/chats.tsv"
    URL="http://127.0.0.1:$PORT/chat/Send"
fi

# The load runs 1 s of warm-up + DURATION; from its second 2, perf stat counts for SPAN seconds,
# then (--record) perf record samples 3 s, all inside the window.
SPAN=$((DURATION > 4 ? DURATION - 2 : 2))
if [ "$RECORD" = 1 ]; then
    [ "$DURATION" -ge 8 ] || { echo "--record needs -d 8 or more" >&2; exit 2; }
    SPAN=$((DURATION - 6))
fi
"$TOOLS/loadgen" run --label "$KIND" --url "$URL" --chats "$WORK/chats.tsv" --server-pid "$PID" \
    -c "$CONNS" -d "$DURATION" --warmup 1 --json "$OUT/load.json" >"$OUT/load.txt" &
LOAD=$!
sleep 2
EVENTS=task-clock,context-switches,cpu-migrations
perf list tracepoint >"$WORK/tracepoints" 2>/dev/null || true
for tp in raw_syscalls:sys_enter syscalls:sys_enter_fdatasync syscalls:sys_enter_write \
          syscalls:sys_enter_sendto syscalls:sys_enter_recvfrom syscalls:sys_enter_epoll_wait \
          syscalls:sys_enter_futex syscalls:sys_enter_read; do
    if grep -q "^ *$tp " "$WORK/tracepoints"; then EVENTS="$EVENTS,$tp"; fi
done
perf stat -x, -e "$EVENTS" -p "$PID" -o "$OUT/perf-stat.csv" -- sleep "$SPAN"
if [ "$RECORD" = 1 ]; then
    # DWARF unwinding: the release build has line tables but no frame pointers.
    perf record -F 499 -e cpu-clock --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep 3 2>/dev/null
fi
wait "$LOAD"
cat "$OUT/load.txt"
RPS=$(sed -n 's/.*"rps": *\([0-9.]*\).*/\1/p' "$OUT/load.json")
echo
echo "server-side cost per request (perf stat over ${SPAN}s of the ${DURATION}s window, at $RPS req/s):"
awk -F, -v rps="$RPS" -v span="$SPAN" '
    $1 ~ /^[0-9.]+$/ {
        n = rps * span
        if ($3 == "task-clock") printf "  %-32s %8.2f µs CPU\n", "task-clock", $1 * 1000 / n
        else printf "  %-32s %8.3f\n", $3, $1 / n
    }' "$OUT/perf-stat.csv" | tee "$OUT/per-request.txt"
if [ "$RECORD" = 1 ]; then
    perf report -i "$OUT/perf.data" --stdio --no-children --sort pid -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -12 | tee "$OUT/threads.txt" || true
    echo "self time, top symbols:"
    perf report -i "$OUT/perf.data" --stdio --no-children --sort sym -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -30 | tee "$OUT/symbols.txt" || true
    echo "inclusive time of the send path's parts (% of the server's samples):"
    perf report -i "$OUT/perf.data" --stdio --children --sort sym -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' \
        | grep -E 'Writer::run|Writer::sync|fdatasync$|File as std::io::Write>::write$|recognize_fn|regex_lite::string::Regex::is_match_at|CorsService|http::chat::send_message|AppState::ask|Handler<chatd::chat::Post>>::handle$|Handler<chatd::chat::Durable>>::handle$|codec::frame|uuid|getrandom|serde_json::value|MessageView.*serialize|__libc_malloc|__libc_free|epoll_wait$|sendto$|recvfrom$|eventfd_write' \
        | tee "$OUT/inclusive.txt" || true
    echo "profile: perf report -i $OUT/perf.data"
fi
kill "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=
