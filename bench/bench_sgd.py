"""Benchmark: one SGD epoch of binary logistic regression on ~1M rows of
hashed categorical (3 columns, 2^20 features) + standardised numeric (4
columns) data. C side: mlk_sgd_tool --packed, the epoch as the train
stage's epoch task runs it on the packed shard featurize writes
(measured inside the tool: the shard validated and its records copied
into huge pages in one pass, a fresh compact model, the shuffled per-row
epoch over the records, the encoded result), with the offset list and the
record copy in buffers a previous epoch used, as a worker's executor
thread keeps them from task to task; `--packed --cold` (the thread's
first task: fresh pages) is timed and printed too, as are the epoch from
the arrays (--compact, mlk_sgd_train_compact: the epoch task before the
packed shard) and through mlk_sgd_train on a dense 2^20 model. Anchor: scikit-learn
SGDClassifier(loss='log_loss').partial_fit on the same CSR matrix (the call
only; data prep excluded). Both one thread, same alpha (1e-4, 'optimal').
Prints medians over the repetitions and both test accuracies (on 200k
held-out rows), and writes bench/out/sgd.ratio: the ratio of CPU seconds
(the tool's, the Python process's), which a loaded shared box distorts far
less than wall time; the wall ratio is printed too. Not a test."""
import os
import subprocess
import sys
import tempfile
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np

SRC = os.environ.get("MLOPS_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BUILD = os.environ.get("MLOPS_BUILD_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "ref"))
from test_sgd_ref import hashed_logistic_data, write_mlkd  # noqa: E402

N_TRAIN, N_TEST, ALPHA, TARGET = 1_000_000, 200_000, 1e-4, 10.0
REPS = int(os.environ.get("BENCH_SGD_REPS", "5"))


