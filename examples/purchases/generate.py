#!/usr/bin/python3
"""Deterministic generator of the 'purchases' example data set.

Why: the pipeline (CSV -> dropna -> IQR filter -> StandardScaler ->
FeatureHasher -> logistic regression -> k-NN recommendations) needs one
input with known, planted structure, so that every stage has something to
find and the demo and benchmarks are reproducible from (rows, seed) alone.

Columns, in this order:
    user_id,item_id,category,price,quantity,age,income,clicked

* user_id `u00042` (max(200, rows/100) users), item_id `i0031` (2000
  items), category one of 20 names (some non-ASCII, one with a comma, so
  the CSV writer quotes it), price (2 decimals, lognormal per item),
  quantity 1..10, age 18..80, income (integer), clicked 0/1.
* ~1% of rows have one empty field (any column; the label rarely).
* ~0.5% of rows have an extreme price or income (x50 .. x1000).
* clicked ~ Bernoulli(sigmoid(score)), score linear in the numeric
  features plus per-category, per-item and per-user effects, so logistic
  regression clearly beats chance.
* Users belong to one of 20 taste clusters; each cluster prefers 50
  items. Rows are in time order; a user's rows mostly draw from the
  cluster's items, the rest from a popularity-skewed (Zipf-like) draw, so
  user-based k-NN beats "most popular items" on hit rate@10.

Usage: /usr/bin/python3 generate.py --rows N --seed S --out FILE [--shift X]
       /usr/bin/python3 generate.py --rows N --seed S --out FILE --split DIR [--days D] [--shift X]

--split DIR also writes the same data as three tables, as a shop keeps
them: DIR/events-DAY.csv.gz (user_id, item_id, price, quantity,
clicked; the rows in time order, one file per day, D days, default 7),
DIR/items.csv (item_id, category) and DIR/users.csv (user_id, age,
income). Then category is the item's and age and income are the user's
(income outliers and missing ages are the user's, not the row's), and
FILE holds the rows pandas' merge of the three tables gives (left joins,
in the events' order), so a job on FILE and a job joining the tables
read the same rows (examples/purchases/job-joined.yaml).
Vectorised: 4M rows in well under 30 s.
"""
import argparse
import datetime
import os
import sys

import numpy as np
import pandas as pd

