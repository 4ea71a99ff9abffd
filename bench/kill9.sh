#!/usr/bin/env bash
# kill9.sh BIN N: make N fresh chats with no checkpoint meanwhile, kill -9, start again (time
# until `New` answers 200), then time the SIGTERM stop, whose checkpoint folds every replayed
# chat. PORT (18998) and DIR (a new temp dir) may be set. Needs bench/target/release/loadgen.
set -u
BIN=$1; N=$2; PORT=${PORT:-18998}; D=${DIR:-$(mktemp -d)}; mkdir -p "$D"
LOADGEN=$(dirname "$0")/target/release/loadgen
start() {
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=$PORT CHATD__STORAGE__DATA_DIR=$D/data \
        CHATD__STORAGE__FSYNC=never CHATD__CHAT__MEMBERSHIP=open CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS=36000 \
        CHATD__STORAGE__CHECKPOINT_BYTES=0 "$BIN" --config /nonexistent serve >> "$D/log" 2>&1 &
    PID=$!
}
start; sleep 1.5
printf 'chat-0\tuser-0\n' > "$D/chats.tsv"
"$LOADGEN" run --url "http://127.0.0.1:$PORT" --chats "$D/chats.tsv" --workload new -c 32 --total "$N" --label new 2>&1 | tail -1
kill -KILL $PID; wait $PID 2>/dev/null
t0=$(date +%s.%N); start
body='{"user_ids":["user-0","kill9-probe"]}'
for _ in $(seq 1200); do [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$body" "http://127.0.0.1:$PORT/chat/New")" = 200 ] && break; sleep 0.05; done
t1=$(date +%s.%N)
echo "ready after kill -9 in $(echo "$t1 - $t0" | bc) s; RSS $(( $(awk '/VmRSS/{print $2}' /proc/$PID/status) / 1024 )) MiB"
t0=$(date +%s.%N); kill -TERM $PID; wait $PID; t1=$(date +%s.%N)
echo "stop took $(echo "$t1 - $t0" | bc) s; $(ls "$D/data/snap" | wc -l) files in snap/"
[ -z "${DIR:-}" ] && rm -rf "$D"
