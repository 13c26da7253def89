#!/usr/bin/env bash
# test_worker_queue_max.sh: a worker's task FIFO is bounded (--queue-max)
# and an assignment beyond it is sent back busy, re-queued by the
# coordinator without counting a try (docs/reliability.md, Bounds).
# A worker with --queue-max 2 and one slot gets noop's 256 assignments
# at once, most sent back many times; a job of 60 tasks with max_attempts
# 3 (a try for a lost worker is allowed on a loaded box) succeeds with
# every task done, and the worker's log shows the assignments it sent
# back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
coord_start
mkdir -p "$CLUSTER_DIR/logs"
# shellcheck disable=SC2046 # key paths hold no spaces ($T is mktemp's)
"$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" --data-dir "$CLUSTER_DIR/small" \
    --name small --slots 1 --queue-max 2 $(worker_key_args) \
    </dev/null >>"$CLUSTER_DIR/logs/small.log" 2>&1 &
echo "small $!" >>"$CLUSTER_DIR/pids"
wait_for '[ "$(alive_workers)" -eq 1 ]' 20
printf 'name: q\nmax_attempts: 3\nnoop: {tasks: 60, task_ms: 2}\n' >"$T/q.yaml"
j="$(ctl submit "$T/q.yaml")" || fail "submit exit $?"
timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err" || fail "job $j: wait exit $?: $(tail -n 2 "$T/wait.err")"
ctl status "$j" -o json >"$T/st.json" || fail "status exit $?"
assert_eq "$(jget "[s['tasks_done'] for s in d['stages']]" <"$T/st.json")" "[60]" "tasks done"
assert_contains "$(cat "$CLUSTER_DIR/logs/small.log")" "worker small: task queue full (2 waiting, --queue-max)" "worker log"
echo "test_worker_queue_max: ok"
