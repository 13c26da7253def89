"""Cross-validation and grid search on the purchases features in pandas +
scikit-learn: the reference an mlops job with `cv` and `search` is
measured against (tests/integration/test_search.sh, bench/bench_search.py).

  reference_search.py DATA.csv [--test-size 0.2] [--seed 42] [--n-features 65536]
      [--folds 3] [--cv-seed 42] [--alpha 1e-4 ...] [--epochs 5 ...]
      [--metric accuracy|auc|logloss|f1] [--n-jobs 1] [--no-split] [--logreg-c C]

The features are those of reference.py (dropna, IQR filter, StandardScaler,
FeatureHasher). The training rows are train_test_split(test_size,
random_state=seed)'s, taken in their file order (as mlops keeps them, with
split.method sklearn); --no-split uses every row. The folds are
KFold(folds, shuffle=True, random_state=cv_seed) over those rows. Prints
one JSON object: each fold's rows and rows of class 1, the
GridSearchCV(SGDClassifier(loss='log_loss', tol=None, random_state=0),
{alpha, max_iter}) table (mean, std (ddof 0) per candidate, in
ParameterGrid order), its best_index_, cross_val_score of the first
candidate and, with --logreg-c, of LogisticRegression(C); and the seconds
the preparation and the search took.
"""
import argparse, json, sys, time

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, train_test_split
from sklearn.preprocessing import StandardScaler

NUMERIC = ["price", "quantity", "age", "income"]
CATEGORICAL = ["category", "item_id", "user_id"]
LABEL = "clicked"
SCORING = {"accuracy": "accuracy", "auc": "roc_auc", "logloss": "neg_log_loss", "f1": "f1"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-features", type=int, default=65536)
    ap.add_argument("--iqr-k", type=float, default=1.5)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--cv-seed", type=int, default=42)
    ap.add_argument("--alpha", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--epochs", type=int, nargs="+", default=[5])
    ap.add_argument("--metric", default="accuracy", choices=sorted(SCORING))
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--no-split", action="store_true")
    ap.add_argument("--logreg-c", type=float, default=None)
    a = ap.parse_args()
    out = {}
    t0 = time.perf_counter()
    df = pd.read_csv(a.data)
    df = df.dropna(subset=NUMERIC + CATEGORICAL + [LABEL])
    keep = pd.Series(True, index=df.index)
    for c in NUMERIC:
        q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
        iqr = q3 - q1
        keep &= (df[c] >= q1 - a.iqr_k * iqr) & (df[c] <= q3 + a.iqr_k * iqr)
    df = df[keep]
    dense = StandardScaler().fit_transform(df[NUMERIC].to_numpy(dtype=np.float64))
    hasher = FeatureHasher(n_features=a.n_features, input_type="dict", alternate_sign=True)
    hashed = hasher.transform(df[CATEGORICAL].astype(str).to_dict("records"))
    X = sparse.hstack([hashed, sparse.csr_matrix(dense)]).tocsr()
    y = np.unique(df[LABEL].astype(str), return_inverse=True)[1]
    if a.no_split:
        tr = np.arange(X.shape[0])
    else:
        tr, _ = train_test_split(np.arange(X.shape[0]), test_size=a.test_size, random_state=a.seed)
        tr = np.sort(tr)  # mlops keeps the training rows in file order
    X, y = X[tr], y[tr]
    out["rows_train"] = int(X.shape[0])
    out["seconds_prep"] = time.perf_counter() - t0
    kf = KFold(n_splits=a.folds, shuffle=True, random_state=a.cv_seed)
    out["fold_rows"] = [int(len(te)) for _, te in kf.split(X)]
    out["fold_rows_class1"] = [int(y[te].sum()) for _, te in kf.split(X)]
    sgd = SGDClassifier(loss="log_loss", learning_rate="optimal", tol=None, shuffle=True, random_state=0)
    sign = -1.0 if a.metric == "logloss" else 1.0
    t = time.perf_counter()
    gs = GridSearchCV(sgd, {"alpha": a.alpha, "max_iter": a.epochs}, scoring=SCORING[a.metric], cv=kf,
                      n_jobs=a.n_jobs, refit=True)
    gs.fit(X, y)
    out["seconds_search"] = time.perf_counter() - t
    r = gs.cv_results_
    folds = np.array([r["split%d_test_score" % i] for i in range(a.folds)]).T * sign
    out["trials"] = [{"params": {"train.alpha": float(p["alpha"]), "train.epochs": int(p["max_iter"])},
                      "mean": float(f.mean()), "std": float(f.std())} for p, f in zip(r["params"], folds)]
    out["best"] = int(gs.best_index_)
    first = SGDClassifier(loss="log_loss", alpha=a.alpha[0], max_iter=a.epochs[0], tol=None, random_state=0)
    s = cross_val_score(first, X, y, cv=kf, scoring="accuracy")
    out["sgd.accuracy.mean"], out["sgd.accuracy.std"] = float(s.mean()), float(s.std())
    if a.logreg_c is not None:
        s = cross_val_score(LogisticRegression(C=a.logreg_c, max_iter=1000), X, y, cv=kf, scoring="accuracy")
        out["logreg.accuracy.mean"], out["logreg.accuracy.std"] = float(s.mean()), float(s.std())
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
