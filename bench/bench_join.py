"""Benchmark: the join stage, 1M events x 10k items x 50k users, against
pandas in the same run. Medians of BENCH_REPS (default 3) repetitions.

Data (generated once into DATA_DIR, deterministic): events.csv (1M rows:
user_id, item_id, price, quantity, clicked), items.csv (10k: item_id,
category, brand), users.csv (50k: user_id, age, income); every key of
the events is in its table, a few are missing from it.

mlops : a job of ingest + join (items: left, many_to_one, [category];
        users: left, many_to_one, [age, income]) on a local cluster of 2
        workers, timed from `mlopsctl submit --wait` (which uploads the
        three files) to the end of `mlopsctl result`: the broadcast path
        (writes bench/out/join.ratio, target >= 5x) and the shuffle path
        (join_broadcast_limit 0, bench/out/join_shuffle.ratio, no target).
anchor: pandas read_csv of the three files + merge + merge (the same
        how and validate) in a fresh /usr/bin/python3 process, timed
        inside it from after `import pandas` to the merged frame. Both
        sides must give the same number of rows.

Not a test: run through bench/run.sh (`make bench`). BENCH_REPS and
JOIN_ROWS (default 1000000) adjust it.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import DATA_DIR, PY, REPS, BenchError, Cluster, med, runs, stage_seconds, write_ratio  # noqa: E402

ROWS = int(os.environ.get("JOIN_ROWS", "1000000"))
N_ITEMS, N_USERS = 10000, 50000
TARGET = 5.0

GEN = r"""
import sys
import numpy as np, pandas as pd
d, rows, ni, nu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = np.random.default_rng(7)
items = pd.DataFrame({"item_id": ["i%05d" % i for i in range(ni)],
                      "category": ["cat%d" % c for c in r.integers(0, 40, ni)],
                      "brand": ["b%d" % c for c in r.integers(0, 500, ni)]})
users = pd.DataFrame({"user_id": ["u%06d" % i for i in range(nu)],
                      "age": r.integers(18, 81, nu), "income": r.integers(10000, 200000, nu)})
ev = pd.DataFrame({"user_id": ["u%06d" % i for i in r.integers(0, nu + 50, rows)],
                   "item_id": ["i%05d" % i for i in r.integers(0, ni + 10, rows)],
                   "price": np.round(r.lognormal(3, 0.8, rows), 2),
                   "quantity": r.integers(1, 11, rows), "clicked": r.integers(0, 2, rows)})
ev.to_csv(d + "/events.csv", index=False)
items.to_csv(d + "/items.csv", index=False)
users.to_csv(d + "/users.csv", index=False)
"""

ANCHOR = r"""
import sys, time
import pandas as pd
d = sys.argv[1]
t = time.perf_counter()
s = {"user_id": str, "item_id": str, "clicked": str, "category": str}
ev = pd.read_csv(d + "/events.csv", dtype=s)
it = pd.read_csv(d + "/items.csv", dtype=s)
us = pd.read_csv(d + "/users.csv", dtype=s)
m = ev.merge(it[["item_id", "category"]], on="item_id", how="left", validate="many_to_one")
m = m.merge(us[["user_id", "age", "income"]], on="user_id", how="left", validate="many_to_one")
print(time.perf_counter() - t, len(m))
"""

JOB = """name: bench-join
input: {d}/events.csv
shard_rows: 65536
join:
  - {{input: {d}/items.csv, on: item_id, columns: [category], how: left, validate: many_to_one}}
  - {{input: {d}/users.csv, on: user_id, columns: [age, income], how: left, validate: many_to_one}}
columns: {{label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}}
"""


def data():
    d = os.path.join(DATA_DIR, f"join-{ROWS}")
    if not os.path.exists(os.path.join(d, "users.csv")):
        os.makedirs(d, exist_ok=True)
        subprocess.run([PY, "-c", GEN, d, str(ROWS), str(N_ITEMS), str(N_USERS)], check=True)
    return d


def anchor(d):
    r = subprocess.run([PY, "-c", ANCHOR, d], capture_output=True, text=True, check=True)
    t, n = r.stdout.split()
    return float(t), int(n)


def main():
    d = data()
    with Cluster(2) as c:
        jf = c.job_file("join.yaml", JOB.format(d=d))
        c.run_job(jf)  # warm: page cache, worker start-up
        pw, bw, sw, bj, sj = [], [], [], [], []
        rows = set()
        for _ in range(REPS):  # interleaved, so noise hits every side alike
            t, n = anchor(d)
            pw.append(t)
            rows.add(n)
            t, res = c.run_job(jf)
            bw.append(t)
            bj.append(stage_seconds(res, "join"))
            rows.add(int(res["metrics"]["rows_joined"]))
            t, res = c.run_job(jf, "join_broadcast_limit=0")
            sw.append(t)
            sj.append(stage_seconds(res, "join"))
            rows.add(int(res["metrics"]["rows_joined"]))
    if len(rows) != 1:
        raise BenchError(f"row counts differ between pandas and mlops: {sorted(rows)}")
    print(f"rows: {ROWS} events x {N_ITEMS} items x {N_USERS} users -> {rows.pop()}, reps {REPS}, 2 workers")
    print(f"pandas read_csv+merge+merge: median {med(pw):.3f} s; runs {runs(pw)}")
    print(f"mlops broadcast, submit to result: median {med(bw):.3f} s (join stage {med(bj):.3f} s); runs {runs(bw)}")
    print(f"mlops shuffle (limit 0), submit to result: median {med(sw):.3f} s (join stage {med(sj):.3f} s); runs {runs(sw)}")
    write_ratio("join", med(pw) / med(bw), TARGET)
    write_ratio("join_shuffle", med(pw) / med(sw), 0)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
