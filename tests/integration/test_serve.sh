#!/usr/bin/env bash
# test_serve.sh: mlops-serve over a CURVE cluster. A click model is
# trained and registered on the purchases data; the batch predict stage
# scores a CSV; mlops-serve serves the same rows through /invocations in
# dataframe_split, dataframe_records, instances and text/csv, and through
# the V2 infer endpoint: every probability is the batch one bit for bit
# (hex of the doubles). Health, version and V2 metadata answer; bad
# requests get a 4xx naming the column or position, never a 5xx; the
# body limit holds; /recommend refuses a classifier; a non-loopback
# --listen without a token is refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
SERVE="$MLOPS_BUILD_DIR/mlops-serve"
[ -x "$SERVE" ] || fail "$SERVE is not built"
D="$T/data"
mkdir -p "$D"
gen_purchases 12000 3 "$D/train.csv"
gen_purchases 600 11 "$D/raw.csv"
"$PY" - "$D" <<'PYEOF' || fail "cannot prepare the scoring file"
import sys
import pandas as pd
d = sys.argv[1]
df = pd.read_csv(f"{d}/raw.csv", dtype=str, keep_default_na=False)
df = df.drop(columns=["clicked"])
# rows the model can score (an empty cell is unscored in both paths)
df.to_csv(f"{d}/new.csv", index=False)
PYEOF
purchases_job "$D/train.yaml" train.csv full
sed -i 's/n_features: 65536/n_features: 4096/' "$D/train.yaml"
echo "register: {model: clicks}" >>"$D/train.yaml"
cat >"$D/predict.yaml" <<'YAML'
name: score
input: new.csv
shard_rows: 200
predict: {model: clicks@production}
YAML
cluster_start 1 2
submit_wait "$D/train.yaml" >/dev/null || exit 1
ctl model alias clicks 1 production >/dev/null || fail "alias"
p="$(submit_wait "$D/predict.yaml")" || exit 1
ctl export "$p" --stage predict -o "$T/batch.csv" || fail "export predict exit $?"

# a non-loopback listener needs a token
out="$("$SERVE" --coordinator "$MLOPS_COORDINATOR" --model clicks@production --listen 0.0.0.0:0 2>&1)"
[ $? -eq 2 ] || fail "a non-loopback --listen without a token must exit 2: $out"
assert_contains "$out" "--http-token-file"
out="$("$SERVE" --coordinator "$MLOPS_COORDINATOR" --model clicks 2>&1)"
[ $? -eq 2 ] || fail "--model without @: exit 2"
assert_contains "$out" "NAME@ALIAS"

"$SERVE" --coordinator "$MLOPS_COORDINATOR" --model clicks@production --listen 127.0.0.1:0 \
    --addr-file "$T/serve.addr" --max-body-mib 1 </dev/null >>"$CLUSTER_DIR/logs/serve.log" 2>&1 &
echo "serve $!" >>"$CLUSTER_DIR/pids"
wait_for '[ -s "$T/serve.addr" ]' 20
URL="http://$(cat "$T/serve.addr")"
wait_for "curl -sf $URL/health" 30
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ping")" = 200 ] || fail "/ping"
[ "$(curl -s "$URL/version" | jget 'd["model"]["version"]')" = 1 ] || fail "/version"
[ "$(curl -s "$URL/v2/health/ready" | jget 'd["ready"]')" = True ] || fail "/v2/health/ready"
[ "$(curl -s "$URL/v2/health/live" | jget 'd["live"]')" = True ] || fail "/v2/health/live"
curl -s "$URL/v2/models/clicks" >"$T/meta.json"
[ "$(jget '[(i["name"], i["datatype"]) for i in d["inputs"]]' <"$T/meta.json")" = \
  '[["price", "FP64"], ["quantity", "FP64"], ["age", "FP64"], ["income", "FP64"], ["category", "BYTES"], ["item_id", "BYTES"], ["user_id", "BYTES"]]' ] ||
    fail "v2 metadata inputs: $(cat "$T/meta.json")"

"$PY" - "$URL" "$D/new.csv" "$T/batch.csv" <<'PYEOF' || fail "served predictions differ from the batch ones"
import csv, json, sys, urllib.request
url, new, batch = sys.argv[1:]
rows = list(csv.DictReader(open(new, newline="")))
cols = ["price", "quantity", "age", "income", "category", "item_id", "user_id"]
num = cols[:4]
out = list(csv.DictReader(open(batch, newline="")))
assert len(out) == len(rows)
want = [None if r["proba"] == "" else float(r["proba"]).hex() for r in out]
labels = [None if r["label"] == "" else r["label"] for r in out]
assert sum(w is None for w in want) > 0, "the data should hold unscored rows"

def val(c, v):
    if v == "":
        return None
    return float(v) if c in num else v

