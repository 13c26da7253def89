#!/usr/bin/python3
"""Reference test: StandardScaler statistics in C vs scikit-learn.

Per-shard moments, merged from their byte encoding (mlk_clean_tool
scale), against sklearn.preprocessing.StandardScaler fitted on the same
rows (pandas read_csv + dropna, with and without the IQR filter): mean,
var and scale within 1e-12 relative, for several shard sizes, including
a constant column and a near-constant one (scale 1 by scikit-learn's
_is_constant_feature rule).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
SRC = os.environ.get("MLOPS_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TOOL = os.path.join(BUILD, "mlk_clean_tool")
GEN = os.path.join(SRC, "examples", "purchases", "generate.py")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def close(a, b, rel=1e-12):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def reference(path, numeric, categorical, k):
    df = pd.read_csv(path).dropna(subset=numeric + categorical)
    if k is not None:
        mask = pd.Series(True, index=df.index)
        for c in numeric:
            q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
            iqr = q3 - q1
            mask &= (df[c] >= q1 - k * iqr) & (df[c] <= q3 + k * iqr)
        df = df[mask.values]
    s = StandardScaler().fit(df[numeric].to_numpy(dtype=np.float64))
    return len(df), s.mean_, s.var_, s.scale_


def check(name, path, numeric, categorical=(), k=None, shard_sizes=(1, 97, 10**9)):
    categorical = list(categorical)
    n, mean, var, scale = reference(path, numeric, categorical, k)
    for sr in shard_sizes:
        cmd = [TOOL, "scale", path, "--numeric", ",".join(numeric), "--shard-rows", str(sr)]
        if categorical:
            cmd += ["--categorical", ",".join(categorical)]
        if k is not None:
            cmd += ["--iqr-k", repr(k)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"{name} shard_rows={sr}: {p.stderr.strip()}")
            continue
        got = {}
        for line in p.stdout.splitlines():
            _, col, cnt, m, v, s = line.split()
            got[col] = (int(cnt), float(m), float(v), float(s))
        for i, c in enumerate(numeric):
            cnt, m, v, s = got[c]
            if cnt != n:
                fail(f"{name} sr={sr} {c}: count {cnt} vs {n}")
            if not close(m, mean[i]):
                fail(f"{name} sr={sr} {c}: mean {m!r} vs sklearn {mean[i]!r}")
            # Below scikit-learn's constant-feature bound the variance is
            # rounding noise (both sides); there both must be under it.
            eps = np.finfo(np.float64).eps
            bound = n * eps * var[i] + (n * mean[i] * eps) ** 2
            if var[i] <= bound:
                if not v <= n * eps * v + (n * m * eps) ** 2:
                    fail(f"{name} sr={sr} {c}: var {v!r} is not constant-like, sklearn "
                         f"{var[i]!r} is")
            elif not close(v, var[i]):
                fail(f"{name} sr={sr} {c}: var {v!r} vs sklearn {var[i]!r}")
            if not close(s, scale[i]):
                fail(f"{name} sr={sr} {c}: scale {s!r} vs sklearn {scale[i]!r}")
    print(f"ok {name}: {n} rows, columns {numeric}, shard sizes {list(shard_sizes)}")


def main():
    if not os.path.exists(TOOL):
        print(f"missing tool {TOOL}; build first")
        return 1
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "purchases.csv")
        subprocess.run([sys.executable, GEN, "--rows", "6000", "--seed", "5", "--out", p],
                       check=True)
        num = ["price", "quantity", "age", "income"]
        check("purchases", p, num, ["user_id", "item_id", "category"])
        check("purchases-iqr", p, num, ["user_id", "item_id", "category"], k=1.5)

        n = 5000
        near = 1e9 + rng.integers(0, 3, n) * 2.384185791015625e-07
        df = pd.DataFrame({
            "const": np.full(n, 3.25),
            "near": near,
            "wide": rng.normal(1e6, 1e3, n),
            "small": rng.normal(0, 1e-6, n),
            "neg": -rng.lognormal(0, 2, n),
        })
        p = os.path.join(d, "const.csv")
        df.to_csv(p, index=False, float_format="%.17g")
        cols = list(df.columns)
        ref = reference(p, cols, [], None)
        assert ref[3][0] == 1.0 and ref[3][1] == 1.0, "sklearn should treat const/near as constant"
        check("constant-columns", p, cols, shard_sizes=(1, 13, 1000, 10**9))
        p = os.path.join(d, "one.csv")
        with open(p, "w") as f:
            f.write("x,y\n2.5,-1\n")
        check("n=1", p, ["x", "y"], shard_sizes=(1, 10))
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
