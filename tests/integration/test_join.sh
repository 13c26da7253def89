#!/usr/bin/env bash
# test_join.sh: the join stage against pandas.merge, computed at test time.
#  1. events (3000 rows, 6 shards) joined with items (many_to_one, left)
#     and users (left, some users missing): `export --stage join` equals
#     pandas' merge row for row (missing keys give empty values, which
#     clean's dropna then drops: rows_after_dropna equals pandas'), with 1
#     worker and with 3 workers byte for byte.
#  2. items with duplicate and missing keys, how inner (and users inner):
#     rows multiplied exactly as pandas multiplies them, in its order.
#  3. numeric keys ("7" on the left matches "7.0" on the right).
#  The shuffle join (join_broadcast_limit 0) gives the same bytes as the
#  broadcast join for all three, and the same metrics.
#  4. Bad input, each a one-line error naming the file and the key: a key
#     not in the left or the right header or a column not in the right
#     one (submit, exit 2, nothing uploaded); a numeric key on one side
#     only, and a duplicate key with validate:
#     many_to_one (the job fails).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
cluster_start 1

"$PY" - "$D" <<'EOF' || fail "cannot write the tables"
import sys
import numpy as np, pandas as pd
d = sys.argv[1]
r = np.random.default_rng(1)
n = 3000
ev = pd.DataFrame({"user_id": ["u%03d" % x for x in r.integers(0, 120, n)],
                   "item_id": ["i%03d" % x for x in r.integers(0, 60, n)],
                   "price": np.round(r.lognormal(2, 1, n), 2), "clicked": r.integers(0, 2, n)})
ev.loc[r.integers(0, n, 30), "price"] = np.nan
ev["item_no"] = [int(x[1:]) for x in ev["item_id"]]
ev.to_csv(d + "/events.csv", index=False)
# items i000..i054: i055..i059 are missing on the right
items = pd.DataFrame({"item_id": ["i%03d" % x for x in range(55)],
                      "category": ["c%d" % (x % 7) for x in range(55)]})
items.to_csv(d + "/items.csv", index=False)
# duplicates: every fifth item twice or three times, other categories, shuffled
dup = pd.concat([items, items[items.index % 5 == 0].assign(category="d"),
                 items[items.index % 10 == 0].assign(category="e")])
dup = dup.sample(frac=1, random_state=3)
dup.to_csv(d + "/items_dup.csv", index=False)
# numeric keys; some written as floats ("7.0")
num = pd.DataFrame({"item_no": [str(x) if x % 3 else "%d.0" % x for x in range(55)],
                    "category": ["c%d" % (x % 7) for x in range(55)]})
num.to_csv(d + "/items_num.csv", index=False)
num.rename(columns={"item_no": "item_id"}).to_csv(d + "/items_numid.csv", index=False)
users = pd.DataFrame({"user_id": ["u%03d" % x for x in range(120) if x % 9],
                      "age": [20 + x % 50 for x in range(120) if x % 9],
                      "income": [1000 * x for x in range(120) if x % 9]})
users.to_csv(d + "/users.csv", index=False)
open(d + "/empty.csv", "w").write("item_id,category\n")
items.rename(columns={"item_id": "item"}).to_csv(d + "/items_nokey.csv", index=False)
EOF

job_file() { # job_file FILE JOINS
    cat >"$1" <<EOF
name: joined
input: events.csv
shard_rows: 500
join: $2
columns: {numeric: [price, age, income], categorical: [category, item_id, user_id], label: clicked}
clean: {dropna: true, iqr_k: 1.5}
EOF
}
job_file "$D/left.yaml" "[{input: items.csv, on: item_id, columns: [category], how: left, validate: many_to_one}, {input: users.csv, on: user_id, columns: [age, income], how: left}]"
job_file "$D/inner.yaml" "[{input: items_dup.csv, on: item_id, columns: [category], how: inner}, {input: users.csv, on: user_id, columns: [age, income], how: inner}]"
job_file "$D/num.yaml" "[{input: items_num.csv, on: item_no, columns: [category]}, {input: users.csv, on: user_id, columns: [age, income]}]"

cat >"$T/merge.py" <<'EOF'
# merge.py EXPORT DIR HOW ITEMS KEY: the join export against pandas.merge.
import csv, sys
import numpy as np, pandas as pd
exp, d, how, items, key = sys.argv[1:6]
strs = {"user_id": str, "item_id": str, "clicked": str, "category": str}
ev = pd.read_csv(d + "/events.csv", dtype=strs)
it = pd.read_csv(d + "/" + items, dtype=strs)
us = pd.read_csv(d + "/users.csv", dtype=strs)
def merge(a, b, on):
    # pandas >= 2.2 keeps the left order in an inner merge, as its docs
    # say and as mlops does; older pandas (Debian bookworm's 1.5) groups
    # the rows by key instead: there, take the documented order (the left
    # merge's matched rows) and check that the rows are pandas' own
    got = a.merge(b, on=on, how=how)
    if how != "inner" or tuple(map(int, pd.__version__.split(".")[:2])) >= (2, 2):
        return got
    m = a.merge(b, on=on, how="left", indicator=True)
    m = m[m["_merge"] == "both"].drop(columns="_merge").reset_index(drop=True)
    key = lambda f: sorted(map(repr, f.astype({c: float for c in f if f[c].dtype != object})
                                     .itertuples(index=False)))
    if key(m) != key(got):
        sys.exit("inner merge: the rows differ from pandas' own")
    return m
