"""A registered recommender's answer for one user, against the batch stage.

  mlops : `mlopsctl model recommend`'s lookup (common/recommender.c),
          in-process through build/mlops_recommender_tool: the artifact of
          a knn recommend job with register: on REC_ROWS (default 200,000)
          purchases rows (2,000 users, 2,000 items) loaded once, then one
          lookup per user, timed alone, median over REC_USERS (default
          1,000) users; also the JSON answer (what POST /recommend sends)
          and the whole `mlopsctl model recommend` command (process start,
          fetch of the artifact, load, answer), median of 10 calls.
  anchor: the batch knn stage's cost per user, in the same run: the
          stage's own seconds (2 workers, from its result) divided by its
          users, for the recommendations of every user at once.
Writes bench/out/recommender.ratio: batch seconds per user / lookup
median (target >= 1x: answering one user costs less than the batch's
share for that user). The lookups' items and scores are checked equal
to the batch export (bit for bit) outside the timing. Medians of
BENCH_REPS (default 3) jobs and tool runs. Not a test: run through
bench/run.sh.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (BUILD, REPS, BenchError, Cluster, loadavg, med, on_sigterm_exit,  # noqa: E402
                           purchases_csv, runs, stage_seconds, write_ratio)

ROWS = int(os.environ.get("REC_ROWS", "200000"))
NUSERS = int(os.environ.get("REC_USERS", "1000"))
TOOL = os.path.join(BUILD, "mlops_recommender_tool")

JOB = """name: bench-rec
input: {csv}
shard_rows: 65536
columns: {{label: clicked, numeric: [price], categorical: [category]}}
clean: {{dropna: true}}
knn: {{k: 20, metric: cosine, mode: recommend, user: user_id, item: item_id, top_n: 10}}
register: {{model: bench-rec}}
"""


def tool(art, users, out=None):
    args = [TOOL, art, users] + (["--out", out] if out else [])
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode:
        raise BenchError(f"{' '.join(args)} failed: {r.stderr.strip()}")
    return {k: float(v) for k, v in (line.split("=", 1) for line in r.stdout.split())}


def main():
    on_sigterm_exit()
    csv = purchases_csv(ROWS, seed=4)
    tmp = tempfile.mkdtemp(prefix="mlops-bench-rec-")
    with Cluster(2) as c:
        job = c.job_file("rec.yaml", JOB.format(csv=csv))
        per_user, stage_s, nusers, res = [], [], 0, None
        for _ in range(REPS):
            _, res = c.run_job(job)
            nusers = int(res["metrics"]["knn_users"])
            stage_s.append(stage_seconds(res, "knn"))
            per_user.append(stage_s[-1] / nusers)
        ref = res["registered"]
        art = os.path.join(tmp, "art.json")
        c.ctl("model", "export", ref, "-o", art)
        batch = os.path.join(tmp, "batch.csv")
        c.ctl("export", res["job"], "--stage", "knn", "-o", batch)
        users = json.load(open(art))["users"]
        step = max(1, len(users) // NUSERS)
        ask = users[::step][:NUSERS]
        ufile = os.path.join(tmp, "users.txt")
        with open(ufile, "w") as f:
            f.write("\n".join(ask) + "\n")
        look, answer, load = [], [], []
        for r in range(REPS):
            t = tool(art, ufile, os.path.join(tmp, "answers.jsonl") if r == 0 else None)
            look.append(t["lookup_median_us"])
            answer.append(t["answer_median_us"])
            load.append(t["load_seconds"])
            p99 = t["lookup_p99_us"]
        cli = []
        for u in ask[:10]:
            t0 = time.perf_counter()
            c.ctl("model", "recommend", ref, u, "-o", "json")
            cli.append(time.perf_counter() - t0)
    # the check, outside the timing: every answer is the batch export's list
    import pandas as pd
    b = pd.read_csv(batch, dtype={"user": str, "item": str}, float_precision="round_trip")
    lists = {u: list(zip(g["item"], g["score"])) for u, g in b.sort_values(["user", "rank"]).groupby("user")}
    for u, line in zip(ask, open(os.path.join(tmp, "answers.jsonl"))):
        got = [(x["item_id"], x["score"]) for x in json.loads(line)["items"]]
        if got != lists.get(u, []):
            raise BenchError(f"user {u}: lookup {got[:3]}... differs from the batch export {lists.get(u, [])[:3]}...")
    size = os.path.getsize(art)
    print(f"rows {ROWS}, {nusers} users, artifact {size / 1e6:.1f} MB, load {loadavg()}")
    print(f"batch knn stage (2 workers): median {med(stage_s):.3f} s = {med(per_user) * 1e6:.1f} us/user  "
          f"runs {runs(stage_s)}")
    print(f"lookup (in-process, {len(ask)} users): median {med(look):.1f} us/user, p99 {p99:.1f} us  "
          f"runs {runs(look, '{:.1f}')}")
    print(f"JSON answer (lookup + jansson + dump): median {med(answer):.1f} us/user  runs {runs(answer, '{:.1f}')}")
    print(f"artifact load: median {med(load):.3f} s  runs {runs(load)}")
    print(f"mlopsctl model recommend (process + fetch + load + answer): median {med(cli):.3f} s over {len(cli)} calls")
    print(f"answers of {len(ask)} users identical to the batch export")
    write_ratio("recommender", med(per_user) * 1e6 / med(look), 1)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench_recommender: {e}", file=sys.stderr)
        sys.exit(1)