def post(path, body, ctype="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
        return json.load(r)

def check(name, preds):
    got = [None if p["proba"] is None else float(p["proba"]).hex() for p in preds]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(got) == len(want) and not bad, f"{name}: {len(bad)} rows differ, first {bad[:3]}: {[(got[i], want[i]) for i in bad[:3]]}"
    assert [p["label"] for p in preds] == labels, f"{name}: labels differ"

split = {"dataframe_split": {"columns": cols, "data": [[val(c, r[c]) for c in cols] for r in rows]}}
rep = post("/invocations", split)
assert rep["model"] == {"name": "clicks", "version": 1}, rep["model"]
check("dataframe_split", rep["predictions"])
recs = [{c: val(c, r[c]) for c in cols} for r in rows]
check("dataframe_records", post("/invocations", {"dataframe_records": recs})["predictions"])
check("instances", post("/invocations", {"instances": recs})["predictions"])
# numbers as their CSV text go through the CSV converter
recs_txt = [{c: (r[c] if r[c] != "" else None) for c in cols} for r in rows]
check("instances (text)", post("/invocations", {"instances": recs_txt})["predictions"])
check("text/csv", post("/invocations", open(new, "rb").read(), "text/csv")["predictions"])
inputs = [{"name": c, "datatype": "FP64" if c in num else "BYTES", "shape": [len(rows)],
           "data": [val(c, r[c]) for r in rows]} for c in cols]
v2 = post("/v2/models/clicks/infer", {"id": "q1", "inputs": inputs})
assert v2["model_version"] == "1" and v2["id"] == "q1", v2.get("model_version")
check("v2 infer", [{"proba": p, "label": l} for p, l in zip(v2["outputs"][0]["data"], v2["outputs"][1]["data"])])
print(f"test_serve: {len(rows)} rows bit-identical to the batch predict stage in 6 request forms")
PYEOF

# bad input: a 4xx naming what is wrong, never a 5xx
bad() { # EXPECTED_CODE PATH CTYPE BODY PART
    local code body
    body="$(curl -s -o "$T/bad.json" -w '%{http_code}' -H "Content-Type: $3" --data-binary "$4" "$URL$2")"
    code="$body"
    [ "$code" = "$1" ] || fail "$2 with $4: expected $1, got $code: $(cat "$T/bad.json")"
    [ "$(jget 'd["error_code"]' <"$T/bad.json")" = BAD_REQUEST ] || fail "no error_code: $(cat "$T/bad.json")"
    assert_contains "$(jget 'd["message"]' <"$T/bad.json")" "$5"
}
J=application/json
COLS='"price","quantity","age","income","category","item_id","user_id"'
bad 400 /invocations $J '{"dataframe_split": {"columns": [' "malformed JSON at line 1"
bad 400 /invocations $J '{"dataframe_split": {"columns": ["price"], "data": [[1]]}}' "missing column 'quantity'"
bad 400 /invocations $J "{\"dataframe_split\": {\"columns\": [$COLS,\"zip\"], \"data\": []}}" "extra column 'zip'"
bad 400 /invocations $J "{\"dataframe_split\": {\"columns\": [$COLS], \"data\": [[1,2,3,4,\"a\",\"b\",\"c\"],[true,2,3,4,\"a\",\"b\",\"c\"]]}}" "data[1][0] (column 'price'): expected a number, got true"
bad 400 /invocations $J "{\"dataframe_split\": {\"columns\": [$COLS], \"data\": [[\"cheap\",2,3,4,\"a\",\"b\",\"c\"]]}}" "'cheap' is not a number"
bad 400 /invocations $J '{"dataframe_records": [{"price": 1}]}' "dataframe_records[0]: missing column"
bad 400 /invocations $J '{"dataframe_records": [], "instances": []}' "send exactly one"
bad 400 /invocations $J '{"inputs": []}' "unknown key 'inputs'"
bad 415 /invocations text/plain 'x' "application/json or text/csv"
bad 400 /invocations text/csv $'price,quantity\n1,2\n' "column 'age' not in header"
bad 400 /invocations text/csv $'price,quantity,age,income,category,item_id,user_id\n1,2,3\n' "request:2: expected 7 fields, got 3"
bad 404 /v2/models/nope/infer $J '{"inputs": []}' "unknown model 'nope'"
bad 400 /v2/models/clicks/infer $J '{"inputs": [{"name": "price", "datatype": "BYTES", "shape": [1], "data": ["1"]}]}' "datatype BYTES, but the model takes FP64"
bad 404 /recommend $J '{"user_id": "u1", "n": 10}' "is a classifier"
"$PY" -c 'import sys; sys.stdout.write("{\"instances\": [" + ",".join(["{\"price\": 1}"] * 200000) + "]}")' >"$T/big.json"
bad 413 /invocations $J "@$T/big.json" "over the limit of 1 MiB"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/invocations")" = 405 ] || fail "GET /invocations must be 405"
curl -s "$URL/metrics" >"$T/metrics.txt"
grep -q '^mlops_serve_requests_total{endpoint="/invocations",code="400"}' "$T/metrics.txt" || fail "no 400s counted: $(grep requests_total "$T/metrics.txt")"
# (a 503 from /health while the model loaded is right; a scoring 5xx never is)
! grep -E 'endpoint="/(invocations|v2/models/infer|recommend)",code="5' "$T/metrics.txt" ||
    fail "a scoring request was answered 5xx"
