#!/usr/bin/env bash
# test_profile_round0.sh: where split is fused, the featurize tasks answer
# the profile stage's decile round 0 and count its categories
# (worker/profile_round0.c): the profile stage starts on the bins (no
# profile_qround phase), and the registered artifact's reference
# distributions are the same bytes as a keep_stages run's, whose profile
# stage answers round 0 with profile_qround tasks of its own.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=2000)

# reference JOB OUT: the registered model's reference distributions
reference() {
    local reg
    reg="$(ctl result "$1" -o json | jget 'd["registered"]')" || fail "$1: no registered model"
    ctl model export "$reg" -o "$T/$1.model.json" || fail "model export $reg exit $?"
    "$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["reference"]))' \
        "$T/$1.model.json" >"$2" || fail "$1: the artifact has no reference"
}

cluster_start 2 1
LOG="$CLUSTER_DIR/logs/coordinator.log"
fused="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
reference "$fused" "$T/fused.ref"
grep -q "job $fused: stage profile started: [0-9]* profile_bins tasks" "$LOG" ||
    fail "fused: the profile stage did not start on the bins: $(grep "job $fused: stage profile" "$LOG" | head -n 3)"
grep -q "job $fused: stage profile started: [0-9]* profile_qround" "$LOG" &&
    fail "fused: the profile stage ran a decile round of its own"
kept="$(submit_wait "$D/full.yaml" "${SET[@]}" --set keep_stages=true)" || exit 1
reference "$kept" "$T/kept.ref"
grep -q "job $kept: stage profile started: [0-9]* profile_qround tasks" "$LOG" ||
    fail "keep_stages: the profile stage did not answer round 0 itself: $(grep "job $kept: stage profile" "$LOG" | head -n 3)"
cmp -s "$T/fused.ref" "$T/kept.ref" ||
    fail "the reference distributions differ: fused $(head -c 300 "$T/fused.ref") kept $(head -c 300 "$T/kept.ref")"
echo "test_profile_round0: ok"
