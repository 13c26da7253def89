#!/usr/bin/env bash
# test_registry.sh: the model registry end to end. A succeeded train job
# registers a version; aliases move and every move is in the history;
# the export is the stored file (its sha256) and the numpy snippet of
# docs/model-format.md reproduces mlops' features and metrics from it;
# `rm` of the job keeps its model; a SIGKILLed and restarted coordinator
# keeps versions, aliases and history; bad names and references fail
# with the right exit code and a message naming them; two racing alias
# moves both land in the history.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
# no split: evaluate scores every row, so the snippet can be checked
# against evaluate's metrics on the same rows
cat >"$D/job.yaml" <<'YAML'
name: purchases
input: p.csv
shard_rows: 5000
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
scale: true
hash: {n_features: 4096, alternate_sign: true}
train: {model: logistic, epochs: 3, learning_rate: optimal, alpha: 0.0001}
evaluate: [accuracy, logloss, auc]
register: {model: clicks, tags: [day1]}
YAML
cluster_start 2 1
j1="$(submit_wait "$D/job.yaml" --set keep_stages=true)" || exit 1
assert_eq "$(ctl result "$j1" -o json | jget 'd["registered"]')" "clicks@1" "result names the version"
j2="$(submit_wait "$D/job.yaml" --set train.epochs=1)" || exit 1
ctl models -o json >"$T/models.json" || fail "models exit $?"
assert_eq "$(jget 'd["models"][0]["name"], d["models"][0]["latest"], d["models"][0]["versions"]' <"$T/models.json")" "('clicks', 2, 2)" "models"

# aliases and their history
ctl model alias clicks 1 production --reason "first model" >/dev/null || fail "alias exit $?"
ctl model alias clicks 2 staging >/dev/null || fail "alias staging exit $?"
ctl model alias clicks 2 production --reason "better" >/dev/null || fail "move exit $?"
assert_eq "$(ctl models -o json | jget 'repr(d["models"][0]["aliases"])')" "{'production': 2, 'staging': 2}" "aliases listed"
assert_eq "$(ctl model history clicks -o json | jget 'repr([(h["alias"], h["from"], h["to"], h["reason"]) for h in d["history"]])')" \
    "[('production', None, 1, 'first model'), ('staging', None, 2, ''), ('production', 1, 2, 'better')]" "history"
# a manual move records the key that made it (the client key's fingerprint:
# the first 16 hex digits of the SHA-1 of the raw public key)
fp="$(/usr/bin/python3 -c 'import hashlib, re, sys, zmq.utils.z85 as z
k = re.search(r"public-key = \"(.{40})\"", open(sys.argv[1]).read()).group(1)
print(hashlib.sha1(z.decode(k)).hexdigest()[:16])' "$MLOPS_KEY")"
assert_eq "$(ctl model history clicks -o json | jget 'repr(sorted(set(h["fingerprint"] for h in d["history"])))')" "['$fp']" "fingerprint of the key that moved the aliases"
ctl model show clicks@production -o json >"$T/show.json" || fail "show exit $?"
assert_eq "$(jget 'd["version"], d["job"], d["tags"], sorted(d["aliases"])' <"$T/show.json")" "(2, '$j2', ['day1'], ['production', 'staging'])" "show by alias"
assert_eq "$(jget 'd["lineage"]["inputs"][0]["sha256"]' <"$T/show.json")" "$(sha256sum "$D/p.csv" | cut -d' ' -f1)" "lineage sha256 of the input"

# the export is the stored file, and the snippet reproduces mlops
ctl model export clicks@1 -o "$T/m1.json" || fail "export exit $?"
sha="$(ctl model show clicks@1 -o json | jget 'd["sha256"]')"
assert_eq "$(sha256sum "$T/m1.json" | cut -d' ' -f1)" "$sha" "export == the stored artifact"
cmp -s "$T/m1.json" "$CLUSTER_DIR/coordinator/models/$sha.json" || fail "export differs from the stored file"
ctl export "$j1" --stage clean -o "$T/clean.csv" || fail "export clean exit $?"
ctl export "$j1" --stage hash --format svmlight -o "$T/hash.svm" || fail "export hash exit $?"
ctl result "$j1" -o json >"$T/r1.json"
"$PY" - "$MLOPS_SOURCE_DIR/docs/model-format.md" "$T/m1.json" "$T/clean.csv" "$T/hash.svm" "$T/r1.json" <<'PYEOF' || fail "the snippet does not reproduce mlops"
import json, re, sys
import numpy as np
from sklearn.datasets import load_svmlight_file
from sklearn.metrics import log_loss, roc_auc_score
doc, mfile, csv, svm, res = sys.argv[1:]
code = re.search(r"<!-- snippet: score -->\n```python\n(.*?)```", open(doc).read(), re.S).group(1)
ns = {}
exec(code, ns)
p = ns["score"](mfile, csv)
m = json.load(open(mfile))
# the same model on mlops' own features (the hash stage's svmlight)
X, y = load_svmlight_file(svm, zero_based=True, n_features=m["features"]["hashed"]["n_features"] + len(m["features"]["numeric"]))
w = np.zeros(X.shape[1]); w[m["weights"][0]["coef"]["indices"]] = m["weights"][0]["coef"]["values"]
q = 1 / (1 + np.exp(-(X @ w + m["weights"][0]["intercept"])))
d = np.max(np.abs(p[:, 1] - q))
assert d <= 1e-12, f"snippet vs mlops features: max |dp| = {d}"
r = json.load(open(res))["metrics"]
yc = y.astype(int)
for name, got in (("logloss", log_loss(yc, p)), ("auc", roc_auc_score(yc, p[:, 1])), ("accuracy", float(np.mean((p[:, 1] > 0.5) == yc)))):
    assert abs(got - r[name]) <= 1e-12 * max(1, abs(r[name])), f"{name}: snippet {got!r}, mlops {r[name]!r}"
