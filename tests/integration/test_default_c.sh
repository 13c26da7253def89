#!/usr/bin/env bash
# test_default_c.sh: the default train section is LogisticRegression()'s
# model. With neither C nor alpha given, train uses C = 1 (alpha =
# 1/(C n_train), schedule adagrad with eta0 0.1), and 5 SGD epochs on the cluster must score within 0.5
# points of scikit-learn's LogisticRegression() (lbfgs, max_iter 100, as
# the seed trains it), fitted now on the same features (the same rows by
# split.method=sklearn, the same 2^N hashed columns). Also checks that the
# job logs the alpha it derived, 1/(C n_train) with n_train the rows after
# clean and split. ROWS (default 100000) and NF (hash.n_features, default
# 2^18) size it; the issue's measurement size is 1M rows and 2^20.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

ROWS="${ROWS:-100000}"
NF="${NF:-262144}"
D="$T/data"
mkdir -p "$D"
gen_purchases "$ROWS" 3 "$D/p.csv"
cat >"$D/job.yaml" <<EOF
name: purchases
input: p.csv
shard_rows: 16384
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
scale: true
hash: {n_features: $NF}
split: {test_size: 0.2, seed: 42, method: sklearn}
train: {seed: 42}
evaluate: [accuracy, logloss, auc]
EOF
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/reference.py" "$D/p.csv" --n-features "$NF" \
    --test-size 0.2 --seed 42 --model logreg --logreg-max-iter 100 >"$T/ref.json" 2>"$T/ref.err" ||
    fail "reference.py exit $?: $(tail -n 3 "$T/ref.err")"

cluster_start 2 1
job="$(submit_wait "$D/job.yaml")" || exit 1
save_result "$job" "$T/job.json"
ctl logs "$job" >"$T/job.log" 2>&1 || fail "logs $job exit $?"
ntrain="$(jget 'd["rows_train"]' <"$T/ref.json")"
alpha="$("$PY" -c "print('%.6g' % (1.0 / $ntrain))")"
assert_contains "$(cat "$T/job.log")" "alpha = 1/(C n_train) = $alpha (C 1, $ntrain training rows)" "train log"

"$PY" - "$T/job.json" "$T/ref.json" <<'EOF' || fail "job $job: default accuracy is not LogisticRegression()'s (see above)"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
r = json.load(open(sys.argv[2]))
acc, want = m.get("accuracy"), r["logreg.accuracy"]
print("accuracy/logloss/auc: mlops (5 epochs, C=1) %s; LogisticRegression() %s" % (
    "/".join("%.4f" % m.get(k, float("nan")) for k in ("accuracy", "logloss", "auc")),
    "/".join("%.4f" % r["logreg." + k] for k in ("accuracy", "logloss", "auc"))))
if m.get("rows_train") != r["rows_train"]:
    sys.exit("rows_train: mlops %s, reference %s" % (m.get("rows_train"), r["rows_train"]))
if acc is None or acc < want - 0.005:
    sys.exit("accuracy: mlops %s, LogisticRegression() %.4f: more than 0.5 points below" % (acc, want))
EOF
echo "test_default_c: ok"
