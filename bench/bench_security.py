"""What CURVE costs (docs/security.md), against the same cluster without
it in the same run: the anchor is `mlopsctl up --insecure` (plain text on
loopback), the measured side the default `mlopsctl up` (CURVE on every
connection). Medians of BENCH_REPS (default 3) repetitions, the two
clusters up side by side and their jobs interleaved, so load drifts hit
both alike.

Scheduler: `noop: {tasks: SEC_NOOP_TASKS}` (default 100,000) on 2 workers,
  tasks/s from `mlopsctl submit --wait` to the end of `mlopsctl result`.
End to end (writes bench/out/curve_e2e.ratio, target >= 0.90): the example
  purchases job (examples/purchases/job.yaml: ingest .. evaluate and knn
  recommend) on SEC_ROWS rows (default 200,000), 2 workers, submit (which
  uploads the CSV) to result. The two sides must give the same metrics.

The ratio is plain seconds / CURVE seconds: 1.0 means CURVE costs
nothing, 0.9 that the secure job takes 11% longer.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (REPS, BenchError, Cluster, loadavg, med, on_sigterm_exit, run_parts,  # noqa: E402
                           purchases_csv, runs, write_ratio)
from bench_pipeline import job_file  # noqa: E402


def interleaved(secure, plain, job, reps, check=None):
    """Run JOB on both clusters REPS times, alternating; the seconds of each."""
    s_t, p_t = [], []
    secure.run_job(job[0])  # warm-up: page cache, first connections
    plain.run_job(job[1])
    for r in range(reps):
        for c, j, out, name in ((secure, job[0], s_t, "curve"), (plain, job[1], p_t, "plain")):
            dt, res = c.run_job(j)
            if check:
                check(res)
            out.append(dt)
            print(f"rep {r}: {name} {dt:.3f} s ({loadavg()})", flush=True)
    return s_t, p_t


def bench_scheduler():
    n = int(os.environ.get("SEC_NOOP_TASKS", "100000"))
    print(f"--- scheduler: noop {n} tasks, 2 workers, CURVE vs plain ({loadavg()})", flush=True)
    with Cluster(2) as s, Cluster(2, insecure=True) as p:
        text = f"name: bench-noop\nnoop: {{tasks: {n}}}\n"
        jobs = (s.job_file("noop.yaml", text), p.job_file("noop.yaml", text))

        def check(res):
            if res["metrics"].get("tasks") != n:
                raise BenchError(f"noop ran {res['metrics'].get('tasks')} tasks, expected {n}")
        s_t, p_t = interleaved(s, p, jobs, REPS, check)
    print(f"curve: median {med(s_t):.3f} s = {n / med(s_t):,.0f} tasks/s (runs {runs(s_t)})")
    print(f"plain: median {med(p_t):.3f} s = {n / med(p_t):,.0f} tasks/s (runs {runs(p_t)})")
    print(f"scheduler: CURVE/plain tasks/s {med(p_t) / med(s_t):.3f}x", flush=True)


def bench_e2e():
    rows = int(os.environ.get("SEC_ROWS", "200000"))
    csv = purchases_csv(rows)
    print(f"--- end to end: purchases job, {rows} rows, 2 workers, CURVE vs plain ({loadavg()})",
          flush=True)
    metrics = []
    with Cluster(2) as s, Cluster(2, insecure=True) as p:
        s_t, p_t = interleaved(s, p, (job_file(s, csv), job_file(p, csv)), REPS,
                               lambda res: metrics.append(res["metrics"]))
    first = {k: v for k, v in metrics[0].items() if k != "model"}
    for m in metrics[1:]:
        if {k: v for k, v in m.items() if k != "model"} != first:
            raise BenchError("the metrics differ between runs (CURVE must not change a result)")
    ratio = med(p_t) / med(s_t)
    print(f"curve: median {med(s_t):.3f} s (runs {runs(s_t)})")
    print(f"plain: median {med(p_t):.3f} s (runs {runs(p_t)})")
    print(f"end to end: plain/CURVE {ratio:.3f}x (CURVE costs {100 * (med(s_t) / med(p_t) - 1):+.1f}%); "
          f"metrics identical on both sides", flush=True)
    write_ratio("curve_e2e", ratio, 0.90)


def main():
    on_sigterm_exit()
    run_parts((("scheduler", bench_scheduler), ("e2e", bench_e2e)))


if __name__ == "__main__":
    main()
