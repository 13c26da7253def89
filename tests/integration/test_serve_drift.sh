#!/usr/bin/env bash
# test_serve_drift.sh: mlops-serve's drift window against the reference
# bins stored with the model version. A fresh sample of the training
# distribution (later rows of the purchases generator) reads stable (< 0.1)
# on every feature; a shifted one (--shift 1: prices and incomes x e)
# reads shifted (> 0.25) on price and income. Each PSI equals numpy's on
# the rows sent, binned with the artifact's own edges (1e-9), and
# /metrics exports them as gauges.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
# one population (the same users and items): train on the first 20,000
# rows, a fresh sample is 3,000 later rows, the shifted one the same rows
# of the --shift 1 run
gen_purchases 40000 3 "$D/all.csv"
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 40000 --seed 3 --shift 1.0 \
    --out "$D/all_shifted.csv" || fail "generate --shift"
"$PY" - "$D" <<'PYEOF' || fail "cannot cut the samples"
import sys
import pandas as pd
d = sys.argv[1]
df = pd.read_csv(f"{d}/all.csv", dtype=str, keep_default_na=False)
df[:20000].to_csv(f"{d}/train.csv", index=False)
# what a client sends: the features, not the label
df[30000:33000].drop(columns=["clicked"]).to_csv(f"{d}/fresh.csv", index=False)
sh = pd.read_csv(f"{d}/all_shifted.csv", dtype=str, keep_default_na=False)
sh[30000:33000].drop(columns=["clicked"]).to_csv(f"{d}/shifted.csv", index=False)
PYEOF
purchases_job "$D/train.yaml" train.csv full
sed -i 's/n_features: 65536/n_features: 1024/' "$D/train.yaml"
echo "register: {model: clicks}" >>"$D/train.yaml"
cluster_start 1 2
submit_wait "$D/train.yaml" >/dev/null || exit 1
ctl model export clicks@1 -o "$T/m.json" || fail "model export"
"$MLOPS_BUILD_DIR/mlops-serve" --coordinator "$MLOPS_COORDINATOR" --model clicks@1 \
    --listen 127.0.0.1:0 --addr-file "$T/serve.addr" --window 3000 \
    </dev/null >>"$CLUSTER_DIR/logs/serve.log" 2>&1 &
echo "serve $!" >>"$CLUSTER_DIR/pids"
wait_for '[ -s "$T/serve.addr" ]' 20
URL="http://$(cat "$T/serve.addr")"
wait_for "curl -sf $URL/health" 30
"$PY" - "$URL" "$T/m.json" "$D/fresh.csv" "$D/shifted.csv" "$T" <<'PYEOF' || fail "drift (see above)"
import json, sys, urllib.request
import numpy as np
import pandas as pd
url, mfile, fresh, shifted, tmp = sys.argv[1:]
m = json.load(open(mfile))
ref = m["reference"]
EPS = 1e-4

def psi(r, c):
    r, c = np.asarray(r, float), np.asarray(c, float)
    p, q = np.maximum(r / r.sum(), EPS), np.maximum(c / c.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))

def send(path):
    body = open(path, "rb").read()
    req = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(req) as r:
        preds = json.load(r)["predictions"]
    with urllib.request.urlopen(url + "/drift") as r:
        d = json.load(r)
    return preds, {f["feature"]: f for f in d["features"]}, d

def expected(path, preds):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = {}
    for e in ref["numeric"]:
        x = pd.to_numeric(df[e["column"]].replace("", np.nan)).dropna().to_numpy()
        out[e["column"]] = psi(e["counts"], np.bincount(np.searchsorted(e["edges"], x, side="left"), minlength=10))
    for e in ref["categorical"]:
        top = [t["value"] for t in e["top"]]
        v = df[e["column"]]
        v = v[v != ""]
        cur = [int((v == t).sum()) for t in top] + [int((~v.isin(top)).sum())]
        out[e["column"]] = psi([t["count"] for t in e["top"]] + [e["other"]], cur)
    p = np.array([q["proba"] for q in preds if q["proba"] is not None])
    b = np.minimum(np.floor(10 * p), 9).astype(int)
    out["proba"] = psi(ref["proba"]["classes"][0]["counts"], np.bincount(b, minlength=10))
    return out

