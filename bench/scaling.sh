#!/usr/bin/env bash
# scaling.sh: the end-to-end purchases job on SCALE_ROWS rows (default 14M)
# with 1, 2, 4, 8 and 14 workers (one slot each) on one machine, as one
# prepared run for a lent many-core machine (issue 14, item 7). Prints
# each run as it ends, then the speedups against 1 worker and the
# cluster's CPU-seconds per row (coordinator + workers + mlopsctl), and
# writes the same as JSON to $OUT/scaling.json when OUT is set.
#
# Needs: a build (`make build`, or cmake into BUILD, default ./build) and
# Debian's /usr/bin/python3 with numpy and pandas (both in
# `scripts/install-deps.sh --test`); no network, nothing else.
#
# Made to fit ~8 minutes on 16 cores: the data are one 1M-row file from
# examples/purchases/generate.py (a few seconds) copied SCALE_ROWS/1M
# times without its header (the rows repeat; what is measured is the
# cluster's throughput, not the model). Each job is capped at
# SCALE_CAP seconds (default 150); a run over the cap is reported as
# such and the rest go on. The job is examples/purchases/job.yaml
# without its knn section (SCALE_KNN=1 keeps it), with
# split.method=sklearn as in bench_pipeline.py.
#
# Knobs: BUILD, SCALE_ROWS, SCALE_WORKERS ("1 2 4 8 14"), SCALE_CAP,
# SCALE_KNN, SCALE_TMP (where data and clusters go, default /tmp).
set -uo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD:-$SRC/build}" 2>/dev/null && pwd)" || { echo "scaling.sh: no build directory (run make build)" >&2; exit 2; }
for b in mlopsctl mlops-coordinator mlops-worker; do
    [ -x "$BUILD/$b" ] || { echo "scaling.sh: $BUILD/$b is missing (run make build)" >&2; exit 2; }
done
export MLOPS_BUILD_DIR="$BUILD" MLOPS_SOURCE_DIR="$SRC"
export SCALE_ROWS="${SCALE_ROWS:-14000000}" SCALE_WORKERS="${SCALE_WORKERS:-1 2 4 8 14}"
export SCALE_CAP="${SCALE_CAP:-150}" SCALE_KNN="${SCALE_KNN:-0}" SCALE_TMP="${SCALE_TMP:-/tmp}"
export BENCH_TMP="$SCALE_TMP" BENCH_DATA_DIR="$SCALE_TMP/mlops-scaling-data"
exec /usr/bin/python3 - "$@" <<'PYEOF'
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "bench"))
from bench_cluster import (BenchError, Cluster, children_cpu, loadavg, proc_cpu,  # noqa: E402
                           purchases_csv)
import yaml  # noqa: E402

SRC = os.environ["MLOPS_SOURCE_DIR"]
ROWS = int(os.environ["SCALE_ROWS"])
WORKERS = [int(w) for w in os.environ["SCALE_WORKERS"].split()]
CAP = float(os.environ["SCALE_CAP"])
BASE = 1000000 if ROWS >= 1000000 else ROWS


def data():
    """A CSV of ROWS rows: BASE generated rows, repeated."""
    path = os.path.join(os.environ["BENCH_DATA_DIR"], f"scaling-{ROWS}.csv")
    if os.path.exists(path):
        return path
    t = time.perf_counter()
    src = purchases_csv(BASE)
    with open(src, "rb") as f:
        header = f.readline()
        body = f.read()
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(header)
        for _ in range(ROWS // BASE):
            out.write(body)
    os.replace(tmp, path)
    print(f"data: {ROWS} rows ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
          flush=True)
    return path


def job_text(csv):
    with open(os.path.join(SRC, "examples", "purchases", "job.yaml")) as f:
        spec = yaml.safe_load(f)
    spec["input"] = csv
    if os.environ["SCALE_KNN"] != "1":
        spec.pop("knn", None)
    return yaml.safe_dump(spec, sort_keys=False)


def run(n, csv):
    """One job on a fresh n-worker cluster: a dict of what was measured."""
    with Cluster(n, slots=1) as c:
        job = c.job_file("scaling.yaml", job_text(csv))
        pids = c.pids()
        cpu0 = sum(proc_cpu(p) for p in pids) + children_cpu()
        t0 = time.perf_counter()
        p = subprocess.Popen([os.path.join(os.environ["MLOPS_BUILD_DIR"], "mlopsctl"), "submit", job, "--wait",
                              "--set", "split.method=sklearn"], env=c.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=CAP)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return {"workers": n, "seconds": None, "capped": CAP}
        dt = time.perf_counter() - t0
        cpu = sum(proc_cpu(q) for q in pids) + children_cpu() - cpu0
        if p.returncode != 0:
            raise BenchError(f"{n} workers: job failed ({p.returncode}): {err.strip()[-1500:]}\n{c.log_tails()}")
        res = json.loads(c.ctl("result", out.split()[0], "-o", "json").stdout)
        return {"workers": n, "seconds": dt, "cpu_seconds": cpu, "cpu_us_per_row": cpu / ROWS * 1e6,
                "accuracy": res["metrics"].get("accuracy"),
                "stages": {s["name"]: round(s["seconds"], 3) for s in res["stages"]}}


def main():
    print(f"scaling: {ROWS} rows, workers {WORKERS}, cap {CAP:.0f} s per job, {os.cpu_count()} CPUs "
          f"({loadavg()})", flush=True)
    csv = data()
    runs = []
    for n in WORKERS:
        try:
            r = run(n, csv)
        except BenchError as e:
            print(f"{n} workers: FAILED: {e}", flush=True)
            r = {"workers": n, "seconds": None, "error": str(e)[:500]}
        runs.append(r)
        if r.get("seconds") is None:
            print(f"{n:2d} workers: no time ({'over the cap' if 'capped' in r else 'failed'})", flush=True)
        else:
            print(f"{n:2d} workers: {r['seconds']:.2f} s, {r['cpu_seconds']:.1f} CPU-s = "
                  f"{r['cpu_us_per_row']:.2f} CPU-us/row, accuracy {r['accuracy']:.4f}; {r['stages']} "
                  f"({loadavg()})", flush=True)
    one = runs[0] if runs and runs[0].get("seconds") and runs[0]["workers"] == 1 else None
    for r in runs:
        if one and r.get("seconds"):
            r["speedup"] = one["seconds"] / r["seconds"]
            r["cpu_per_row_vs_1"] = r["cpu_us_per_row"] / one["cpu_us_per_row"]
    print("workers  seconds  speedup  CPU-us/row  vs 1 worker")
    for r in runs:
        if r.get("seconds"):
            print(f"{r['workers']:7d}  {r['seconds']:7.2f}  {r.get('speedup', float('nan')):6.2f}x  "
                  f"{r['cpu_us_per_row']:10.2f}  {r.get('cpu_per_row_vs_1', float('nan')):6.2f}x")
        else:
            print(f"{r['workers']:7d}  {'-':>7}")
    summary = {"rows": ROWS, "cpus": os.cpu_count(), "cap_seconds": CAP, "knn": os.environ["SCALE_KNN"] == "1",
               "runs": runs}
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "scaling.json"), "w") as f:
            json.dump(summary, f, indent=1)
    sys.exit(0 if all(r.get("seconds") for r in runs) else 1)


main()
PYEOF
