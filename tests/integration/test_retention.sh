#!/usr/bin/env bash
# test_retention.sh: the coordinator's retention settings remove finished
# jobs on their own, the way `mlopsctl rm` does (issue 8 §1.6), so the
# journal, the uploads and the workers' stores do not grow for ever.
#  - --retain-jobs 2: after four finished jobs only the newest two are
#    listed; the others' upload directories are gone, their shards have
#    left every worker's store (each worker logs the drop), and a
#    restarted coordinator does not bring them back;
#  - --retain-age 1 (restarted with it): the remaining jobs go too.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
COORD_ARGS="--retain-jobs 2"
cluster_start 2 1
ep="$MLOPS_COORDINATOR"
shards() { ctl workers -o json | jget "sum(w['shards'] for w in d['workers'] if w['state'] == 'alive')"; }
listed() { ctl jobs -o json | jget "' '.join(x['job'] for x in d['jobs'])"; }
ids=()
for i in 1 2 3 4; do
    ids+=("$(submit_wait "$D/clean.yaml" --set shard_rows=2000 --set keep_stages=true)") || exit 1
done
wait_for "[ \"\$(listed)\" = \"${ids[2]} ${ids[3]}\" ]" 10
# 20 shards a job (10 ingest + 10 clean), two jobs left
wait_for '[ "$(shards)" -eq 40 ]' 10 || { ctl workers -o json; cat "$CLUSTER_DIR"/logs/coordinator.log; fail shards; }
for j in "${ids[0]}" "${ids[1]}"; do
    [ ! -e "$CLUSTER_DIR/coordinator/jobs/$j" ] || fail "the uploads of $j are still there"
    ctl status "$j" >/dev/null 2>&1 && fail "status of $j, removed by retention, succeeded"
    wait_for "[ \"\$(cat \"$CLUSTER_DIR\"/logs/worker-*.log | grep -c \"dropped the shards of job $j\")\" -eq 2 ]" 10
done
assert_contains "$(cat "$CLUSTER_DIR/logs/coordinator.log")" \
    "job ${ids[0]} removed by retention: more than 2 finished jobs (--retain-jobs)"
ctl export "${ids[3]}" --stage clean -o "$T/kept.csv" || fail "export of the kept job exit $?"

coord_kill
coord_start "$ep"
assert_eq "$(listed)" "${ids[2]} ${ids[3]}" "jobs after a restart"

coord_kill
COORD_ARGS="--retain-age 1"
coord_start "$ep"
wait_for '[ -z "$(listed)" ]' 15
wait_for '[ "$(shards)" -eq 0 ]' 10
assert_contains "$(cat "$CLUSTER_DIR/logs/coordinator.log")" "job ${ids[3]} removed by retention: finished"
echo "test_retention: ok (${ids[0]} ${ids[1]} removed by count, ${ids[2]} ${ids[3]} by age)"