CATEGORIES = [
    "électronique", "家居", "toys, games", "books", "garden", "grocery",
    "beauty", "sports", "automotive", "music", "movies", "clothing",
    "shoes", "jewelry", "office", "pet supplies", "baby", "health",
    "outdoor", "crafts",
]
N_ITEMS = 2000
N_CLUSTERS = 20
ITEMS_PER_CLUSTER = 50
P_CLUSTER = 0.8          # share of a user's rows drawn from the cluster
P_MISSING = 0.01
P_OUTLIER = 0.005
COLUMNS = ["user_id", "item_id", "category", "price", "quantity", "age",
           "income", "clicked"]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def generate(rows, seed, shift=0.0, tables=None):
    """Return the data set as a pandas DataFrame (nullable columns).
    With a dict `tables`, also put the item and user tables there (the
    --split form, see the top of this file)."""
    rng = np.random.default_rng(seed)
    n_users = max(200, rows // 100)

    # Items: category, base price, click effect, global popularity.
    item_cat = rng.integers(0, len(CATEGORIES), N_ITEMS)
    item_price = rng.lognormal(mean=3.0, sigma=0.8, size=N_ITEMS)
    item_eff = rng.normal(0.0, 0.5, N_ITEMS)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    pop = pop[rng.permutation(N_ITEMS)]
    pop /= pop.sum()
    cat_eff = rng.normal(0.0, 0.8, len(CATEGORIES))

    # Taste clusters: each prefers ITEMS_PER_CLUSTER items, with its own
    # skew inside the set.
    cluster_items = np.stack([rng.choice(N_ITEMS, ITEMS_PER_CLUSTER, replace=False)
                              for _ in range(N_CLUSTERS)])
    w = 1.0 / np.arange(1, ITEMS_PER_CLUSTER + 1) ** 0.7
    cluster_cdf = np.cumsum(w / w.sum())

    # Users: cluster, age, income, bias.
    user_cluster = rng.integers(0, N_CLUSTERS, n_users)
    user_age = rng.integers(18, 81, n_users)
    user_income = np.round(rng.lognormal(10.6, 0.5, n_users)).astype(np.int64)
    user_bias = rng.normal(0.0, 0.5, n_users)

    # Rows (time order): who buys what.
    u = rng.integers(0, n_users, rows)
    from_cluster = rng.random(rows) < P_CLUSTER
    k = np.searchsorted(cluster_cdf, rng.random(rows), side="right")
    k = np.minimum(k, ITEMS_PER_CLUSTER - 1)
    it_cluster = cluster_items[user_cluster[u], k]
    it_pop = np.minimum(np.searchsorted(np.cumsum(pop), rng.random(rows), side="right"),
                        N_ITEMS - 1)
    it = np.where(from_cluster, it_cluster, it_pop)

    cat = item_cat[it]
    price = np.round(item_price[it] * rng.lognormal(0.0, 0.25, rows), 2)
    price = np.maximum(price, 0.01)
    qty = rng.integers(1, 11, rows)
    age = user_age[u]
    income = user_income[u]

    def z(x):
        x = x.astype(np.float64)
        return (x - x.mean()) / (x.std() + 1e-12)

    score = (-1.2 * z(price) + 0.8 * z(qty) - 0.6 * z(age) + 0.5 * z(income)
             + cat_eff[cat] + item_eff[it] + user_bias[u] + 0.2)
    clicked = (rng.random(rows) < sigmoid(score)).astype(np.int64)

    # Outliers after the label: extreme price or income.
    out_rows = np.flatnonzero(rng.random(rows) < P_OUTLIER)
    factor = rng.uniform(50.0, 1000.0, out_rows.size)
    on_price = rng.random(out_rows.size) < 0.5
    price = price.copy()
    income = income.copy()
    price[out_rows[on_price]] = np.round(price[out_rows[on_price]] * factor[on_price], 2)
    income[out_rows[~on_price]] = np.round(
        income[out_rows[~on_price]] * factor[~on_price]).astype(np.int64)

    # --shift: a later day whose prices and incomes drifted by a factor
    # exp(shift) after the clicks were drawn, so a model scaled on the
    # earlier day mis-reads them (0 = the data set above, unchanged)
    if shift:
        price = np.maximum(np.round(price * np.exp(shift), 2), 0.01)
        income = np.round(income * np.exp(shift)).astype(np.int64)

    user_names = np.array([f"u{i:05d}" for i in range(n_users)], dtype=object)
    item_names = np.array([f"i{i:04d}" for i in range(N_ITEMS)], dtype=object)
    cat_names = np.array(CATEGORIES, dtype=object)

    df = pd.DataFrame({
        "user_id": user_names[u],
        "item_id": item_names[it],
        "category": cat_names[cat],
        "price": price,
        "quantity": pd.array(qty, dtype="Int64"),
        "age": pd.array(age, dtype="Int64"),
        "income": pd.array(income, dtype="Int64"),
        "clicked": pd.array(clicked, dtype="Int64"),
    }, columns=COLUMNS)

    if tables is not None:
        uinc = user_income.copy()
        out_users = np.flatnonzero(rng.random(n_users) < P_OUTLIER * 2)
        uinc[out_users] = np.round(uinc[out_users] * rng.uniform(50.0, 1000.0, out_users.size))
        if shift:
            uinc = np.round(uinc * np.exp(shift)).astype(np.int64)
        uage = pd.array(user_age, dtype="Int64")
        uage[rng.random(n_users) < P_MISSING] = pd.NA
        tables["items"] = pd.DataFrame({"item_id": item_names, "category": cat_names[item_cat]})
        tables["users"] = pd.DataFrame({"user_id": user_names, "age": uage,
                                        "income": pd.array(uinc, dtype="Int64")})

    # Missing values: one field in ~1% of rows; the label gets 1/30 of them.
    miss_rows = np.flatnonzero(rng.random(rows) < P_MISSING)
    col_p = np.array([1, 1, 1, 1, 1, 1, 1, 0.25])
    miss_cols = rng.choice(len(COLUMNS), miss_rows.size, p=col_p / col_p.sum())
    for c, name in enumerate(COLUMNS):
        r = miss_rows[miss_cols == c]
        if r.size:
            if df[name].dtype == object:
                df.loc[r, name] = None
            else:
                df.loc[r, name] = pd.NA if str(df[name].dtype) == "Int64" else np.nan
    return df


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shift", type=float, default=0.0,
                    help="drift prices and incomes by exp(SHIFT) (examples/purchases/retrain.sh)")
    ap.add_argument("--split", metavar="DIR", help="also write the events, items and users tables")
    ap.add_argument("--days", type=int, default=7, help="--split: event files (default 7)")
    a = ap.parse_args(argv)
    if a.rows < 1:
        ap.error("--rows must be >= 1")
    if a.days < 1 or a.days > 366:
        ap.error("--days must be in 1..366")
    opts = dict(index=False, float_format="%.2f", lineterminator="\n", encoding="utf-8")
    if not a.split:
        generate(a.rows, a.seed, a.shift).to_csv(a.out, **opts)
        return 0
    tables = {}
    df = generate(a.rows, a.seed, a.shift, tables)
    events = df[["user_id", "item_id", "price", "quantity", "clicked"]]
    # a row that lost a table column keeps it: the tables hold those now
    joined = events.merge(tables["items"], on="item_id", how="left", validate="many_to_one")
    joined = joined.merge(tables["users"], on="user_id", how="left", validate="many_to_one")
    joined[COLUMNS].to_csv(a.out, **opts)
    os.makedirs(a.split, exist_ok=True)
    cuts = np.linspace(0, a.rows, a.days + 1).astype(np.int64)
    for d in range(a.days):
        day = datetime.date(2026, 11, 1) + datetime.timedelta(days=d)
        events.iloc[cuts[d]:cuts[d + 1]].to_csv(
            os.path.join(a.split, "events-%s.csv.gz" % day.isoformat()),
            compression={"method": "gzip", "mtime": 0}, **opts)
    tables["items"].to_csv(os.path.join(a.split, "items.csv"), **opts)
    tables["users"].to_csv(os.path.join(a.split, "users.csv"), **opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