assert m["metrics"]["auc"] == r["auc"], "the artifact's metrics are the job's"
print(f"snippet: {len(p)} rows, max |dp| {d:.2e}")
PYEOF

# bad input
out="$(ctl model show nope 2>&1)"; rc=$?
assert_eq "$rc" 1 "unknown model exit"; assert_contains "$out" "no model 'nope'"
out="$(ctl model show clicks@9 2>&1)"; rc=$?
assert_eq "$rc" 1 "unknown version exit"; assert_contains "$out" "no version 9"
out="$(ctl model show clicks@canary 2>&1)"; rc=$?
assert_eq "$rc" 1 "unknown alias exit"; assert_contains "$out" "no alias 'canary'"
out="$(ctl model show 'bad/name' 2>&1)"; rc=$?
assert_eq "$rc" 2 "invalid name exit"; assert_contains "$out" "invalid model name 'bad/name'"
out="$(ctl model alias clicks 1 'no way' 2>&1)"; rc=$?
assert_eq "$rc" 2 "invalid alias exit"
out="$(ctl model rm clicks@2 2>&1)"; rc=$?
assert_eq "$rc" 1 "rm of an aliased version"; assert_contains "$out" "holds alias"

# rm of the job keeps its model
ctl rm "$j1" >/dev/null || fail "rm $j1"
ctl model export clicks@1 -o "$T/m1b.json" || fail "export after rm of the job"
cmp -s "$T/m1.json" "$T/m1b.json" || fail "the model changed after rm of its job"

# two racing moves: both recorded, one holds the alias
ctl model alias clicks 1 canary --reason a >/dev/null & p1=$!
ctl model alias clicks 2 canary --reason b >/dev/null & p2=$!
wait $p1 || fail "racing move a"; wait $p2 || fail "racing move b"
assert_eq "$(ctl model history clicks -o json | jget 'repr(sorted(h["reason"] for h in d["history"] if h["alias"] == "canary"))')" "['a', 'b']" "both racing moves"
last="$(ctl model history clicks -o json | jget '[h["to"] for h in d["history"] if h["alias"] == "canary"][-1]')"
assert_eq "$(ctl model show clicks@canary -o json | jget 'd["version"]')" "$last" "the later move holds the alias"

# SIGKILL + restart: versions, aliases and history survive
ctl models -o json >"$T/before.json"
ctl model history clicks -o json >"$T/hbefore.json"
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
ctl models -o json >"$T/after.json"
ctl model history clicks -o json >"$T/hafter.json"
cmp -s "$T/before.json" "$T/after.json" || fail "models differ after a restart: $(cat "$T/before.json") vs $(cat "$T/after.json")"
cmp -s "$T/hbefore.json" "$T/hafter.json" || fail "history differs after a restart"
ctl model export clicks@1 -o "$T/m1c.json" || fail "export after restart"
cmp -s "$T/m1.json" "$T/m1c.json" || fail "the artifact changed after a restart"

# rm of a version without alias; its file goes at the next start
ctl model unalias clicks canary >/dev/null || fail "unalias"
ctl model rm clicks@1 >/dev/null || fail "model rm exit $?"
assert_eq "$(ctl model versions clicks -o json | jget 'repr([v["version"] for v in d["versions"]])')" "[2]" "versions after rm"
coord_kill
coord_start "$ep"
[ ! -e "$CLUSTER_DIR/coordinator/models/$sha.json" ] || fail "the removed version's file was kept"
assert_eq "$(ctl models -o json | jget 'd["models"][0]["latest"], d["models"][0]["versions"]')" "(2, 1)" "after rm and restart"
echo "test_registry: ok"
