"""Batch scoring with a registered model, against scikit-learn.

  mlops : a `predict` job (docs/model-format.md) on a PRED_ROWS-row
          (default 1M) purchases CSV with 2 workers, scoring with the
          model of examples/purchases/job.yaml's pipeline (hash 2^20,
          scaled numerics) trained once on 200k rows; timed from
          `mlopsctl submit --wait` to the end of `mlopsctl result`
          (upload, parse, hash, scale and score; the predictions stay in
          the workers' stores, as a job's outputs do).
  anchor: the same model in scikit-learn, in a fresh /usr/bin/python3
          process: pandas read_csv, FeatureHasher on the same "column=value"
          tokens, (x - mean) / scale on the numerics, then
          SGDClassifier.predict_proba with coef_ and intercept_ from the
          exported JSON; its own time from read_csv to the probabilities.
Writes bench/out/predict.ratio (target >= 10x). Medians of BENCH_REPS
(default 3). The predictions are checked against the anchor's (1e-12)
once, outside the timing. Not a test: run through bench/run.sh.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (PY, REPS, SRC, BenchError, Cluster, loadavg, med, on_sigterm_exit,  # noqa: E402
                           purchases_csv, runs, write_ratio)

ROWS = int(os.environ.get("PRED_ROWS", "1000000"))
TRAIN_ROWS = 200000

ANCHOR = r'''
import json, sys, time
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import SGDClassifier
model_file, csv, out = sys.argv[1:]
m = json.load(open(model_file))
f, h = m["features"], m["features"]["hashed"]
clf = SGDClassifier(loss="log_loss")
coef = np.zeros(h["n_features"] + len(f["numeric"]))
coef[m["weights"][0]["coef"]["indices"]] = m["weights"][0]["coef"]["values"]
clf.coef_, clf.intercept_ = coef[None, :], np.array([m["weights"][0]["intercept"]])
clf.classes_ = np.array(m["classes"])
t = time.perf_counter()
df = pd.read_csv(csv, dtype={c: str for c in h["columns"]}, keep_default_na=False, na_values={c["column"]: [""] for c in f["numeric"]})
num = [c["column"] for c in f["numeric"]]
ok = df[num].notna().all(axis=1).to_numpy() & (df[h["columns"]] != "").all(axis=1).to_numpy()
d = df[ok]
X_hash = FeatureHasher(n_features=h["n_features"], input_type="string", alternate_sign=h["alternate_sign"]).transform(
    [f"{c}={v}" for c, v in zip(h["columns"], row)] for row in d[h["columns"]].itertuples(index=False))
X_num = np.column_stack([(d[c["column"]].to_numpy(dtype=np.float64) - c["mean"]) / c["scale"] for c in f["numeric"]])
p = clf.predict_proba(sp.hstack([X_hash, sp.csr_matrix(X_num)]).tocsr())[:, 1]
dt = time.perf_counter() - t
np.save(out, np.concatenate([np.flatnonzero(ok).astype(np.float64), p]))  # scored rows, then their p
print(json.dumps({"seconds": dt, "scored": int(ok.sum())}))
'''


def main():
    on_sigterm_exit()
    train_csv = purchases_csv(TRAIN_ROWS, seed=1)
    score_csv = purchases_csv(ROWS, seed=2)
    tmp = tempfile.mkdtemp(prefix="mlops-bench-predict-")
    with Cluster(2) as c:
        train = c.job_file("train.yaml", open(os.path.join(SRC, "examples", "purchases", "job.yaml")).read()
                           .replace("input: data/purchases.csv", f"input: {train_csv}")
                           .split("# user-based k-NN")[0] + "register: {model: bench}\n")
        c.run_job(train)
        c.ctl("model", "alias", "bench", "1", "production")
        model = os.path.join(tmp, "model.json")
        c.ctl("model", "export", "bench@production", "-o", model)
        job = c.job_file("predict.yaml", f"name: bench-predict\ninput: {score_csv}\nshard_rows: 65536\n"
                         "predict: {model: bench@production}\n")
        times, anchors, res = [], [], None
        for _ in range(REPS):
            dt, res = c.run_job(job)
            times.append(dt)
            a = subprocess.run([PY, "-c", ANCHOR, model, score_csv, os.path.join(tmp, "anchor.npy")],
                               capture_output=True, text=True)
            if a.returncode:
                raise BenchError(f"anchor failed: {a.stderr[-2000:]}")
            anchors.append(json.loads(a.stdout.splitlines()[-1])["seconds"])
        # the check, outside the timing: mlops' probabilities == scikit-learn's
        preds = os.path.join(tmp, "preds.csv")
        c.ctl("export", res["job"], "--stage", "predict", "-o", preds)
        import numpy as np
        import pandas as pd
        got = pd.read_csv(preds)["proba"].to_numpy()
        ref = np.load(os.path.join(tmp, "anchor.npy"))
        n = (len(ref)) // 2
        idx, p = ref[:n].astype(np.int64), ref[n:]
        d = float(np.max(np.abs(got[idx] - p)))
        if d > 1e-12 or np.isfinite(got).sum() != n:
            raise BenchError(f"predictions differ from scikit-learn: max |dp| {d}, {np.isfinite(got).sum()} vs {n} scored")
    print(f"rows {ROWS}, scored {n}, max |dp| vs scikit-learn {d:.1e}, load {loadavg()}")
    print(f"mlops predict (2 workers): median {med(times):.3f} s  runs {runs(times)}")
    print(f"scikit-learn anchor      : median {med(anchors):.3f} s  runs {runs(anchors)}")
    write_ratio("predict", med(anchors) / med(times), 10)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench_predict: {e}", file=sys.stderr)
        sys.exit(1)
