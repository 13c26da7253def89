#!/usr/bin/env bash
# test_late_worker.sh: a worker that joins while a job runs gets work.
# One worker with one slot runs the full purchases pipeline (100 shards,
# 10 epochs: a few seconds) once as the reference. The same job is
# submitted again and, once it is running, a second worker is started:
# it must register, take tasks of that job (tasks_done > 0 in
# `workers -o json`), and the job must succeed with exactly the
# reference's metrics and `export --stage clean` bytes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 100000 9 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=1000 --set train.epochs=10)

cluster_start 1 1
ref="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
save_result "$ref" "$T/ref.json"
ctl export "$ref" --stage clean -o "$T/ref.csv" || fail "export $ref exit $?"

job="$(ctl submit "$D/full.yaml" "${SET[@]}")" || fail "submit exit $?"
wait_for '[ "$(job_state $job)" = running ]' 20
worker_start worker-2 1
wait_for '[ "$(alive_workers)" -eq 2 ]' 20
state="$(job_state "$job")"
[ "$state" = running ] ||
    fail "the job was already $state when worker-2 registered: the test did not test a late join"
ctl wait "$job" 2>"$T/wait.err" || fail "job $job: wait exit $?: $(tail -n 2 "$T/wait.err")"
n="$(worker_field worker-2 tasks_done)"
[ "$n" -gt 0 ] 2>/dev/null || fail "worker-2 joined mid-job but did no task (tasks_done=$n)"
echo "test_late_worker: worker-2 did $n tasks of $job"

save_result "$job" "$T/job.json"
same_metrics "$T/ref.json" "$T/job.json" "late worker vs reference"
ctl export "$job" --stage clean -o "$T/job.csv" || fail "export $job exit $?"
cmp "$T/ref.csv" "$T/job.csv" || fail "export --stage clean differs from the reference run"
echo "test_late_worker: ok"
