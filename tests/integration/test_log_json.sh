#!/usr/bin/env bash
# test_log_json.sh: --log-format json on both daemons. A coordinator and
# a worker (-v, so each task logs a line) run a small clean job; every
# line either wrote is one JSON object with time, level, role, pid, job,
# task and message; the worker's task lines name the job and the task;
# the default format stays the human one; a bad format is refused (exit 2).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
gen_purchases 4000 9 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
out="$("$MLOPS_BUILD_DIR/mlops-worker" --coordinator tcp://127.0.0.1:1 --data-dir "$T/w" \
    --log-format yaml 2>&1)"
assert_eq "$?" 2 "exit of --log-format yaml"
assert_contains "$out" "--log-format: expected 'human' or 'json', got 'yaml'"
COORD_ARGS="--log-format json" coord_start
mkdir -p "$CLUSTER_DIR/logs"
"$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" --data-dir "$CLUSTER_DIR/w1" \
    --name w1 -v --log-format json $(worker_key_args) </dev/null >>"$CLUSTER_DIR/logs/w1.log" 2>&1 &
echo "w1 $!" >>"$CLUSTER_DIR/pids"
worker_start w2 # the default: human lines
wait_for '[ "$(alive_workers)" -ge 2 ]' 20
job="$(submit_wait "$D/clean.yaml" --set shard_rows=500)" || exit 1
"$PY" - "$CLUSTER_DIR/logs" "$job" <<'PYEOF' || fail "the JSON log lines are wrong (see above)"
import json, os, re, sys
logs, job = sys.argv[1:3]
keys = {"time", "level", "role", "pid", "job", "task", "message"}
task_lines = 0
for name, role in (("coordinator.log", "coordinator"), ("w1.log", "worker")):
    lines = open(os.path.join(logs, name)).read().splitlines()
    assert lines, f"{name} is empty"
    for i, line in enumerate(lines, 1):
        try:
            o = json.loads(line)
        except ValueError as e:
            sys.exit(f"{name}:{i}: not JSON ({e}): {line}")
        assert set(o) == keys, f"{name}:{i}: keys {sorted(o)}"
        assert o["role"] == role and isinstance(o["pid"], int), f"{name}:{i}: {o}"
        assert o["level"] in ("debug", "info", "warn", "error"), f"{name}:{i}: {o}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o["time"]
        if o["job"] is not None:
            assert o["job"] == job and re.fullmatch(r"\d+/\d+", o["task"]), f"{name}:{i}: {o}"
            task_lines += 1
assert task_lines > 0, "no worker line names its job and task"
human = open(os.path.join(logs, "w2.log")).read().splitlines()
assert human and all(re.match(r"\d{4}-\d\d-\d\dT\S+Z worker\[\d+\] [DIWE] ", l) for l in human), human[:3]
print(f"ok: {task_lines} task lines name job {job}")
PYEOF
echo ok
