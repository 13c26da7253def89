#!/usr/bin/env bash
# test_retrain.sh: examples/purchases/retrain.sh end to end, and the
# promotion gate both ways. Day 1 has no champion and is promoted; day 3
# (hash.n_features: 16) is worse on the same test rows and is kept; every
# decision is in the alias history. The champion is scored with its own
# pipeline: on day 3 it is day 2's model on day 2's test rows, so its
# metric must equal what evaluate gave that model on day 2.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
cluster_start 2 1
RETRAIN_ROWS=20000 RETRAIN_MODEL=clicks bash "$MLOPS_SOURCE_DIR/examples/purchases/retrain.sh" "$MLOPS_BUILD_DIR" \
    >"$T/retrain.out" 2>"$T/retrain.err" || fail "retrain.sh exit $?: $(tail -n 5 "$T/retrain.err")"
cat "$T/retrain.out"
grep -q '^day 1: promoted (challenger v1 .*no champion)' "$T/retrain.out" || fail "day 1 was not promoted"
grep -q '^day 3: kept (challenger v3 ' "$T/retrain.out" || fail "day 3 (misconfigured) was not kept"
ids=($(ctl jobs -o json | jget '" ".join(j["job"] for j in d["jobs"])'))
[ "${#ids[@]}" = 3 ] || fail "expected 3 jobs, got ${ids[*]}"
ctl result "${ids[1]}" -o json >"$T/day2.json"
ctl result "${ids[2]}" -o json >"$T/day3.json"
"$PY" - "$T/day2.json" "$T/day3.json" <<'PYEOF' || fail "the gate's numbers do not add up"
import json, sys
d2, d3 = (json.load(open(f)) for f in sys.argv[1:])
p2, p3 = d2["promotion"], d3["promotion"]
assert p3["decision"] == "kept" and p3["alias"] == "production", p3
assert p3["challenger"]["metric"] > p3["champion"]["metric"], p3  # logloss: lower is better
holder = 2 if p2["decision"] == "promoted" else 1
assert p3["champion"]["version"] == holder, (p2, p3)
if holder == 2:  # day 2's model on day 2's test rows, once as challenger, once as champion
    a, b = p2["challenger"]["metric"], p3["champion"]["metric"]
    assert abs(a - b) <= 1e-12 * abs(a), (a, b)
print("gate:", p2["decision"], p3["decision"])
PYEOF
hist="$(ctl model history clicks -o json | jget 'repr([(h["from"], h["to"]) for h in d["history"]])')"
[ "$hist" = "[(None, 1), (1, 2), (2, 2)]" ] || [ "$hist" = "[(None, 1), (1, 1), (1, 1)]" ] ||
    fail "alias history: $hist"
# the gate's moves carry the key of the client that submitted the job
fps="$(ctl model history clicks -o json | jget '" ".join(sorted(set(h["fingerprint"] for h in d["history"])))')"
if [ "${INSECURE:-0}" != 1 ]; then
    [ "${#fps}" = 16 ] || fail "gate moves without the submitter's key fingerprint: '$fps'"
fi
[ "$(ctl models -o json | jget 'd["models"][0]["aliases"]["production"]')" != 3 ] || fail "the misconfigured version holds production"
grep -q '^== mlopsctl models' "$T/retrain.out" || fail "retrain.sh does not end with mlopsctl models"
echo "test_retrain: ok"
