"""The whole pipeline: end to end against pandas + scikit-learn, worker
memory at two data sizes, and 1- vs 2-worker scaling. Medians of
BENCH_REPS (default 3) repetitions; one thread per side.

End to end (writes bench/out/pipeline.ratio, target >= 10x)
  mlops : examples/purchases/job.yaml (ingest, clean, scale, hash 2^20,
          split, train logistic SGD 5 epochs, evaluate, and the k-NN
          recommend stage when the job file has one) on a 1M-row purchases
          CSV with 2 workers and `--set split.method=sklearn`
          (scikit-learn's train_test_split rows), timed from
          `mlopsctl submit --wait` to the end of `mlopsctl result`.
  anchor: examples/purchases/reference.py --model sgd (pandas read_csv,
          dropna, IQR filter, StandardScaler, FeatureHasher,
          train_test_split, SGDClassifier(log_loss, same alpha, epochs and
          seed), the same metrics) in a fresh /usr/bin/python3 process;
          its own seconds_total (from read_csv to the metrics, without
          interpreter start-up and imports) is the anchor time. With knn
          in the job, REC_ANCHOR below adds the same user-based
          recommendations (leave-last-out, binary user vectors,
          scikit-learn NearestNeighbors cosine brute force, top-N unseen
          items, hit rate / NDCG and the most-popular baseline) in another
          fresh process, timed from the cleaned frame to the metrics; the
          anchor time is the sum. The ratio with whole-process wall times
          is printed too. Accuracies must agree within 0.5 point; the
          hit rates are printed side by side.

Memory
  Peak memory of each worker process during one pipeline job on a fresh
  2-worker cluster, at 1M and at 4M rows: VmHWM (peak resident set, which
  includes file-backed pages such as the LMDB store's map) and the peak
  RssAnon sampled every 20 ms (what the worker allocated itself).

Scaling
  The end-to-end job with 1 worker and with 2 workers (the 2-worker
  figures are the end-to-end ones): speedup = median(1) / median(2).

Not a test: run through bench/run.sh (`make bench`). BENCH_REPS,
PIPE_ROWS (default 1000000), MEM_ROWS (default 1000000,4000000) and
BENCH_ONLY (e2e,memory,scaling) adjust it.
"""
import json
import os
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (PY, REPS, SRC, BenchError, Cluster, MemPoller,  # noqa: E402
                           children_cpu, loadavg, on_sigterm_exit, med, purchases_csv, run_parts, runs, stage_seconds,
                           write_ratio)

JOB = os.path.join(SRC, "examples", "purchases", "job.yaml")
# train.alpha: the anchor is the seed's SGDClassifier(alpha=1e-4) path
# (the example job itself trains with C = 1, LogisticRegression's model)
SETS = ("split.method=sklearn", "train.alpha=0.0001")
ACC_TOL = 0.005


def job_spec():
    """The example purchases job file, parsed."""
    with open(JOB) as f:
        return yaml.safe_load(f)


def job_file(cluster, csv):
    """The example purchases job with its input pointed at CSV."""
    spec = job_spec()
    spec["input"] = csv
    return cluster.job_file("purchases.yaml", yaml.safe_dump(spec, sort_keys=False))


