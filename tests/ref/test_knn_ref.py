"""k-NN reference test: mlk_knn_tool (C kernels) against scikit-learn.

Neighbours must equal NearestNeighbors(metric='cosine', algorithm='brute')
on random data (with zero rows and exact duplicates) and on a Fashion-MNIST
subset; a difference is allowed only between neighbours whose similarities
are equal within 1e-6 (float32 rounding decides such ties either way).
Predictions must equal KNeighborsClassifier(metric='cosine',
algorithm='brute') with weights 'uniform' and 'distance' on 2000 queries x
10000 index rows; the search is also run as 3 merged index shards.
"""
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "mlk_knn_tool")
FMNIST = "/usr/share/datasets/fashion-mnist"
TOL = 1e-6


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run_tool(tmp, x, q, k, shards=1, labels=None):
    x = np.ascontiguousarray(x, np.float32)
    q = np.ascontiguousarray(q, np.float32)
    fx, fq = os.path.join(tmp, "x.f32"), os.path.join(tmp, "q.f32")
    x.tofile(fx)
    q.tofile(fq)
    out = {n: os.path.join(tmp, n) for n in ("ids", "sims", "pu", "pd")}
    cmd = [TOOL, "search", "--index", fx, "--nx", str(len(x)), "--queries", fq,
           "--nq", str(len(q)), "--d", str(x.shape[1]), "--k", str(k), "--shards", str(shards),
           "--out-ids", out["ids"], "--out-sims", out["sims"]]
    if labels is not None:
        fl = os.path.join(tmp, "labels.i32")
        np.ascontiguousarray(labels, np.int32).tofile(fl)
        cmd += ["--labels", fl, "--pred-uniform", out["pu"], "--pred-distance", out["pd"]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"tool failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    ids = np.fromfile(out["ids"], np.int64).reshape(len(q), k)
    sims = np.fromfile(out["sims"], np.float64).reshape(len(q), k)
    preds = None
    if labels is not None:
        preds = (np.fromfile(out["pu"], np.int32), np.fromfile(out["pd"], np.int32))
    return ids, sims, preds


def exact_sims(x, q):
    """Cosine similarities in float64, zero rows -> 0 (as sklearn's normalize)."""
    def norm(a):
        a = a.astype(np.float64)
        n = np.linalg.norm(a, axis=1, keepdims=True)
        n[n == 0] = 1.0
        return a / n
    return norm(q) @ norm(x).T


def check_neighbours(name, x, q, k, ids, sims):
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(x)
    dist, ref = nn.kneighbors(q)
    exact = exact_sims(x, q)
    bad = 0
    for i in range(len(q)):
        # our similarities against exact float64 values of our ids
        if np.max(np.abs(exact[i, ids[i]] - sims[i])) > TOL:
            fail(f"{name}: query {i}: reported similarities differ from exact ones")
        # rank by rank, the similarity sequences agree
        if np.max(np.abs(exact[i, ids[i]] - exact[i, ref[i]])) > TOL:
            bad += 1
            print(f"{name}: query {i}: ours {ids[i]} sklearn {ref[i]}")
            continue
        # ids that differ must be boundary ties with the k-th similarity
        kth = exact[i, ids[i][-1]]
        for j in set(ids[i]) ^ set(ref[i]):
            if abs(exact[i, j] - kth) > TOL:
                bad += 1
                print(f"{name}: query {i}: neighbour {j} differs and is not a tie")
                break
        # our order: descending similarity, ties by ascending id
        for a in range(k - 1):
            if sims[i, a] < sims[i, a + 1] or (sims[i, a] == sims[i, a + 1] and ids[i, a] > ids[i, a + 1]):
                fail(f"{name}: query {i}: list not ordered by (similarity desc, id asc)")
    if bad:
        fail(f"{name}: {bad} queries with neighbours different from scikit-learn")
    print(f"{name}: neighbours of {len(q)} queries match scikit-learn")


def load_idx(name, offset, n):
    with gzip.open(os.path.join(FMNIST, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    if not os.path.exists(TOOL):
        fail(f"{TOOL} not built")
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        # random data: zero rows, duplicated rows (exact ties), negative values
        x = rng.standard_normal((3000, 24)).astype(np.float32)
        x[5] = 0
        x[100:110] = x[7]
        q = rng.standard_normal((400, 24)).astype(np.float32)
        q[3] = 0
        q[10] = x[7] * 2
        for k, shards in ((1, 1), (10, 1), (10, 4), (50, 3)):
            ids, sims, _ = run_tool(tmp, x, q, k, shards)
            check_neighbours(f"random k={k} shards={shards}", x, q, k, ids, sims)
        # zero query: similarity 0 to all, neighbours are the lowest ids
        ids, sims, _ = run_tool(tmp, x, q, 5)
        if not (np.all(sims[3] == 0) and list(ids[3]) == [0, 1, 2, 3, 4]):
            fail(f"zero query: got ids {ids[3]} sims {sims[3]}")

        if not os.path.exists(os.path.join(FMNIST, "train-images-idx3-ubyte.gz")):
            print("SKIP Fashion-MNIST part: dataset not installed")
            return
        xi = load_idx("train-images-idx3-ubyte.gz", 16, 0).reshape(-1, 784)[:10000]
        xl = load_idx("train-labels-idx1-ubyte.gz", 8, 0)[:10000].astype(np.int32)
        qi = load_idx("t10k-images-idx3-ubyte.gz", 16, 0).reshape(-1, 784)[:2000]
        ql = load_idx("t10k-labels-idx1-ubyte.gz", 8, 0)[:2000]
        x = xi.astype(np.float32)
        q = qi.astype(np.float32)
        k = 10
        for shards in (1, 3):
            ids, sims, (pu, pd) = run_tool(tmp, x, q, k, shards, labels=xl)
            check_neighbours(f"fashion-mnist 2000x10000 shards={shards}", x, q, k, ids, sims)
            for w, ours in (("uniform", pu), ("distance", pd)):
                clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                                           weights=w).fit(x, xl)
                ref = clf.predict(q)
                diff = np.nonzero(ref != ours)[0]
                if len(diff):
                    fail(f"{w}: {len(diff)} predictions differ, e.g. query {diff[0]}: "
                         f"ours {ours[diff[0]]} sklearn {ref[diff[0]]}")
                print(f"fashion-mnist shards={shards} {w}: {len(q)} predictions identical, "
                      f"accuracy {np.mean(ours == ql):.4f}")
    print("OK")


if __name__ == "__main__":
    main()
