"""Reference test of the SGD kernel (common/kernels/sgd.c) against
scikit-learn, through build/mlk_sgd_tool.

What is compared:
1. Exact mirror: with shuffling off, the C binary model and
   SGDClassifier(loss='log_loss', learning_rate='optimal', shuffle=False)
   visit rows in the same order with the same update rules, so their
   coefficients and intercept must agree to ~1e-9 (relative).
2. Binary accuracy on hashed categorical + standardised numeric data from a
   generated logistic model (40k rows, 2^20 hashed features): the C model
   (optimal, shuffled, its own PRNG) within 0.5 points of
   SGDClassifier(..., shuffle=True) (both averaged over 3 seeds), and
   within 1 point of LogisticRegression() on the same split; also adagrad,
   mini-batch and 4-shard parameter mixing within 1 point of it.
3. Multinomial (softmax) on make_classification with 5 classes (dense
   only): per-row, mini-batch (dgemm) and 4-shard mixing within 2 points
   of LogisticRegression(multi_class='multinomial').
Exits non-zero with a message on the first failure."""
import os
import struct
import subprocess
import sys
import tempfile
import warnings

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np
import scipy.sparse as sp


def write_mlkd(path, n_classes, X=None, dense=None, y=None):
    """Write the tool's data file: CSR X (or None), dense (or None), labels."""
    n = X.shape[0] if X is not None else dense.shape[0]
    nf = X.shape[1] if X is not None else 0
    nd = dense.shape[1] if dense is not None else 0
    nnz = X.nnz if X is not None else 0
    with open(path, "wb") as f:
        f.write(b"MLKD")
        f.write(struct.pack("<IIIQQQQ", 1, n_classes, 1 if y is not None else 0, n, nf, nnz, nd))
        if X is not None:
            X = sp.csr_matrix(X)
            X.sort_indices()
            f.write(np.ascontiguousarray(X.indptr, dtype="<i8").tobytes())
            f.write(np.ascontiguousarray(X.indices, dtype="<i4").tobytes())
            f.write(np.ascontiguousarray(X.data, dtype="<f8").tobytes())
        if dense is not None:
            f.write(np.ascontiguousarray(dense, dtype="<f8").tobytes())
        if y is not None:
            f.write(np.ascontiguousarray(y, dtype="<i4").tobytes())


def read_model(path):
    """Parse the model byte form of model.h: returns (W (dim x n_vec), b, t)."""
    buf = open(path, "rb").read()
    magic, ver, kind, k, nf, nd, t, seen, flags, res, payload = struct.unpack_from("<4sIIIQQQQIIQ", buf, 0)
    assert magic == b"MLKM" and ver == 1 and payload == len(buf) - 64, "bad model header"
    nvec = 1 if k == 2 else k
    dim = nf + nd
    off = 64
    b = np.frombuffer(buf, "<f8", nvec, off)
    off += 8 * nvec
    if flags & 2:
        (nnz,) = struct.unpack_from("<Q", buf, off)
        off += 8
        idx = np.frombuffer(buf, "<u4", nnz, off)
        off += 4 * nnz
        val = np.frombuffer(buf, "<f8", nnz, off)
        w = np.zeros(dim * nvec)
        w[idx] = val
    else:
        w = np.frombuffer(buf, "<f8", dim * nvec, off).copy()
    return w.reshape(dim, nvec), b.copy(), t


def tool_path():
    build = os.environ.get("MLOPS_BUILD_DIR", "build")
    p = os.path.join(build, "mlk_sgd_tool")
    if not os.path.exists(p):
        sys.exit(f"FAIL: {p} not found (build first; MLOPS_BUILD_DIR={build})")
    return p


