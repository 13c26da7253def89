"""Online scoring over HTTP: mlops-serve against scikit-learn on Flask.

  mlops : mlops-serve (4 threads) serving bench@production, the purchases
          pipeline (hash 2^20, scaled numerics) trained on 50k rows.
  anchor: the same fitted pipeline in scikit-learn (FeatureHasher +
          StandardScaler + LogisticRegression with this model's
          coefficients) behind Flask on gunicorn (2 worker processes),
          answering POST /invocations the way MLflow's scoring server
          does: dataframe_split -> pandas DataFrame -> predict_proba ->
          JSON.
Both are loaded with wrk (Debian's) in the same run, for BENCH_SECONDS
(default 8) each: single-row requests at 16 connections (requests/s
ratio, target >= 20x; mlops' p99, target < 2 ms), then 1,000-row
requests at 8 connections (rows/s ratio, target >= 10x), then single
rows over one connection (p50 and p99 of a request with no queue).
BENCH_SERVE_THREADS sets mlops-serve's --threads (default 4). During each
single-row mlops run the alias moves 10 times between versions 1 and 2:
failed requests (non-2xx and socket errors), target 0. The two servers'
probabilities are checked equal (1e-12) once, outside the timing.
Medians of BENCH_REPS (default 3). Writes bench/out/serve_rps.ratio and
serve_rows.ratio. Not a test: run through bench/run.sh.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (BUILD, PY, REPS, SRC, BenchError, Cluster, loadavg, med,  # noqa: E402
                           on_sigterm_exit, purchases_csv, runs, write_ratio)

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
THREADS = os.environ.get("BENCH_SERVE_THREADS", "4")  # mlops-serve --threads
COLS = ["price", "quantity", "age", "income", "category", "item_id", "user_id"]

APP = r'''
import json, os
import numpy as np
import pandas as pd
import scipy.sparse as sp
from flask import Flask, Response, request
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

m = json.load(open(os.environ["MODEL_FILE"]))
f, h = m["features"], m["features"]["hashed"]
num = [c["column"] for c in f["numeric"]]
hasher = FeatureHasher(n_features=h["n_features"], input_type="string", alternate_sign=h["alternate_sign"])
scaler = StandardScaler()
scaler.mean_ = np.array([c["mean"] for c in f["numeric"]])
scaler.scale_ = np.array([c["scale"] for c in f["numeric"]])
scaler.var_ = scaler.scale_ ** 2
scaler.n_features_in_ = len(num)
clf = LogisticRegression()
coef = np.zeros(h["n_features"] + len(num))
coef[m["weights"][0]["coef"]["indices"]] = m["weights"][0]["coef"]["values"]
clf.coef_, clf.intercept_ = coef[None, :], np.array([m["weights"][0]["intercept"]])
clf.classes_ = np.array(m["classes"])
app = Flask(__name__)

@app.route("/invocations", methods=["POST"])
def invocations():
    split = request.get_json()["dataframe_split"]
    df = pd.DataFrame(split["data"], columns=split["columns"])
    X_hash = hasher.transform([f"{c}={v}" for c, v in zip(h["columns"], row)]
                              for row in df[h["columns"]].astype(str).itertuples(index=False))
    X_num = scaler.transform(df[num].to_numpy(dtype=np.float64))
    p = clf.predict_proba(sp.hstack([X_hash, sp.csr_matrix(X_num)]).tocsr())
    preds = [{"proba": float(q[1]), "label": str(clf.classes_[int(q[1] > q[0])])} for q in p]
    return Response(json.dumps({"predictions": preds}), mimetype="application/json")
'''

LUA = '''wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("%s", "rb")
wrk.body = f:read("*a")
f:close()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(url, proc, what, secs=60):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise BenchError(f"{what} did not answer {url} within {secs} s")


def body_file(tmp, rows, name):
    data = [[r[c] if c not in COLS[:4] else (float(r[c]) if r[c] != "" else None) for c in COLS]
            for r in rows]
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump({"dataframe_split": {"columns": COLS, "data": data}}, f)
    return path


def wrk(url, body, conns, tmp, full=False):
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write(LUA % body)
    r = subprocess.run(["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{SECONDS}s", "--latency", "-s", lua, url],
                       capture_output=True, text=True)
    if r.returncode:
        raise BenchError(f"wrk failed: {r.stderr}")
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(q):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\b" % q, out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    p99 = pct(99)
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, "0"])[1])
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs = non2xx + (sum(int(x) for x in sock.groups()) if sock else 0)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    if full:
        return rps, pct(50), p99, errs, total
    return rps, p99, errs, total


def cpu_of(proc):
    """CPU seconds used so far by a server process and its children (gunicorn's workers)."""
    p = psutil.Process(proc.pid)
    total = 0.0
    for q in [p] + p.children(recursive=True):
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def timed(proc, fn):
    """fn()'s result and the CPU seconds proc spent meanwhile."""
    c0 = cpu_of(proc)
    r = fn()
    return r, cpu_of(proc) - c0


def post(url, body):
    req = urllib.request.Request(url, data=open(body, "rb").read(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return [p["proba"] for p in json.load(r)["predictions"]]


def main():
    on_sigterm_exit()
    for prog in ("wrk", "gunicorn"):
        if not shutil.which(prog):
            raise BenchError(f"{prog} is not installed (bash scripts/install-deps.sh --bench)")
    train_csv = purchases_csv(50000, seed=1)
    score_csv = purchases_csv(20000, seed=2)
    import csv
    rows = [r for r in csv.DictReader(open(score_csv, newline="")) if all(r[c] != "" for c in COLS)]
    tmp = tempfile.mkdtemp(prefix="mlops-bench-serve-")
    one, thousand = body_file(tmp, rows[:1], "one.json"), body_file(tmp, rows[:1000], "thousand.json")
    procs = []
    try:
        with Cluster(1) as c:
            job = (open(os.path.join(SRC, "examples", "purchases", "job.yaml")).read()
                   .replace("input: data/purchases.csv", f"input: {train_csv}")
                   .split("# user-based k-NN")[0] + "register: {model: bench}\n")
            c.run_job(c.job_file("train.yaml", job))
            c.run_job(c.job_file("train.yaml", job), "train.seed=7")
            c.ctl("model", "alias", "bench", "1", "production")
            model = os.path.join(tmp, "model.json")
            c.ctl("model", "export", "bench@production", "-o", model)
            sport, aport = free_port(), free_port()
            serve = subprocess.Popen([os.path.join(BUILD, "mlops-serve"), "--coordinator", c.endpoint,
                                      "--model", "bench@production", "--listen", f"127.0.0.1:{sport}",
                                      "--threads", THREADS],
                                     env=c.env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "serve.log"), "w"))
            procs.append(serve)
            with open(os.path.join(tmp, "app.py"), "w") as f:
                f.write(APP)
            anchor = subprocess.Popen(["gunicorn", "-w", "2", "-b", f"127.0.0.1:{aport}", "--chdir", tmp,
                                       "--log-level", "warning", "app:app"],
                                      env=dict(os.environ, MODEL_FILE=model, OPENBLAS_NUM_THREADS="1"),
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gunicorn.log"), "w"))
            procs.append(anchor)
            surl, aurl = f"http://127.0.0.1:{sport}", f"http://127.0.0.1:{aport}"
            wait_http(surl + "/health", serve, "mlops-serve")
            deadline = time.time() + 60
            while True:  # gunicorn answers once a worker has loaded the model
                try:
                    post(aurl + "/invocations", one)
                    break
                except Exception:
                    if anchor.poll() is not None or time.time() > deadline:
                        raise BenchError("gunicorn did not start: " + open(os.path.join(tmp, "gunicorn.log")).read()[-1000:])
                    time.sleep(0.2)
            # the check, outside the timing
            ps, pa = post(surl + "/invocations", thousand), post(aurl + "/invocations", thousand)
            d = max(abs(x - y) for x, y in zip(ps, pa))
            if len(ps) != 1000 or d > 1e-12:
                raise BenchError(f"mlops-serve and scikit-learn differ: max |dp| {d}")
            res = {k: [] for k in ("s_rps", "s_p50", "s_p99", "a_rps", "a_p99", "s_rows", "a_rows",
                                   "s_cpu1", "a_cpu1", "s_cpuk", "a_cpuk", "s1_p50", "s1_p99", "s1_rps",
                                   "a1_p50", "a1_p99")}
            failed, sent, moves = 0, 0, 0
            for _ in range(REPS):
                stop = threading.Event()

                def mover():
                    nonlocal moves
                    to = 2
                    for _ in range(10):
                        if stop.wait(SECONDS / 14):
                            return
                        c.ctl("model", "alias", "bench", str(to), "production")
                        moves += 1
                        to = 3 - to
                t = threading.Thread(target=mover)
                t.start()
                (rps, p50, p99, errs, total), cpu = timed(serve, lambda: wrk(surl + "/invocations", one, 16, tmp, True))
                res["s_p50"].append(p50)
                res["s_cpu1"].append(total / max(cpu, 1e-9))
                stop.set()
                t.join()
                failed += errs
                sent += total
                res["s_rps"].append(rps)
                res["s_p99"].append(p99)
                (rps, p99, _, total), cpu = timed(anchor, lambda: wrk(aurl + "/invocations", one, 16, tmp))
                res["a_cpu1"].append(total / max(cpu, 1e-9))
                res["a_rps"].append(rps)
                res["a_p99"].append(p99)
                (rps, _, _, total), cpu = timed(serve, lambda: wrk(surl + "/invocations", thousand, 8, tmp))
                res["s_rows"].append(1000 * rps)
                res["s_cpuk"].append(1000 * total / max(cpu, 1e-9))
                (rps, _, _, total), cpu = timed(anchor, lambda: wrk(aurl + "/invocations", thousand, 8, tmp))
                res["a_rows"].append(1000 * rps)
                res["a_cpuk"].append(1000 * total / max(cpu, 1e-9))
                # one connection: the latency of a request alone, no queue of its own
                rps, p50, p99, _, _ = wrk(surl + "/invocations", one, 1, tmp, True)
                res["s1_rps"].append(rps)
                res["s1_p50"].append(p50)
                res["s1_p99"].append(p99)
                _, p50, p99, _, _ = wrk(aurl + "/invocations", one, 1, tmp, True)
                res["a1_p50"].append(p50)
                res["a1_p99"].append(p99)
            swaps = open(os.path.join(tmp, "serve.log")).read().count("goes live (was")
            with urllib.request.urlopen(surl + "/metrics") as r:
                text = r.read().decode()
            phases = {ph: (float(re.search(r'^mlops_serve_request_duration_seconds_sum\{phase="%s"\} (\S+)' % ph, text, re.M).group(1)),
                           float(re.search(r'^mlops_serve_request_duration_seconds_count\{phase="%s"\} (\S+)' % ph, text, re.M).group(1)))
                      for ph in ("parse", "predict", "serialize")}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{SECONDS} s per wrk run, {REPS} reps, load {loadavg()} (2 shared cores: the load generator, both servers and the cluster share them)")
    print(f"single row, 16 conns : mlops {med(res['s_rps']):.0f} req/s (runs {runs(res['s_rps'], '{:.0f}')}), "
          f"p50 {med(res['s_p50']):.2f} ms, p99 {med(res['s_p99']):.2f} ms; anchor {med(res['a_rps']):.0f} req/s, "
          f"p99 {med(res['a_p99']):.2f} ms")
    print(f"single row, 1 conn   : mlops {med(res['s1_rps']):.0f} req/s, p50 {med(res['s1_p50']):.3f} ms, "
          f"p99 {med(res['s1_p99']):.3f} ms (runs {runs(res['s1_p99'], '{:.3f}')}); anchor p50 "
          f"{med(res['a1_p50']):.2f} ms, p99 {med(res['a1_p99']):.2f} ms")
    print(f"1000 rows, 8 conns   : mlops {med(res['s_rows']):.0f} rows/s (runs {runs(res['s_rows'], '{:.0f}')}); "
          f"anchor {med(res['a_rows']):.0f} rows/s")
    print(f"alias moves during the mlops single-row runs: {moves} moves, {swaps} swaps, "
          f"{failed} failed of {sent} requests (target 0)")
    print(f"per CPU second of the server (less sensitive to the load): single row mlops "
          f"{med(res['s_cpu1']):.0f} req, anchor {med(res['a_cpu1']):.0f} req "
          f"({med(res['s_cpu1']) / med(res['a_cpu1']):.1f}x); 1000 rows mlops {med(res['s_cpuk']):.0f} rows, "
          f"anchor {med(res['a_cpuk']):.0f} rows ({med(res['s_cpuk']) / med(res['a_cpuk']):.1f}x)")
    print("mlops-serve time per request by phase (all runs): " +
          ", ".join(f"{ph} {s / max(n, 1) * 1e6:.0f} us" for ph, (s, n) in phases.items()))
    print(f"mlops p99 single row: {med(res['s_p99']):.2f} ms (target < 2 ms)")
    write_ratio("serve_rps", med(res["s_rps"]) / med(res["a_rps"]), 20)
    write_ratio("serve_rows", med(res["s_rows"]) / med(res["a_rows"]), 10)
    if failed:
        raise BenchError(f"{failed} requests failed while the alias moved")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench_serve: {e}", file=sys.stderr)
        sys.exit(1)
