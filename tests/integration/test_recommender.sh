#!/usr/bin/env bash
# test_recommender.sh: a knn job in recommend mode with register: adds a
# recommender version (mlops-recommender/1), and `mlopsctl model
# recommend NAME@ALIAS USER` answers from it exactly as the batch stage
# did: for 40 users spread over the export (and every user with fewer
# than top_n items), the same items in the same order with the same
# scores, bit for bit; -n 3 is the first 3; an unknown user gets the
# most popular training items (numpy's counts), marked popular; the same
# job on 3 workers registers the same content. The
# version survives `mlopsctl rm` of the job and a SIGKILLed coordinator;
# the export is the stored file; bad references and -n, a classifier
# asked to recommend and a recommender asked to predict fail with a
# message and the right exit code. mlops-serve on the recommender answers
# POST /recommend exactly as `model recommend` does, and refuses bad
# bodies (400) and /invocations (404).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D" "$T/ans"
gen_purchases 20000 5 "$D/p.csv"
cat >"$D/rec.yaml" <<'YAML'
name: shop
input: p.csv
shard_rows: 5000
columns: {label: clicked, numeric: [price], categorical: [category]}
clean: {dropna: true}
knn: {k: 20, metric: cosine, mode: recommend, user: user_id, item: item_id, top_n: 10}
register: {model: shop-rec, tags: [day1]}
YAML
cluster_start 2 1
job="$(submit_wait "$D/rec.yaml")" || exit 1
assert_eq "$(ctl result "$job" -o json | jget 'd["registered"]')" "shop-rec@1" "result names the version"
ctl model alias shop-rec 1 production >/dev/null || fail "alias exit $?"
ctl export "$job" --stage knn -o "$T/batch.csv" || fail "export knn exit $?"
ctl export "$job" --stage clean -o "$T/clean.csv" || fail "export clean exit $?"
ctl model export shop-rec@production -o "$T/art.json" || fail "model export exit $?"
sha="$(ctl model show shop-rec@1 -o json | jget 'd["sha256"]')"
cmp -s "$T/art.json" "$CLUSTER_DIR/coordinator/models/$sha.json" || fail "export differs from the stored file"
assert_eq "$(jget 'd["format"], d["kind"], d["settings"]["k"], d["settings"]["n"], d["tags"], d["lineage"]["job"]' <"$T/art.json")" \
    "('mlops-recommender/1', 'user-knn', 20, 10, ['day1'], '$job')" "artifact header"

