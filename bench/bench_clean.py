#!/usr/bin/python3
"""Benchmark: CSV parse + dropna + IQR filter, C kernels vs pandas.

Data: a 1M-row purchases CSV (examples/purchases/generate.py, seed 42),
generated once into bench/out/. C side: `mlk_clean_tool bench` (read the
file, split, parse, dropna, exact quartiles by the distributed rounds,
IQR mask, filter; one thread). Anchor: pandas read_csv + dropna(subset)
+ the IQR filter on the same file, in this process. Both sides one
thread; medians of REPS runs; the C side must keep the same rows.
Writes `clean: ratio X.XXx (target >= 10x)` to bench/out/clean.ratio.
"""
import os
import statistics
import subprocess
import sys
import time

for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"

import pandas as pd  # noqa: E402  (after the thread settings)

SRC = os.environ.get("MLOPS_SOURCE_DIR", os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("MLOPS_BUILD_DIR", os.path.join(SRC, "build"))
OUT = os.path.join(SRC, "bench", "out")
DATA = os.path.join(OUT, "purchases_1m.csv")
ROWS = int(os.environ.get("BENCH_CLEAN_ROWS", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
NUM = ["price", "quantity", "age", "income"]
CAT = ["user_id", "item_id", "category"]
K = 1.5
TARGET = 10.0


def anchor():
    t0 = time.perf_counter()
    df = pd.read_csv(DATA).dropna(subset=NUM + CAT)
    mask = pd.Series(True, index=df.index)
    for c in NUM:
        q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
        iqr = q3 - q1
        mask &= (df[c] >= q1 - K * iqr) & (df[c] <= q3 + K * iqr)
    df = df[mask.values]
    return time.perf_counter() - t0, len(df)


def c_side():
    tool = os.path.join(BUILD, "mlk_clean_tool")
    p = subprocess.run([tool, "bench", DATA, "--numeric", ",".join(NUM), "--categorical",
                        ",".join(CAT), "--iqr-k", repr(K), "--reps", str(REPS)],
                       capture_output=True, text=True, check=True)
    times, kept = [], set()
    for line in p.stdout.splitlines():
        f = line.split()
        if f[0] == "seconds":
            times.append(float(f[1]))
            kept.add(int(f[3]))
    return times, kept


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(DATA):
        subprocess.run([sys.executable, os.path.join(SRC, "examples", "purchases", "generate.py"),
                        "--rows", str(ROWS), "--seed", "42", "--out", DATA], check=True)
    # Warm the page cache for both sides alike.
    with open(DATA, "rb") as f:
        while f.read(1 << 24):
            pass
    # Interleave the sides so machine noise hits both.
    ct, pt, kept_c, kept_p = [], [], set(), set()
    for _ in range(REPS):
        t, n = anchor()
        pt.append(t)
        kept_p.add(n)
    times, kept = c_side()
    ct += times
    kept_c |= kept
    if kept_c != kept_p:
        print(f"MISMATCH: C kept {sorted(kept_c)} rows, pandas {sorted(kept_p)}")
        return 1
    mc, mp = statistics.median(ct), statistics.median(pt)
    ratio = mp / mc
    print(f"rows kept: {kept_p.pop()}")
    print(f"C (mlk_clean_tool bench): median {mc * 1000:.1f} ms  runs "
          + " ".join(f"{t * 1000:.0f}" for t in ct))
    print(f"pandas read_csv+dropna+IQR: median {mp * 1000:.1f} ms  runs "
          + " ".join(f"{t * 1000:.0f}" for t in pt))
    line = f"clean: ratio {ratio:.2f}x (target >= {TARGET:g}x)"
    print(line)
    with open(os.path.join(OUT, "clean.ratio"), "w") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
