#!/usr/bin/env bash
# test_fashion.sh: the examples/fashion-mnist job end to end on 2 workers
# (the full 60k training and 10k test images): it succeeds; knn_queries is
# the 10000 test images; the first 500 exported predictions equal
# scikit-learn's KNeighborsClassifier(k, metric='cosine', algorithm='brute')
# fitted on all 60k images / 255; knn_accuracy reaches 0.85 and the model
# accuracy the example's 0.83 target.
source "$(dirname "$0")/lib.sh"

D=/usr/share/datasets/fashion-mnist
[ -r "$D/t10k-images-idx3-ubyte.gz" ] || fail "Fashion-MNIST is not installed in $D"
cluster_up 2
job="$(ctl submit "$MLOPS_SOURCE_DIR/examples/fashion-mnist/job.yaml" --wait 2>"$T/wait.err")" || {
    cat "$T/wait.err" >&2
    fail "the fashion-mnist job failed"
}
ctl result "$job" -o json >"$T/result.json" || fail "result exit $?"
ctl export "$job" --stage knn -o "$T/pred.csv" || fail "export exit $?"
"$PY" - "$D" "$T/result.json" "$T/pred.csv" <<'EOF2' || fail "fashion-mnist results are wrong"
import gzip, json, sys, numpy as np, pandas as pd
from sklearn.neighbors import KNeighborsClassifier
D, res, pred = sys.argv[1:]
m = json.load(open(res))["metrics"]
rd = lambda f, o: np.frombuffer(gzip.open(f"{D}/{f}").read(), np.uint8, offset=o)
X = rd("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
y = rd("train-labels-idx1-ubyte.gz", 8)
Q = rd("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)
q = rd("t10k-labels-idx1-ubyte.gz", 8)
got = pd.read_csv(pred)
assert m["knn_queries"] == 10000 and len(got) == 10000, "expected 10000 predictions"
assert (got["label"].values == q).all(), "exported labels are not the t10k labels in order"
acc = float((got["predicted"].values == q).mean())
assert abs(acc - m["knn_accuracy"]) < 1e-12, f"knn_accuracy {m['knn_accuracy']} vs exported {acc}"
n = 500
clf = KNeighborsClassifier(10, metric="cosine", algorithm="brute").fit((X / 255.0).astype(np.float32), y)
want = clf.predict((Q[:n] / 255.0).astype(np.float32))
bad = np.nonzero(got["predicted"].values[:n] != want)[0]
assert len(bad) == 0, f"{len(bad)} of the first {n} predictions differ from sklearn: {bad[:5]}"
assert m["knn_accuracy"] >= 0.85, f"knn_accuracy {m['knn_accuracy']} < 0.85"
assert m["accuracy"] >= 0.83, f"model accuracy {m['accuracy']} < 0.83"
print(f"fashion-mnist: knn_accuracy {m['knn_accuracy']:.4f}, model accuracy {m['accuracy']:.4f}; "
      f"first {n} predictions identical to sklearn")
EOF2
echo "PASS test_fashion"