# the users to ask: 40 spread over the export, plus every short list
"$PY" - "$T/batch.csv" >"$T/users.txt" <<'EOF' || fail "cannot pick users"
import sys, pandas as pd
b = pd.read_csv(sys.argv[1], dtype={"user": str, "item": str})
users = list(dict.fromkeys(b["user"]))
pick = users[:: max(1, len(users) // 40)][:40]
short = [u for u, g in b.groupby("user", sort=False) if len(g) < 10]
print("\n".join(dict.fromkeys(pick + short[:5])))
EOF
[ "$(wc -l <"$T/users.txt")" -ge 40 ] || fail "fewer than 40 users in the export"
ask() { # ask NAME USER ARGS... -> $T/ans/NAME.json
    local name="$1" user="$2"
    shift 2
    ctl model recommend shop-rec@production "$user" -o json "$@" >"$T/ans/$name.json" ||
        fail "model recommend $user exit $?"
}
i=0
while read -r u; do
    ask "u$i" "$u"
    i=$((i + 1))
done <"$T/users.txt"
first="$(head -n 1 "$T/users.txt")"
ask top3 "$first" -n 3
ask unknown "no-such-user-x" -n 15

check() {
    "$PY" - "$T/batch.csv" "$T/clean.csv" "$T/users.txt" "$T/ans" <<'EOF' || fail "model recommend differs from the batch stage"
import json, sys, numpy as np, pandas as pd
bfile, cfile, ufile, A = sys.argv[1:]
# round_trip: pandas' default float parser may miss the last bit
b = pd.read_csv(bfile, dtype={"user": str, "item": str}, float_precision="round_trip")
users = open(ufile).read().split("\n")
users = [u for u in users if u]
for i, u in enumerate(users):
    a = json.load(open(f"{A}/u{i}.json"))
    want = b[b["user"] == u].sort_values("rank")
    got = [(x["item_id"], x["score"]) for x in a["items"]]
    exp = list(zip(want["item"], want["score"]))
    assert a["popular"] is False, f"{u}: marked popular"
    assert a["model"] == {"name": "shop-rec", "version": 1}, f"{u}: model {a['model']}"
    assert [g[0] for g in got] == [e[0] for e in exp], f"{u}: items {got} vs batch {exp}"
    bad = [(g, e) for g, e in zip(got, exp) if float(g[1]).hex() != float(e[1]).hex()]
    assert not bad, f"{u}: scores differ: {bad[:3]}"
t3 = json.load(open(f"{A}/top3.json"))
u0 = json.load(open(f"{A}/u0.json"))
assert t3["items"] == u0["items"][:3], f"-n 3: {t3['items']} vs {u0['items'][:3]}"
# the most popular: training interactions (all but each user's last of
# two or more), count descending, then the item's index (sorted ids)
c = pd.read_csv(cfile, dtype={"user_id": str, "item_id": str})
c = c.dropna(subset=["user_id", "item_id"])
items, it = np.unique(c["item_id"].values.astype(str), return_inverse=True)
_, uu = np.unique(c["user_id"].values.astype(str), return_inverse=True)
keep = np.ones(len(uu), bool)
last = {}
for r, v in enumerate(uu):
    last[v] = r
cnt = np.bincount(uu)
for v, r in last.items():
    if cnt[v] >= 2:
        keep[r] = False
count = np.bincount(it[keep], minlength=len(items))
order = [i for i in np.lexsort((np.arange(len(items)), -count)) if count[i] > 0][:15]
un = json.load(open(f"{A}/unknown.json"))
assert un["popular"] is True, "unknown user not marked popular"
got = [(x["item_id"], x["score"]) for x in un["items"]]
exp = [(items[i], float(count[i])) for i in order]
assert got == exp, f"unknown user: {got} vs numpy {exp}"
print(f"model recommend: {len(users)} users identical to the batch stage; unknown user gets the 15 most popular")
EOF
}
check

# mlops-serve on the recommender: POST /recommend gives the CLI's answers
"$MLOPS_BUILD_DIR/mlops-serve" --coordinator "$MLOPS_COORDINATOR" --model shop-rec@production \
    --listen 127.0.0.1:0 --addr-file "$T/serve.addr" </dev/null >>"$CLUSTER_DIR/logs/serve.log" 2>&1 &
echo "serve $!" >>"$CLUSTER_DIR/pids"
wait_for '[ -s "$T/serve.addr" ]' 20
URL="http://$(cat "$T/serve.addr")"
wait_for "curl -sf $URL/health" 30
"$PY" - "$URL" "$T/users.txt" "$T/ans" <<'EOF' || fail "POST /recommend differs from model recommend"
import json, sys, urllib.error, urllib.request
url, users, A = sys.argv[1:]
def post(path, body):
    rq = urllib.request.Request(url + path, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(rq, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
users = [x for x in open(users).read().split("\n") if x]
for i, u in enumerate(users):
    st, got = post("/recommend", json.dumps({"user_id": u}))
    exp = json.load(open(f"{A}/u{i}.json"))
    assert st == 200, (u, st, got)
    assert got["items"] == exp["items"] and got["popular"] is False, (u, got, exp)
    assert got["model"] == exp["model"], (got["model"], exp["model"])
st, got = post("/recommend", json.dumps({"user_id": "no-such-user-x", "n": 15}))
exp = json.load(open(f"{A}/unknown.json"))
assert st == 200 and got["popular"] is True and got["items"] == exp["items"], got
st, got = post("/recommend", json.dumps({"user_id": users[0], "n": 3}))
assert st == 200 and got["items"] == json.load(open(f"{A}/top3.json"))["items"], got
for body, want in (('{"n": 3}', "user_id: missing"), ('{"user_id": 7}', "user_id: expected a string"),
                   (json.dumps({"user_id": users[0], "n": 0}), "n: expected an integer"),
                   (json.dumps({"user_id": users[0], "k": 1}), "unknown field 'k'"),
                   ('{"user_id": ', "malformed JSON at line 1")):
    st, got = post("/recommend", body)
    assert st == 400 and got["error_code"] == "BAD_REQUEST" and want in got["message"], (body, st, got)
st, got = post("/invocations", '{"dataframe_split": {"columns": ["price"], "data": [[1]]}}')
assert st == 404 and "is a recommender" in got["message"], (st, got)
print(f"POST /recommend: {len(users)} users, an unknown one and n 3 as model recommend; bad bodies 400")
EOF

# table form
ctl model recommend shop-rec@1 "$first" >"$T/table.txt" || fail "table exit $?"
assert_contains "$(head -n 1 "$T/table.txt")" "RANK" "table header"
assert_contains "$(cat "$T/table.txt")" "$(jget 'd["items"][0]["item_id"]' <"$T/ans/u0.json")" "table holds the first item"
assert_contains "$(ctl model recommend shop-rec@1 nobody-here)" "most popular" "table marks an unknown user"

# bad input: exit 2 before anything is sent, exit 1 for what the
# coordinator or the artifact refuses
ctl model recommend shop-rec@1 "$first" -n 0 >/dev/null 2>"$T/e1"
assert_eq "$?" 2 "-n 0 exit"
assert_contains "$(cat "$T/e1")" "-n" "-n 0 names the flag"
ctl model recommend shop-rec@9 "$first" >/dev/null 2>"$T/e2"
assert_eq "$?" 1 "unknown version exit"
assert_contains "$(cat "$T/e2")" "9" "unknown version named"
ctl model recommend 'bad name' "$first" >/dev/null 2>/dev/null
assert_eq "$?" 2 "invalid name exit"

# the same job on 3 workers registers version 2 with the same content
worker_start worker-3
wait_for "[ \"\$(alive_workers)\" -ge 3 ]" 30
submit_wait "$D/rec.yaml" >/dev/null || exit 1
ctl model export shop-rec@2 -o "$T/art3.json" || fail "model export v2 exit $?"
"$PY" - "$T/art.json" "$T/art3.json" <<'EOF' || fail "the recommender differs between 2 and 3 workers"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for k in ("version", "created", "lineage"):
    a.pop(k), b.pop(k)
assert json.dumps(a) == json.dumps(b), [k for k in a if a[k] != b.get(k)]
EOF

# a classifier is not a recommender, and a recommender scores no rows
cat >"$D/clf.yaml" <<'YAML'
name: clicks
input: p.csv
shard_rows: 5000
columns: {label: clicked, numeric: [price], categorical: [category]}
clean: {dropna: true}
hash: {n_features: 1024}
train: {model: logistic, epochs: 1}
register: {model: clicks}
YAML
submit_wait "$D/clf.yaml" >/dev/null || exit 1
ctl model recommend clicks@1 "$first" >/dev/null 2>"$T/e3"
assert_eq "$?" 1 "recommend with a classifier exit"
assert_contains "$(cat "$T/e3")" "clicks version 1 is not a recommender (format mlops-model/1)" "a classifier is refused"
cat >"$D/pred.yaml" <<'YAML'
name: scored
input: p.csv
predict: {model: shop-rec@1}
YAML
pj="$(ctl submit "$D/pred.yaml")" || fail "submit predict"
ctl wait "$pj" >/dev/null 2>&1 && fail "a predict job with a recommender succeeded"
assert_contains "$(ctl status "$pj" -o json | jget 'd["error"]')" "mlops-model/1" "predict names the format it needs"

# rm of the job and a SIGKILLed coordinator keep the recommender
ctl rm "$job" >/dev/null || fail "rm exit $?"
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
wait_for "[ \"\$(alive_workers)\" -ge 3 ]" 30
rm -f "$T"/ans/*.json
i=0
while read -r u; do
    ask "u$i" "$u"
    i=$((i + 1))
done <"$T/users.txt"
ask top3 "$first" -n 3
ask unknown "no-such-user-x" -n 15
check
ctl model export shop-rec@production -o "$T/art2.json" || fail "model export after restart"
cmp -s "$T/art.json" "$T/art2.json" || fail "the artifact changed after rm and a restart"
echo "PASS test_recommender"
