#!/usr/bin/python3
"""The purchases pipeline in pandas + scikit-learn: the reference mlops is
measured against (same cleaning, scaling, hashing, split and metrics).

  reference.py DATA.csv [--test-size 0.2] [--seed 42] [--epochs 5]
               [--alpha 0.0001] [--model logreg|sgd|both] [--iqr-k 1.5]
               [--C 1.0] [--logreg-max-iter 1000] [--logreg-tol 1e-4]

Prints one JSON object: rows after each step, the quartiles and scaler
statistics, and test metrics of LogisticRegression() and/or
SGDClassifier(loss='log_loss', the same epochs), with timings.
The split is scikit-learn's train_test_split: compare it with an mlops
job run with `--set split.method=sklearn`.
"""
import argparse, json, sys, time

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

NUMERIC = ["price", "quantity", "age", "income"]
CATEGORICAL = ["category", "item_id", "user_id"]
LABEL = "clicked"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.0001)
    ap.add_argument("--iqr-k", type=float, default=1.5)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--logreg-max-iter", type=int, default=1000)
    ap.add_argument("--logreg-tol", type=float, default=1e-4)
    ap.add_argument("--n-features", type=int, default=2 ** 20)
    ap.add_argument("--model", default="both", choices=["logreg", "sgd", "both"])
    a = ap.parse_args()
    out = {}
    t0 = time.perf_counter()
    df = pd.read_csv(a.data)
    out["rows_in"] = len(df)
    df = df.dropna(subset=NUMERIC + CATEGORICAL + [LABEL])
    out["rows_after_dropna"] = len(df)
    keep = pd.Series(True, index=df.index)
    for c in NUMERIC:
        q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
        iqr = q3 - q1
        out["q1." + c], out["q3." + c] = float(q1), float(q3)
        keep &= (df[c] >= q1 - a.iqr_k * iqr) & (df[c] <= q3 + a.iqr_k * iqr)
    df = df[keep]
    out["rows_after_clean"] = len(df)
    t_clean = time.perf_counter()
    scaler = StandardScaler()
    dense = scaler.fit_transform(df[NUMERIC].to_numpy(dtype=np.float64))
    for i, c in enumerate(NUMERIC):
        out["scaler.mean." + c] = float(scaler.mean_[i])
        out["scaler.scale." + c] = float(scaler.scale_[i])
    hasher = FeatureHasher(n_features=a.n_features, input_type="dict", alternate_sign=True)
    hashed = hasher.transform(df[CATEGORICAL].astype(str).to_dict("records"))
    X = sparse.hstack([hashed, sparse.csr_matrix(dense)]).tocsr()
    y = np.unique(df[LABEL].astype(str), return_inverse=True)[1]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=a.test_size, random_state=a.seed)
    out["rows_train"], out["rows_test"] = X_tr.shape[0], X_te.shape[0]
    t_feat = time.perf_counter()
    out["seconds_prep"] = t_feat - t0

    def score(prefix, model, secs):
        p = model.predict_proba(X_te)
        pred = model.classes_[np.argmax(p, axis=1)]
        out[prefix + "accuracy"] = float(accuracy_score(y_te, pred))
        out[prefix + "logloss"] = float(log_loss(y_te, p))
        out[prefix + "auc"] = float(roc_auc_score(y_te, p[:, 1]))
        out[prefix + "f1"] = float(f1_score(y_te, pred))
        out[prefix + "seconds_train"] = secs

    if a.model in ("sgd", "both"):
        t = time.perf_counter()
        sgd = SGDClassifier(loss="log_loss", alpha=a.alpha, learning_rate="optimal", max_iter=a.epochs,
                            tol=None, shuffle=True, random_state=a.seed)
        sgd.fit(X_tr, y_tr)
        score("sgd.", sgd, time.perf_counter() - t)
    if a.model in ("logreg", "both"):
        t = time.perf_counter()
        lr = LogisticRegression(C=a.C, max_iter=a.logreg_max_iter, tol=a.logreg_tol)
        lr.fit(X_tr, y_tr)
        score("logreg.", lr, time.perf_counter() - t)
        # its objective, C * summed log loss + 1/2 |w|^2 (intercept free)
        z = X_tr @ lr.coef_.ravel() + lr.intercept_[0]
        s = np.where(y_tr == 1, 1.0, -1.0)
        out["logreg.objective"] = float(a.C * np.logaddexp(0.0, -s * z).sum()
                                        + 0.5 * float(lr.coef_.ravel() @ lr.coef_.ravel()))
        out["logreg.n_iter"] = int(lr.n_iter_[0])
    out["seconds_total"] = time.perf_counter() - t0
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
