#!/usr/bin/env bash
# test_search.sh: cross-validation and grid search against scikit-learn,
# computed now by examples/purchases/reference_search.py on the same
# features (12k purchases rows, split.method sklearn, 2^16 hashed
# features). Checks:
#  - bad input: a grid key that is not a job-file key, a value out of its
#    bounds, and more trials than search.max_trials: exit 2 before
#    anything is sent, the message naming the key (or the count);
#  - cv alone: every fold holds the rows KFold(3, shuffle=True,
#    random_state=7) puts there (each fold's row count and class-1 count
#    equal scikit-learn's, which a different assignment would not give),
#    and the CV mean accuracy is within 1 point of cross_val_score(
#    SGDClassifier(loss='log_loss', same alpha and epochs));
#    LogisticRegression is printed beside it;
#  - cv of the default model (a grid over train.C, no alpha): each fold
#    fits what train would on its rows, so C changes the scores, and C = 1
#    is within 1 point of cross_val_score(LogisticRegression(C=1));
#  - a 3 x 2 grid (alpha 1e-5, 1e-3, 1e-1 x epochs 2, 6; metric accuracy,
#    3 folds): "search" in result -o json as specified, the table in
#    `mlopsctl result`, the best trial equal to GridSearchCV's when the
#    best two reference means differ by more than the noise (1 point),
#    else among those within it (and per epochs value, the best alpha,
#    where the reference's gap is clear); the best trial refitted (its epochs in
#    train_loss), evaluated on the test split, registered with its
#    values as tags and gated by promote (no champion yet: promoted);
#  - random search: 4 trials drawn within the range and the list, the
#    best the lowest logloss;
#  - a search whose models would not fit in the coordinator (2^24
#    hashed features x 18 instances) fails its job with a message.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 12000 5 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=2000 --set split.method=sklearn --set split.test_size=0.2 --set split.seed=42)

# --- bad input: refused before sending (no coordinator is running yet) ---
export MLOPS_COORDINATOR=tcp://127.0.0.1:1
bad() { # WANT_TEXT SET...
    local want="$1" out rc
    shift
    out="$(ctl submit "$D/full.yaml" "$@" 2>&1)"
    rc=$?
    [ "$rc" -eq 2 ] || fail "submit $*: exit $rc, want 2: $out"
    assert_contains "$out" "$want" "submit $* error"
}
bad "search.grid: 'train.epoks' is not a numeric train key" --set 'search.grid={train.epoks: [1, 2]}'
bad "search.grid: 'train.model' is not a numeric train key" --set 'search.grid={train.model: [1]}'
bad "search.grid.train.alpha: expected a number >= 0, got '-1'" --set 'search.grid={train.alpha: [0.1, -1]}'
bad "search.grid.train.epochs: expected an integer in 1..1000, got '0'" --set 'search.grid={train.epochs: [0, 5]}'
bad "search: 1200 trials exceed search.max_trials (1000)" \
    --set "search.grid={train.alpha: [$(seq -s, 1 40)], train.epochs: [$(seq -s, 1 30)]}"
bad "search: 6 trials exceed search.max_trials (5)" --set 'search.grid={train.epochs: [1, 2, 3, 4, 5, 6]}' \
    --set search.max_trials=5
# full.yaml gives train.alpha: a grid over C would be ignored beside it
bad "search.grid.train.C: cannot be combined with train.alpha" --set 'search.grid={train.C: [0.5, 1]}'
purchases_job "$D/clean.yaml" p.csv
out="$(ctl submit "$D/clean.yaml" --set 'cv={folds: 3}' 2>&1)"
assert_eq "$?" 2 "submit of cv without train: exit"
assert_contains "$out" "cv: needs a train stage"
echo "test_search: bad input refused with exit 2"

cluster_start 2 1

# --- cv alone ----------------------------------------------------------
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/reference_search.py" "$D/p.csv" --folds 3 --cv-seed 7 \
    --alpha 0.0001 --epochs 10 --logreg-c 1.0 >"$T/ref.cv.json" || fail "reference_search.py exit $?"