REC_ANCHOR = r"""
import json, sys, time
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

NUMERIC = ["price", "quantity", "age", "income"]
CATEGORICAL = ["category", "item_id", "user_id"]
csv, K, N, USER, ITEM, IQR_K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6])
# the cleaned frame, as reference.py makes it (not timed: reference.py's time has it)
df = pd.read_csv(csv)
df = df.dropna(subset=NUMERIC + CATEGORICAL + ["clicked"])
keep = pd.Series(True, index=df.index)
for c in NUMERIC:
    q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
    keep &= (df[c] >= q1 - IQR_K * (q3 - q1)) & (df[c] <= q3 + IQR_K * (q3 - q1))
df = df[keep]
t0, c0 = time.perf_counter(), time.process_time()
u, users = pd.factorize(df[USER].astype(str), sort=True)
it, items = pd.factorize(df[ITEM].astype(str), sort=True)
nu, ni, n = len(users), len(items), len(u)
cnt = np.bincount(u, minlength=nu)
last = np.full(nu, -1)
last[u] = np.arange(n)                      # each user's last interaction (file order)
multi = cnt >= 2
held = np.where(multi, it[last], -1)        # left out when the user has >= 2
tr = np.ones(n, bool)
tr[last[multi]] = False
counts = sparse.csr_matrix((np.ones(int(tr.sum())), (u[tr], it[tr])), shape=(nu, ni))
vec = counts.copy()
vec.data[:] = 1.0                           # binary user vectors
nn = NearestNeighbors(n_neighbors=min(K + 1, nu), metric="cosine", algorithm="brute").fit(vec)
dist, ind = nn.kneighbors(vec)
sim = 1.0 - dist
own = ind == np.arange(nu)[:, None]         # drop the user itself (else the last one)
drop = np.where(own.any(axis=1), own.argmax(axis=1), ind.shape[1] - 1)
mask = np.ones_like(ind, bool)
mask[np.arange(nu), drop] = False
ind = ind[mask].reshape(nu, -1)[:, :K]
sim = sim[mask].reshape(nu, -1)[:, :K]
rows = np.repeat(np.arange(nu), ind.shape[1])
W = sparse.csr_matrix((sim.ravel(), (rows, ind.ravel())), shape=(nu, nu))
Wb = sparse.csr_matrix((np.ones(rows.size), (rows, ind.ravel())), shape=(nu, nu))
pop = np.asarray(counts.sum(axis=0)).ravel()
pop_rank = np.lexsort((np.arange(ni), -pop))
hits, ndcg, phits = [], [], []
for s in range(0, nu, 2048):
    e = min(nu, s + 2048)
    seen = vec[s:e].toarray() > 0
    score = (W[s:e] @ vec).toarray()
    cand = ((Wb[s:e] @ vec).toarray() > 0) & ~seen
    score[~cand] = -np.inf
    top = np.argsort(-score, axis=1, kind="stable")[:, :N]
    for r in range(e - s):
        h = held[s + r]
        if h < 0:
            continue
        lst = [i for i in top[r] if cand[r, i]]
        plst = [i for i in pop_rank[:N + int(seen[r].sum())] if not seen[r, i] and pop[i] > 0][:N]
        hits.append(float(h in lst))
        ndcg.append(1.0 / np.log2(lst.index(h) + 2.0) if h in lst else 0.0)
        phits.append(float(h in plst))
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "users": int(nu), "items": int(ni), "hit_rate_at_n": float(np.mean(hits)),
                  "ndcg_at_n": float(np.mean(ndcg)), "popular_hit_rate_at_n": float(np.mean(phits))}))
"""


