"""Observability overhead on the scheduler benchmark.

  mlops   : the scheduler benchmark's `noop: {tasks: N}` job (N =
            BENCH_OBS_TASKS, default 50,000) on a local cluster of 2
            workers, while a thread scrapes /metrics of the coordinator
            and both workers every second (as Prometheus would) and
            another keeps the dashboard open: every 2 s it fetches what
            the jobs page and the running job's page fetch (/api/jobs,
            /api/jobs/ID of each job, the job's logs and task table,
            /api/workers and the task stream: every page's API at once,
            the most the loop can be asked to snapshot).
  anchor  : the same job on the same cluster with nobody scraping and
            nobody watching (the coordinator then builds no dashboard
            snapshots at all).

Repetitions alternate anchor and watched runs (BENCH_REPS pairs, default
3), the order flipped every other pair (ABBA), so drift in the machine's
load hits both alike; medians are compared.
The ratio written is the anchor's median noop-stage seconds over the
scraped runs' median: the scraped runs' speed relative to the anchor
(1.00 = no slowdown; the requirement is >= 0.95, at most 5% slower).

BENCH_OBS_MODE=metrics or dashboard runs one of the two watchers alone,
to tell their costs apart (default: both).

Also printed: the median CPU seconds the cluster's processes spent per
run, plain and watched (less sensitive to the machine's load than the
wall time, and it includes the daemons' own HTTP threads).

The jobs table grows by one job per run, so late runs make the
dashboard fetch more statuses; the alternation spreads that too.
"""
import json
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import Cluster, loadavg, med, runs, stage_seconds, write_ratio  # noqa: E402


def scraper(urls, stop, counts):
    while not stop.is_set():
        for u in urls:
            try:
                with urllib.request.urlopen(u, timeout=5) as r:
                    r.read()
                counts[0] += 1
            except OSError:
                counts[1] += 1
        stop.wait(1.0)


def dashboard(base, stop, counts):
    def get(path):
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.read()
    while not stop.is_set():
        try:
            jobs = json.loads(get("/api/jobs"))["jobs"]
            for j in jobs[-100:]:
                get(f"/api/jobs/{j['job']}")
            if jobs:
                get(f"/api/jobs/{jobs[-1]['job']}/logs")
                get(f"/api/jobs/{jobs[-1]['job']}/tasks")
            get("/api/workers")
            get("/api/stream")
            counts[0] += 1
        except OSError:
            counts[1] += 1
        stop.wait(2.0)


def main():
    n = int(os.environ.get("BENCH_OBS_TASKS", "50000"))
    reps = int(os.environ.get("BENCH_REPS", "3"))
    print(f"--- observability: noop {n} tasks, 2 workers, /metrics scraped every 1 s and the "
          f"dashboard refreshed every 2 s vs neither "
          f"({loadavg()})", flush=True)
    plain, scraped, cpu_plain, cpu_watched = [], [], [], []
    with Cluster(2) as c:
        urls = []
        for d in ["coordinator", "worker-1", "worker-2"]:
            with open(os.path.join(c.data_dir, d, "metrics.addr")) as f:
                urls.append(f"http://{f.read().strip()}/metrics")
        with open(os.path.join(c.data_dir, "coordinator", "http.addr")) as f:
            base = f"http://{f.read().strip()}"
        job = c.job_file("noop.yaml", f"name: bench-obs\nnoop: {{tasks: {n}}}\n")
        c.run_job(job)  # warm-up
        def run_plain():
            dt, res = c.run_job(job)
            plain.append(stage_seconds(res, "noop"))
            cpu_plain.append(c.last_cpu)

        for r in range(reps):
            if r % 2 == 0:
                run_plain()
            stop, counts, dcounts = threading.Event(), [0, 0], [0, 0]
            mode = os.environ.get("BENCH_OBS_MODE", "both")
            ts = []
            if mode in ("both", "metrics"):
                ts.append(threading.Thread(target=scraper, args=(urls, stop, counts)))
            if mode in ("both", "dashboard"):
                ts.append(threading.Thread(target=dashboard, args=(base, stop, dcounts)))
            for t in ts:
                t.start()
            try:
                dt, res = c.run_job(job)
            finally:
                stop.set()
                for t in ts:
                    t.join()
            scraped.append(stage_seconds(res, "noop"))
            cpu_watched.append(c.last_cpu)
            if r % 2 == 1:
                run_plain()
            print(f"rep {r}: noop stage {plain[-1]:.3f} s plain, {scraped[-1]:.3f} s watched "
                  f"({counts[0]} scrapes, {counts[1]} failed; {dcounts[0]} dashboard refreshes, "
                  f"{dcounts[1]} failed) ({loadavg()})", flush=True)
            if counts[1] or dcounts[1]:
                print(f"FAILED: {counts[1]} scrapes and {dcounts[1]} dashboard refreshes failed",
                      file=sys.stderr)
                return 1
    print(f"plain median {med(plain):.3f} s (runs {runs(plain)}), watched median "
          f"{med(scraped):.3f} s (runs {runs(scraped)})")
    print(f"cluster CPU per run: plain median {med(cpu_plain):.3f} s (runs {runs(cpu_plain)}), "
          f"watched median {med(cpu_watched):.3f} s (runs {runs(cpu_watched)}); "
          f"CPU ratio {med(cpu_plain) / med(cpu_watched):.2f}x")
    write_ratio("observability", med(plain) / med(scraped), 0.95)
    return 0


if __name__ == "__main__":
    sys.exit(main())
