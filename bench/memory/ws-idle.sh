#!/usr/bin/env bash
# ws-idle.sh BIN [STEPS]: the memory-scan pass of bench/fanout.sh (idle WebSocket subscribers
# in STEPS, chatd RSS after each) against the chatd binary BIN; needs bench/target/release/fanout.
set -euo pipefail
BIN=$1; STEPS=${2:-1000,2000,4000}
DIR=$(mktemp -d /tmp/chatd-ws.XXXX); LOG=$DIR/log
ulimit -n "$(ulimit -Hn)"
NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$DIR/data" \
    CHATD__STORAGE__FSYNC=always CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info \
    "$BIN" --config /nonexistent serve >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 100); do PORT=$(grep -o 'listening.*port=[0-9]*' "$LOG" | grep -o '[0-9]*$' | head -1 || true); [ -n "$PORT" ] && break; sleep 0.1; done
"$(dirname "$0")/../target/release/fanout" run --url "http://127.0.0.1:$PORT" --server-pid "$PID" --label memscan \
    --subscribers "${STEPS##*,}" --steps "$STEPS" --duration 0 --idle 5 --threads 2 --json "$DIR/memscan.json"
kill -TERM $PID; wait $PID || true
rm -rf "$DIR"
