#!/usr/bin/env bash
# test_search_kill.sh: a search gives the same trial table and the same
# best model whatever the workers do. A 3 x 2 grid with 3 hashed folds
# (cv.method hash) on 10k purchases rows in 1000-row shards runs
#  a. on 1 worker (the reference),
#  b. on 3 workers,
#  c. on 3 workers with one SIGKILLed while the cv stage trains: the
#     same search on 100k rows in 100 shards with 2^22 features, whose cv
#     stage lasts long enough to be caught (the 10k-row one's took 0.07 s
#     on a fast box, between two polls), against the same job run
#     undisturbed on the same 3 workers (heartbeat 500 ms, so the death
#     is noticed within 1.5 s; max_attempts 20, so a loaded box that
#     makes a live worker miss its heartbeats only re-runs tasks);
#  d. with the coordinator SIGKILLed once the cv stage is done and
#     restarted on its endpoint and data dir: replay must put the best
#     trial's values back into the train section, so the version
#     registered at the end still carries them as tags (the 100k-row job
#     of c, so that the job is still running when the coordinator dies);
# b, c and d must give the reference's trial table (params, mean, std:
# the seconds differ), best index and every metric, bit for bit (cv.*,
# the refitted model's train_loss, model_bytes and test metrics). The
# same search with 2^22 hashed features, where a cv task serves only 2
# of the 18 instances, gives one trial table on 1 and 3 workers too.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=500
D="$T/data"
mkdir -p "$D"
gen_purchases 10000 11 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
cat >>"$D/full.yaml" <<'EOF'
cv: {seed: 3, method: hash}
search: {grid: {train.alpha: [1e-5, 1e-3, 1e-1], train.epochs: [1, 3]}, metric: auc, folds: 3}
register: {model: shop}
EOF
SET=(--set shard_rows=1000 --set max_attempts=20)

same_search() { # A.json B.json WHAT
    "$PY" - "$1" "$2" "$3" <<'EOF' || fail "$3: the trial tables differ (see above)"
import json, sys
a, b = (json.load(open(p)).get("search") for p in sys.argv[1:3])
if not a or not b or len(a["trials"]) != 6:
    sys.exit("%s: no search table of 6 trials: %r / %r" % (sys.argv[3], a, b))
strip = lambda s: (s["metric"], s["best"], [(t["params"], float(t["mean"]).hex(), float(t["std"]).hex())
                                            for t in s["trials"]])
if strip(a) != strip(b):
    sys.exit("%s:\n  %s\n  %s" % (sys.argv[3], strip(a), strip(b)))
EOF
}

cluster_start 1 1
ref="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
save_result "$ref" "$T/ref.json"
# 2^22 hashed features: 33.5 MB per model at its dense size, so a cv task
# serves 2 of the 18 (trial, fold) instances (stage_cv.c's per_task):
# 9 tasks per shard and phase
BIG=(--set hash.n_features=4194304)
big1="$(submit_wait "$D/full.yaml" "${SET[@]}" "${BIG[@]}")" || exit 1
save_result "$big1" "$T/big1.json"
ntask="$(ctl logs "$big1" | sed -n 's/.*stage cv started: \([0-9]*\) cv_epoch tasks.*/\1/p')"
[ -n "$ntask" ] && [ "$ntask" -gt 9 ] && [ $((ntask % 9)) -eq 0 ] ||
    fail "a 2^22-feature search: '$ntask' cv_epoch tasks, want 9 per shard"

worker_start worker-2
worker_start worker-3
wait_for '[ "$(alive_workers)" -ge 3 ]' 20
job="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
save_result "$job" "$T/three.json"
same_search "$T/ref.json" "$T/three.json" "1 vs 3 workers"
same_metrics "$T/ref.json" "$T/three.json" "1 vs 3 workers"
big3="$(submit_wait "$D/full.yaml" "${SET[@]}" "${BIG[@]}")" || exit 1
save_result "$big3" "$T/big3.json"
same_search "$T/big1.json" "$T/big3.json" "2^22 features (9 tasks per shard), 1 vs 3 workers"
same_metrics "$T/big1.json" "$T/big3.json" "2^22 features (9 tasks per shard), 1 vs 3 workers"
echo "test_search_kill: 1 and 3 workers give the same trial table and model"

