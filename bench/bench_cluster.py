"""Cluster core benchmarks: the scheduler and ingest + clean, each against
its anchor in the same run, medians of BENCH_REPS (default 3) repetitions.

Scheduler (writes bench/out/scheduler.ratio, target >= 50x)
  mlops : a `noop: {tasks: 100000}` job on a local cluster of 2 workers
          (`mlopsctl up --port 0`), timed from `mlopsctl submit --wait` to
          the end of `mlopsctl result`; the noop stage's own seconds from
          the result are reported too.
  anchor: Dask distributed LocalCluster(n_workers=2, threads_per_worker=1,
          processes=True); client.map of a no-op over DASK_TASKS items
          (default 20,000: 100,000 takes minutes on this box) + gather.
  The comparable figure is tasks/s; the cluster start is outside the
  timing on both sides.

Ingest + clean (writes bench/out/ingest_clean.ratio, target >= 5x)
  mlops : a 1M-row purchases CSV (examples/purchases/generate.py --rows
          1000000 --seed 1, ~40 MB), job = ingest + clean (dropna, IQR
          k=1.5) on 2 workers, timed from `mlopsctl submit --wait` to the
          end of `mlopsctl result`. The ratio is that of the `up`
          cluster's default, the CSV read in place by the workers
          (--local-inputs); `submit --upload` (a remote cluster's path:
          the CSV uploaded over CURVE) is timed in the same run and
          printed beside it.
  anchor: pandas read_csv + dropna + the IQR filter in a fresh
          /usr/bin/python3 process per repetition; timed inside that
          process from after `import pandas` to the filtered frame, i.e.
          without interpreter start-up and imports (the ratio is computed
          on that; a ratio with the anchor's whole process wall time is
          printed too). Both sides must keep the same number of rows.

The module also holds the helpers bench_pipeline.py uses (the local
cluster, data generation, load reporting). One thread per side: the
BLAS/OpenMP thread variables are set to 1 before anything starts.
"""
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

BUILD = os.path.abspath(os.environ.get("MLOPS_BUILD_DIR", "build"))
SRC = os.path.abspath(os.environ.get("MLOPS_SOURCE_DIR", "."))
CTL = os.path.join(BUILD, "mlopsctl")
PY = "/usr/bin/python3"
REPS = int(os.environ.get("BENCH_REPS", "3"))
DATA_DIR = os.environ.get("BENCH_DATA_DIR", os.path.join(BUILD, "bench-data"))
NUMERIC = ["price", "quantity", "age", "income"]
CATEGORICAL = ["category", "item_id", "user_id"]
LABEL = "clicked"


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


def loadavg():
    """The 1-minute load average and the number of CPUs, as a short string."""
    with open("/proc/loadavg") as f:
        one = f.read().split()[0]
    return f"load {one} on {os.cpu_count()} CPUs"


def med(xs):
    """Median of a list of floats."""
    return statistics.median(xs)


def runs(xs, fmt="{:.3f}"):
    """The individual repetitions, comma separated, for the log."""
    return ", ".join(fmt.format(x) for x in xs)


