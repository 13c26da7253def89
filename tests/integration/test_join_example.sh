#!/usr/bin/env bash
# test_join_example.sh: examples/purchases as a shop keeps it. generate.py
# --split writes five days of events (events-*.csv.gz), items.csv and
# users.csv, and the same rows as one file; job-joined.yaml (concat of
# the days, joined with items and users) and job.yaml (the one file) run
# the whole pipeline, clean to k-NN, on 2 workers and give the same
# metrics, bit for bit (the joined job has rows_right and rows_joined
# besides). 5 days of 4000 rows and shard_rows 4000: the shards of both
# jobs hold the same rows (a shard never spans two files, and the sums
# of the scaler and the model are added in shard order).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/ex"
mkdir -p "$D/data"
cluster_start 2
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 20000 --seed 5 \
    --out "$D/data/purchases.csv" --split "$D/data" --days 5 || fail "generate.py --split failed"
[ "$(ls "$D"/data/events-*.csv.gz | wc -l)" -eq 5 ] || fail "generate.py --split: not 5 event files"
cp "$MLOPS_SOURCE_DIR/examples/purchases/job.yaml" "$MLOPS_SOURCE_DIR/examples/purchases/job-joined.yaml" "$D/"
SETS=(--set shard_rows=4000 --set hash.n_features=65536)
single="$(cd "$D" && submit_wait job.yaml "${SETS[@]}")" || exit 1
joined="$(cd "$D" && submit_wait job-joined.yaml "${SETS[@]}")" || exit 1
save_result "$single" "$T/single.json"
save_result "$joined" "$T/joined.json"
"$PY" - "$T/single.json" "$T/joined.json" <<'EOF' || fail "the joined job's metrics differ from the single-file job's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ma, mb = dict(a["metrics"]), dict(b["metrics"])
for m, d in ((ma, a), (mb, b)):
    if "model" in m:
        m["model"] = m["model"].replace(d["job"], "JOB")
extra = set(mb) - set(ma)
if extra != {"rows_right", "rows_joined"}:
    sys.exit("metrics only the joined job has: %s" % sorted(extra))
bad = [k for k in sorted(ma) if json.dumps(ma[k]) != json.dumps(mb.get(k))]
for k in bad:
    print("%s: single %r, joined %r" % (k, ma[k], mb.get(k)))
if bad or "auc" not in ma:
    sys.exit(1)
print("%d metrics equal (auc %s)" % (len(ma), ma["auc"]))
EOF
echo "PASS test_join_example"