grep -q '^mlops_serve_model_info{model="clicks",version="1"} 1' "$T/metrics.txt" || fail "model_info"
"$PY" - "$MLOPS_SOURCE_DIR/docs/metrics.md" "$T/metrics.txt" <<'PYEOF' || fail "docs/metrics.md and mlops-serve's /metrics disagree"
import re, sys
doc, text = open(sys.argv[1]).read(), open(sys.argv[2]).read()
serve_doc = set(re.findall(r"^\| `(mlops_[a-z_]+)`", doc.split("## mlops-serve", 1)[1], re.M))
common = set(re.findall(r"^\| `(mlops_[a-z_]+)`", doc.split("## Every daemon", 1)[1].split("##", 1)[0], re.M))
exported = set(re.findall(r"^# TYPE (mlops_[a-z_]+) ", text, re.M))
assert serve_doc - exported == set(), f"documented but not exported: {sorted(serve_doc - exported)}"
assert exported - serve_doc - common == set(), f"exported but not documented: {sorted(exported - serve_doc - common)}"
for fam in ("parse", "predict", "serialize"):
    assert re.search(r'^mlops_serve_request_duration_seconds_count\{phase="%s"\} [1-9]' % fam, text, re.M), fam
PYEOF
kill -0 "$(awk '$1 == "serve" {print $2}' "$CLUSTER_DIR/pids")" || fail "mlops-serve died"
# a model of 3 classes: proba is an object class -> p, bit-identical to
# the batch stage's proba_<class> columns
"$PY" - "$D" <<'PYEOF' || fail "cannot generate the multiclass data"
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
make(3000).to_csv(f"{d}/tiers.csv", index=False)
make(300).drop(columns=["tier"]).to_csv(f"{d}/tiers_new.csv", index=False)
PYEOF
printf '%s\n' "name: tiers" "input: tiers.csv" "shard_rows: 1000" \
    "columns: {label: tier, numeric: [x1, x2], categorical: [colour]}" "scale: true" \
    "hash: {n_features: 64, alternate_sign: true}" "train: {model: logistic, epochs: 3}" >"$D/tiers.yaml"
printf '%s\n' "name: score-tiers" "input: tiers_new.csv" "predict: {model: tiers@1}" >"$D/tiers_predict.yaml"
submit_wait "$D/tiers.yaml" >/dev/null || exit 1
p="$(submit_wait "$D/tiers_predict.yaml")" || exit 1
ctl export "$p" --stage predict -o "$T/tiers_batch.csv" || fail "export tiers"
"$SERVE" --coordinator "$MLOPS_COORDINATOR" --model tiers@1 --listen 127.0.0.1:0 \
    --addr-file "$T/serve2.addr" </dev/null >>"$CLUSTER_DIR/logs/serve2.log" 2>&1 &
echo "serve2 $!" >>"$CLUSTER_DIR/pids"
wait_for '[ -s "$T/serve2.addr" ]' 20
URL2="http://$(cat "$T/serve2.addr")"
wait_for "curl -sf $URL2/health" 30
"$PY" - "$URL2" "$D/tiers_new.csv" "$T/tiers_batch.csv" <<'PYEOF' || fail "multiclass served predictions differ from the batch ones"
import csv, json, sys, urllib.request
url, new, batch = sys.argv[1:]
req = urllib.request.Request(url + "/invocations", data=open(new, "rb").read(), headers={"Content-Type": "text/csv"})
preds = json.load(urllib.request.urlopen(req))["predictions"]
out = list(csv.DictReader(open(batch, newline="")))
assert len(preds) == len(out) == 300
for i, (p, o) in enumerate(zip(preds, out)):
    assert sorted(p["proba"]) == ["high", "low", "mid"], p
    for c in ("high", "low", "mid"):
        assert float(p["proba"][c]).hex() == float(o[f"proba_{c}"]).hex(), (i, c, p["proba"][c], o[f"proba_{c}"])
    assert p["label"] == o["label"], (i, p["label"], o["label"])
meta = json.load(urllib.request.urlopen(url + "/v2/models/tiers"))
assert meta["outputs"][0]["shape"] == [-1, 3], meta["outputs"]
print("test_serve: 300 multiclass rows bit-identical to the batch stage")
PYEOF
echo "test_serve: ok"