def on_sigterm_exit():
    """Turn SIGTERM into SystemExit so that the clusters' context managers
    stop them (a background job started by a shell ignores SIGINT)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def children_cpu():
    """User + system CPU seconds of this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid):
    """User + system CPU seconds of a running process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def write_ratio(name, ratio, target):
    """Write `NAME: ratio X.XXx (target >= Yx)` to bench/out/NAME.ratio and print it."""
    line = f"{name}: ratio {ratio:.2f}x (target >= {target:g}x)"
    print(line, flush=True)
    out = os.path.join(SRC, "bench", "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".ratio"), "w") as f:
        f.write(line + "\n")


def purchases_csv(rows, seed=1):
    """Path of a generated purchases CSV with ROWS rows, made once and kept
    in DATA_DIR (the generator is deterministic, so a kept file is the
    same data)."""
    os.makedirs(DATA_DIR, exist_ok=True)
    path = os.path.join(DATA_DIR, f"purchases-{rows}-{seed}.csv")
    if not os.path.exists(path):
        tmp = path + ".tmp"
        t = time.perf_counter()
        r = subprocess.run([PY, os.path.join(SRC, "examples", "purchases", "generate.py"),
                            "--rows", str(rows), "--seed", str(seed), "--out", tmp],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"generate.py --rows {rows} failed: {r.stderr.strip()}")
        os.replace(tmp, path)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s", flush=True)
    return path


class Cluster:
    """A local mlops cluster (`mlopsctl up --port 0`) in a fresh data
    directory, stopped with `mlopsctl down` and removed on exit, also when
    the body raises."""

    def __init__(self, workers, slots=None, insecure=False):
        self.workers = workers
        self.slots = slots
        self.insecure = insecure
        self.dir = tempfile.mkdtemp(prefix="mlops-bench-", dir=os.environ.get("BENCH_TMP"))
        self.data_dir = os.path.join(self.dir, "cluster")
        self.env = dict(os.environ)
        self.endpoint = None
        self.last_cpu = 0.0
        self.submit_json = None  # whether submit --wait -o json prints the result

    def __enter__(self):
        cmd = [CTL, "up", "--workers", str(self.workers), "--port", "0",
               "--data-dir", self.data_dir, "-o", "json"]
        if self.slots:
            cmd += ["--slots", str(self.slots)]
        if self.insecure:  # plain text on loopback: only to measure what CURVE costs
            cmd += ["--insecure"]
        try:
            for attempt in (1, 2):
                r = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
                if r.returncode == 0:
                    break
                msg = f"mlopsctl up failed ({r.returncode}): {r.stderr.strip()}\n{self.log_tails()}"
                if attempt == 2:
                    raise BenchError(msg)
                print(f"NOTE: {msg}\nretrying once", file=sys.stderr, flush=True)
                self.down(remove=False)
            self.endpoint = json.loads(r.stdout)["endpoint"]
        except BaseException:
            self.down()
            raise
        self.env["MLOPS_COORDINATOR"] = self.endpoint
        if not self.insecure:  # the keys `up` made (secure by default)
            keys = os.path.join(self.data_dir, "keys")
            self.env["MLOPS_KEY"] = os.path.join(keys, "client.key")
            self.env["MLOPS_SERVER_KEY"] = os.path.join(keys, "coordinator.key")
        else:
            self.env.pop("MLOPS_KEY", None)
            self.env.pop("MLOPS_SERVER_KEY", None)
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def down(self, remove=True):
        """Stop the cluster (best effort) and, with REMOVE, remove its directory."""
        if os.path.isdir(self.data_dir):
            subprocess.run([CTL, "down", "--data-dir", self.data_dir],
                           capture_output=True, text=True, env=self.env)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tails(self, lines=5):
        """The last LINES lines of each process log, for a failure message."""
        logs = os.path.join(self.data_dir, "logs")
        out = []
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, name), errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
            out.append(f"{name}: " + (" | ".join(tail) if tail else "(empty)"))
        return "\n".join(out)

    def ctl(self, *args, check=True):
        """Run mlopsctl against this cluster; return the CompletedProcess."""
        r = subprocess.run([CTL, *args], capture_output=True, text=True, env=self.env)
        if check and r.returncode != 0:
            raise BenchError(f"mlopsctl {' '.join(args)} exited {r.returncode}: "
                             f"{r.stderr.strip()[-2000:]}")
        return r

    def job_file(self, name, text):
        """Write a job file into the cluster's directory; return its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_job(self, job_file, *sets, upload=False):
        """Submit JOB_FILE with --wait (and --upload with UPLOAD: the
        bytes travel even though `up` reads inputs in place), then fetch
        its result (printed by submit itself where `-o json` is taken). Returns (seconds from submit to the end of result,
        result dict)."""
        # an mlopsctl whose `submit --wait -o json` prints the result
        # (the wait's last reply) needs no second process for it
        if self.submit_json is None:
            self.submit_json = "--output" in self.ctl("submit", "--help").stdout
        args = ["submit", job_file, "--wait"] + (["--upload"] if upload else [])
        args += ["-o", "json"] if self.submit_json else []
        for s in sets:
            args += ["--set", s]
        pids = self.pids()
        cpu0 = sum(proc_cpu(p) for p in pids) + children_cpu()
        t0 = time.perf_counter()
        r = self.ctl(*args, check=False)
        try:
            res = json.loads(r.stdout) if self.submit_json else None
            job = res["job"] if res else (r.stdout.split()[0] if r.stdout.split() else None)
        except (ValueError, KeyError, TypeError):
            res, job = None, None
        if r.returncode != 0 or job is None:
            logs = self.ctl("logs", job, check=False).stdout[-2000:] if job else ""
            raise BenchError(f"job {job_file} failed ({r.returncode}): {r.stderr.strip()[-2000:]}\n{logs}\n"
                             f"{self.log_tails()}")
        if res is None:
            res = json.loads(self.ctl("result", job, "-o", "json").stdout)
        dt = time.perf_counter() - t0
        self.last_cpu = sum(proc_cpu(p) for p in pids) + children_cpu() - cpu0
        if res.get("state") != "succeeded":
            raise BenchError(f"job {job} ended {res.get('state')}: {res.get('error')}")
        return dt, res

    def pids(self, prefix=""):
        """PIDs of the cluster's processes whose name in DATA_DIR/pids
        starts with PREFIX (coordinator, worker-N)."""
        pids = []
        with open(os.path.join(self.data_dir, "pids")) as f:
            for line in f:
                name, _, pid = line.partition(" ")
                if name.startswith(prefix):
                    pids.append(int(pid))
        return pids

    def worker_pids(self):
        """PIDs of the worker processes."""
        return self.pids("worker")