job="$(submit_wait "$D/full.yaml" "${SET[@]}" --set 'cv={folds: 3, seed: 7, method: sklearn}' \
    --set train.epochs=10 --set train.alpha=0.0001)" || exit 1
save_result "$job" "$T/cv.json"
"$PY" - "$T/cv.json" "$T/ref.cv.json" <<'EOF' || fail "cv job $job differs from scikit-learn (see above)"
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
r = json.load(open(sys.argv[2]))
errs = []
got_rows = [m.get("cv.rows.fold%d" % i) for i in range(3)]
got_c1 = [m.get("cv.rows_class1.fold%d" % i) for i in range(3)]
if got_rows != r["fold_rows"] or got_c1 != r["fold_rows_class1"]:
    errs.append("folds: mlops rows %s class-1 %s, KFold rows %s class-1 %s" %
                (got_rows, got_c1, r["fold_rows"], r["fold_rows_class1"]))
mean = m.get("cv.accuracy.mean")
if mean is None or abs(mean - r["sgd.accuracy.mean"]) > 0.01:
    errs.append("cv.accuracy.mean %s vs cross_val_score(SGDClassifier) %.4f: more than 1 point" %
                (mean, r["sgd.accuracy.mean"]))
folds = [m["cv.accuracy.fold%d" % i] for i in range(3)]
mu = sum(folds) / 3
sd = (sum((f - mu) ** 2 for f in folds) / 3) ** 0.5
if abs(mu - mean) > 1e-12 or abs(sd - m["cv.accuracy.std"]) > 1e-12:
    errs.append("cv.accuracy mean/std are not the folds' mean and ddof-0 std")
print("cv accuracy: mlops %.4f +- %.4f, SGDClassifier %.4f +- %.4f, LogisticRegression(C=1) %.4f" %
      (mean, m["cv.accuracy.std"], r["sgd.accuracy.mean"], r["sgd.accuracy.std"], r["logreg.accuracy.mean"]))
if errs:
    print("\n".join(errs), file=sys.stderr)
    sys.exit(1)
EOF

# --- cv of the default model: train.C, no alpha -------------------------
# each fold fits what train would fit on its rows (alpha = 1/(C n_fit)
# with n_fit the rows outside the fold, and adagrad): a grid over C gives
# different scores (before, cv used SGDClassifier's alpha whatever C
# was, so both trials were the same model), and C = 1 is within 1 point
# of cross_val_score(LogisticRegression(C=1)) on the same folds
sed 's/^train: .*/train: {model: logistic, epochs: 5}/' "$D/full.yaml" >"$D/byc.yaml"
job="$(submit_wait "$D/byc.yaml" "${SET[@]}" --set 'cv={folds: 3, seed: 7, method: sklearn}' \
    --set 'search={grid: {train.C: [0.0001, 1]}, metric: accuracy, folds: 3}')" || exit 1
save_result "$job" "$T/cgrid.json"
"$PY" - "$T/cgrid.json" "$T/ref.cv.json" <<'EOF' || fail "search over train.C, job $job (see above)"
import json, sys
d = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
t = d["search"]["trials"]
errs = []
if [x["params"] for x in t] != [{"train.C": 0.0001}, {"train.C": 1}]:
    sys.exit("trials %s" % [x["params"] for x in t])
lo, hi = t[0]["mean"], t[1]["mean"]
if abs(hi - lo) < 0.005:
    errs.append("C 1e-4 and C 1 score %.4f and %.4f: C does not reach the folds" % (lo, hi))
if abs(hi - r["logreg.accuracy.mean"]) > 0.01:
    errs.append("C 1: cv accuracy %.4f, cross_val_score(LogisticRegression(C=1)) %.4f: more than 1 point" %
                (hi, r["logreg.accuracy.mean"]))
if d["search"]["best"] != 1:
    errs.append("best trial %s, want 1 (C = 1)" % d["search"]["best"])
print("cv over C: C=1e-4 %.4f, C=1 %.4f, LogisticRegression(C=1) %.4f" % (lo, hi, r["logreg.accuracy.mean"]))
if errs:
    print("\n".join(errs), file=sys.stderr)
    sys.exit(1)
