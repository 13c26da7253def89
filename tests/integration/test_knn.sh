#!/usr/bin/env bash
# test_knn.sh: the IDX ingest and k-NN stages on a real cluster, against
# scikit-learn / numpy computed here.
# 1. classify with knn.queries: 6000 Fashion-MNIST train images (gzip)
#    as the index, 1000 t10k images (raw IDX) as queries; knn_accuracy
#    and every exported prediction equal KNeighborsClassifier(metric=
#    'cosine', algorithm='brute') on pixels / 255, with uniform and with
#    distance weights;
# 2. classify the test rows of a split (method sklearn): the same, with
#    train_test_split(random_state=seed) deciding the rows;
# 3. recommend on examples/purchases data (after dropna): the metrics and
#    every exported recommendation equal a numpy reimplementation of the
#    same definitions (leave-last-out, binary user vectors, cosine user
#    k-NN with ties to the lower user id, top-N unseen items, RecBole
#    metrics), and the hit rate beats the most-popular baseline;
# 4. the same jobs on 3 workers give byte-identical metrics and exports.
source "$(dirname "$0")/lib.sh"

D=/usr/share/datasets/fashion-mnist
[ -r "$D/train-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST is not installed in $D"
J="$T/jobs"
mkdir -p "$J"

# ------------------------------------------------------------- data
"$PY" - "$D" "$J" <<'EOF' || fail "cannot build the test data"
import gzip, sys, numpy as np
src, out = sys.argv[1], sys.argv[2]
def rd(name, off):
    return np.frombuffer(gzip.open(f"{src}/{name}").read(), np.uint8, offset=off)
X = rd("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:6000]
y = rd("train-labels-idx1-ubyte.gz", 8)[:6000]
Q = rd("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:1000]
q = rd("t10k-labels-idx1-ubyte.gz", 8)[:1000]
def idx(a, labels):
    n = len(labels)
    return (np.array([0x803, n, 28, 28], ">u4").tobytes() + a.tobytes(),
            np.array([0x801, n], ">u4").tobytes() + labels.tobytes())
i, l = idx(X, y)
gzip.open(f"{out}/train-images.gz", "wb").write(i)
gzip.open(f"{out}/train-labels.gz", "wb").write(l)
i, l = idx(Q, q)
open(f"{out}/query-images", "wb").write(i)
open(f"{out}/query-labels", "wb").write(l)
EOF
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 20000 --seed 5 --out "$J/purchases.csv" ||
    fail "purchases generator failed"

cat >"$J/queries.yaml" <<'EOF'
name: knn-queries
input: {format: idx, images: train-images.gz, labels: train-labels.gz}
shard_rows: 1500
knn: {k: 10, metric: cosine, mode: classify, weights: uniform,
      queries: {format: idx, images: query-images, labels: query-labels}}
EOF
cat >"$J/split.yaml" <<'EOF'
name: knn-split
input: {format: idx, images: train-images.gz, labels: train-labels.gz}
shard_rows: 2000
split: {test_size: 0.2, seed: 3, method: sklearn}
knn: {k: 5, metric: cosine, mode: classify}
EOF
cat >"$J/rec.yaml" <<'EOF'
name: knn-rec
input: purchases.csv
shard_rows: 6000
columns: {label: clicked, numeric: [price], categorical: [category]}
clean: {dropna: true}
knn: {k: 20, metric: cosine, mode: recommend, user: user_id, item: item_id, top_n: 10}
EOF

# run_job NAME FILE [--set ...]: submit, wait, save result JSON and the
# knn export under $T/out/$RUN/NAME.*
run_job() {
    local name="$1" file="$2"
    shift 2
    local job
    job="$(ctl submit "$file" "$@" --wait 2>"$T/$name.err")" || {
        cat "$T/$name.err" >&2
        ctl logs "$job" >&2 2>/dev/null
        fail "job $name failed"
    }
    mkdir -p "$T/out/$RUN"
    ctl result "$job" -o json | jget 'd["metrics"]' >"$T/out/$RUN/$name.json" || fail "result $name"
    ctl export "$job" --stage knn -o "$T/out/$RUN/$name.csv" || fail "export $name"
}

run_all() {
    run_job uniform "$J/queries.yaml"
    run_job distance "$J/queries.yaml" --set knn.weights=distance --set knn.k=7
    run_job split "$J/split.yaml"
    run_job rec "$J/rec.yaml"
}

RUN=w1
cluster_up 1
run_all
cluster_down
rm -rf "$CLUSTER_DIR"

# ---------------------------------------------------- classify vs sklearn
"$PY" - "$J" "$T/out/w1" <<'EOF' || fail "k-NN classification differs from scikit-learn"
import gzip, json, sys, numpy as np, pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
J, O = sys.argv[1], sys.argv[2]
X = np.frombuffer(gzip.open(f"{J}/train-images.gz").read(), np.uint8, offset=16).reshape(-1, 784)
y = np.frombuffer(gzip.open(f"{J}/train-labels.gz").read(), np.uint8, offset=8)
Q = np.frombuffer(open(f"{J}/query-images", "rb").read(), np.uint8, offset=16).reshape(-1, 784)
q = np.frombuffer(open(f"{J}/query-labels", "rb").read(), np.uint8, offset=8)
f32 = lambda a: (a / 255.0).astype(np.float32)

def check(name, Xi, yi, Xq, yq, k, weights):
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute", weights=weights)
    pred = clf.fit(f32(Xi), yi).predict(f32(Xq))
    got = pd.read_csv(f"{O}/{name}.csv")
    m = json.load(open(f"{O}/{name}.json"))
    assert len(got) == len(yq), f"{name}: {len(got)} predictions, expected {len(yq)}"
    assert (got["label"].values == yq).all(), f"{name}: exported true labels differ"
    bad = np.nonzero(got["predicted"].values != pred)[0]
    assert len(bad) == 0, f"{name}: {len(bad)} predictions differ from sklearn, first at query {bad[:5]}"
    acc = float((pred == yq).mean())
    assert m["knn_queries"] == len(yq), f"{name}: knn_queries {m['knn_queries']}"
    assert abs(m["knn_accuracy"] - acc) < 1e-12, f"{name}: knn_accuracy {m['knn_accuracy']} vs sklearn {acc}"
    print(f"{name}: {len(yq)} predictions identical to sklearn, accuracy {acc:.4f}")

check("uniform", X, y, Q, q, 10, "uniform")
check("distance", X, y, Q, q, 7, "distance")
# split: sklearn decides which rows are test rows; the index and the
# queries are kept in row order (the cluster's order: ties go to the
# lower row id as in a fit on the rows in file order)
idx = np.arange(len(y))
tr, te = train_test_split(idx, test_size=0.2, random_state=3)
tr, te = np.sort(tr), np.sort(te)
check("split", X[tr], y[tr], X[te], y[te], 5, "uniform")
EOF

# --------------------------------------------------- recommend vs numpy
"$PY" - "$J/purchases.csv" "$T/out/w1" <<'EOF' || fail "recommendations differ from the numpy reference"
import json, sys, numpy as np, pandas as pd
csv, O = sys.argv[1], sys.argv[2]
K, N = 20, 10
df = pd.read_csv(csv, dtype={"category": str, "user_id": str, "item_id": str})
df = df.dropna(subset=["price", "category", "clicked", "user_id", "item_id"])
users, u = np.unique(df["user_id"].values.astype(str), return_inverse=True)
items, it = np.unique(df["item_id"].values.astype(str), return_inverse=True)
nu, ni = len(users), len(items)
# leave the last interaction of users with >= 2 out
cnt = np.bincount(u, minlength=nu)
last = np.full(nu, -1)
last[u] = np.arange(len(u))  # the last assignment wins
held = np.full(nu, -1)
keep = np.ones(len(u), bool)
for v in range(nu):
    if cnt[v] >= 2:
        held[v] = it[last[v]]
        keep[last[v]] = False
train = np.zeros((nu, ni), np.int64)
np.add.at(train, (u[keep], it[keep]), 1)
vec = (train > 0).astype(np.int64)
dot = (vec @ vec.T).astype(np.float64)
norm = np.sqrt(vec.sum(axis=1).astype(np.float64))
with np.errstate(invalid="ignore", divide="ignore"):
    sims = np.where(dot != 0, dot / np.outer(norm, norm), 0.0)
item_count = train.sum(axis=0)
pop_order = [i for i in np.lexsort((np.arange(ni), -item_count)) if item_count[i] > 0]
rows, hit, ndcg, phit, pndcg = [], [], [], [], []
for v in range(nu):
    s = sims[v].copy()
    order = [w for w in np.lexsort((np.arange(nu), -s)) if w != v][:K]
    score = np.zeros(ni)
    cand = np.zeros(ni, bool)
    for w in order:
        its = np.nonzero(train[w])[0]
        score[its] += s[w]
        cand[its] = True
    cand &= train[v] == 0
    c = np.nonzero(cand)[0]
    ranked = c[np.lexsort((c, -score[c]))][:N]
    for r, i in enumerate(ranked):
        rows.append((users[v], r + 1, items[i], score[i]))
    pop = [i for i in pop_order if train[v, i] == 0][:N]
    if held[v] >= 0:
        for lst, h, g in ((list(ranked), hit, ndcg), (pop, phit, pndcg)):
            if held[v] in lst:
                h.append(1.0)
                g.append(1.0 / np.log2(lst.index(held[v]) + 2.0))
            else:
                h.append(0.0)
                g.append(0.0)
m = json.load(open(f"{O}/rec.json"))
want = {"hit_rate_at_n": np.mean(hit), "precision_at_n": np.mean(hit) / N, "recall_at_n": np.mean(hit),
        "ndcg_at_n": np.mean(ndcg), "popular_hit_rate_at_n": np.mean(phit), "popular_ndcg_at_n": np.mean(pndcg),
        "knn_users_evaluated": len(hit), "knn_users": nu, "knn_items": ni}
for key, v in want.items():
    assert abs(m[key] - v) < 1e-9, f"{key}: cluster {m[key]}, numpy {v}"
got = pd.read_csv(f"{O}/rec.csv", dtype={"user": str, "item": str})
assert len(got) == len(rows), f"{len(got)} recommendations, numpy {len(rows)}"
ref = pd.DataFrame(rows, columns=["user", "rank", "item", "score"])
assert (got["user"].values == ref["user"].values).all(), "users differ"
assert (got["rank"].values == ref["rank"].values).all(), "ranks differ"
bad = np.nonzero(got["item"].values != ref["item"].values)[0]
assert len(bad) == 0, f"{len(bad)} recommended items differ, first {ref.iloc[bad[0]].tolist()} vs {got.iloc[bad[0]].tolist()}"
assert np.allclose(got["score"].values, ref["score"].values, rtol=1e-12, atol=1e-12), "scores differ"
assert m["hit_rate_at_n"] > m["popular_hit_rate_at_n"], \
    f"hit rate {m['hit_rate_at_n']} does not beat the most-popular baseline {m['popular_hit_rate_at_n']}"
print(f"recommend: {len(rows)} recommendations identical to numpy; hit@{N} {m['hit_rate_at_n']:.4f}, "
      f"popular {m['popular_hit_rate_at_n']:.4f}, ndcg {m['ndcg_at_n']:.4f}")
EOF

# ------------------------------------------------- 3 workers: identical
RUN=w3
cluster_up 3
[ "$(alive_workers)" = 3 ] || wait_for '[ "$(alive_workers)" = 3 ]' 20
run_all
for f in "$T"/out/w1/*; do
    g="$T/out/w3/$(basename "$f")"
    cmp -s "$f" "$g" || fail "$(basename "$f") differs between 1 and 3 workers"
done
echo "1 and 3 workers: identical metrics and exports ($(ls "$T/out/w1" | wc -l) files)"
echo "PASS test_knn"