def stage_seconds(res, name):
    """The named stage's own seconds from a result dict."""
    for st in res["stages"]:
        if st["name"] == name:
            return st["seconds"]
    raise BenchError(f"no stage {name} in the result")


class MemPoller:
    """Samples /proc/PID/status of some processes every `period` seconds in
    a thread and keeps each one's peak RssAnon (heap, stacks: what the
    process itself allocated) and peak VmRSS; VmHWM is read at the end.
    File-backed pages (the LMDB map, read-only mappings of input) are in
    VmRSS/VmHWM but not in RssAnon."""

    FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")

    def __init__(self, pids, period=0.02):
        self.pids = list(pids)
        self.period = period
        self.peak = {p: {"VmRSS": 0, "RssAnon": 0} for p in self.pids}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def read(pid):
        """The FIELDS of /proc/PID/status in kB (empty if the process is gone)."""
        out = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in MemPoller.FIELDS:
                        out[k] = int(v.split()[0])
        except OSError:
            pass
        return out

    def _loop(self):
        while not self.stop_ev.is_set():
            for p in self.pids:
                s = self.read(p)
                for k in ("VmRSS", "RssAnon"):
                    if k in s and s[k] > self.peak[p][k]:
                        self.peak[p][k] = s[k]
            self.stop_ev.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join()
        for p in self.pids:
            self.peak[p]["VmHWM"] = self.read(p).get("VmHWM", 0)
        return False


# ----------------------------------------------------------------- scheduler

DASK_SCRIPT = r"""
import json, sys, time, warnings, logging
warnings.simplefilter("ignore")
logging.getLogger("distributed").setLevel(logging.ERROR)
import psutil
from dask.distributed import Client, LocalCluster

def noop(x):
    return x

def cpu():
    # this process (scheduler, nannies, client) and the worker processes
    me = psutil.Process()
    total = 0.0
    for p in [me] + me.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total

if __name__ == "__main__":
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cl, Client(cl) as c:
        c.gather(c.map(noop, range(200)))  # warm-up: workers connected, function shipped
        for r in range(reps):
            c0 = cpu()
            t = time.perf_counter()
            out = c.gather(c.map(noop, range(n), pure=False))
            dt = time.perf_counter() - t
            dc = cpu() - c0
            assert len(out) == n and out[-1] == n - 1
            print(json.dumps({"rep": r, "tasks": n, "seconds": dt, "cpu": dc}), flush=True)
"""


