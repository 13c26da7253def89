#!/usr/bin/env bash
# test_worker_kill.sh: a worker SIGKILLed mid-job changes nothing but
# the time. Three workers (heartbeat 250 ms, so a death is noticed in
# under a second) first run an ingest+clean job and the full purchases
# pipeline undisturbed: the references. Then:
#  a. the ingest+clean job again, a worker SIGKILLed while clean runs;
#  b. the full pipeline again, another worker SIGKILLed while train runs.
# Each must succeed; the killed worker must be listed dead; the job must
# still have been running after the kill (else nothing was tested); and
# its metrics (quartiles, scaler statistics, train_loss, model_bytes,
# accuracy, logloss, auc, f1) and `export --stage clean` (and scale)
# bytes must be identical to the reference: lost shards were recomputed
# and the interrupted epoch restarted from the same model.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 200000 13 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=1000)
full_set() { [ "$(basename "$1")" = full.yaml ] && echo "--set train.epochs=10"; }

cluster_start 3 1

reference() { # TAG JOBFILE
    local job
    job="$(submit_wait "$2" "${SET[@]}" $(full_set "$2"))" || exit 1
    save_result "$job" "$T/ref.$1.json"
    ctl export "$job" --stage clean -o "$T/ref.$1.clean.csv" || fail "export $job exit $?"
    [ "$1" = clean ] || ctl export "$job" --stage scale -o "$T/ref.$1.scale.csv" ||
        fail "export $job --stage scale exit $?"
}
reference clean "$D/clean.yaml"
reference full "$D/full.yaml"

# killed_run TAG JOBFILE STAGE VICTIM: submit, SIGKILL VICTIM once STAGE
# runs, then check the outcome against the reference TAG.
killed_run() {
    local tag="$1" jf="$2" stage="$3" victim="$4" job state
    job="$(ctl submit "$jf" "${SET[@]}" $(full_set "$jf"))" || fail "submit exit $?"
    # grep, not python: the poll must be quick to catch the stage running
    wait_for "ctl status $job -o json | grep -q '\"name\":\"$stage\",\"state\":\"running\"'" 30
    kill_worker "$victim"
    state="$(job_state "$job")"
    [ "$state" = running ] ||
        fail "$tag: job $job was already $state when $victim was killed: nothing was tested"
    # bounded: an undisturbed run takes a few seconds on this box
    timeout 30 "$MLOPSCTL" wait "$job" 2>"$T/wait.err"
    local rc=$?
    [ "$rc" -ne 124 ] || fail "$tag: job $job did not finish within 30 s of killing $victim" \
        "(undisturbed: $(jget 'round(d["seconds"], 1)' <"$T/ref.$tag.json") s); its log: $(ctl logs "$job" | grep -i -m 3 'fail\|retry')"
    [ "$rc" -eq 0 ] || fail "$tag: job $job did not survive the loss of $victim: $(tail -n 2 "$T/wait.err")"
    wait_for "[ \"\$(worker_state $victim)\" = dead ]" 20
    save_result "$job" "$T/$tag.json"
    same_metrics "$T/ref.$tag.json" "$T/$tag.json" "$tag: $victim killed during $stage vs undisturbed run"
    ctl export "$job" --stage clean -o "$T/$tag.clean.csv" || fail "export $job exit $?"
    cmp "$T/ref.$tag.clean.csv" "$T/$tag.clean.csv" ||
        fail "$tag: export --stage clean differs after killing $victim"
    if [ "$tag" != clean ]; then
        ctl export "$job" --stage scale -o "$T/$tag.scale.csv" || fail "export $job exit $?"
        cmp "$T/ref.$tag.scale.csv" "$T/$tag.scale.csv" ||
            fail "$tag: export --stage scale differs after killing $victim"
    fi
    echo "test_worker_kill: $tag: $victim killed during $stage of $job; same results"
}

killed_run clean "$D/clean.yaml" clean worker-2
worker_start worker-4 1
wait_for '[ "$(alive_workers)" -eq 3 ]' 20
killed_run full "$D/full.yaml" train worker-3
echo "test_worker_kill: ok"
