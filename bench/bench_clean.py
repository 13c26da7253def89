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
import resource
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
REPS = int(os.environ.get("BENCH_REPS", "7"))
NUM = ["price", "quantity", "age", "income"]
CAT = ["user_id", "item_id", "category"]
K = 1.5
TARGET = 10.0


def anchor():
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    df = pd.read_csv(DATA).dropna(subset=NUM + CAT)
    mask = pd.Series(True, index=df.index)
    for c in NUM:
        q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
        iqr = q3 - q1
        mask &= (df[c] >= q1 - K * iqr) & (df[c] <= q3 + K * iqr)
    df = df[mask.values]
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, len(df)


def c_side():
    """One run of the C side: (wall seconds as the tool measured it, CPU
    seconds of the whole tool process, rows kept, phase line)."""
    tool = os.path.join(BUILD, "mlk_clean_tool")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([tool, "bench", DATA, "--numeric", ",".join(NUM), "--categorical",
                        ",".join(CAT), "--iqr-k", repr(K), "--reps", "1"],
                       capture_output=True, text=True, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    for line in p.stdout.splitlines():
        f = line.split()
        if f[0] == "seconds":
            return float(f[1]), cpu, int(f[3]), " ".join(f[4:])
    raise RuntimeError("mlk_clean_tool bench printed no timing")


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(DATA):
        subprocess.run([sys.executable, os.path.join(SRC, "examples", "purchases", "generate.py"),
                        "--rows", str(ROWS), "--seed", "42", "--out", DATA], check=True)
    # Warm the page cache for both sides alike.
    with open(DATA, "rb") as f:
        while f.read(1 << 24):
            pass
    # Interleave the sides so machine noise hits both alike.
    cw, cc, pw, pc, kept_c, kept_p, phases = [], [], [], [], set(), set(), []
    for _ in range(REPS):
        w, c, n = anchor()
        pw.append(w)
        pc.append(c)
        kept_p.add(n)
        w, c, n, ph = c_side()
        cw.append(w)
        cc.append(c)
        kept_c.add(n)
        phases.append(ph)
    if kept_c != kept_p:
        print(f"MISMATCH: C kept {sorted(kept_c)} rows, pandas {sorted(kept_p)}")
        return 1
    mc, mp = statistics.median(cw), statistics.median(pw)
    ratio = mp / mc
    print(f"rows: {ROWS}, kept: {kept_p.pop()}, reps: {REPS}, one thread per side")
    print(f"C (mlk_clean_tool bench): median wall {mc * 1000:.1f} ms, CPU (process) "
          f"{statistics.median(cc) * 1000:.1f} ms; runs " + " ".join(f"{t * 1000:.0f}" for t in cw))
    print(f"  phases of the median run: {phases[cw.index(sorted(cw)[len(cw) // 2])]}")
    print(f"pandas read_csv+dropna+IQR: median wall {mp * 1000:.1f} ms, CPU "
          f"{statistics.median(pc) * 1000:.1f} ms; runs " + " ".join(f"{t * 1000:.0f}" for t in pw))
    print(f"CPU-time ratio: {statistics.median(pc) / statistics.median(cc):.2f}x")
    line = f"clean: ratio {ratio:.2f}x (target >= {TARGET:g}x)"
    print(line)
    with open(os.path.join(OUT, "clean.ratio"), "w") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