def bench_scheduler():
    """noop tasks/s on 2 workers vs Dask's client.map."""
    n_mlops = int(os.environ.get("NOOP_TASKS", "100000"))
    n_dask = int(os.environ.get("DASK_TASKS", "20000"))
    print(f"--- scheduler: mlops noop {n_mlops} tasks vs Dask map {n_dask} tasks, 2 workers ({loadavg()})",
          flush=True)
    walls, stages, cpus = [], [], []
    with Cluster(2) as c:
        job = c.job_file("noop.yaml", f"name: bench-noop\nnoop: {{tasks: {n_mlops}}}\n")
        c.run_job(job)  # warm-up
        for r in range(REPS):
            dt, res = c.run_job(job)
            if res["metrics"].get("tasks") != n_mlops:
                raise BenchError(f"noop job ran {res['metrics'].get('tasks')} tasks, expected {n_mlops}")
            walls.append(dt)
            cpus.append(c.last_cpu)
            stages.append(stage_seconds(res, "noop"))
            print(f"rep {r}: mlops {n_mlops} tasks submit->result {dt:.3f} s, noop stage {stages[-1]:.3f} s "
                  f"({n_mlops / dt:,.0f} tasks/s; {loadavg()})", flush=True)
        wk = json.loads(c.ctl("workers", "-o", "json").stdout)["workers"]
        print("tasks per worker: " + ", ".join(f"{w['name']} {w['tasks_done']}" for w in wk))
    p = subprocess.run([PY, "-c", DASK_SCRIPT, str(n_dask), str(REPS)], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"Dask anchor failed: {p.stderr.strip()[-2000:]}")
    reps = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    dask = [d["seconds"] for d in reps]
    dask_cpu = [d["cpu"] for d in reps]
    for r, d in enumerate(reps):
        print(f"rep {r}: dask {n_dask} tasks map+gather {d['seconds']:.3f} s ({n_dask / d['seconds']:,.0f} "
              f"tasks/s), {d['cpu']:.3f} CPU-s")
    m_tps = n_mlops / med(walls)
    m_stage_tps = n_mlops / med(stages)
    d_tps = n_dask / med(dask)
    print(f"mlops: median submit->result {med(walls):.3f} s = {m_tps:,.0f} tasks/s "
          f"(runs {runs(walls)}); noop stage median {med(stages):.3f} s = {m_stage_tps:,.0f} tasks/s")
    print(f"mlops overhead per task: {1e6 * med(walls) / n_mlops:.1f} us wall for the cluster, "
          f"{2e6 * med(walls) / n_mlops:.1f} us per worker slot (2 slots)")
    print(f"mlops CPU: median {med(cpus):.3f} s for the cluster (coordinator + workers + mlopsctl) = "
          f"{1e6 * med(cpus) / n_mlops:.1f} us CPU per task")
    print(f"dask : median {med(dask):.3f} s for {n_dask} tasks = {d_tps:,.0f} tasks/s (runs {runs(dask)}); "
          f"{1e6 / d_tps:.0f} us per task")
    print(f"dask CPU: median {med(dask_cpu):.3f} s (scheduler + client + worker processes) = "
          f"{1e6 * med(dask_cpu) / n_dask:.1f} us CPU per task")
    print(f"tasks per CPU-second (less sensitive to the load): mlops {n_mlops / med(cpus):,.0f}, dask "
          f"{n_dask / med(dask_cpu):,.0f}, ratio {(n_mlops / med(cpus)) / (n_dask / med(dask_cpu)):.1f}x "
          f"({loadavg()})")
    write_ratio("scheduler", m_tps / d_tps, 50)


# ------------------------------------------------------------ ingest + clean

PANDAS_CLEAN = r"""
import json, sys, time
t_start = time.perf_counter()
import pandas as pd
t0 = time.perf_counter()
c0 = time.process_time()
N = %r
C = %r
df = pd.read_csv(sys.argv[1])
df = df.dropna(subset=N + C + [%r])
keep = pd.Series(True, index=df.index)
for c in N:
    q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
    iqr = q3 - q1
    keep &= (df[c] >= q1 - 1.5 * iqr) & (df[c] <= q3 + 1.5 * iqr)
df = df[keep]
t1 = time.perf_counter()
print(json.dumps({"rows": len(df), "seconds": t1 - t0, "cpu": time.process_time() - c0,
                  "import_seconds": t0 - t_start}))
""" % (NUMERIC, CATEGORICAL, LABEL)

CLEAN_JOB = """name: bench-ingest-clean
input: {csv}
shard_rows: 65536
columns: {{label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}}
clean: {{dropna: true, iqr_k: 1.5}}
"""


