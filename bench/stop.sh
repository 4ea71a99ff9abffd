#!/usr/bin/env bash
# stop.sh BIN N: make N fresh chats (loadgen's `new` workload, fsync never), SIGTERM, time the
# clean stop; then start BIN again on the same data dir and time until `New` answers 200.
# PORT (18998) and DIR (a new temp dir) may be set. Needs bench/target/release/loadgen.
set -u
BIN=$1; N=$2; PORT=${PORT:-18998}; D=${DIR:-$(mktemp -d)}; mkdir -p "$D"
LOADGEN=$(dirname "$0")/target/release/loadgen
env_run() {
    NO_COLOR=1 CHATD__SERVER__HOST=127.0.0.1 CHATD__SERVER__PORT=$PORT CHATD__STORAGE__DATA_DIR=$D/data \
        CHATD__STORAGE__FSYNC=never CHATD__CHAT__MEMBERSHIP=open "$BIN" --config /nonexistent serve >> "$D/log" 2>&1 &
    PID=$!
}
env_run; sleep 1.5
printf 'chat-0\tuser-0\n' > "$D/chats.tsv"
"$LOADGEN" run --url "http://127.0.0.1:$PORT" --chats "$D/chats.tsv" --workload new -c 32 --total "$N" --label new 2>&1 | tail -1
t0=$(date +%s.%N); kill -TERM $PID; wait $PID; t1=$(date +%s.%N)
echo "stop took $(echo "$t1 - $t0" | bc) s for $N chats; $(ls "$D/data/snap" | wc -l) files in snap/"
t0=$(date +%s.%N); env_run
body='{"user_ids":["user-0","stop-probe"]}'
for _ in $(seq 1200); do [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$body" "http://127.0.0.1:$PORT/chat/New")" = 200 ] && break; sleep 0.05; done
t1=$(date +%s.%N)
echo "ready after $(echo "$t1 - $t0" | bc) s; RSS $(( $(awk '/VmRSS/{print $2}' /proc/$PID/status) / 1024 )) MiB"
kill -TERM $PID; wait $PID
[ -z "${DIR:-}" ] && rm -rf "$D"
