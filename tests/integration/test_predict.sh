#!/usr/bin/env bash
# test_predict.sh: batch scoring with a registered model. A `predict` job
# (no columns, no label) scores a CSV with the model's own pipeline; the
# predictions come out in input row order, bit-identical with 1 and 3
# workers, and equal (1e-12) to the docs/model-format.md snippet on the
# exported JSON; rows with a missing value are counted and written with
# empty predictions; an input without a column the model needs fails the
# job naming the column and the model.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/train.csv"
gen_purchases 9000 11 "$D/raw.csv"
"$PY" - "$D" <<'PYEOF' || fail "cannot prepare the scoring files"
import sys
import pandas as pd
d = sys.argv[1]
df = pd.read_csv(f"{d}/raw.csv", dtype=str, keep_default_na=False)
df.drop(columns=["clicked"]).to_csv(f"{d}/new.csv", index=False)
df.drop(columns=["clicked", "price"]).to_csv(f"{d}/noprice.csv", index=False)
PYEOF
purchases_job "$D/train.yaml" train.csv full
sed -i 's/n_features: 65536/n_features: 4096/' "$D/train.yaml"
echo "register: {model: clicks}" >>"$D/train.yaml"
cat >"$D/predict.yaml" <<'YAML'
name: score
input: new.csv
shard_rows: 1000
predict: {model: clicks@production, keep: [user_id, item_id]}
YAML
cluster_start 1 1
submit_wait "$D/train.yaml" >/dev/null || exit 1
ctl model alias clicks 1 production >/dev/null || fail "alias"
p1="$(submit_wait "$D/predict.yaml")" || exit 1
ctl export "$p1" --stage predict -o "$T/preds1.csv" || fail "export predict exit $?"
worker_start worker-2 1
worker_start worker-3 1
wait_for '[ "$(alive_workers)" -ge 3 ]' 20
p3="$(submit_wait "$D/predict.yaml")" || exit 1
ctl export "$p3" --stage predict -o "$T/preds3.csv" || fail "export predict (3 workers) exit $?"
cmp -s "$T/preds1.csv" "$T/preds3.csv" || fail "predictions differ between 1 and 3 workers"
[ "$(ctl status "$p3" -o json | jget 'len(set(s["name"] for s in d["stages"]))')" = 2 ] || fail "a predict job runs ingest and predict only"
ctl result "$p3" -o json >"$T/r.json"
ctl model export clicks@production -o "$T/m.json" || fail "model export"
"$PY" - "$MLOPS_SOURCE_DIR/docs/model-format.md" "$T/m.json" "$D/new.csv" "$T/preds3.csv" "$T/r.json" "$T" <<'PYEOF' || fail "predictions do not match the snippet"
import json, re, sys
import numpy as np
import pandas as pd
doc, mfile, new, preds, res, tmp = sys.argv[1:]
ns = {}
exec(re.search(r"<!-- snippet: score -->\n```python\n(.*?)```", open(doc).read(), re.S).group(1), ns)
m = json.load(open(mfile))
src = pd.read_csv(new, dtype=str, keep_default_na=False)
out = pd.read_csv(preds, dtype={"user_id": str, "item_id": str, "label": str}, keep_default_na=False)
assert list(out.columns) == ["user_id", "item_id", "proba", "label"], list(out.columns)
assert len(out) == len(src) and (out["user_id"] == src["user_id"]).all() and (out["item_id"] == src["item_id"]).all(), "row order"
used = [c["column"] for c in m["features"]["numeric"]] + m["features"]["hashed"]["columns"]
ok = (src[used] != "").all(axis=1).to_numpy()
r = json.load(open(res))["metrics"]
assert r["rows_unscored"] == int((~ok).sum()) > 0, (r["rows_unscored"], int((~ok).sum()))
assert r["rows_scored"] == int(ok.sum())
assert (out.loc[~ok, "proba"] == "").all() and (out.loc[~ok, "label"] == "").all(), "unscored rows must be empty"
src[ok].to_csv(f"{tmp}/ok.csv", index=False)
p = ns["score"](mfile, f"{tmp}/ok.csv")[:, 1]
got = out.loc[ok, "proba"].astype(float).to_numpy()
d = np.max(np.abs(p - got))
assert d <= 1e-12, f"max |dp| = {d}"
lab = np.where(p > 0.5, m["classes"][1], m["classes"][0])
assert (out.loc[ok, "label"].to_numpy() == lab).all(), "labels"
print(f"predict: {ok.sum()} scored, {(~ok).sum()} unscored, max |dp| {d:.2e}")
PYEOF
# an input without a column the model needs
sed 's/new.csv/noprice.csv/' "$D/predict.yaml" >"$D/bad.yaml"
bad="$(ctl submit "$D/bad.yaml")" || fail "submit bad"
ctl wait "$bad" >/dev/null 2>&1 && fail "a predict job without 'price' succeeded"
err="$(ctl status "$bad" -o json | jget 'd["error"]')"
assert_contains "$err" "price"
assert_contains "$err" "clicks@1"
# an unknown model fails the job naming it
sed 's/clicks@production/nope@production/' "$D/predict.yaml" >"$D/nope.yaml"
nope="$(ctl submit "$D/nope.yaml")" || fail "submit nope"
ctl wait "$nope" >/dev/null 2>&1 && fail "a predict job with an unknown model succeeded"
assert_contains "$(ctl status "$nope" -o json | jget 'd["error"]')" "no model 'nope'"
echo "test_predict: ok"