def run_tool(args):
    r = subprocess.run([tool_path()] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: mlk_sgd_tool {' '.join(args)}\n{r.stderr}")
    out = {}
    for line in r.stdout.splitlines():
        key, _, val = line.partition(" ")
        out.setdefault(key, []).append(val)
    return out


def hashed_logistic_data(n, seed, n_features=2**20, cards=(20, 200, 2000)):
    """3 categorical (with the given cardinalities) + 4 numeric columns from
    a logistic model; returns (X hashed+dense CSR, H hashed, D dense
    standardised, y). Also used by bench/bench_sgd.py."""
    from sklearn.feature_extraction import FeatureHasher

    rng = np.random.default_rng(seed)
    cats = [rng.integers(0, c, n) for c in cards]
    effects = [rng.normal(0, s, c) for c, s in zip(cards, (1.0, 0.7, 0.5))]
    num = rng.normal(size=(n, 4)) * np.array([1.0, 5.0, 0.1, 30.0]) + np.array([0, 10, -1, 100])
    beta = np.array([0.8, -0.15, 4.0, 0.02])
    logit = sum(e[c] for e, c in zip(effects, cats)) + (num - num.mean(0)) @ beta - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    rows = ([f"a={a}", f"b={b}", f"c={c}"] for a, b, c in zip(*cats))
    H = FeatureHasher(n_features=n_features, input_type="string").transform(rows).tocsr()
    H.sort_indices()
    D = (num - num.mean(0)) / num.std(0)
    X = sp.hstack([H, sp.csr_matrix(D)]).tocsr()
    return X, H, D, y


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        sys.exit(1)


def test_exact_mirror(tmp):
    from sklearn.linear_model import SGDClassifier

    X, H, D, y = hashed_logistic_data(5000, seed=7, n_features=2**12)
    f = os.path.join(tmp, "mirror.mlkd")
    m = os.path.join(tmp, "mirror.model")
    write_mlkd(f, 2, H, D, y)
    run_tool(["--train", f, "--epochs", "3", "--alpha", "1e-4", "--no-shuffle", "--model-out", m])
    W, b, t = read_model(m)
    clf = SGDClassifier(loss="log_loss", alpha=1e-4, learning_rate="optimal", max_iter=3, tol=None,
                        shuffle=False, random_state=0)
    clf.fit(X, y)
    ref = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    got = np.concatenate([W.ravel(), b])
    rel = np.max(np.abs(ref - got)) / np.max(np.abs(ref))
    check(rel < 1e-9, f"shuffle off: C weights equal SGDClassifier's (max rel diff {rel:.2e})")
    check(t == clf.t_, f"step counter t {t} == sklearn t_ {clf.t_}")


def test_binary(tmp):
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    X, H, D, y = hashed_logistic_data(40000, seed=11)
    ntr = 32000
    ftr, fte = os.path.join(tmp, "bin_train.mlkd"), os.path.join(tmp, "bin_test.mlkd")
    write_mlkd(ftr, 2, H[:ntr], D[:ntr], y[:ntr])
    write_mlkd(fte, 2, H[ntr:], D[ntr:], y[ntr:])
    seeds = [1, 2, 3]
    c_acc, sk_acc = [], []
    for s in seeds:
        out = run_tool(["--train", ftr, "--test", fte, "--epochs", "5", "--alpha", "1e-4", "--seed", str(s),
                        "--proba-out", os.path.join(tmp, "p.bin")])
        proba = np.fromfile(os.path.join(tmp, "p.bin"), "<f8").reshape(-1, 2)
        acc = float(np.mean(proba.argmax(1) == y[ntr:]))
        check(abs(acc - float(out["test_accuracy"][0])) < 1e-12, "tool accuracy matches its probabilities")
        c_acc.append(acc)
        clf = SGDClassifier(loss="log_loss", alpha=1e-4, learning_rate="optimal", max_iter=5, tol=None,
                            shuffle=True, random_state=s).fit(X[:ntr], y[:ntr])
        sk_acc.append(clf.score(X[ntr:], y[ntr:]))
    ca, sa = np.mean(c_acc), np.mean(sk_acc)
    print(f"     C SGD accuracy {c_acc} mean {ca:.4f}; sklearn SGD {sk_acc} mean {sa:.4f}")
    check(abs(ca - sa) <= 0.005, f"binary: C SGD within 0.5 points of SGDClassifier ({100*(ca-sa):+.2f})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at its default 100 iterations
        lr = LogisticRegression().fit(X[:ntr], y[:ntr]).score(X[ntr:], y[ntr:])
    print(f"     LogisticRegression() accuracy {lr:.4f}")
    check(abs(ca - lr) <= 0.01, f"binary: C SGD within 1 point of LogisticRegression ({100*(ca-lr):+.2f})")
    variants = {
        "adagrad": ["--lr", "adagrad", "--eta0", "0.1", "--decay", "1", "--alpha", "1e-6"],
        "batch 32": ["--batch", "32", "--lr", "constant", "--eta0", "0.5", "--alpha", "1e-5"],
        "4-shard mixing": ["--shards", "4", "--alpha", "1e-4"],
    }
    for name, extra in variants.items():
        out = run_tool(["--train", ftr, "--test", fte, "--epochs", "5", "--seed", "5"] + extra)
        acc = float(out["test_accuracy"][0])
        check(abs(acc - lr) <= 0.01, f"binary {name}: accuracy {acc:.4f} within 1 point of LogisticRegression")
    losses = [float(v.split()[1]) for v in out["epoch_loss"]]
    check(losses[-1] < losses[0], f"epoch losses decrease ({losses[0]:.4f} -> {losses[-1]:.4f})")


def test_multinomial(tmp):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=20000, n_features=20, n_informative=10, n_redundant=4,
                               n_classes=5, n_clusters_per_class=1, random_state=3)
    X = (X - X.mean(0)) / X.std(0)
    ntr = 16000
    ftr, fte = os.path.join(tmp, "mc_train.mlkd"), os.path.join(tmp, "mc_test.mlkd")
    write_mlkd(ftr, 5, None, X[:ntr], y[:ntr])
    write_mlkd(fte, 5, None, X[ntr:], y[ntr:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(multi_class="multinomial", max_iter=2000).fit(X[:ntr], y[:ntr])
    ra = ref.score(X[ntr:], y[ntr:])
    print(f"     LogisticRegression(multinomial) accuracy {ra:.4f}")
    variants = {
        # 'optimal' starts at eta = 1/(alpha t0), very large for alpha = 1e-4
        # on 16k rows (scikit-learn's own OvR SGDClassifier gets ~0.74 here),
        # so the per-row optimal cases use alpha = 1e-3.
        "per-row optimal": ["--alpha", "1e-3"],
        "per-row invscaling": ["--lr", "invscaling", "--eta0", "0.1"],
        "batch 64 (dgemm)": ["--batch", "64", "--lr", "constant", "--eta0", "0.5", "--alpha", "1e-5"],
        "batch 16 adagrad": ["--batch", "16", "--lr", "adagrad", "--eta0", "0.1", "--alpha", "1e-6"],
        "4-shard mixing": ["--shards", "4", "--alpha", "1e-3"],
    }
    for name, extra in variants.items():
        p = os.path.join(tmp, "mc_p.bin")
        out = run_tool(["--train", ftr, "--test", fte, "--epochs", "10", "--seed", "9", "--proba-out", p] + extra)
        proba = np.fromfile(p, "<f8").reshape(-1, 5)
        check(np.allclose(proba.sum(1), 1.0), f"multinomial {name}: probabilities sum to 1")
        acc = float(np.mean(proba.argmax(1) == y[ntr:]))
        check(abs(acc - ra) <= 0.02,
              f"multinomial {name}: accuracy {acc:.4f} within 2 points of LogisticRegression ({100*(acc-ra):+.2f})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_exact_mirror(tmp)
        test_binary(tmp)
        test_multinomial(tmp)
    print("all SGD reference checks passed")


if __name__ == "__main__":
    main()
