"""Hyperparameter search: a 3 x 2 grid (train.alpha 1e-5, 1e-4, 1e-3 x
train.epochs 5, 10) with 3 folds on 1M purchases rows, against
scikit-learn's GridSearchCV in the same run. Medians of BENCH_REPS
(default 1: a repetition takes minutes on this box) repetitions.

  mlops : examples/purchases/job.yaml with `split.method=sklearn`, hash
          2^16 features and `search: {grid: ..., metric: accuracy, folds:
          3}` (KFold(3, shuffle=True, random_state=0) folds) on 2 workers,
          timed from `mlopsctl submit --wait` to the end of `mlopsctl
          result`: the stages before train once (the shared preparation,
          shown on its own), the 18 (trial, fold) trainings in parallel,
          the refit of the best trial, evaluate and profile.
  anchor: examples/purchases/reference_search.py (pandas read_csv,
          dropna, IQR filter, StandardScaler, FeatureHasher 2^16,
          train_test_split; then GridSearchCV(SGDClassifier(log_loss,
          tol=None), the same grid, cv=KFold(3, shuffle=True,
          random_state=0), n_jobs=2, refit=True)) in a fresh
          /usr/bin/python3 process; its own seconds (preparation + search,
          without interpreter start-up and imports) are the anchor time.

Prints both sides' best trial and mean accuracies, the preparation times,
both sides' CPU seconds (much less sensitive to the box's load than the
wall times), and writes bench/out/search.ratio (the wall-time ratio,
target >= 10x). Not a test.
"""
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (PY, SRC, BenchError, Cluster, children_cpu, loadavg, med,  # noqa: E402
                           on_sigterm_exit, purchases_csv, stage_seconds, write_ratio)

ROWS = int(os.environ.get("SEARCH_ROWS", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "1"))
ALPHAS, EPOCHS, FOLDS, NFEAT = [1e-5, 1e-4, 1e-3], [5, 10], 3, 65536
PREP = ("ingest", "clean", "scale", "hash", "split")


def job_file(cluster, csv):
    with open(os.path.join(SRC, "examples", "purchases", "job.yaml")) as f:
        spec = yaml.safe_load(f)
    spec.pop("knn", None)
    spec["input"] = csv
    spec["hash"] = {"n_features": NFEAT, "alternate_sign": True}
    spec["split"]["method"] = "sklearn"
    spec["cv"] = {"seed": 0, "method": "sklearn"}
    spec["search"] = {"grid": {"train.alpha": ALPHAS, "train.epochs": EPOCHS}, "metric": "accuracy",
                      "folds": FOLDS}
    return cluster.job_file("search.yaml", yaml.safe_dump(spec, sort_keys=False)), spec


def main():
    on_sigterm_exit()
    csv = purchases_csv(ROWS)
    mine, prep, cvs, refs, mine_cpu, ref_cpu = [], [], [], [], [], []
    with Cluster(2) as cl:
        jf, spec = job_file(cl, csv)
        split = spec["split"]
        for r in range(REPS):
            dt, res = cl.run_job(jf)
            mine.append(dt)
            mine_cpu.append(cl.last_cpu)
            prep.append(sum(stage_seconds(res, s) for s in PREP))
            cvs.append(stage_seconds(res, "cv"))
            s = res["search"]
            print(f"rep {r}: mlops {dt:.2f} s (preparation {prep[-1]:.2f} s once, cv stage {cvs[-1]:.2f} s); "
                  f"best trial {s['best']} {s['trials'][s['best']]['params']}, "
                  f"means {[round(t['mean'], 4) for t in s['trials']]}", flush=True)
            cpu0 = children_cpu()
            out = subprocess.run([PY, os.path.join(SRC, "examples", "purchases", "reference_search.py"), csv,
                                  "--test-size", str(split["test_size"]), "--seed", str(split["seed"]),
                                  "--n-features", str(NFEAT), "--folds", str(FOLDS), "--cv-seed", "0",
                                  "--alpha", *map(str, ALPHAS), "--epochs", *map(str, EPOCHS),
                                  "--metric", "accuracy", "--n-jobs", "2"],
                                 capture_output=True, text=True, env=cl.env)
            ref_cpu.append(children_cpu() - cpu0)
            if out.returncode != 0:
                raise BenchError(f"reference_search.py failed: {out.stderr.strip()[-2000:]}")
            ref = json.loads(out.stdout)
            refs.append(ref)
            print(f"rep {r}: anchor {ref['seconds_prep'] + ref['seconds_search']:.2f} s (preparation "
                  f"{ref['seconds_prep']:.2f} s, GridSearchCV {ref['seconds_search']:.2f} s); best trial "
                  f"{ref['best']} {ref['trials'][ref['best']]['params']}, "
                  f"means {[round(t['mean'], 4) for t in ref['trials']]}", flush=True)
    anchor = med([x["seconds_prep"] + x["seconds_search"] for x in refs])
    print(f"mlops {med(mine):.2f} s (shared preparation {med(prep):.2f} s, once; cv stage {med(cvs):.2f} s) vs "
          f"pandas + GridSearchCV(n_jobs=2) {anchor:.2f} s (preparation {med([x['seconds_prep'] for x in refs]):.2f} s,"
          f" search {med([x['seconds_search'] for x in refs]):.2f} s); search alone "
          f"{med([x['seconds_search'] for x in refs]) / med(cvs):.2f}x; {os.cpu_count()} CPUs ({loadavg()})")
    print(f"CPU seconds: mlops {med(mine_cpu):.2f} (coordinator + workers + mlopsctl) vs the anchor process "
          f"{med(ref_cpu):.2f} (with its start-up and GridSearchCV's worker processes): "
          f"{med(ref_cpu) / med(mine_cpu):.2f}x")
    write_ratio("search", anchor / med(mine), 10)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench_search: {e}")