m = merge(ev, it[[key, "category"]], key)
m = merge(m, us[["user_id", "age", "income"]], "user_id")
rows = list(csv.reader(open(exp, newline="", encoding="utf-8")))
hdr, body = rows[0], rows[1:]
if len(body) != len(m):
    sys.exit("join export has %d rows, pandas.merge %d" % (len(body), len(m)))
for c in hdr:
    j = hdr.index(c)
    w = m[c].to_numpy(object)
    for i, r in enumerate(body):
        g = r[j]
        if m[c].dtype == object:
            ok = g == ("" if pd.isna(w[i]) else w[i])
        else:
            ok = (g == "" and np.isnan(w[i])) or (g != "" and float(g) == float(w[i]))
        if not ok:
            sys.exit("column %s, row %d: mlops %r, pandas %r" % (c, i, g, w[i]))
print(len(m.dropna()[[c for c in hdr]]))
EOF

check() { # check NAME HOW ITEMS KEY: run the job, compare with pandas
    local job n
    job="$(cd "$D" && submit_wait "$1.yaml")" || exit 1
    ctl export "$job" --stage join -o "$T/$1-w$2.csv" || fail "export $job --stage join exit $?"
    n="$("$PY" "$T/merge.py" "$T/$1-w$2.csv" "$D" "$3" "$4" "$5")" || fail "$1: join differs from pandas"
    save_result "$job" "$T/$1.json"
    assert_eq "$(jget 'd["metrics"]["rows_after_dropna"]' <"$T/$1.json")" "$n" "$1: rows after dropna"
}

check left 1 left items.csv item_id
check inner 1 inner items_dup.csv item_id
check num 1 left items_num.csv item_no
worker_start worker-2
worker_start worker-3
wait_for '[ "$(alive_workers)" -ge 3 ]' 20
check left 3 left items.csv item_id
check inner 3 inner items_dup.csv item_id
cmp -s "$T/left-w1.csv" "$T/left-w3.csv" || fail "left join: 1 and 3 workers differ"
cmp -s "$T/inner-w1.csv" "$T/inner-w3.csv" || fail "inner join: 1 and 3 workers differ"
# the shuffle join (join_broadcast_limit 0): the broadcast join's bytes
for name in left inner num; do
    job="$(cd "$D" && submit_wait "$name.yaml" --set join_broadcast_limit=0)" || exit 1
    ctl logs "$job" 2>/dev/null | grep -q "shuffle join in 4 partitions" || fail "$name: no shuffle join"
    ctl export "$job" --stage join -o "$T/$name-shuffle.csv" || fail "export $job --stage join exit $?"
    cmp -s "$T/$name-w1.csv" "$T/$name-shuffle.csv" || fail "$name join: shuffle and broadcast differ"
    save_result "$job" "$T/$name-shuffle.json"
    same_metrics "$T/$name.json" "$T/$name-shuffle.json" "$name: shuffle against broadcast"
done

# bad input: the job fails with one line naming the file and the key
USERS="{input: users.csv, on: user_id, columns: [age, income]}"
fails_with() { # fails_with NAME JOIN MESSAGE: JOIN, then the users join
    local job err
    job_file "$D/$1.yaml" "[$2, $USERS]"
    job="$(cd "$D" && ctl submit "$1.yaml")" || fail "submit $1.yaml exit $?"
    err="$(ctl wait "$job" 2>&1)"
    assert_eq "$?" 1 "wait exit of $1"
    save_result "$job" "$T/$1.json"
    assert_contains "$(jget 'd["error"]' <"$T/$1.json")" "$3" "$1: error"
}
fails_with types "{input: items_numid.csv, on: item_id, columns: [category]}" \
    "join[0]: key 'item_id' is numeric in items_numid.csv but not in events.csv"
fails_with dups "{input: items_dup.csv, on: item_id, columns: [category], validate: many_to_one}" \
    "join[0]: items_dup.csv: key 'i0"
# refused by submit before anything is uploaded: a key or a column not in
# a header
refused_with() { # refused_with NAME JOINS MESSAGE
    local err
    job_file "$D/$1.yaml" "$2"
    err="$(cd "$D" && ctl submit "$1.yaml" 2>&1)"
    assert_eq "$?" 2 "submit exit of $1"
    assert_contains "$err" "$3" "$1: submit's message"
}
# an empty right table: submit reads every table's header and refuses one
# with no data rows (as it does an input), before anything is uploaded
refused_with empty "[{input: empty.csv, on: item_id, columns: [category]}, $USERS]" \
    "empty.csv: header only, no data rows"
refused_with nokey "[{input: items_nokey.csv, on: item_id, columns: [category]}, $USERS]" \
    "items_nokey.csv: join key 'item_id' (join[0].on) is not in the header"
refused_with nocol "[{input: items.csv, on: item_id, columns: [category, colour]}, $USERS]" \
    "items.csv: column 'colour' (join[0].columns) is not in the header"
refused_with noleft "[{input: items.csv, on: item_id, columns: [category]}, {input: users.csv, on: uid, columns: [age, income]}]" \
    "events.csv: column 'uid' (join.on) is not in the header"
echo "PASS test_join"