EOF

# --- grid search -------------------------------------------------------
GRID='search={grid: {train.alpha: [1e-5, 1e-3, 1e-1], train.epochs: [2, 6]}, metric: accuracy, folds: 3}'
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/reference_search.py" "$D/p.csv" --folds 3 --cv-seed 7 \
    --alpha 1e-5 1e-3 1e-1 --epochs 2 6 --metric accuracy >"$T/ref.grid.json" || fail "reference_search.py exit $?"
job="$(submit_wait "$D/full.yaml" "${SET[@]}" --set 'cv={seed: 7}' --set "$GRID" \
    --set 'register={model: shop, tags: [grid]}' --set 'promote={metric: accuracy}')" || exit 1
save_result "$job" "$T/grid.json"
ctl result "$job" >"$T/grid.txt" || fail "result $job exit $?"
ctl model show shop@1 -o json >"$T/model.json" || fail "model show shop@1 exit $?"
"$PY" - "$T/grid.json" "$T/ref.grid.json" "$T/grid.txt" "$T/model.json" <<'EOF' || fail "search job $job (see above)"
import json, sys
d = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
model = open(sys.argv[4]).read()
errs = []
s = d.get("search")
if not s or s.get("metric") != "accuracy" or sorted(s) != ["best", "metric", "trials"]:
    sys.exit("result has no proper \"search\" object: %r" % (s,))
want_keys = ["mean", "params", "seconds", "std"]
for t in s["trials"]:
    if sorted(t) != want_keys:
        errs.append("trial keys %s, want %s" % (sorted(t), want_keys))
params = [t["params"] for t in s["trials"]]
if params != [t["params"] for t in r["trials"]]:
    errs.append("trial order %s, ParameterGrid's %s" % (params, [t["params"] for t in r["trials"]]))
if not all(isinstance(p["train.epochs"], int) for p in params):
    errs.append("train.epochs values are not integers: %s" % params)
means = [t["mean"] for t in s["trials"]]
best = s["best"]
if best != max(range(len(means)), key=lambda i: (means[i], -i)):
    errs.append("best %d is not the first highest mean of %s" % (best, means))
ref = [t["mean"] for t in r["trials"]]
order = sorted(range(len(ref)), key=lambda i: -ref[i])
NOISE = 0.01
if ref[order[0]] - ref[order[1]] > NOISE:
    if best != r["best"]:
        errs.append("best trial %d %s, GridSearchCV's %d %s (its means %s)" %
                    (best, params[best], r["best"], params[r["best"]], ref))
elif ref[r["best"]] - ref[best] > NOISE:
    errs.append("best trial %d scores %.4f in GridSearchCV, more than %.2f below its best %.4f" %
                (best, ref[best], NOISE, ref[r["best"]]))
# and within each epochs value, the best alpha, where GridSearchCV's
# scores leave no doubt (this data leaves none: at least one is checked)
clear = 0
for ep in sorted({p["train.epochs"] for p in params}):
    idx = [i for i, p in enumerate(params) if p["train.epochs"] == ep]
    o = sorted(idx, key=lambda i: -ref[i])
    if ref[o[0]] - ref[o[1]] > NOISE:
        clear += 1
        mine = max(idx, key=lambda i: (means[i], -i))
        if mine != o[0]:
            errs.append("epochs %d: best alpha %s, GridSearchCV's %s" %
                        (ep, params[mine]["train.alpha"], params[o[0]]["train.alpha"]))
if not clear:
    errs.append("no clear best in the reference: the grid tests nothing")
for i, (a, b) in enumerate(zip(means, ref)):
    print("trial %d %s: mlops %.4f +- %.4f, GridSearchCV %.4f +- %.4f" %
          (i, params[i], a, s["trials"][i]["std"], b, r["trials"][i]["std"]))
m = d["metrics"]
if len(m.get("train_loss", [])) != params[best]["train.epochs"]:
    errs.append("refit: %d epochs in train_loss, best trial has %d" %
                (len(m.get("train_loss", [])), params[best]["train.epochs"]))
