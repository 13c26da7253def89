"""Recommendation reference test: mlk_knn_tool recommend (C kernels)
against a small numpy re-implementation of the same definitions:
leave-last-out split, cosine user k-NN (self excluded, ties -> lower user
id), item scores = sum of neighbour similarities, seen items excluded, top
N (ties -> lower item id), most-popular baseline, and RecBole's hit,
precision, recall and NDCG at N for one held-out item. Neighbours,
recommendations and metrics must be identical, with 1 and 4 index shards,
binary and count user vectors."""
import os
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "mlk_knn_tool")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def make_data(rng, nu, ni, n):
    # skewed item popularity, users of varied activity, repeats allowed
    pop = 1.0 / np.arange(1, ni + 1) ** 0.8
    pop /= pop.sum()
    act = rng.gamma(1.0, 1.0, nu)
    act /= act.sum()
    users = rng.choice(nu, n, p=act).astype(np.int32)
    # users come in taste groups: shift item ids per group
    items = ((rng.choice(ni, n, p=pop) + 17 * (users % 5)) % ni).astype(np.int32)
    return users, items


def reference(users, items, nu, ni, k, topn, count):
    n = len(users)
    last = {}
    cnt = np.bincount(users, minlength=nu)
    for i in range(n):
        last[users[i]] = i
    heldout = np.full(nu, -1, np.int32)
    train = np.zeros((nu, ni), np.int64)
    for i in range(n):
        u = users[i]
        if cnt[u] >= 2 and last[u] == i:
            heldout[u] = items[i]
            continue
        train[u, items[i]] += 1
    item_count = train.sum(axis=0)
    vec = train if count else (train > 0).astype(np.int64)
    dot = (vec @ vec.T).astype(np.float64)  # exact integers
    norm = np.sqrt((vec * vec).sum(axis=1).astype(np.float64))
    nbr = np.zeros((nu, k), np.int64)
    recs = np.full((nu, topn), -1, np.int32)
    pop = np.full((nu, topn), -1, np.int32)
    pop_order = [i for i in np.lexsort((np.arange(ni), -item_count)) if item_count[i] > 0]
    for u in range(nu):
        sims = np.zeros(nu)
        for v in range(nu):
            if dot[u, v] != 0:
                sims[v] = dot[u, v] / (norm[u] * norm[v])
        order = [v for v in np.lexsort((np.arange(nu), -sims)) if v != u][:k]
        nbr[u] = order
        score = np.zeros(ni)
        cand = np.zeros(ni, bool)
        for v in order:  # same summation order as the C code
            its = np.nonzero(train[v])[0]
            score[its] += sims[v]
            cand[its] = True
        cand &= train[u] == 0
        c = np.nonzero(cand)[0]
        ranked = c[np.lexsort((c, -score[c]))][:topn]
        recs[u, :len(ranked)] = ranked
        p = [i for i in pop_order if train[u, i] == 0][:topn]
        pop[u, :len(p)] = p
    return heldout, nbr, recs, pop


def metrics(recs, heldout, topn):
    ev = heldout >= 0
    hit = np.zeros(len(heldout))
    ndcg = np.zeros(len(heldout))
    for u in np.nonzero(ev)[0]:
        pos = np.nonzero(recs[u] == heldout[u])[0]
        if len(pos):
            hit[u] = 1.0
            ndcg[u] = 1.0 / np.log2(pos[0] + 2.0)
    h = hit[ev].mean()
    return {"users": int(ev.sum()), "hit": h, "precision": h / topn, "recall": h,
            "ndcg": ndcg[ev].mean()}


def main():
    if not os.path.exists(TOOL):
        fail(f"{TOOL} not built")
    rng = np.random.default_rng(3)
    nu, ni, n, k, topn = 300, 120, 4000, 15, 10
    users, items = make_data(rng, nu, ni, n)
    users[:3] = [0, 1, 1]  # make sure a user with one interaction exists
    users[users == 0] = 1
    users[0] = 0
    with tempfile.TemporaryDirectory() as tmp:
        fi = os.path.join(tmp, "inter.i32")
        np.stack([users, items], axis=1).astype(np.int32).tofile(fi)
        for count in (False, True):
            heldout, nbr, recs, pop = reference(users, items, nu, ni, k, topn, count)
            for shards in (1, 4):
                out = {x: os.path.join(tmp, x) for x in ("recs", "pop", "nbr", "held")}
                cmd = [TOOL, "recommend", "--interactions", fi, "--n-inter", str(n),
                       "--nusers", str(nu), "--nitems", str(ni), "--k", str(k), "--top", str(topn),
                       "--values", "count" if count else "binary", "--shards", str(shards),
                       "--out-recs", out["recs"], "--out-pop", out["pop"],
                       "--out-nbr-ids", out["nbr"], "--out-heldout", out["held"]]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    fail(f"tool failed: {r.stderr}")
                name = f"{'count' if count else 'binary'} shards={shards}"
                kv = dict(line.split("=", 1) for line in r.stdout.split())
                c_held = np.fromfile(out["held"], np.int32)
                c_nbr = np.fromfile(out["nbr"], np.int64).reshape(nu, k)
                c_recs = np.fromfile(out["recs"], np.int32).reshape(nu, topn)
                c_pop = np.fromfile(out["pop"], np.int32).reshape(nu, topn)
                for what, a, b in (("held-out items", c_held, heldout), ("neighbours", c_nbr, nbr),
                                   ("recommendations", c_recs, recs), ("popular", c_pop, pop)):
                    if not np.array_equal(a, b):
                        bad = np.nonzero((a != b).reshape(len(a), -1).any(axis=1))[0]
                        fail(f"{name}: {what} differ for {len(bad)} users, e.g. user {bad[0]}: "
                             f"ours {a[bad[0]]} reference {b[bad[0]]}")
                for pre, rr in (("knn", recs), ("pop", pop)):
                    m = metrics(rr, heldout, topn)
                    if int(kv[f"{pre}_users"]) != m["users"]:
                        fail(f"{name}: {pre} evaluated users differ")
                    for key in ("hit", "precision", "recall", "ndcg"):
                        ours = float(kv[f"{pre}_{key}@{topn}"])
                        if abs(ours - m[key]) > 1e-9:
                            fail(f"{name}: {pre} {key}@{topn} ours {ours} reference {m[key]}")
                print(f"{name}: identical; knn hit@{topn}={kv[f'knn_hit@{topn}']} "
                      f"ndcg={kv[f'knn_ndcg@{topn}']}; pop hit={kv[f'pop_hit@{topn}']}")
    print("OK")


if __name__ == "__main__":
    main()