def pandas_clean(csv):
    """One fresh-process pandas run: (in-process seconds, process wall
    seconds, rows kept, in-process CPU seconds)."""
    t = time.perf_counter()
    p = subprocess.run([PY, "-c", PANDAS_CLEAN, csv], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise BenchError(f"pandas anchor failed: {p.stderr.strip()[-2000:]}")
    d = json.loads(p.stdout)
    return d["seconds"], wall, d["rows"], d["cpu"]


def bench_ingest_clean():
    """1M-row ingest + clean on 2 workers vs pandas."""
    rows = int(os.environ.get("CLEAN_ROWS", "1000000"))
    csv = purchases_csv(rows)
    print(f"--- ingest + clean: {rows} rows ({os.path.getsize(csv) / 1e6:.0f} MB), 2 workers vs pandas "
          f"({loadavg()})", flush=True)
    m_t, p_t, p_wall, stage_t = [], [], [], {"ingest": [], "clean": []}
    m_cpu, p_cpu = [], []
    u_t, u_cpu, u_ingest = [], [], []
    with Cluster(2) as c:
        job = c.job_file("clean.yaml", CLEAN_JOB.format(csv=csv))
        c.run_job(job)  # warm-up (page cache, first LMDB maps)
        for r in range(REPS):
            # the upload path too (a remote cluster's), same run, same file
            du, ures = c.run_job(job, upload=True)
            u_t.append(du)
            u_cpu.append(c.last_cpu)
            u_ingest.append(stage_seconds(ures, "ingest"))
            dt, res = c.run_job(job)
            kept = res["metrics"]["rows_after_clean"]
            if ures["metrics"] != res["metrics"]:
                raise BenchError("read in place and uploaded: the metrics differ")
            for s in stage_t:
                stage_t[s].append(stage_seconds(res, s))
            m_cpu.append(c.last_cpu)
            ps, pw, prow, pc = pandas_clean(csv)
            p_cpu.append(pc)
            if prow != kept:
                raise BenchError(f"rows after clean differ: mlops {kept}, pandas {prow}")
            m_t.append(dt)
            p_t.append(ps)
            p_wall.append(pw)
            print(f"rep {r}: mlops {dt:.3f} s (ingest {stage_t['ingest'][-1]:.3f}, clean "
                  f"{stage_t['clean'][-1]:.3f}; uploaded {du:.3f} s, ingest {u_ingest[-1]:.3f}), pandas "
                  f"{ps:.3f} s in-process / {pw:.3f} s with start-up; "
                  f"{kept} rows kept by both ({loadavg()})", flush=True)
    print(f"mlops : median {med(m_t):.3f} s submit->result (runs {runs(m_t)}); stage medians ingest "
          f"{med(stage_t['ingest']):.3f} s, clean {med(stage_t['clean']):.3f} s")
    print(f"pandas: median {med(p_t):.3f} s read_csv->filtered (runs {runs(p_t)}); "
          f"{med(p_wall):.3f} s including interpreter start-up and import")
    print(f"mlops --upload (a remote cluster's path): median {med(u_t):.3f} s (runs {runs(u_t)}), ingest "
          f"{med(u_ingest):.3f} s, {med(u_cpu):.3f} CPU-s; pandas/upload {med(p_t) / med(u_t):.2f}x, "
          f"in place {med(u_t) / med(m_t):.2f}x faster")
    print(f"ratio with the pandas process wall time: {med(p_wall) / med(m_t):.2f}x")
    print(f"CPU seconds (less sensitive to the load): mlops {med(m_cpu):.3f} (coordinator + workers + "
          f"mlopsctl), pandas {med(p_cpu):.3f} in-process; pandas/mlops {med(p_cpu) / med(m_cpu):.2f}x "
          f"({loadavg()})")
    write_ratio("ingest_clean", med(p_t) / med(m_t), 5)


def run_parts(parts, only=None):
    """Run each (name, fn) of a benchmark that BENCH_ONLY (or `only`)
    names, all when neither does; a part that fails is reported and the
    others still run; exit non-zero naming the failed ones."""
    if only is None and os.environ.get("BENCH_ONLY"):
        only = os.environ["BENCH_ONLY"].split(",")
    failed = []
    for name, fn in parts:
        if only is not None and name not in only:
            continue
        try:
            fn()
        except BenchError as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr, flush=True)
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def main():
    on_sigterm_exit()
    run_parts((("scheduler", bench_scheduler), ("ingest_clean", bench_ingest_clean)))


if __name__ == "__main__":
    main()
