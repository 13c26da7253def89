#!/usr/bin/env bash
# test_backpressure.sh: the coordinator's bounds hold under a flood, and
# nothing is lost (docs/reliability.md, Bounds).
#
# A plain cluster of two workers (2 slots each); the coordinator runs with
# small bounds: --max-jobs 4, --send-hwm 16, --outbox-max 64. Worker-1 is
# SIGSTOPped. Then:
#   - six clients submit 24 noop jobs of 50 tasks between them, far over
#     --max-jobs, so most submits are answered busy and mlopsctl sends
#     them again after a pause: every submit prints a job id, exits 0;
#   - while those jobs run on worker-2 alone, a client that never reads
#     its socket sends 40 000 `jobs` queries (each reply lists the 24
#     jobs: about 6 KiB, so some 240 MB if they were all queued for it).
# Checked: the coordinator's peak RSS grows by less than 64 MiB; its log
# shows both bounds at work (busy answers, replies to the client that
# does not read dropped). Then worker-1 is continued: all 24 jobs (no
# more, no fewer) succeed with every task done.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
INSECURE=1
JOBS=24
COORD_ARGS="--max-jobs 4 --send-hwm 16 --outbox-max 64"
cluster_start 2 2
coord_log="$CLUSTER_DIR/logs/coordinator.log"
w1="$(worker_pid worker-1)"
[ -n "$w1" ] || fail "no pid for worker-1"
kill -STOP "$w1" || fail "cannot SIGSTOP worker-1"

rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
base="$(rss_kib "$COORD_PID" VmRSS)"

cat >"$T/job.yaml" <<'YAML'
name: flood
noop: {tasks: 50, task_ms: 2}
YAML

for c in 1 2 3 4 5 6; do
    (
        for i in 1 2 3 4; do
            ctl --timeout 5000 submit "$T/job.yaml" >>"$T/ids.$c" 2>>"$T/submit.err" || echo "exit $?" >>"$T/submit.err"
        done
    ) &
    SUBMITTERS+=" $!"
done
for p in $SUBMITTERS; do wait "$p"; done
[ ! -s "$T/submit.err" ] || fail "a submit failed under the flood: $(head -n 3 "$T/submit.err")"
cat "$T"/ids.* >"$T/ids"
assert_eq "$(sort -u "$T/ids" | grep -c '^j')" "$JOBS" "distinct job ids printed by the submits"

# the client that never reads: it sends, then holds its connection open
"$PY" - "$MLOPS_COORDINATOR" "$T/flooder.ready" <<'PYEOF' &
import sys, time, zmq
ep, ready = sys.argv[1], sys.argv[2]
import os
sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "tests", "integration"))
from envelope import field  # noqa: E402
ctx = zmq.Context()
d = ctx.socket(zmq.DEALER)
d.setsockopt(zmq.RCVHWM, 1)
d.setsockopt(zmq.LINGER, 0)
d.connect(ep)
for seq in range(1, 40001):
    # Envelope{version 1, seq, query (40) = Query{verb "jobs"}}
    d.send(field(1, 1) + field(2, seq) + field(40, field(1, b"jobs")))
open(ready, "w").close()
time.sleep(600)
PYEOF
FLOODER=$!
echo "flooder $FLOODER" >>"$CLUSTER_DIR/pids"

wait_for '[ -e "$T/flooder.ready" ]' 120
# the coordinator answers them at its pace: wait until it has met the bound
wait_for 'grep -q "a peer does not read its messages: Reply dropped" "$coord_log"' 120
peak="$(rss_kib "$COORD_PID" VmHWM)"
grow=$(((peak - base) / 1024))
echo "coordinator RSS: $((base / 1024)) MiB before the flood, peak $((peak / 1024)) MiB (+$grow MiB)"
# ASan keeps freed memory in its quarantine (256 MiB by default): there
# the RSS says nothing about the bound, which the normal build checks
if grep -qa __asan_init "$MLOPS_BUILD_DIR/mlops-coordinator"; then
    echo "sanitizer build: RSS bound not checked (ASan's quarantine holds freed memory)"
else
    [ "$grow" -lt 64 ] || fail "the coordinator's peak RSS grew by $grow MiB under the flood (bound: 64)"
fi
assert_contains "$(cat "$coord_log")" "coordinator busy: a submit answered busy" "coordinator log"

kill -CONT "$w1" || fail "cannot SIGCONT worker-1"
while read -r j; do
    timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err" || fail "job $j: wait exit $?: $(tail -n 2 "$T/wait.err")"
    ctl status "$j" -o json >"$T/st.json" || fail "status $j exit $?"
    assert_eq "$(jget "[s['tasks_done'] for s in d['stages']]" <"$T/st.json")" "[50]" "tasks done of $j"
done <"$T/ids"
ctl jobs -o json >"$T/jobs.json" || fail "jobs exit $?"
assert_eq "$(jget "len(d['jobs'])" <"$T/jobs.json")" "$JOBS" "jobs the coordinator lists"
assert_eq "$(jget "sorted(set(x['state'] for x in d['jobs']))" <"$T/jobs.json")" '["succeeded"]' "job states"
kill "$FLOODER" 2>/dev/null
echo "test_backpressure: ok ($JOBS jobs through --max-jobs 4 under a flood; RSS +$grow MiB)"