def rec_anchor(csv, knn, iqr_k):
    """One fresh-process run of REC_ANCHOR: its JSON plus `wall`, the
    process wall seconds."""
    t = time.perf_counter()
    p = subprocess.run([PY, "-c", REC_ANCHOR, csv, str(knn.get("k", 5)), str(knn.get("top_n", 10)),
                        knn["user"], knn["item"], str(iqr_k)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise BenchError(f"recommend anchor failed: {p.stderr.strip()[-2000:]}")
    out = json.loads(p.stdout)
    out["wall"] = wall
    return out


def stage_line(res):
    """`name seconds` of every stage of a result, for the log."""
    return ", ".join(f"{s['name']} {s['seconds']:.2f}" for s in res["stages"])


def reference(csv):
    """One fresh-process run of reference.py --model sgd: (its JSON with
    `cpu` = the process's CPU seconds including start-up, process wall seconds)."""
    cpu0 = children_cpu()
    t = time.perf_counter()
    p = subprocess.run([PY, os.path.join(SRC, "examples", "purchases", "reference.py"), csv,
                        "--model", "sgd"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise BenchError(f"reference.py failed: {p.stderr.strip()[-2000:]}")
    out = json.loads(p.stdout)
    out["cpu"] = children_cpu() - cpu0
    return out, wall


def run_reps(cluster, job, label, anchor_csv=None):
    """REPS timed runs of JOB after one warm-up; with ANCHOR_CSV the
    reference runs after each. Returns (times, results, ref JSONs, ref
    walls); each result gets `cpu`, the cluster's CPU seconds for the job."""
    cluster.run_job(job, *SETS)
    times, results, refs, ref_walls = [], [], [], []
    for r in range(REPS):
        dt, res = cluster.run_job(job, *SETS)
        res["cpu"] = cluster.last_cpu
        times.append(dt)
        results.append(res)
        msg = f"rep {r}: {label} {dt:.3f} s [{stage_line(res)}] acc {res['metrics']['accuracy']:.4f}"
        if anchor_csv:
            ref, wall = reference(anchor_csv)
            msg += (f"; reference {ref['seconds_total']:.3f} s in-process (prep {ref['seconds_prep']:.2f}, "
                    f"train {ref['sgd.seconds_train']:.2f}) / {wall:.3f} s with start-up, "
                    f"acc {ref['sgd.accuracy']:.4f}")
            ref["anchor_seconds"], ref["anchor_cpu"] = ref["seconds_total"], ref["cpu"]
            knn = job_spec().get("knn")
            if knn and knn.get("mode") == "recommend":
                rec = rec_anchor(anchor_csv, knn, job_spec().get("clean", {}).get("iqr_k", 1.5))
                ref["rec"] = rec
                ref["anchor_seconds"] += rec["seconds"]
                ref["anchor_cpu"] += rec["cpu"]
                wall += rec["wall"]
                msg += (f"; recommend anchor {rec['seconds']:.3f} s in-process, hit@N {rec['hit_rate_at_n']:.4f} "
                        f"(mlops {res['metrics'].get('hit_rate_at_n', float('nan')):.4f})")
            refs.append(ref)
            ref_walls.append(wall)
        print(msg + f" ({loadavg()})", flush=True)
    return times, results, refs, ref_walls


def knn_tail(res):
    """Seconds the job ran on after every other stage had ended: what
    the knn stage adds to the wall time now that it runs beside the
    model stages (stage_started_s + seconds = its end)."""
    ends = {s["name"]: s["started_s"] + s["seconds"] for s in res["stages"] if s["started_s"] is not None}
    others = [e for n, e in ends.items() if n != "knn"]
    return max(0.0, ends.get("knn", 0.0) - max(others)) if others else 0.0


def overlap_line(results):
    """Median start and end of each stage after submission: the overlap."""
    names = [s["name"] for s in results[0]["stages"]]
    def span(r, n):
        st = [s for s in r["stages"] if s["name"] == n][0]
        return st["started_s"] or 0.0, (st["started_s"] or 0.0) + st["seconds"]
    return ", ".join(f"{n} {med([span(r, n)[0] for r in results]):.2f}-{med([span(r, n)[1] for r in results]):.2f}"
                     for n in names)


def stage_medians(results):
    """Median seconds of each stage over RESULTS, as `name s` text."""
    names = [s["name"] for s in results[0]["stages"]]
    return ", ".join(f"{n} {med([stage_seconds(r, n) for r in results]):.3f}" for n in names)


def bench_e2e(rows):
    """The 1M-row pipeline on 2 workers vs reference.py (+ the recommend
    anchor); returns the mlops times."""
    csv = purchases_csv(rows)
    print(f"--- end to end: {rows} rows, 2 workers vs pandas + scikit-learn ({loadavg()})", flush=True)
    with Cluster(2) as c:
        times, results, refs, ref_walls = run_reps(c, job_file(c, csv), "mlops", csv)
    m = results[-1]["metrics"]
    for k in ("rows_after_clean", "rows_train", "rows_test"):
        if any(r["metrics"][k] != refs[0][k] for r in results):
            raise BenchError(f"{k} differs: mlops {m[k]}, reference {refs[0][k]}")
    acc_m = med([r["metrics"]["accuracy"] for r in results])
    acc_r = med([r["sgd.accuracy"] for r in refs])
    ref_t = [r["anchor_seconds"] for r in refs]
    has_rec = "rec" in refs[0]
    print(f"mlops    : median {med(times):.3f} s submit->result (runs {runs(times)}); "
          f"stage medians {stage_medians(results)}")
    print(f"overlap  : median start-end after submission: {overlap_line(results)}")
    print(f"anchor   : median {med(ref_t):.3f} s in-process (runs {runs(ref_t)}): reference.py "
          f"{med([r['seconds_total'] for r in refs]):.3f} s (prep {med([r['seconds_prep'] for r in refs]):.3f}, "
          f"SGD train {med([r['sgd.seconds_train'] for r in refs]):.3f})"
          + (f" + recommend {med([r['rec']['seconds'] for r in refs]):.3f} s" if has_rec else "")
          + f"; {med(ref_walls):.3f} s with start-up")
    print(f"accuracy : mlops {acc_m:.4f} (auc {m['auc']:.4f}, logloss {m['logloss']:.4f}), "
          f"scikit-learn SGD {acc_r:.4f} (auc {refs[0]['sgd.auc']:.4f}, logloss {refs[0]['sgd.logloss']:.4f}); "
          f"difference {100 * abs(acc_m - acc_r):.2f} points (limit {100 * ACC_TOL:.1f})")
    if has_rec:
        rec = refs[0]["rec"]
        print(f"recommend: mlops hit@N {m['hit_rate_at_n']:.4f}, ndcg@N {m['ndcg_at_n']:.4f}, popular hit@N "
              f"{m['popular_hit_rate_at_n']:.4f}, {m['knn_users']} users x {m['knn_items']} items; anchor "
              f"{rec['hit_rate_at_n']:.4f}, {rec['ndcg_at_n']:.4f}, {rec['popular_hit_rate_at_n']:.4f}, "
              f"{rec['users']} x {rec['items']} (neighbour ties are broken differently)")
        # knn runs beside scale .. profile (planner_stage_needs): only the
        # time it runs on after the others have ended is its share
        no_knn = [t - knn_tail(r) for t, r in zip(times, results)]
        ref_no = [r["seconds_total"] for r in refs]
        print(f"without the knn stage on both sides: mlops {med(no_knn):.3f} s, reference.py {med(ref_no):.3f} s, "
              f"ratio {med(ref_no) / med(no_knn):.2f}x; knn alone: mlops "
              f"{med([stage_seconds(r, 'knn') for r in results]):.3f} s, anchor "
              f"{med([r['rec']['seconds'] for r in refs]):.3f} s")
    print(f"ratio with whole-process wall times: {med(ref_walls) / med(times):.2f}x ({loadavg()})")
    m_cpu = med([r["cpu"] for r in results])
    r_cpu = med([r["anchor_cpu"] for r in refs])
    print(f"CPU seconds (less sensitive to the load): mlops {m_cpu:.3f} (coordinator + workers during the job, "
          f"mlopsctl processes), anchor {r_cpu:.3f} (reference.py with start-up + recommend in-process); "
          f"anchor/mlops {r_cpu / m_cpu:.2f}x")
    if abs(acc_m - acc_r) > ACC_TOL:
        raise BenchError(f"accuracies differ by more than {100 * ACC_TOL:.1f} points: "
                         f"mlops {acc_m:.4f}, scikit-learn {acc_r:.4f}")
    write_ratio("pipeline", med(ref_t) / med(times), 10)
    return times


def bench_memory(sizes):
    """Per-worker peak memory of one job on a fresh 2-worker cluster per size."""
    print(f"--- memory: one pipeline job per size on a fresh 2-worker cluster ({loadavg()})", flush=True)
    table = []
    for rows in sizes:
        csv = purchases_csv(rows)
        with Cluster(2) as c:
            job = job_file(c, csv)
            pids = c.worker_pids()
            idle = {p: MemPoller.read(p) for p in pids}
            with MemPoller(pids) as mp:
                dt, res = c.run_job(job, *SETS)
            after = {p: MemPoller.read(p) for p in pids}
        for i, p in enumerate(pids):
            pk = mp.peak[p]
            table.append((rows, i + 1, pk["VmHWM"], pk["RssAnon"], after[p].get("RssFile", 0),
                          idle[p].get("VmRSS", 0)))
            print(f"{rows} rows, worker {i + 1}: VmHWM {pk['VmHWM'] / 1024:.0f} MiB, peak RssAnon "
                  f"{pk['RssAnon'] / 1024:.0f} MiB, RssFile after {after[p].get('RssFile', 0) / 1024:.0f} MiB, "
                  f"idle VmRSS before {idle[p].get('VmRSS', 0) / 1024:.0f} MiB", flush=True)
        print(f"{rows} rows: job {dt:.3f} s [{stage_line(res)}], accuracy {res['metrics']['accuracy']:.4f} "
              f"({loadavg()})", flush=True)
    for key, col in (("VmHWM", 2), ("peak RssAnon", 3)):
        lo = max(t[col] for t in table if t[0] == sizes[0])
        hi = max(t[col] for t in table if t[0] == sizes[-1])
        print(f"max worker {key}: {lo / 1024:.0f} MiB at {sizes[0]} rows, {hi / 1024:.0f} MiB at "
              f"{sizes[-1]} rows ({hi / lo:.2f}x for {sizes[-1] / sizes[0]:.0f}x the rows)")
    return table


def bench_scaling(rows, two):
    """The same job on 1 worker; speedup against the 2-worker times TWO."""
    if not two:
        raise BenchError("needs the 2-worker end-to-end times, which failed")
    csv = purchases_csv(rows)
    print(f"--- scaling: {rows} rows on 1 worker vs 2 ({loadavg()})", flush=True)
    with Cluster(1) as c:
        one, results, _, _ = run_reps(c, job_file(c, csv), "mlops 1 worker")
    print(f"1 worker : median {med(one):.3f} s (runs {runs(one)}); stage medians {stage_medians(results)}; "
          f"CPU {med([r['cpu'] for r in results]):.3f} s")
    print(f"2 workers: median {med(two):.3f} s (runs {runs(two)})")
    print(f"speedup 1 -> 2 workers: {med(one) / med(two):.2f}x on {os.cpu_count()} shared CPUs ({loadavg()})")


def main():
    on_sigterm_exit()
    only = os.environ.get("BENCH_ONLY", "e2e,memory,scaling").split(",")
    rows = int(os.environ.get("PIPE_ROWS", "1000000"))
    sizes = [int(x) for x in os.environ.get("MEM_ROWS", "1000000,4000000").split(",")]
    two = []  # the 2-worker end-to-end times, which scaling compares with

    def e2e():
        two.extend(bench_e2e(rows) or [])

    # scaling needs the 2-worker times: e2e runs for it too
    run_parts((("e2e", e2e), ("memory", lambda: bench_memory(sizes)),
               ("scaling", lambda: bench_scaling(rows, two))),
              only + (["e2e"] if "scaling" in only else []))


if __name__ == "__main__":
    main()
