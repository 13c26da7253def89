#!/usr/bin/env bash
# test_predict_multiclass.sh: batch scoring with a model of 3 classes.
# The predictions have one proba_<class> column per class, in the
# model's class order, then label; they equal (1e-12) the
# docs/model-format.md snippet's softmax on the exported JSON, and the
# label is the class of the largest probability. The artifact's
# reference has one probability histogram per class.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
"$PY" - "$D" <<'PYEOF' || fail "cannot generate the data"
import sys
import numpy as np
import pandas as pd
d = sys.argv[1]
rng = np.random.default_rng(7)
def make(n):
    x1, x2 = rng.normal(0, 1, n), rng.normal(5, 2, n)
    c = rng.choice(["red", "green", "blue", "grey"], n)
    z = np.column_stack([x1 + (c == "red"), 0.5 * (x2 - 5) + (c == "blue"), 0.3 * rng.normal(0, 1, n)])
    lab = np.array(["high", "low", "mid"])[np.argmax(z + rng.normal(0, 0.5, z.shape), axis=1)]
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": c, "tier": lab})
make(6000).to_csv(f"{d}/train.csv", index=False)
make(1500).drop(columns=["tier"]).to_csv(f"{d}/new.csv", index=False)
PYEOF
cat >"$D/train.yaml" <<'YAML'
name: tiers
input: train.csv
shard_rows: 1000
columns: {label: tier, numeric: [x1, x2], categorical: [colour]}
scale: true
hash: {n_features: 64, alternate_sign: true}
split: {test_size: 0.2, seed: 3}
train: {model: logistic, epochs: 5, learning_rate: optimal, alpha: 0.0001}
evaluate: [accuracy, logloss]
YAML
cat >"$D/predict.yaml" <<'YAML'
name: score
input: new.csv
shard_rows: 500
predict: {model: tiers@1, keep: [colour]}
YAML
cluster_start 2 1
submit_wait "$D/train.yaml" >/dev/null || exit 1
p="$(submit_wait "$D/predict.yaml")" || exit 1
ctl export "$p" --stage predict -o "$T/preds.csv" || fail "export predict exit $?"
ctl model export tiers@1 -o "$T/m.json" || fail "model export"
"$PY" - "$MLOPS_SOURCE_DIR/docs/model-format.md" "$T/m.json" "$D/new.csv" "$T/preds.csv" <<'PYEOF' || fail "multiclass predictions do not match the snippet"
import json, re, sys
import numpy as np
import pandas as pd
doc, mfile, new, preds = sys.argv[1:]
ns = {}
exec(re.search(r"<!-- snippet: score -->\n```python\n(.*?)```", open(doc).read(), re.S).group(1), ns)
m = json.load(open(mfile))
assert m["classes"] == ["high", "low", "mid"], m["classes"]
assert len(m["weights"]) == 3, len(m["weights"])
out = pd.read_csv(preds, dtype={"colour": str, "label": str}, keep_default_na=False)
want = ["colour"] + [f"proba_{c}" for c in m["classes"]] + ["label"]
assert list(out.columns) == want, list(out.columns)
src = pd.read_csv(new, dtype=str, keep_default_na=False)
assert len(out) == len(src) and (out["colour"] == src["colour"]).all(), "row order"
p = ns["score"](mfile, new)
got = out[want[1:-1]].astype(float).to_numpy()
d = np.max(np.abs(p - got))
assert d <= 1e-12, f"max |dp| = {d}"
lab = np.array(m["classes"])[np.argmax(got, axis=1)]
assert (out["label"].to_numpy() == lab).all(), "labels"
ref = m["reference"]["proba"]["classes"]
assert [r["class"] for r in ref] == m["classes"], ref
assert all(sum(r["counts"]) == m["reference"]["rows"] for r in ref), ref
print(f"multiclass predict: {len(out)} rows, max |dp| {d:.2e}")
PYEOF
# without a split every row is a training row: the reference is numpy's
grep -v -e '^split:' -e '^evaluate:' "$D/train.yaml" | sed 's/^name: tiers/name: tiersall/' >"$D/all.yaml"
submit_wait "$D/all.yaml" >/dev/null || exit 1
ctl model export tiersall@1 -o "$T/all.json" || fail "model export tiersall"
"$PY" - "$T/all.json" "$D/train.csv" <<'PYEOF' || fail "the reference distributions are not numpy's"
import json, sys
import numpy as np
import pandas as pd
r = json.load(open(sys.argv[1]))["reference"]
df = pd.read_csv(sys.argv[2], keep_default_na=False)
assert r["rows"] == len(df), (r["rows"], len(df))
for c in r["numeric"]:
    x = df[c["column"]].to_numpy(float)
    e = np.quantile(x, np.arange(1, 10) / 10)
    assert c["edges"] == list(e), (c["column"], c["edges"], list(e))
    want = np.bincount(np.searchsorted(e, x, side="left"), minlength=10).tolist()
    assert c["counts"] == want, (c["counts"], want)
vc = df["colour"].value_counts()
top = sorted(vc.items(), key=lambda kv: (-kv[1], kv[0]))
got = r["categorical"][0]
assert [(t["value"], t["count"]) for t in got["top"]] == top and got["other"] == 0, (got, top)
print("reference: deciles, bins and categories as numpy and pandas give them")
PYEOF
echo "test_predict_multiclass: ok"
