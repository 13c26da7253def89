"""Reference test of the L-BFGS solver and the logistic objective
(common/kernels/lbfgs.c, logistic.c) against scipy.optimize and
scikit-learn, through build/mlk_lbfgs_tool.

1. Binary, hashed (2^10) + dense inputs, 3000 rows: the tool's objective
   C sum logloss + ½‖w‖² after a tight run (gtol 1e-12, no ftol test)
   equals scipy.optimize.minimize (L-BFGS-B on the same objective and
   gradient written in numpy, as tight) within 1e-10 relative, and
   LogisticRegression(C, tol 1e-12) within 1e-7 (its ftol stops it a
   little early), for C = 1 and C = 0.01; the coefficients agree with
   scipy's to 1e-4 relative to their norm; the iteration counts are
   printed next to scipy's.
2. Multinomial (4 classes, dense, make_classification): the same against
   LogisticRegression(multi_class='multinomial').
3. At the default tol (1e-4) and max_iter 100 the tool stops no later
   than 100 iterations and its objective is within 1e-4 relative of the
   optimum.
Exits non-zero with a message on the first failure."""
import os
import subprocess
import sys
import tempfile
import warnings

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sgd_ref import write_mlkd  # noqa: E402  (the tools' shared data format)


def tool(args):
    build = os.environ.get("MLOPS_BUILD_DIR", "build")
    p = os.path.join(build, "mlk_lbfgs_tool")
    if not os.access(p, os.X_OK):
        sys.exit(f"FAIL: {p} is not built")
    r = subprocess.run([p] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: mlk_lbfgs_tool {' '.join(args)}\n{r.stderr}")
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)
    print("ok  " + msg)


def objective(X, Y, C, K):
    """sum logloss + ||W||^2/(2C) and its gradient over [W (d x kv) input-major, b (kv)]."""
    d = X.shape[1]
    kv = 1 if K == 2 else K

    def f(p):
        W, b = p[: d * kv].reshape(d, kv), p[d * kv:]
        Z = X @ W + b
        if kv == 1:
            z = Z[:, 0]
            loss = np.logaddexp(0, z) - Y * z
            G = (1 / (1 + np.exp(-z)) - Y)[:, None]
        else:
            m = Z.max(axis=1, keepdims=True)
            lse = m[:, 0] + np.log(np.exp(Z - m).sum(axis=1))
            loss = lse - Z[np.arange(len(Y)), Y]
            G = np.exp(Z - lse[:, None])
            G[np.arange(len(Y)), Y] -= 1
        gW = np.asarray(X.T @ G) + W / C
        return float(loss.sum() + (W * W).sum() / (2 * C)), np.concatenate([gW.ravel(), G.sum(axis=0)])

    return f


def lr_objective(X, Y, C, coef, icpt, K):
    Z = X @ coef.T + icpt
    if K == 2:
        z = np.asarray(Z).ravel()
        loss = np.logaddexp(0, z) - Y * z
    else:
        m = Z.max(axis=1, keepdims=True)
        loss = m[:, 0] + np.log(np.exp(Z - m).sum(axis=1)) - Z[np.arange(len(Y)), Y]
    return float(C * loss.sum() + 0.5 * (coef * coef).sum())


def compare(tmp, name, X, dense, Y, K, C):
    from sklearn.linear_model import LogisticRegression

    f = os.path.join(tmp, name + ".mlkd")
    cf = os.path.join(tmp, name + ".coef")
    write_mlkd(f, K, X=X, dense=dense, y=Y)
    out = tool(["--train", f, "--C", repr(C), "--tol", "1e-12", "--ftol", "0", "--max-iter", "20000",
                "--coef-out", cf])
    got = float(out["objective"])
    full = sp.hstack([X, sp.csr_matrix(dense)]).tocsr() if X is not None else dense
    obj = objective(full, Y, C, K)
    kv = 1 if K == 2 else K
    n_par = full.shape[1] * kv + kv
    r = so.minimize(obj, np.zeros(n_par), jac=True, method="L-BFGS-B",
                    options=dict(gtol=1e-12, ftol=0, maxiter=20000))
    sci = C * r.fun
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=C, tol=1e-12, max_iter=20000,
                                multi_class="auto" if K == 2 else "multinomial").fit(full, Y)
    skl = lr_objective(full, Y, C, lr.coef_, lr.intercept_, K)
    print(f"    {name} C={C}: mlops {got!r} ({out['iterations']} iterations, {out['status']}), "
          f"scipy {sci!r} ({r.nit} iterations), LogisticRegression {skl!r}")
    check(abs(got - sci) <= 1e-10 * abs(sci), f"{name} C={C}: objective equals scipy's L-BFGS-B within 1e-10")
    check(abs(got - skl) <= 1e-7 * abs(skl), f"{name} C={C}: objective equals LogisticRegression's within 1e-7")
    p = np.fromfile(cf, dtype="<f8")
    check(np.linalg.norm(p - r.x) <= 1e-4 * np.linalg.norm(r.x), f"{name} C={C}: coefficients agree with scipy's")
    return f, sci


def main():
    rng = np.random.default_rng(3)
    n, nf = 3000, 1024
    rows = np.repeat(np.arange(n), 3)
    cols = rng.integers(0, nf, size=3 * n)
    vals = rng.choice([-1.0, 1.0], size=3 * n)
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n, nf))
    X.sum_duplicates()
    dense = rng.standard_normal((n, 3))
    wt = rng.standard_normal(nf)
    z = X @ wt + dense @ np.array([1.0, -0.5, 0.25]) - 0.2
    Y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        for C in (1.0, 0.01):
            f, opt = compare(tmp, "binary", X, dense, Y, 2, C)
        out = tool(["--train", f, "--C", "0.01"])
        got = float(out["objective"])
        check(int(out["iterations"]) <= 100 and abs(got - opt) <= 1e-4 * opt,
              f"defaults (tol 1e-4, max_iter 100): {out['iterations']} iterations, {out['status']}, "
              f"objective {got!r} within 1e-4 of the optimum")
        from sklearn.datasets import make_classification
        Xd, Yd = make_classification(n_samples=2000, n_features=12, n_informative=8, n_classes=4,
                                     random_state=1)
        compare(tmp, "multinomial", None, Xd, Yd.astype(np.int32), 4, 1.0)
    print("test_lbfgs_ref: ok")


if __name__ == "__main__":
    main()
