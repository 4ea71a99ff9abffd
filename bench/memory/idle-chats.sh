#!/usr/bin/env bash
# idle-chats.sh BIN N [kill]: creates N idle chats (POST /chat/New, a distinct member pair each,
# bench/memory/mkchats.py) in a fresh loopback chatd (fsync=never, membership=open), stops it
# (SIGTERM, or kill -9 with "kill"), starts it again and prints its VmRSS 5 s after it listens.
# Env: DATA_PARENT (where the data dir goes; /dev/shm makes the fill fast, since every chat's
# snapshot is fsynced), IDLE_SECS and CKPT_SECS (chat idle timeout, checkpoint interval),
# KEEP=1 (keep the data dir, for restart-rss.sh), NO_RESTART=1 (stop after the fill).
set -euo pipefail
BIN=$1; N=$2; STOP=${3:-term}
DIR=$(mktemp -d ${DATA_PARENT:-/tmp}/data.XXXX)
start() {
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$DIR" \
        CHATD__STORAGE__FSYNC=never CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info CHATD__CHAT__IDLE_TIMEOUT_SECS=${IDLE_SECS:-300} CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS=${CKPT_SECS:-60} \
        "$BIN" > "$DIR/log.$1" 2>&1 &
    PID=$!
    for _ in $(seq 1 600); do
        PORT=$(grep -o 'listening.*port=[0-9]*' "$DIR/log.$1" | grep -o '[0-9]*$' | head -1 || true)
        [ -n "$PORT" ] && break; sleep 0.1
    done
}
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' /proc/$PID/status; echo; }
start 1
t0=$(date +%s.%N)
python3 "$(dirname "$0")/mkchats.py" "$PORT" "$N" 16 16
t1=$(date +%s.%N)
echo "created $N in $(echo "$t1 - $t0" | bc) s; rss while created: $(rss)"
if [ "$STOP" = kill ]; then kill -9 $PID; else kill -TERM $PID; fi
wait $PID || true
[ -n "${NO_RESTART:-}" ] && { echo "left $DIR"; exit 0; }
t0=$(date +%s.%N)
start 2
t1=$(date +%s.%N)
echo "restart to listening: $(echo "$t1 - $t0" | bc) s"
sleep 5
echo "after restart ($STOP): $(rss)"
ls -la "$DIR/snap/catalog.snap" 2>/dev/null || ls "$DIR"
kill -TERM $PID; wait $PID || true
[ -n "${KEEP:-}" ] && echo "kept $DIR" || rm -rf "$DIR"
