#!/usr/bin/env bash
# test_lbfgs.sh: train.solver lbfgs minimises LogisticRegression(C)'s
# objective on the cluster. 20k purchase rows, 2^16 hashed features, the
# rows of train_test_split (split.method sklearn):
# 1. run to a tight tolerance (tol 1e-10, max_iter 10000), the job's
#    objective C sum logloss + ½‖w‖² equals scikit-learn's
#    LogisticRegression(C=1, tol=1e-10, max_iter=10000) objective on the
#    same features, fitted now, within 1e-6 relative; the accuracy within
#    0.5 points of it;
# 2. the model registers like an SGD one (mlops-model/1, kind logistic,
#    evaluate's metrics and the per-iteration train_loss in it);
# 3. 1 worker and 3 workers give the same metrics bit for bit and the
#    same weights in the exported artifact.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
cat >"$D/job.yaml" <<EOF
name: purchases-lbfgs
input: p.csv
shard_rows: 4096
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
scale: true
hash: {n_features: 65536}
split: {test_size: 0.2, seed: 42, method: sklearn}
train: {solver: lbfgs, C: 1, tol: 1e-10, max_iter: 10000}
evaluate: [accuracy, logloss, auc]
EOF
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/reference.py" "$D/p.csv" --n-features 65536 \
    --test-size 0.2 --seed 42 --model logreg --logreg-max-iter 10000 --logreg-tol 1e-10 \
    >"$T/ref.json" 2>"$T/ref.err" || fail "reference.py exit $?: $(tail -n 3 "$T/ref.err")"

# run TAG: the job, its result and its exported artifact under $T/TAG.*
run() {
    local tag="$1" job reg
    job="$(submit_wait "$D/job.yaml")" || exit 1
    save_result "$job" "$T/$tag.json"
    reg="$(jget 'd["registered"]' <"$T/$tag.json")" || fail "$tag: no registered model"
    ctl model export "$reg" -o "$T/$tag.model.json" || fail "$tag: model export exit $?"
}

cluster_start 1 1
run one
"$PY" - "$T/one.json" "$T/ref.json" "$T/one.model.json" <<'EOF' || fail "lbfgs job differs from LogisticRegression (see above)"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
r = json.load(open(sys.argv[2]))
a = json.load(open(sys.argv[3]))
got, want = m.get("lbfgs_objective"), r["logreg.objective"]
print("objective: mlops %r (%s iterations), LogisticRegression %r (%d iterations), rel. diff %.3g" % (
    got, m.get("lbfgs_iterations"), want, r["logreg.n_iter"], abs(got - want) / want))
print("accuracy/logloss/auc: mlops %s, LogisticRegression %s" % (
    "/".join("%.4f" % m[k] for k in ("accuracy", "logloss", "auc")),
    "/".join("%.4f" % r["logreg." + k] for k in ("accuracy", "logloss", "auc"))))
errs = []
if got is None or abs(got - want) > 1e-6 * abs(want):
    errs.append("objective: more than 1e-6 relative apart")
if m["rows_train"] != r["rows_train"]:
    errs.append("rows_train %s vs %s" % (m["rows_train"], r["rows_train"]))
if abs(m["accuracy"] - r["logreg.accuracy"]) > 0.005:
    errs.append("accuracy more than 0.5 points apart")
if a.get("format") != "mlops-model/1" or a.get("kind") != "logistic" or len(a["weights"]) != 1:
    errs.append("artifact: format %r kind %r" % (a.get("format"), a.get("kind")))
if a["metrics"].get("accuracy") != m["accuracy"] or len(a.get("train_loss", [])) != m["lbfgs_iterations"] + 1:
    errs.append("artifact metrics/train_loss do not match the job's")
if errs:
    sys.exit("\n".join(errs))
EOF

worker_start worker-2 1
worker_start worker-3 1
wait_for '[ "$(alive_workers)" -eq 3 ]' 20
run three
for w in worker-2 worker-3; do
    n="$(worker_field $w tasks_done)"
    [ "$n" -gt 0 ] 2>/dev/null || fail "$w did no task in the 3-worker run (tasks_done=$n)"
done
same_metrics "$T/one.json" "$T/three.json" "lbfgs, 1 vs 3 workers"
"$PY" - "$T/one.model.json" "$T/three.model.json" <<'EOF' || fail "lbfgs: 1 and 3 workers trained different weights"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["weights"] == b["weights"] and a["train_loss"] == b["train_loss"], "weights differ"
EOF
echo "test_lbfgs: ok"