def main():
    from sklearn.linear_model import SGDClassifier

    tool = os.path.join(BUILD, "mlk_sgd_tool")
    if not os.path.exists(tool):
        sys.exit(f"{tool} not found: build first")
    t = time.time()
    X, H, D, y = hashed_logistic_data(N_TRAIN + N_TEST, seed=2024, cards=(50, 1000, 20000))
    print(f"data: {N_TRAIN} train + {N_TEST} test rows, {X.shape[1]} columns, "
          f"{X.nnz / X.shape[0]:.1f} nnz/row, prepared in {time.time() - t:.1f}s", flush=True)
    Xtr, Xte, ytr, yte = X[:N_TRAIN], X[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]
    c_times, c_accs, sk_times, sk_accs, c_cpus, sk_cpus = [], [], [], [], [], []
    d_times, d_cpus = [], []
    p_times, p_cpus = [], []  # --compact: the arrays, packed per epoch task (the path before)
    k_times, k_cpus = [], []  # --packed --cold: an executor thread's first epoch task
    with tempfile.TemporaryDirectory() as tmp:
        ftr, fte = os.path.join(tmp, "train.mlkd"), os.path.join(tmp, "test.mlkd")
        write_mlkd(ftr, 2, H[:N_TRAIN], D[:N_TRAIN], ytr)
        write_mlkd(fte, 2, H[N_TRAIN:], D[N_TRAIN:], yte)
        for r in range(REPS):
            kvs = []
            for mode in (["--packed"], ["--packed", "--cold"], ["--compact"], []):
                out = subprocess.run([tool, "--train", ftr, "--test", fte, "--epochs", "1", "--alpha", str(ALPHA),
                                      "--seed", str(r)] + mode, capture_output=True, text=True, env=os.environ)
                if out.returncode != 0:
                    sys.exit(f"mlk_sgd_tool failed: {out.stderr}")
                kvs.append(dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line))
            kv, kk, kc, kd = kvs
            if any(k["test_accuracy"] != kd["test_accuracy"] or k["model_bytes"] != kd["model_bytes"] for k in (kv, kk, kc)):
                sys.exit(f"packed, compact and dense epochs differ: {kv} {kk} {kc} {kd}")
            k_times.append(float(kk["train_seconds"]))
            k_cpus.append(float(kk["train_cpu_seconds"]))
            p_times.append(float(kc["train_seconds"]))
            p_cpus.append(float(kc["train_cpu_seconds"]))
            c_times.append(float(kv["train_seconds"]))
            c_cpus.append(float(kv["train_cpu_seconds"]))
            c_accs.append(float(kv["test_accuracy"]))
            d_times.append(float(kd["train_seconds"]))
            d_cpus.append(float(kd["train_cpu_seconds"]))
            clf = SGDClassifier(loss="log_loss", alpha=ALPHA, learning_rate="optimal", random_state=r)
            t0, c0 = time.perf_counter(), time.process_time()
            clf.partial_fit(Xtr, ytr, classes=np.array([0, 1]))
            sk_times.append(time.perf_counter() - t0)
            sk_cpus.append(time.process_time() - c0)
            sk_accs.append(clf.score(Xte, yte))
            print(f"rep {r}: C {c_times[-1]*1e3:.1f} ms ({c_cpus[-1]*1e3:.1f} CPU; cold {k_times[-1]*1e3:.1f} ms, "
                  f"{k_cpus[-1]*1e3:.1f} CPU; packing per task "
                  f"{p_times[-1]*1e3:.1f} ms, {p_cpus[-1]*1e3:.1f} CPU; dense API "
                  f"{d_times[-1]*1e3:.1f} ms, {d_cpus[-1]*1e3:.1f} CPU) acc {c_accs[-1]:.4f} | "
                  f"sklearn {sk_times[-1]*1e3:.1f} ms acc {sk_accs[-1]:.4f}", flush=True)
    c_med, sk_med = float(np.median(c_times)), float(np.median(sk_times))
    ca, sa = float(np.median(c_accs)), float(np.median(sk_accs))
    c_cpu, sk_cpu = float(np.median(c_cpus)), float(np.median(sk_cpus))
    ratio = sk_cpu / c_cpu
    print(f"median epoch: C {c_med*1e3:.1f} ms, sklearn partial_fit {sk_med*1e3:.1f} ms, wall ratio "
          f"{sk_med / c_med:.2f}x; CPU C {c_cpu*1e3:.1f} ms, sklearn {sk_cpu*1e3:.1f} ms, CPU-time ratio "
          f"{ratio:.2f}x; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    k_med, k_cpu = float(np.median(k_times)), float(np.median(k_cpus))
    print(f"an executor thread's first epoch task (--packed --cold, fresh pages for the offsets and the copy): "
          f"{k_med*1e3:.1f} ms wall, {k_cpu*1e3:.1f} ms CPU: wall ratio {sk_med / k_med:.2f}x, "
          f"CPU ratio {sk_cpu / k_cpu:.2f}x")
    p_med, p_cpu = float(np.median(p_times)), float(np.median(p_cpus))
    print(f"from the arrays, packed in the task (mlk_sgd_train_compact, the epoch task before the packed "
          f"shard): {p_med*1e3:.1f} ms wall, {p_cpu*1e3:.1f} ms CPU: wall ratio {sk_med / p_med:.2f}x, "
          f"CPU ratio {sk_cpu / p_cpu:.2f}x")
    d_med, d_cpu = float(np.median(d_times)), float(np.median(d_cpus))
    print(f"dense API (mlk_sgd_train on a 2^20 model): {d_med*1e3:.1f} ms wall, {d_cpu*1e3:.1f} ms CPU: "
          f"wall ratio {sk_med / d_med:.2f}x, CPU ratio {sk_cpu / d_cpu:.2f}x")
    print(f"median test accuracy: C {ca:.4f}, sklearn {sa:.4f} (diff {100*(ca-sa):+.2f} points)")
    if abs(ca - sa) > 0.005:
        print("WARNING: accuracies differ by more than 0.5 point")
    os.makedirs(os.path.join(SRC, "bench", "out"), exist_ok=True)
    with open(os.path.join(SRC, "bench", "out", "sgd.ratio"), "w") as f:
        f.write(f"sgd: ratio {ratio:.2f}x (target >= {TARGET:g}x)\n")


if __name__ == "__main__":
    main()
