"""Benchmark: the CSV parsing rate of one thread (common/kernels/csv.c).

Data: the 1M-row purchases CSV of the cluster benchmarks (CSV_ROWS,
default 1,000,000; ~40 MB), read from the page cache. C side:
`mlk_clean_tool bench` without an IQR factor, one thread: the record
split (mlk_csv_split) plus the parse of every shard into typed columns
(mlk_csv_parse: 4 numeric, 3 string and the label column) and the dropna
mask, each timed inside the tool in CPU seconds of its thread (on this
shared, loaded box wall time measures the neighbours); the rate is the
file's bytes over split + parse (+ dropna, a pass over the parsed
numbers). The tool runs with the worker's malloc settings (worker/main.c),
so from the second repetition on the frames land in heap pages the
previous one freed, as a worker's ingest tasks do; the first repetition
pays the page faults of fresh memory and its rate is printed apart
("cold"). Anchor: pandas read_csv of the same columns in this process
(the C engine, one thread), the same bytes over its process CPU time. Medians of BENCH_REPS (default 5) runs each.
Writes bench/out/csv.ratio (the C rate against the 1 GB/s per core
target) and prints pandas' rate and the ratio to it. Not a test."""
import os
import statistics
import subprocess
import sys
import time

for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import BenchError, loadavg, purchases_csv, write_ratio  # noqa: E402

ROWS = int(os.environ.get("CSV_ROWS", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
NUMERIC = "price,quantity,age,income"
CATEGORICAL = "category,item_id,user_id,clicked"
TARGET_GBS = 1.0


def main():
    import pandas as pd

    tool = os.path.join(BUILD, "mlk_clean_tool")
    if not os.access(tool, os.X_OK):
        raise BenchError(f"{tool} is not built")
    csv = purchases_csv(ROWS)
    size = os.path.getsize(csv)
    p = subprocess.run([tool, "bench", csv, "--numeric", NUMERIC, "--categorical", CATEGORICAL,
                        "--shard-rows", "65536", "--reps", str(REPS)], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"mlk_clean_tool bench failed: {p.stderr.strip()}")
    c_secs = []
    for line in p.stdout.splitlines():
        f = line.split()
        if f and f[0] == "seconds":
            c_secs.append(float(f[f.index("cpu_split") + 1]) + float(f[f.index("cpu_parse+dropna") + 1]))
    pd_secs = []
    cols = NUMERIC.split(",") + CATEGORICAL.split(",")
    for _ in range(REPS):
        t = time.process_time()
        pd.read_csv(csv, usecols=cols, dtype={c: str for c in CATEGORICAL.split(",")})
        pd_secs.append(time.process_time() - t)
    cold = c_secs[0]
    c, a = statistics.median(c_secs), statistics.median(pd_secs)
    gbs, pd_gbs = size / c / 1e9, size / a / 1e9
    print(f"{size / 1e6:.1f} MB, {ROWS} rows; mlops split+parse (CPU) {', '.join(f'{x:.3f}' for x in c_secs)} s "
          f"(median {c:.3f} s = {gbs:.3f} GB/s; cold {size / cold / 1e9:.3f} GB/s); pandas read_csv (CPU) {', '.join(f'{x:.3f}' for x in pd_secs)} s "
          f"(median {a:.3f} s = {pd_gbs:.3f} GB/s); {gbs / pd_gbs:.2f}x pandas; load {loadavg()}")
    write_ratio("csv", gbs / TARGET_GBS, 1.0)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench_csv: {e}")
