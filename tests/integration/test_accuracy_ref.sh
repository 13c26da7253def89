#!/usr/bin/env bash
# test_accuracy_ref.sh: the full purchases pipeline on the cluster against
# examples/purchases/reference.py (pandas + scikit-learn), computed now.
# 40k rows; the job runs with split.method=sklearn (the same rows as
# train_test_split(test_size=0.2, random_state=42)) and 2^16 hashed
# features, the reference with --n-features 65536 and the same test size,
# seed, epochs and alpha. 20 epochs, not 5: after 5 epochs SGD has not
# settled, and scikit-learn's own SGDClassifier scores anywhere from 71.7%
# to 74.0% on this data depending on random_state alone (0..5), so a
# 0.5-point band around one seed would test the seed; after 20 epochs
# SGDClassifier (73.9%) and LogisticRegression (74.0%) agree. Checks: rows_in, rows_after_dropna,
# rows_after_clean, rows_train and rows_test identical; quartiles
# identical; scaler mean/scale within 1e-12 relative; test accuracy within
# 0.5 points of LogisticRegression's and within 0.5 points of
# SGDClassifier(loss='log_loss')'s; logloss, auc and f1 printed next to
# the references.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 40000 3 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/reference.py" "$D/p.csv" --n-features 65536 \
    --test-size 0.2 --seed 42 --epochs 20 --alpha 0.0001 --model both >"$T/ref.json" ||
    fail "reference.py exit $?"

cluster_start 2 1
job="$(submit_wait "$D/full.yaml" --set split.method=sklearn --set split.test_size=0.2 \
    --set split.seed=42 --set hash.n_features=65536 --set train.epochs=20 --set train.alpha=0.0001)" || exit 1
save_result "$job" "$T/job.json"

"$PY" - "$T/job.json" "$T/ref.json" <<'EOF' || fail "job $job differs from the scikit-learn reference (see above)"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
r = json.load(open(sys.argv[2]))
errs = []
for k in ["rows_in", "rows_after_dropna", "rows_after_clean", "rows_train", "rows_test"]:
    if m.get(k) != r[k]:
        errs.append("%s: mlops %s, reference %s" % (k, m.get(k), r[k]))
for c in ["price", "quantity", "age", "income"]:
    for k in ("q1." + c, "q3." + c):
        if float(m.get(k, "nan")).hex() != float(r[k]).hex():
            errs.append("%s: mlops %r, pandas %r" % (k, m.get(k), r[k]))
    for k in ("scaler.mean." + c, "scaler.scale." + c):
        got, want = m.get(k), r[k]
        if got is None or abs(got - want) > 1e-12 * abs(want):
            errs.append("%s: mlops %r, scikit-learn %r (rel. diff %.3g)" %
                        (k, got, want, abs((got or 0) - want) / abs(want)))
acc = m.get("accuracy")
for ref in ("logreg", "sgd"):
    want = r[ref + ".accuracy"]
    if acc is None or abs(acc - want) > 0.005:
        errs.append("accuracy: mlops %s, %s %.4f: more than 0.5 points apart" % (acc, ref, want))
print("accuracy/logloss/auc/f1: mlops %s" % "/".join("%.4f" % m.get(k, float("nan"))
      for k in ("accuracy", "logloss", "auc", "f1")))
for ref in ("logreg", "sgd"):
    print("  reference %-6s %s" % (ref, "/".join("%.4f" % r[ref + "." + k]
          for k in ("accuracy", "logloss", "auc", "f1"))))
if errs:
    print("mlops vs reference:\n  " + "\n  ".join(errs), file=sys.stderr)
    sys.exit(1)
EOF
echo "test_accuracy_ref: ok"
