#!/usr/bin/env bash
# Restart to ready: how long chatd takes, from exec to answering a History request, with a big
# data dir, after a clean stop and after `kill -9` under a durable send load. Loopback only.
#
#   bench/restart.sh fill  DIR [MESSAGES]   fill DIR with MESSAGES (default 10,000,000) 100-byte
#                                           messages over 100 chats (fsync = "never", open membership)
#   bench/restart.sh clean DIR [ROUNDS]     start on DIR, stop cleanly, time the restart (ROUNDS times)
#   bench/restart.sh kill9 DIR [ROUNDS] [MAX_SECS]
#                                           start on DIR with fsync = "always", send under load
#                                           (32 connections) for a random 5..MAX_SECS (default 70)
#                                           seconds, kill -9, time the restart; ROUNDS times
#
# Needs target/release/chatd (cargo build --release --bin chatd) and bench/target/release/loadgen.
# DIR/chats.tsv (written by fill) names the chats. Prints one line per restart: ready_ms (exec to
# the first 200), cpu_ms (chatd's user + system CPU until then), the load average, the pid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHATD="${CHATD:-$ROOT/target/release/chatd}"
LOADGEN="${LOADGEN:-$ROOT/bench/target/release/loadgen}"
PORT="${PORT:-18181}"
MODE=$1
DIR=$(realpath -m "$2")
mkdir -p "$DIR/data"

start() { # fsync mode; sets PID
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=$PORT CHATD__STORAGE__DATA_DIR="$DIR/data" \
        CHATD__STORAGE__FSYNC="$1" CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info \
        "$CHATD" --config /nonexistent serve >>"$DIR/chatd.log" 2>&1 &
    PID=$!
}

# Starts chatd and polls History on the first chat every 2 ms; prints the ms from exec to a 200.
timed_start() {
    local chat
    chat=$(head -1 "$DIR/chats.tsv" | cut -f1)
    python3 - "$PORT" "$chat" "$1" "$DIR" "$CHATD" <<'EOF'
import json, os, socket, subprocess, sys, time
port, chat, fsync, d, chatd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
env = dict(os.environ, NO_COLOR="1", CHATD__SERVER__HOST="127.0.0.1", CHATD__SERVER__PORT=str(port),
           CHATD__STORAGE__DATA_DIR=d + "/data", CHATD__STORAGE__FSYNC=fsync,
           CHATD__CHAT__MEMBERSHIP="open", CHATD__LOG__LEVEL="info")
body = json.dumps({"chat_id": chat, "limit": 1}).encode()
req = (b"POST /chat/History HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
log = open(d + "/chatd.log", "ab")
t0 = time.monotonic()
proc = subprocess.Popen([chatd, "--config", "/nonexistent", "serve"], env=env, stdout=log, stderr=log)
while True:
    if proc.poll() is not None:
        sys.exit("chatd exited")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(req)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        s.close()
        if out.startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        pass
    time.sleep(0.002)
ready = 1000 * (time.monotonic() - t0)
# chatd's own CPU time until then (user + system): what the restart costs apart from waiting for
# a core on a shared machine.
stat = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
cpu = 1000 * (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
print(f"ready_ms {ready:.0f} cpu_ms {cpu:.0f} load {os.getloadavg()[0]:.1f} pid {proc.pid}")
EOF
}

wait_gone() { while kill -0 "$1" 2>/dev/null; do sleep 0.05; done; }

messages() { # total stored, from History's last seq of each chat
    "$LOADGEN" verify --url "http://127.0.0.1:$PORT" --chats "$DIR/chats.tsv" 2>&1 | grep -o '[0-9]* messages' | grep -o '[0-9]*'
}

case "$MODE" in
fill)
    want=${3:-10000000}
    start never
    sleep 1
    [ -f "$DIR/chats.tsv" ] || "$LOADGEN" setup --url "http://127.0.0.1:$PORT" --chats 100 --out "$DIR/chats.tsv"
    while :; do
        have=$(messages || echo 0)
        echo "stored: $have"
        [ "$have" -ge "$want" ] && break
        "$LOADGEN" run --url "http://127.0.0.1:$PORT/chat/Send" --chats "$DIR/chats.tsv" -c 64 -d 30 \
            --text-bytes 100 --label fill --json "$DIR/fill.json" >/dev/null
    done
    kill -TERM "$PID"; wait_gone "$PID"
    du -sh "$DIR/data"/*
    ;;
clean)
    for _ in $(seq "${3:-3}"); do
        line=$(timed_start always); echo "clean stop -> $line"
        pid=${line##* }
        kill -TERM "$pid"; wait_gone "$pid"
    done
    ;;
kill9)
    for _ in $(seq "${3:-3}"); do
        line=$(timed_start always)
        pid=${line##* }
        secs=$((5 + RANDOM % (${4:-70} - 4)))
        "$LOADGEN" run --url "http://127.0.0.1:$PORT/chat/Send" --chats "$DIR/chats.tsv" \
            -c 32 -d 600 --text-bytes 100 --label load --json "$DIR/load.json" >/dev/null 2>&1 &
        load=$!
        sleep "$secs"
        kill -9 "$pid"; wait_gone "$pid"   # mid-load
        kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
        line=$(timed_start always)
        echo "kill -9 after ${secs}s of load -> $line"
        pid=${line##* }
        kill -TERM "$pid"; wait_gone "$pid"
    done
    ;;
*) sed -n '2,14p' "$0"; exit 2 ;;
esac
