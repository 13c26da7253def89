"""k-NN as a job, end to end: Fashion-MNIST's 10,000 t10k queries against
its 60,000 training images (784 dims, k=10, cosine, uniform votes) as an
mlops job on a fresh 2-worker local cluster, `mlopsctl submit --wait`
(which uploads the four IDX files) to the end of `mlopsctl result`.

  anchor: faiss IndexFlatIP with 2 threads in a fresh process, timed from
          reading the same gzip IDX files to the predicted labels
          (L2-normalised float32, search, majority vote with ties to the
          smallest label as scikit-learn's mode does); interpreter
          start-up and imports excluded, in faiss's favour.

Both must classify with the same accuracy (scikit-learn's brute-force
cosine KNeighborsClassifier gives 0.8529). Writes bench/out/knn_job.ratio:
faiss seconds / mlops seconds (target >= 1.0x). KNN_JOB_REPS (default 3).
Run through bench/run.sh (`make bench`)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import PY, BenchError, Cluster, loadavg, med, on_sigterm_exit, runs, write_ratio  # noqa: E402

REPS = int(os.environ.get("KNN_JOB_REPS", "3"))
D = "/usr/share/datasets/fashion-mnist"
K = 10

JOB = f"""name: fmnist-knn
input:
  format: idx
  images: {D}/train-images-idx3-ubyte.gz
  labels: {D}/train-labels-idx1-ubyte.gz
shard_rows: 5000
knn:
  k: {K}
  metric: cosine
  mode: classify
  weights: uniform
  queries:
    format: idx
    images: {D}/t10k-images-idx3-ubyte.gz
    labels: {D}/t10k-labels-idx1-ubyte.gz
"""

ANCHOR = r"""
import gzip, json, sys, time
import numpy as np
import faiss
D, K = sys.argv[1], int(sys.argv[2])
faiss.omp_set_num_threads(2)
t0, c0 = time.perf_counter(), time.process_time()
def load(name, off):
    with gzip.open(D + "/" + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=off)
x = load("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32)
q = load("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32)
xl = load("train-labels-idx1-ubyte.gz", 8)
ql = load("t10k-labels-idx1-ubyte.gz", 8)
faiss.normalize_L2(x)
faiss.normalize_L2(q)
index = faiss.IndexFlatIP(784)
index.add(x)
_, nn = index.search(q, K)
votes = np.zeros((len(q), 10), np.int64)
np.add.at(votes, (np.repeat(np.arange(len(q)), K), xl[nn].ravel()), 1)
pred = votes.argmax(axis=1)
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "accuracy": float(np.mean(pred == ql))}))
"""


def anchor():
    p = subprocess.run([PY, "-c", ANCHOR, D, str(K)], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"faiss anchor failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


def main():
    on_sigterm_exit()
    if not os.path.exists(os.path.join(D, "t10k-images-idx3-ubyte.gz")):
        print(f"knn_job: {D} is missing (Debian package dataset-fashion-mnist); skipped")
        return
    print(f"--- k-NN job: Fashion-MNIST 10k x 60k, k={K}, 2 workers vs faiss IndexFlatIP, 2 threads ({loadavg()})",
          flush=True)
    times, accs, cpus, a_t, a_acc, a_cpu = [], [], [], [], [], []
    with Cluster(2) as c:
        job = c.job_file("knn.yaml", JOB)
        c.run_job(job)  # warm-up: page cache, first-touch of the stores
        for r in range(REPS):
            dt, res = c.run_job(job)
            times.append(dt)
            cpus.append(c.last_cpu)
            accs.append(res["metrics"]["knn_accuracy"])
            a = anchor()
            a_t.append(a["seconds"])
            a_acc.append(a["accuracy"])
            a_cpu.append(a["cpu"])
            stages = ", ".join(f"{s['name']} {s['seconds']:.2f}" for s in res["stages"])
            print(f"rep {r}: mlops {dt:.3f} s [{stages}] accuracy {accs[-1]:.4f}; faiss {a_t[-1]:.3f} s "
                  f"accuracy {a_acc[-1]:.4f} ({loadavg()})", flush=True)
    print(f"mlops : median {med(times):.3f} s submit->result (runs {runs(times)}), CPU {med(cpus):.2f} s")
    print(f"faiss : median {med(a_t):.3f} s read->labels (runs {runs(a_t)}), CPU {med(a_cpu):.2f} s")
    print(f"accuracy: mlops {med(accs):.4f}, faiss {med(a_acc):.4f} (scikit-learn 0.8529)")
    if abs(med(accs) - med(a_acc)) > 0.001:
        raise SystemExit(f"accuracies differ: mlops {med(accs):.4f}, faiss {med(a_acc):.4f}")
    write_ratio("knn_job", med(a_t) / med(times), 1)


if __name__ == "__main__":
    main()
