#!/usr/bin/env bash
# test_coordinator_crash.sh: the coordinator SIGKILLed mid-job and
# restarted on the same endpoint with the same --data-dir loses nothing.
# Two workers (heartbeat 250 ms). Before the crash: an ingest+clean job
# and the full purchases pipeline run to success (the latter is also the
# reference). The same full pipeline is submitted again and the
# coordinator is SIGKILLed while its train stage runs, then restarted
# with --bind set to the endpoint it had (read from
# DATA_DIR/coordinator/endpoint). Then: the workers re-register on their
# own; the interrupted job resumes at its train stage and succeeds with metrics identical to
# the reference, bit for bit, and the same `export --stage clean` bytes;
# the jobs finished before the crash are still listed by `jobs`, as
# succeeded, with the same `result` metrics; a job submitted after the
# restart gets a new id and succeeds. The kill comes right after a burst
# of assignments went out (assignments leave before their journal
# commit): no attempt number is handed out twice across the restart (the
# coordinator runs with -v, which logs every assignment with its attempt).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 200000 17 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=1000)
FULL=(--set shard_rows=1000 --set train.epochs=10)

COORD_ARGS=-v
cluster_start 2 1
a="$(submit_wait "$D/clean.yaml" "${SET[@]}")" || exit 1
save_result "$a" "$T/a.before.json"
b="$(submit_wait "$D/full.yaml" "${FULL[@]}")" || exit 1
save_result "$b" "$T/b.before.json"
ctl export "$b" --stage clean -o "$T/b.clean.csv" || fail "export $b exit $?"

c="$(ctl submit "$D/full.yaml" "${FULL[@]}")" || fail "submit exit $?"
wait_for "ctl status $c -o json | grep -q '\"name\":\"train\",\"state\":\"running\"'" 90
ep="$(head -n 1 "$CLUSTER_DIR/coordinator/endpoint")"
assert_eq "$ep" "$MLOPS_COORDINATOR" "endpoint file"
# kill as soon as the next assignments of the job have gone out
LOG="$CLUSTER_DIR/logs/coordinator.log"
sent() { grep -c " assign $c/" "$LOG"; }
n0="$(sent)"
wait_for "[ \"\$(sent)\" -gt $n0 ]" 60
coord_kill
ctl --timeout 300 jobs >/dev/null 2>&1
assert_eq "$?" 3 "mlopsctl exit code while the coordinator is down"

coord_start "$ep"
assert_eq "$MLOPS_COORDINATOR" "$ep" "endpoint after the restart"
wait_for '[ "$(alive_workers)" -eq 2 ]' 20

# bounded generously: a hang is caught, a sanitizer build or a loaded
# box (several times slower) is not failed for being slow
timeout 120 "$MLOPSCTL" wait "$c" 2>"$T/wait.err"
rc=$?
[ "$rc" -ne 124 ] || fail "job $c did not finish within 120 s of the restart; state $(job_state "$c")"
[ "$rc" -eq 0 ] || fail "job $c after the coordinator restart: wait exit $rc: $(tail -n 2 "$T/wait.err")"
save_result "$c" "$T/c.json"
dups="$(grep -o ' attempt [0-9]* -> ' "$LOG" | sort | uniq -d | head -n 3 | tr '\n' ' ')"
[ -z "$dups" ] || fail "attempt numbers handed out twice across the restart: $dups"
assert_contains "$(ctl logs "$c")" "resuming at stage train" "log of $c (resumed where it was, not re-run)"
same_metrics "$T/b.before.json" "$T/c.json" "job interrupted by a coordinator crash vs uninterrupted"
ctl export "$c" --stage clean -o "$T/c.clean.csv" || fail "export $c exit $?"
cmp "$T/b.clean.csv" "$T/c.clean.csv" || fail "export --stage clean of $c differs from $b"

ctl jobs -o json >"$T/jobs.json" || fail "jobs exit $?"
for j in "$a" "$b" "$c"; do
    assert_eq "$(jget "[x['state'] for x in d['jobs'] if x['job'] == '$j']" <"$T/jobs.json")" \
        "[\"succeeded\"]" "job $j in 'jobs' after the restart"
done
save_result "$a" "$T/a.after.json"
save_result "$b" "$T/b.after.json"
same_metrics "$T/a.before.json" "$T/a.after.json" "result of $a before and after the crash"
same_metrics "$T/b.before.json" "$T/b.after.json" "result of $b before and after the crash"
ctl export "$b" --stage clean -o "$T/b.clean.after.csv" || fail "export $b after the restart exit $?"
cmp "$T/b.clean.csv" "$T/b.clean.after.csv" || fail "export of $b differs after the restart"

d="$(submit_wait "$D/clean.yaml" "${SET[@]}" --set shard_rows=20000)" || exit 1
case " $a $b $c " in
    *" $d "*) fail "the job submitted after the restart reused the id $d" ;;
esac
echo "test_coordinator_crash: ok ($c resumed; $a $b kept; new job $d)"