if "accuracy" not in m or m.get("test_rows") != m.get("rows_test"):
    errs.append("refit not evaluated on the test split")
# the table: sorted by the metric, the best first and marked
lines = [l for l in text.split("\n")[text.split("\n").index(next(l for l in text.split("\n") if l.startswith("RANK"))) + 1:] if l.strip()]
if not lines or lines[0].split()[1] != "%d*" % best:
    errs.append("result table's first row is not the best trial %d:\n%s" % (best, text[text.find("SEARCH"):]))
shown = [float(l.split()[4]) for l in lines[:len(means)]]
if shown != sorted(shown, reverse=True):
    errs.append("result table not sorted by mean: %s" % shown)
p = d.get("promotion") or {}
if p.get("decision") != "promoted" or p.get("alias") != "production":
    errs.append("the refit was not gated by promote (no champion: promoted): %s" % p)
alpha = params[best]["train.alpha"]
for tag in ("train.epochs=%d" % params[best]["train.epochs"], "grid"):
    if tag not in model:
        errs.append("registered version lacks tag %s: %s" % (tag, model[:400]))
if errs:
    print("\n".join(errs), file=sys.stderr)
    sys.exit(1)
EOF
# trials that differ only in train.epochs run the same first epochs
# (trained once per task and mixed once, kind_cv.c and stage_cv.c): the
# grid's 2-epoch trial of alpha 1e-5 (a twin of the 6-epoch one) scores
# what a search of that trial alone does, bit for bit
job="$(submit_wait "$D/full.yaml" "${SET[@]}" --set 'cv={seed: 7}' \
    --set 'search={grid: {train.alpha: [1e-5], train.epochs: [2]}, metric: accuracy, folds: 3}')" || exit 1
save_result "$job" "$T/alone.json"
"$PY" - "$T/grid.json" "$T/alone.json" <<'EOF' || fail "twin trials: the grid's trial differs from the same trial alone ($job)"
import json, sys
g = json.load(open(sys.argv[1]))["search"]["trials"]
a = json.load(open(sys.argv[2]))["search"]["trials"]
t = [x for x in g if x["params"] == {"train.alpha": 1e-5, "train.epochs": 2}]
if len(t) != 1 or len(a) != 1 or (t[0]["mean"], t[0]["std"]) != (a[0]["mean"], a[0]["std"]):
    sys.exit("grid trial %s, alone %s" % (t, a))
EOF
# random search: n trials drawn from a log-uniform range and a list
job="$(submit_wait "$D/full.yaml" "${SET[@]}" \
    --set 'search={grid: {train.alpha: {loguniform: [1e-5, 1e-1]}, train.epochs: [2, 3]}, random: {n: 4, seed: 9}, metric: logloss, folds: 2}')" || exit 1
save_result "$job" "$T/random.json"
"$PY" - "$T/random.json" <<'EOF' || fail "random search $job (see above)"
import json, sys
s = json.load(open(sys.argv[1]))["search"]
t = s["trials"]
ok = s["metric"] == "logloss" and len(t) == 4 and all(
    1e-5 <= x["params"]["train.alpha"] <= 1e-1 and x["params"]["train.epochs"] in (2, 3) for x in t)
ok = ok and s["best"] == min(range(4), key=lambda i: (t[i]["mean"], i))  # lower logloss is better
ok = ok and len({x["params"]["train.alpha"] for x in t}) == 4
if not ok:
    sys.exit("random search table: %s" % s)
EOF

# a search whose models would not fit the coordinator fails its job, saying so
job="$(ctl submit "$D/full.yaml" "${SET[@]}" --set "$GRID" --set hash.n_features=16777216)" ||
    fail "submit exit $?"
timeout 120 "$MLOPSCTL" wait "$job" >/dev/null 2>&1
assert_eq "$(job_state "$job")" failed "state of the oversized search $job"
assert_contains "$(ctl status "$job" -o json | jget 'd["error"]')" "GiB in the coordinator" "error of $job"
echo "test_search: ok"
