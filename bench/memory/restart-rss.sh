#!/usr/bin/env bash
# restart-rss.sh BIN DIR: starts chatd on an existing data dir, prints time to listening and the
# RSS 5 s later, then stops it with SIGTERM.
set -euo pipefail
BIN=$1; DIR=$2
LOG=$(mktemp /tmp/chatd-rss.XXXX)
t0=$(date +%s.%N)
NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=0 CHATD__STORAGE__DATA_DIR="$DIR" \
    CHATD__STORAGE__FSYNC=never CHATD__CHAT__MEMBERSHIP=open CHATD__LOG__LEVEL=info "$BIN" > "$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 1200); do grep -q 'listening' "$LOG" && break; sleep 0.05; done
t1=$(date +%s.%N)
sleep 5
echo "$(basename $BIN): chats=$(grep -o 'chats=[0-9]*' "$LOG" | head -1) listening after $(echo "$t1 - $t0" | bc) s; $(awk '/VmHWM|VmRSS|RssAnon|RssFile/ {printf "%s %s kB  ", $1, $2}' /proc/$PID/status)"
kill -TERM $PID; wait $PID || true
[ -n "${SHOWLOG:-}" ] && grep -E "INFO" "$LOG" | cut -c1-140 | head -8; rm -f "$LOG"