preds, got, doc = send(fresh)
assert doc["rows"] == 3000 and doc["window"] == 3000, (doc["rows"], doc["window"])
want = expected(fresh, preds)
assert set(got) == set(want), (sorted(got), sorted(want))
for k, w in want.items():
    assert abs(got[k]["psi"] - w) <= 1e-9, f"fresh {k}: served {got[k]['psi']!r}, numpy {w!r}"
    assert got[k]["psi"] < 0.1 and got[k]["status"] == "stable", f"fresh {k}: {got[k]}"
print("fresh: " + ", ".join(f"{k} {v['psi']:.4f}" for k, v in sorted(got.items())))
json.dump({k: v["psi"] for k, v in got.items()}, open(f"{tmp}/served_fresh.json", "w"))
preds, got, doc = send(shifted)  # the window now holds exactly these rows
want = expected(shifted, preds)
for k, w in want.items():
    assert abs(got[k]["psi"] - w) <= 1e-9, f"shifted {k}: served {got[k]['psi']!r}, numpy {w!r}"
for k in ("price", "income"):
    assert got[k]["psi"] > 0.25 and got[k]["status"] == "shifted", f"shifted {k}: {got[k]}"
for k in ("category", "quantity", "age"):
    assert got[k]["psi"] < 0.1, f"unshifted {k} under --shift: {got[k]}"
print("shifted: " + ", ".join(f"{k} {v['psi']:.4f}" for k, v in sorted(got.items())))
json.dump({k: v["psi"] for k, v in got.items()}, open(f"{tmp}/served_shifted.json", "w"))
PYEOF
curl -s "$URL/metrics" >"$T/metrics.txt"
grep -Eq '^mlops_serve_drift_psi\{feature="price"\} [0-9.e+-]+$' "$T/metrics.txt" || fail "no price PSI gauge: $(grep drift "$T/metrics.txt")"
grep -q '^mlops_serve_drift_window_rows 3000' "$T/metrics.txt" || fail "window rows gauge"
# the batch stage over the same rows: psi.<feature> equal to the served
# window's, bit for bit (the same counts, summed in shard order)
for n in fresh shifted; do
    printf 'name: drift-%s\ninput: %s.csv\nshard_rows: 700\ndrift: {model: clicks@1}\n' "$n" "$n" >"$D/$n.yaml"
    job="$(submit_wait "$D/$n.yaml")" || exit 1
    ctl result "$job" -o json >"$T/$n.result.json" || fail "result"
    "$PY" - "$T/$n.result.json" "$T/served_$n.json" "$n" <<'PYEOF' || fail "batch drift ($n) differs from the server's"
import json, sys
res, served, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
m = res["metrics"]
assert m["rows_compared"] == 3000, m.get("rows_compared")
for k, v in served.items():
    assert float(m[f"psi.{k}"]).hex() == float(v).hex(), f"{n} {k}: batch {m[f'psi.{k}']!r}, served {v!r}"
print(f"batch drift ({n}): " + ", ".join(f"{k} {m[f'psi.{k}']:.4f}" for k in sorted(served)))
PYEOF
done
assert_contains "$(ctl logs "$job" 2>&1)" "drift: shifted against model clicks@1"
printf 'name: bad\ninput: fresh.csv\ndrift: {model: clicks@1}\npredict: {model: clicks@1}\n' >"$D/bad.yaml"
out="$(ctl submit "$D/bad.yaml" 2>&1)"; [ $? -eq 2 ] || fail "drift with predict must be refused: $out"
assert_contains "$out" "drift: cannot be combined with predict"
echo "test_serve_drift: ok"
