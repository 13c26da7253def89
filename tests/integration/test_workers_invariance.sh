#!/usr/bin/env bash
# test_workers_invariance.sh: how many workers run a job does not change
# what it computes. The same ingest+clean job and the same full purchases
# pipeline (through evaluate) run first on 1 worker with 1 slot, then on
# 3 workers (the 2 new ones with 2 slots each, so tasks run in another
# order and on other processes): the `export --stage clean` and
# `export --stage scale` bytes are identical, every metric is identical
# bit for bit (quartiles, scaler statistics, row counts, model_bytes,
# the train_loss list, accuracy, logloss, auc, f1), and, when mlopsctl
# export supports svmlight, `export --stage hash --format svmlight` too.
# The 3-worker runs must really have used the new workers. The full job
# runs with keep_stages (so scale and hash can be exported) and again
# fused (scale + hash + split as one task per shard, the default): the
# fused runs' metrics equal the unfused ones bit for bit, on 1 and 3
# workers, and `export --stage hash` of a fused job is refused by name.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 40000 5 "$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=2000)

svmlight=0
ctl export --help | grep -q svmlight && svmlight=1

# run_all TAG: both jobs; keeps result JSON and exports under $T/TAG.*
run_all() {
    local tag="$1" job
    job="$(submit_wait "$D/clean.yaml" "${SET[@]}")" || exit 1
    save_result "$job" "$T/$tag.clean.json"
    ctl export "$job" --stage clean -o "$T/$tag.clean.csv" || fail "$tag: export clean exit $?"
    job="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
    save_result "$job" "$T/$tag.fused.json"
    ctl export "$job" --stage hash -o "$T/$tag.fused-hash.csv" 2>"$T/$tag.fused-hash.err" &&
        fail "$tag: export --stage hash of a fused job succeeded"
    grep -q "fused into split" "$T/$tag.fused-hash.err" || fail "$tag: export of a fused stage: $(cat "$T/$tag.fused-hash.err")"
    job="$(submit_wait "$D/full.yaml" "${SET[@]}" --set keep_stages=true)" || exit 1
    save_result "$job" "$T/$tag.full.json"
    ctl export "$job" --stage clean -o "$T/$tag.full-clean.csv" || fail "$tag: export clean exit $?"
    ctl export "$job" --stage scale -o "$T/$tag.full-scale.csv" || fail "$tag: export scale exit $?"
    # the registered artifact's reference distributions (stage_profile.c)
    local reg
    reg="$(ctl result "$job" -o json | jget 'd["registered"]')" || fail "$tag: no registered model"
    ctl model export "$reg" -o "$T/$tag.model.json" || fail "$tag: model export exit $?"
    "$PY" - "$T/$tag.model.json" >"$T/$tag.reference.json" <<'PYEOF' || fail "$tag: reference distributions do not add up"
import json, sys
r = json.load(open(sys.argv[1]))["reference"]
n = r["rows"]
assert n > 0, r
for c in r["numeric"]:
    assert len(c["edges"]) == 9 and c["edges"] == sorted(c["edges"]), c
    assert sum(c["counts"]) + c["missing"] == n, c
for c in r["categorical"]:
    assert len(c["top"]) <= 20 and sum(t["count"] for t in c["top"]) + c["other"] + c["missing"] == n, c
    cnt = [t["count"] for t in c["top"]]
    assert cnt == sorted(cnt, reverse=True), c
for k in r["proba"]["classes"]:
    assert sum(k["counts"]) == n, k
print(json.dumps(r, sort_keys=True))
PYEOF
    if [ "$svmlight" = 1 ]; then
        ctl export "$job" --stage hash --format svmlight -o "$T/$tag.full-hash.svm" ||
            fail "$tag: export hash --format svmlight exit $?"
    fi
}

cluster_start 1 1
run_all one
before2="$(worker_field worker-1 tasks_done)"

worker_start worker-2 2
worker_start worker-3 2
wait_for '[ "$(alive_workers)" -eq 3 ]' 20
run_all three
for w in worker-2 worker-3; do
    n="$(worker_field $w tasks_done)"
    [ "$n" -gt 0 ] 2>/dev/null || fail "$w did no task in the 3-worker runs (tasks_done=$n)"
done
[ "$(worker_field worker-1 tasks_done)" -lt $((before2 * 2)) ] ||
    fail "worker-1 did all the work of the 3-worker runs too"

same_metrics "$T/one.clean.json" "$T/three.clean.json" "ingest+clean, 1 vs 3 workers"
same_metrics "$T/one.full.json" "$T/three.full.json" "full pipeline, 1 vs 3 workers"
same_metrics "$T/one.fused.json" "$T/three.fused.json" "fused full pipeline, 1 vs 3 workers"
same_metrics "$T/one.full.json" "$T/one.fused.json" "full pipeline, keep_stages vs fused"
"$PY" - "$T/one.full.json" <<'EOF' || fail "the full pipeline's metrics lack what this test compares"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
need = ["train_loss", "model_bytes", "accuracy", "logloss", "auc", "f1", "scaler.mean.price", "q1.price"]
miss = [k for k in need if k not in m]
assert not miss, "missing metrics %s" % miss
assert len(m["train_loss"]) == 5 and m["model_bytes"] > 0, m
EOF
for f in clean.csv full-clean.csv full-scale.csv reference.json; do
    [ -s "$T/one.$f" ] || fail "export one.$f is empty"
    cmp "$T/one.$f" "$T/three.$f" || fail "export $f differs between 1 and 3 workers"
done
if [ "$svmlight" = 1 ]; then
    cmp "$T/one.full-hash.svm" "$T/three.full-hash.svm" ||
        fail "export --stage hash --format svmlight differs between 1 and 3 workers"
else
    echo "test_workers_invariance: mlopsctl export has no svmlight format yet; hash export not compared"
fi
echo "test_workers_invariance: ok"
