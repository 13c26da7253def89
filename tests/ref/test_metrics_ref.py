"""Reference test: the C metrics (mlk_hash_tool metrics: per-shard
partials, encoded, decoded and merged in shard order) against Debian's
scikit-learn at test time, rtol 1e-12: accuracy, precision/recall/F1
(binary for 2 classes, macro otherwise), log_loss (clipping at the
default eps, renormalisation), ROC AUC (also checked bit-for-bit against
the exact Mann-Whitney value, the bound stated in metrics.h) and the
confusion matrix; the ROC points (roc_curve without dropping
intermediates, thinned to 101) and calibration_curve(n_bins=10); with ties, probabilities 0 and 1, classes absent, and
several shardings."""
import os
import subprocess
import sys
import warnings

import numpy as np
from sklearn import metrics as skm

TOOL = os.path.join(os.environ.get("MLOPS_BUILD_DIR", "build"), "mlk_hash_tool")
RTOL = 1e-12
failures = []
warnings.filterwarnings("ignore")  # zero-division warnings are part of the cases


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def close(name, a, b):
    check(abs(a - b) <= RTOL * abs(b) + 1e-300, f"{name}: C {a!r} vs sklearn {b!r}")


def run_metrics(y, yp, proba, k, shards, extra=()):
    lines = "".join(f"{y[i]} {yp[i]} " + " ".join(repr(float(p)) for p in proba[i]) + "\n"
                    for i in range(len(y)))
    p = subprocess.run([TOOL, "metrics", "--k", str(k), "--shards", str(shards), *extra],
                       input=lines, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"mlk_hash_tool metrics failed: {p.stderr.strip()}")
    return {l.split(" ", 1)[0]: l.split(" ", 1)[1] for l in p.stdout.strip().split("\n")}


def exact_auc(y, s):
    """Mann-Whitney 2U in integers, ties one half, divided once."""
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    uniq, start = np.unique(s, return_index=True)
    pos = np.add.reduceat((y == 1).astype(np.int64), start)
    neg = np.add.reduceat((y != 1).astype(np.int64), start)
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    u2 = int(np.sum(pos * (2 * below + neg)))
    return u2 / (2 * int(pos.sum()) * int(neg.sum()))


def compare(name, y, yp, proba, k, shards, use_pred=True):
    extra = () if use_pred else ("--no-pred",)
    got = run_metrics(y, yp, proba, k, shards, extra)
    pred = yp if use_pred else np.argmax(proba, axis=1)
    avg = "binary" if k == 2 else "macro"
    check(int(got["n"]) == len(y), f"{name}: n")
    close(f"{name} accuracy", float(got["accuracy"]), skm.accuracy_score(y, pred))
    close(f"{name} precision", float(got["precision"]), skm.precision_score(y, pred, average=avg))
    close(f"{name} recall", float(got["recall"]), skm.recall_score(y, pred, average=avg))
    close(f"{name} f1", float(got["f1"]), skm.f1_score(y, pred, average=avg))
    close(f"{name} log_loss", float(got["log_loss"]), skm.log_loss(y, proba, labels=list(range(k))))
    cm = np.array(got["confusion"].split(), dtype=np.int64).reshape(k, k)
    check(np.array_equal(cm, skm.confusion_matrix(y, pred, labels=list(range(k)))),
          f"{name}: confusion matrix")
    if k == 2:
        if len(np.unique(y)) == 2:
            ref = skm.roc_auc_score(y, proba[:, 1])
            close(f"{name} roc_auc", float(got["roc_auc"]), ref)
            check(float(got["roc_auc"]) == exact_auc(y, proba[:, 1]), f"{name}: AUC not exact")
            curves(name, got, y, proba[:, 1])
        else:
            check("roc_auc" not in got, f"{name}: AUC reported for one class")
            check("roc_fpr" not in got, f"{name}: a ROC curve for one class")
    return got


def curves(name, got, y, score):
    fpr, tpr, thr = skm.roc_curve(y, score, drop_intermediate=False)
    n = len(fpr)
    keep = n if n < 101 else 101
    idx = [i if keep == n else int(i * (n - 1) / (keep - 1) + 0.5) for i in range(keep)]
    for key, ref in (("roc_fpr", fpr), ("roc_tpr", tpr)):
        c = np.array(got[key].split(), dtype=float)
        check(len(c) == keep and np.array_equal(c, ref[idx]), f"{name}: {key} differs from roc_curve")
    c = np.array(got["roc_thr"].split(), dtype=float)
    check(c[0] == 2.0 and np.array_equal(c[1:], thr[idx][1:]), f"{name}: ROC thresholds differ")
    from sklearn.calibration import calibration_curve
    ptrue, ppred = calibration_curve(y, score, n_bins=10)
    for key, ref in (("cal_true", ptrue), ("cal_pred", ppred)):
        c = np.array(got[key].split(), dtype=float)
        check(len(c) == len(ref) and np.allclose(c, ref, rtol=1e-12, atol=0),
              f"{name}: {key} {c} differs from calibration_curve {ref}")
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], score)
    counts = np.bincount(bins, minlength=10)
    c = np.array(got["cal_count"].split(), dtype=np.int64)
    check(np.array_equal(c, counts[counts > 0]), f"{name}: calibration counts")


def binary_data(rng, n):
    score = np.round(rng.random(n), 2)  # many ties
    y = (rng.random(n) < 0.2 + 0.6 * score).astype(np.int64)
    score[rng.random(n) < 0.01] = 0.0
    score[rng.random(n) < 0.01] = 1.0
    proba = np.stack([1 - score, score], axis=1)
    yp = (rng.random(n) < score).astype(np.int64)
    return y, yp, proba


def multi_data(rng, n, k, absent=()):
    logits = rng.normal(0, 1.5, (n, k))
    for c in absent:
        logits[:, c] = -30
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    proba[rng.random(n) < 0.01, 0] = 0.0  # clipped and renormalised rows
    y = np.array([rng.choice(k, p=row / row.sum()) for row in proba])
    yp = np.argmax(proba + rng.normal(0, 0.05, proba.shape), axis=1)
    return y, yp, proba


if __name__ == "__main__":
    rng = np.random.default_rng(42)
    y, yp, proba = binary_data(rng, 20000)
    outs = [compare(f"binary shards={s}", y, yp, proba, 2, s) for s in (1, 3, 8)]
    for o in outs[1:]:
        check(o["roc_auc"] == outs[0]["roc_auc"] and o["accuracy"] == outs[0]["accuracy"],
              "binary: sharding changed the AUC or the accuracy")
    compare("binary argmax", y, yp, proba, 2, 4, use_pred=False)
    y1 = np.zeros(300, dtype=np.int64)
    _, yp1, p1 = binary_data(rng, 300)
    compare("binary one class", y1, yp1, p1, 2, 3)
    for k, absent in ((5, ()), (10, ()), (6, (4,))):
        y, yp, proba = multi_data(rng, 5000, k, absent)
        check(absent == () or not np.isin(list(absent), np.concatenate([y, yp])).any(),
              "absent class present")
        for s in (1, 5):
            compare(f"multiclass k={k} shards={s}", y, yp, proba, k, s)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("metrics: equal to scikit-learn")