cv_training() { # JOB: the cv stage is running, past its first phase
    ctl status "$1" -o json | grep -q '"name":"cv","state":"running","tasks_total":[0-9]*,"tasks_done":[0-9]*,"phase":[1-9]'
}
cv_done() { # JOB: the cv stage is done (grep, not python: polled without sleeps)
    ctl status "$1" -o json | grep -q '"name":"cv","state":"done"'
}
# the kill's job: 100k rows in 1000-row shards, 2^22 features (9 tasks
# per shard and phase); its reference is the same job undisturbed on
# these 3 workers (1 vs 3 workers is checked above)
gen_purchases 100000 12 "$D/k.csv"
sed 's/^input: p.csv/input: k.csv/' "$D/full.yaml" >"$D/kill.yaml"
kref="$(submit_wait "$D/kill.yaml" "${SET[@]}" "${BIG[@]}")" || exit 1
save_result "$kref" "$T/kref.json"
job="$(ctl submit "$D/kill.yaml" "${SET[@]}" "${BIG[@]}")" || fail "submit exit $?"
# no sleep between polls: a cv phase lasts tens of milliseconds
poll_for "cv_training $job" 120
kill_worker worker-2
[ "$(job_state "$job")" = running ] || fail "job $job ended before worker-2 was killed: nothing was tested"
echo "test_search_kill: killed worker-2 at $(ctl status "$job" -o json | grep -o '"name":"cv"[^}]*')"
wait_for '[ "$(worker_state worker-2)" = dead ]' 20
lim="$(jget 'max(60, int(6 * d["seconds"]) + 1)' <"$T/kref.json")"
timeout "$lim" "$MLOPSCTL" wait "$job" >/dev/null 2>&1 || fail "job $job did not succeed after the kill (wait exit $?)"
save_result "$job" "$T/killed.json"
same_search "$T/kref.json" "$T/killed.json" "a killed worker"
same_metrics "$T/kref.json" "$T/killed.json" "a killed worker"
echo "test_search_kill: a killed worker changes nothing ($(jget 'round(d["seconds"], 2)' <"$T/kref.json") s undisturbed)"

# the kill's job again: on a fast box the 10k-row job ended between the
# poll that saw its cv stage done and the coordinator's kill
job="$(ctl submit "$D/kill.yaml" "${SET[@]}" "${BIG[@]}")" || fail "submit exit $?"
poll_for "cv_done $job" 120
ep="$(head -n 1 "$CLUSTER_DIR/coordinator/endpoint")"
was="$(job_state "$job")"
coord_kill
[ "$was" = running ] || fail "job $job was $was before the coordinator's kill: nothing was tested"
coord_start "$ep"
echo "test_search_kill: coordinator restarted after the cv stage (the job was $was)"
timeout "$lim" "$MLOPSCTL" wait "$job" >/dev/null 2>&1 || fail "job $job did not succeed after the restart (wait exit $?)"
save_result "$job" "$T/restart.json"
same_search "$T/kref.json" "$T/restart.json" "a coordinator restart"
same_metrics "$T/kref.json" "$T/restart.json" "a coordinator restart"
version="$(jget 'd["registered"]' <"$T/restart.json")"
ctl model show "$version" -o json >"$T/version.json" || fail "model show $version exit $?"
"$PY" - "$T/kref.json" "$T/version.json" <<'EOF' || fail "the version registered after the restart lacks the best trial's tags"
import json, sys
s = json.load(open(sys.argv[1]))["search"]
tags = json.load(open(sys.argv[2])).get("tags", [])
best = s["trials"][s["best"]]["params"]
got = dict(t.split("=", 1) for t in tags if "=" in t)
if set(got) != set(best) or any(float(got[k]) != float(v) for k, v in best.items()):
    sys.exit("tags %s, want the values of %s" % (tags, best))
EOF
echo "test_search_kill: ok"
