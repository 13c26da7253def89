#!/usr/bin/env bash
# test_rm.sh: `mlopsctl rm JOB` removes a finished job for good: it is no
# longer listed, its shards leave every worker's store (and the shard
# directory), and a restarted coordinator does not bring it back. A job
# still running is refused with exit 1 and a message saying to cancel it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
cluster_start 2 1
shards() { ctl workers -o json | jget "sum(w['shards'] for w in d['workers'] if w['state'] == 'alive')"; }
# keep_stages: a finished job keeps its shards (else they go once consumed)
keep="$(submit_wait "$D/clean.yaml" --set shard_rows=2000 --set keep_stages=true)" || exit 1
gone="$(submit_wait "$D/clean.yaml" --set shard_rows=1000 --set keep_stages=true)" || exit 1
before="$(shards)"
[ "$before" -gt 0 ] || fail "no shards held before rm"
out="$(ctl rm "$gone" 2>&1)" || fail "rm $gone exit $?: $out"
assert_eq "$out" "$gone" "rm prints the job id"
ctl status "$gone" >/dev/null 2>&1 && fail "status of a removed job succeeded"
ctl jobs -o json | grep -q "\"$gone\"" && fail "jobs still lists $gone"
# the stores drop the job's shards: held count falls by its 40 shards (20 ingest + 20 clean)
after="$(shards)"
assert_eq "$after" "$((before - 40))" "shards held after rm"
# and every worker deleted them from its store
wait_for "[ \"\$(cat \"$CLUSTER_DIR\"/logs/worker-*.log | grep -c \"dropped the shards of job $gone\")\" -eq 2 ]" 10
# the other job is intact
ctl export "$keep" --stage clean -o "$T/keep.csv" || fail "export of the kept job exit $?"
# a running job is refused
long="$(ctl submit "$D/clean.yaml" --set shard_rows=50)" || fail "submit exit $?"
err="$(ctl rm "$long" 2>&1)"
rc=$?
if [ "$(ctl status "$long" -o json | jget "d['state']")" = running ]; then
    assert_eq "$rc" 1 "rm of a running job"
    assert_contains "$err" "cancel it first"
fi
ctl wait "$long" >/dev/null 2>&1
# a restarted coordinator (its journal replayed, the workers registered
# again) does not bring the removed job back
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
wait_for '[ "$(ctl workers -o json | jget "sum(1 for w in d[\"workers\"] if w[\"state\"] == \"alive\")")" -ge 2 ]' 20
ctl status "$gone" >/dev/null 2>&1 && fail "removed job $gone came back after a restart"
ctl status "$keep" >/dev/null || fail "kept job $keep lost after a restart"
echo "test_rm: ok"
