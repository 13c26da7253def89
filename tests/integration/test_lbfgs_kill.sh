#!/usr/bin/env bash
# test_lbfgs_kill.sh: an L-BFGS fit survives its coordinator's SIGKILL
# and a worker's, and ends with the model an undisturbed fit gives, bit
# for bit. The solver's state is journalled every 10 evaluations and
# the gradients not at all (a restart repeats the evaluations since); the
# coordinator keeps the decoded solver and the evaluation's packed
# arguments in memory between evaluations (stage_lbfgs.c), so a restart
# must rebuild both from the journal, and a lost worker's gradient
# tasks are sent again, to the worker left, with the same arguments.
# 20k purchase rows, 2 workers, tol 1e-10 (~190 iterations):
#  a. undisturbed: the reference (metrics, exported model);
#  b. the coordinator SIGKILLed past iteration 30 and restarted on its
#     data directory: the same metrics and model bytes;
#  c. worker-2 SIGKILLed past iteration 30 while it holds a gradient
#     task: the same again.
HB_MS=500
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
cat >"$D/job.yaml" <<EOF
name: purchases-lbfgs-kill
input: p.csv
shard_rows: 2048
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
scale: true
hash: {n_features: 65536}
split: {test_size: 0.2, seed: 42, method: sklearn}
train: {solver: lbfgs, C: 1, tol: 1e-10, max_iter: 10000}
evaluate: [accuracy, logloss, auc]
max_attempts: 20
EOF

model_of() { # JOB OUT: the registered model's artifact
    local reg
    reg="$(ctl result "$1" -o json | jget 'd["registered"]')" || fail "$1: no registered model"
    ctl model export "$reg" -o "$2" || fail "model export $reg exit $?"
}
iterations() { ctl logs "$1" 2>/dev/null | grep -c 'L-BFGS iteration'; }
# as_reference JOB TAG WHAT: JOB succeeds with the reference's metrics and
# weights (coefficients, intercepts), bit for bit; its result and model
# under $T/TAG.*
as_reference() {
    timeout 120 "$MLOPSCTL" wait "$1" >/dev/null 2>"$T/wait.err" ||
        fail "job $1 after $3: $(tail -n 2 "$T/wait.err")"
    save_result "$1" "$T/$2.json"
    model_of "$1" "$T/$2.model.json"
    same_metrics "$T/ref.json" "$T/$2.json" "$3"
    "$PY" -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["weights"] == b["weights"] else "weights differ")' "$T/ref.model.json" "$T/$2.model.json" ||
        fail "the model after $3 differs"
}

cluster_start 2 1
ref="$(submit_wait "$D/job.yaml")" || exit 1
save_result "$ref" "$T/ref.json"
model_of "$ref" "$T/ref.model.json"
echo "test_lbfgs_kill: reference: $(jget 'int(d["metrics"]["lbfgs_iterations"])' <"$T/ref.json") iterations"

# b. the coordinator
job="$(ctl submit "$D/job.yaml")" || fail "submit exit $?"
poll_for "[ \"\$(iterations $job)\" -ge 30 ]" 120
[ "$(job_state "$job")" = running ] || fail "job $job was $(job_state "$job") at the coordinator's kill: nothing tested"
at="$(iterations "$job")"
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
as_reference "$job" restart "the coordinator's restart at iteration $at"
# it went on from the state last journalled (every 10 evaluations), its
# results of the evaluations after it not kept: the same loss curve
# (a metric, compared above) shows the repeated ones were not counted twice
assert_contains "$(ctl logs "$job")" "L-BFGS resumed from its journalled state"
echo "test_lbfgs_kill: coordinator killed at iteration $at: the same model"

# c. a worker
wait_for '[ "$(alive_workers)" -eq 2 ]' 30
job="$(ctl submit "$D/job.yaml")" || fail "submit exit $?"
poll_for "[ \"\$(iterations $job)\" -ge 30 ]" 120
[ "$(job_state "$job")" = running ] || fail "job $job was $(job_state "$job") at the worker's kill: nothing tested"
# killed holding a gradient task, so that one is sent again: stopped
# first (which freezes what it holds), killed once the coordinator,
# given 100 ms for the results already sent, still counts it running one
pid2="$(worker_pid worker-2)"
held=0
for _ in $(seq 100); do
    kill -STOP "$pid2" || fail "cannot stop worker-2 (pid $pid2)"
    sleep 0.1
    if ctl tasks "$job" -o json | grep -q '"state":"running","worker":"worker-2"'; then held=1; break; fi
    kill -CONT "$pid2"
    sleep "0.0$((RANDOM % 10))"
done
[ "$held" = 1 ] || fail "worker-2 never held a gradient task when stopped (100 tries)"
at="$(iterations "$job")"
kill_worker worker-2
as_reference "$job" killed "worker-2's kill at iteration $at"
assert_contains "$(ctl logs "$job")" "worker lost"
echo "test_lbfgs_kill: ok (worker-2 killed at iteration $at: the same model)"
