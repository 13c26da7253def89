"""Benchmark: `train.solver: lbfgs` against scikit-learn's
LogisticRegression().fit on the same features, same run. Medians of
BENCH_REPS (default 3) repetitions after one warm-up job; one thread per
side.

mlops : examples/purchases/job.yaml without its knn section, with
        `train: {solver: lbfgs}` (C 1, max_iter 100, tol 1e-4: the
        defaults of LogisticRegression()) and `split.method=sklearn`, on
        a LBFGS_ROWS-row (default 1,000,000) purchases CSV, 2 workers.
        Fit time: the train stage's own seconds; submit to result: from
        `mlopsctl submit --wait` (which uploads the CSV) to the end of
        `mlopsctl result`.
anchor: examples/purchases/reference.py --model logreg
        --logreg-max-iter 100 (pandas, StandardScaler, FeatureHasher 2^20,
        train_test_split, LogisticRegression(), the same metrics) in a
        fresh process: its logreg.seconds_train is the fit time and its
        seconds_total (read_csv to metrics, start-up excluded) the
        end-to-end time.
Writes bench/out/lbfgs_fit.ratio and bench/out/lbfgs_e2e.ratio (target
>= 5x each); prints both accuracies and objectives (the objectives
differ by what 100 iterations reach; both solvers stop at max_iter).
Not a test."""
import json
import os
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (PY, REPS, SRC, BenchError, Cluster, loadavg, med, on_sigterm_exit,  # noqa: E402
                           purchases_csv, runs, stage_seconds, write_ratio)

ROWS = int(os.environ.get("LBFGS_ROWS", "1000000"))
TARGET = 5.0


def job_file(cluster, csv):
    with open(os.path.join(SRC, "examples", "purchases", "job.yaml")) as f:
        spec = yaml.safe_load(f)
    spec.pop("knn", None)
    spec["input"] = csv
    spec["train"] = {"solver": "lbfgs"}
    return cluster.job_file("lbfgs.yaml", yaml.safe_dump(spec, sort_keys=False))


def reference(csv):
    p = subprocess.run([PY, os.path.join(SRC, "examples", "purchases", "reference.py"), csv,
                        "--model", "logreg", "--logreg-max-iter", "100"], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"reference.py failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


def main():
    on_sigterm_exit()
    csv = purchases_csv(ROWS)
    fit, e2e, sk_fit, sk_e2e, accs = [], [], [], [], []
    with Cluster(2) as c:
        job = job_file(c, csv)
        c.run_job(job, "split.method=sklearn")
        for r in range(REPS):
            dt, res = c.run_job(job, "split.method=sklearn")
            m = res["metrics"]
            tr = stage_seconds(res, "train")
            ref = reference(csv)
            fit.append(tr)
            e2e.append(dt)
            sk_fit.append(ref["logreg.seconds_train"])
            sk_e2e.append(ref["seconds_total"])
            accs.append((m["accuracy"], ref["logreg.accuracy"]))
            print(f"rep {r}: mlops train {tr:.3f} s ({int(m['lbfgs_iterations'])} iterations, "
                  f"{int(m['lbfgs_evaluations'])} evaluations), submit to result {dt:.3f} s, "
                  f"acc {m['accuracy']:.4f}, objective {m['lbfgs_objective']:.6f}; "
                  f"LogisticRegression fit {ref['logreg.seconds_train']:.3f} s ({ref['logreg.n_iter']} iterations), "
                  f"total {ref['seconds_total']:.3f} s, acc {ref['logreg.accuracy']:.4f}, "
                  f"objective {ref['logreg.objective']:.6f}; load {loadavg()}", flush=True)
    print(f"{ROWS} rows, 2 workers: mlops fit {runs(fit)} (median {med(fit):.3f} s), "
          f"submit to result {runs(e2e)} (median {med(e2e):.3f} s)")
    print(f"LogisticRegression().fit {runs(sk_fit)} (median {med(sk_fit):.3f} s), "
          f"read_csv to metrics {runs(sk_e2e)} (median {med(sk_e2e):.3f} s)")
    print(f"accuracy mlops {accs[-1][0]:.4f}, LogisticRegression {accs[-1][1]:.4f}")
    write_ratio("lbfgs_fit", med(sk_fit) / med(fit), TARGET)
    write_ratio("lbfgs_e2e", med(sk_e2e) / med(e2e), TARGET)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench_lbfgs: {e}")
