#!/usr/bin/env bash
# test_worker_kill.sh: a worker SIGKILLed mid-job changes nothing but
# the time. Three workers (heartbeat 250 ms, so a death is noticed in
# under a second) first run an ingest+clean job and the full purchases
# pipeline undisturbed: the references. Then:
#  a. the ingest+clean job again, a worker SIGKILLed while clean runs;
#  b. the full pipeline again, another worker SIGKILLed while train runs
#     its per-shard epoch tasks ("train_epoch");
#  c. the full pipeline again, a third worker SIGKILLed while train is in
#     one of its averaging levels ("train_reduce").
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
SET=(--set shard_rows=1000 --set keep_stages=true)
# clean.yaml's clean stage ran in 0.2 s on 200 shards, so it could end
# before the poll saw it and the kill landed: 1000 shards of 200 rows
full_set() {
    case "$(basename "$1")" in
        # 10 epochs trained in 1.1 s, and a CI run's polls missed every
        # epoch phase: 30 epochs give the poll about 30 windows
        full.yaml) echo "--set train.epochs=30" ;;
        clean.yaml) echo "--set shard_rows=200" ;;
    esac
}

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

# When to kill: while STAGE runs; for train, in an epoch phase or a
# reduce phase. 200 shards and fan-in 8 give 1 epoch phase + 3 reduce
# levels per epoch, so phase % 4 == 0 is "train_epoch".
PHASES_PER_EPOCH=4
stage_running() { # JOB STAGE [epoch|reduce]
    local p
    p="$(ctl status "$1" -o json | grep -o "\"name\":\"$2\",\"state\":\"running\"[^}]*\"phase\":[0-9]*" |
        grep -o '[0-9]*$')"
    [ -n "$p" ] || return 1
    case "${3:-}" in
        epoch) [ $((p % PHASES_PER_EPOCH)) -eq 0 ] ;;
        reduce) [ $((p % PHASES_PER_EPOCH)) -ne 0 ] ;;
    esac
}

# killed_run TAG JOBFILE STAGE[:epoch|:reduce] VICTIM: submit, SIGKILL
# VICTIM at that point, then check the outcome against the reference of
# the job file. A failed case is reported and cancelled, and the next
# case still runs: returns 1 after printing why.
killed_run() {
    local tag="$1" jf="$2" stage="${3%%:*}" when="${3#*:}" victim="$4" job state ref rc
    [ "$when" != "$3" ] || when=""
    ref="$(basename "$jf" .yaml)"
    job="$(ctl submit "$jf" "${SET[@]}" $(full_set "$jf"))" || fail "submit exit $?"
    # grep, not python, and no sleep between polls: an epoch phase of
    # 200 tasks lasts tens of milliseconds
    local deadline=$((SECONDS + 31))
    until stage_running "$job" "$stage" $when; do
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "$tag: timed out after 30s waiting for $job's $3 (job $(job_state "$job"))"
    done
    kill_worker "$victim"
    state="$(job_state "$job")"
    [ "$state" = running ] ||
        fail "$tag: job $job was already $state when $victim was killed: nothing was tested"
    echo "test_worker_kill: $tag: killed $victim at $(ctl status "$job" -o json | grep -o "\"name\":\"$stage\"[^}]*")"
    wait_for "[ \"\$(worker_state $victim)\" = dead ]" 20
    # bounded, but by the undisturbed run's own time: a sanitizer build or
    # a loaded box is several times slower, and a hang is still caught
    local lim
    lim="$(jget 'max(30, int(5 * d["seconds"]) + 1)' <"$T/ref.$ref.json")"
    timeout "$lim" "$MLOPSCTL" wait "$job" 2>"$T/wait.err"
    rc=$?
    if [ "$rc" -eq 124 ]; then
        echo "FAIL: $tag: job $job did not finish within $lim s of killing $victim" \
            "(undisturbed: $(jget 'round(d["seconds"], 1)' <"$T/ref.$ref.json") s); now at" \
            "$(ctl status "$job" -o json | grep -o "\"name\":\"$stage\"[^}]*"); last job log lines:" >&2
        ctl logs "$job" | tail -n 3 >&2
        ctl cancel "$job" >/dev/null
        return 1
    fi
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: $tag: job $job did not survive the loss of $victim: $(tail -n 2 "$T/wait.err")" >&2
        return 1
    fi
    save_result "$job" "$T/$tag.json"
    (same_metrics "$T/ref.$ref.json" "$T/$tag.json" "$tag: $victim killed during $3 vs undisturbed run") ||
        return 1
    local s
    for s in clean scale; do
        [ "$s" = clean ] || [ "$ref" != clean ] || continue
        ctl export "$job" --stage $s -o "$T/$tag.$s.csv" || fail "export $job --stage $s exit $?"
        if ! cmp "$T/ref.$ref.$s.csv" "$T/$tag.$s.csv"; then
            echo "FAIL: $tag: export --stage $s differs after killing $victim" >&2
            return 1
        fi
    done
    echo "test_worker_kill: $tag: $victim killed during $3 of $job; same results"
}

failed=""
killed_run clean "$D/clean.yaml" clean worker-2 || failed="$failed clean"
worker_start worker-4 1
wait_for '[ "$(alive_workers)" -eq 3 ]' 20
killed_run train-epoch "$D/full.yaml" train:epoch worker-3 || failed="$failed train-epoch"
worker_start worker-5 1
wait_for '[ "$(alive_workers)" -eq 3 ]' 20
killed_run train-reduce "$D/full.yaml" train:reduce worker-1 || failed="$failed train-reduce"
[ -z "$failed" ] || fail "failed cases:$failed (details above)"
echo "test_worker_kill: ok"
