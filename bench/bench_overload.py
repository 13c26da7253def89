"""Overload: a noop job of 10^5 and one of 10^6 tasks on a local cluster
(one coordinator, 2 workers with 2 slots each), each on a fresh
coordinator, and the coordinator's peak resident set (VmHWM of
/proc/PID/status) for each (issue 8 §1.5). Not a test: run by
`make bench` (or alone: MLOPS_BUILD_DIR=build python3 bench/bench_overload.py).

  figure : bytes of coordinator peak RSS per task, (VmHWM after the job -
           VmHWM of the idle coordinator) / tasks, for each size.
  anchor : the 10^5-task run in the same process run. The ratio
           (bytes/task at 10^6) / (bytes/task at 10^5) is ~1 if memory
           is linear in the tasks with a constant per task, < 1 if there
           is a fixed part, > 1 if it grows faster than linear.
Both jobs must succeed with every task counted (metric tasks = N).
Writes bench/out/overload.ratio. OVERLOAD_SIZES overrides the sizes
(comma-separated; the first is the anchor). Medians over BENCH_REPS
(default 1: the 10^6 run takes about a minute here).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(os.environ.get("MLOPS_BUILD_DIR", "build"))
SRC = os.path.abspath(os.environ.get("MLOPS_SOURCE_DIR", "."))
CTL = os.path.join(BUILD, "mlopsctl")
SIZES = [int(x) for x in os.environ.get("OVERLOAD_SIZES", "100000,1000000").split(",")]
REPS = int(os.environ.get("BENCH_REPS", "1"))


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM for pid %d" % pid)


def ctl(ep, *args):
    r = subprocess.run([CTL, "-c", ep, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("mlopsctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r.stdout


def one_run(tasks):
    """Fresh coordinator + 2 workers; returns (idle KiB, peak KiB, seconds)."""
    d = tempfile.mkdtemp(prefix="mlops-overload.")
    procs = []
    try:
        cd = os.path.join(d, "coordinator")
        os.makedirs(cd)
        co = subprocess.Popen([os.path.join(BUILD, "mlops-coordinator"), "--bind", "tcp://127.0.0.1:*",
                               "--data-dir", cd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(co)
        ep_file = os.path.join(cd, "endpoint")
        for _ in range(200):
            if os.path.exists(ep_file) and os.path.getsize(ep_file):
                break
            time.sleep(0.05)
        ep = open(ep_file).readline().strip()
        for i in (1, 2):
            procs.append(subprocess.Popen([os.path.join(BUILD, "mlops-worker"), "--coordinator", ep,
                                           "--data-dir", os.path.join(d, "w%d" % i), "--name", "w%d" % i,
                                           "--slots", "2"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            w = json.loads(ctl(ep, "workers", "-o", "json"))["workers"]
            if sum(1 for x in w if x["state"] == "alive") == 2:
                break
            time.sleep(0.05)
        idle = hwm_kib(co.pid)
        jf = os.path.join(d, "noop.yaml")
        with open(jf, "w") as f:
            f.write("name: overload\nnoop: {tasks: %d}\n" % tasks)
        t0 = time.monotonic()
        job = ctl(ep, "--timeout", "30000", "submit", jf, "--wait").strip()
        secs = time.monotonic() - t0
        res = json.loads(ctl(ep, "result", job, "-o", "json"))
        got = res["metrics"].get("tasks")
        if res["state"] != "succeeded" or got != tasks:
            raise RuntimeError("job %s: state %s, tasks %s of %d" % (job, res["state"], got, tasks))
        return idle, hwm_kib(co.pid), secs
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", d])


def main():
    per_task = {}
    for n in SIZES:
        runs = [one_run(n) for _ in range(REPS)]
        idle = statistics.median(r[0] for r in runs)
        peak = statistics.median(r[1] for r in runs)
        secs = statistics.median(r[2] for r in runs)
        per_task[n] = (peak - idle) * 1024.0 / n
        print("overload: %8d noop tasks: %.1f s (%.0f tasks/s), coordinator VmHWM idle %d KiB, "
              "peak %d KiB, %.0f bytes/task" % (n, secs, n / secs, idle, peak, per_task[n]))
    anchor = SIZES[0]
    out = []
    for n in SIZES[1:]:
        ratio = per_task[n] / per_task[anchor]
        line = "overload: bytes/task at %d / at %d (anchor) = %.2f (1 = linear)" % (n, anchor, ratio)
        print(line)
        out.append(line)
    os.makedirs(os.path.join(SRC, "bench", "out"), exist_ok=True)
    with open(os.path.join(SRC, "bench", "out", "overload.ratio"), "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
