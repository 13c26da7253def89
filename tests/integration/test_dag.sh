#!/usr/bin/env bash
# test_dag.sh: stages that do not need each other run at the same time
# (planner_stage_needs, lifecycle.c), and that changes no result. Two
# workers, a 60 000-row purchases pipeline with a knn recommend stage
# (which reads clean's frame only; items as its users, 1 763 of them, so
# that it lasts past train's start):
#  - the job log shows knn started before train is done, and profile's
#    decile rounds too (its count phase, which scores with the model,
#    waits for train); `status` shows knn's start inside train's span;
#  - its metrics equal, bit for bit, those of the same job without knn
#    (the model stages) and of the job with knn alone (no model stages),
#    where nothing overlaps knn; the metrics come in pipeline order;
#  - the coordinator SIGKILLed while train and knn both run, then
#    restarted: the job resumes both and succeeds with the same metrics,
#    in the same order, and the same `export --stage knn` bytes.
HB_MS=250
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 60000 11 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
cp "$D/full.yaml" "$D/job.yaml"
echo "knn: {k: 10, metric: cosine, mode: recommend, user: item_id, item: user_id, top_n: 10}" >>"$D/job.yaml"
purchases_job "$D/knn.yaml" p.csv
echo "knn: {k: 10, metric: cosine, mode: recommend, user: item_id, item: user_id, top_n: 10}" >>"$D/knn.yaml"
SET=(--set shard_rows=5000 --set train.epochs=10)

# line number of the first log line of job $1 that contains $2
log_line() {
    ctl logs "$1" | grep -n -F -m 1 "$2" | cut -d: -f1
}

# before JOB A B: log line A comes before log line B
before() {
    local a b
    a="$(log_line "$1" "$2")"
    b="$(log_line "$1" "$3")"
    [ -n "$a" ] && [ -n "$b" ] || fail "job $1: log lacks '$2' or '$3': $(ctl logs "$1" | tail -n 20)"
    [ "$a" -lt "$b" ] || fail "job $1: '$2' (line $a) is not before '$3' (line $b): stages ran one after another"
}

# the metrics' names in the order `result` gives them
metric_order() {
    jget 'list(d["metrics"])' <"$1"
}

cluster_start 2 1
ref="$(submit_wait "$D/job.yaml" "${SET[@]}")" || exit 1
save_result "$ref" "$T/ref.json"
before "$ref" "stage knn started" "stage train done"
before "$ref" "stage profile started" "stage train done"
overlap="$(ctl status "$ref" -o json | jget '[s for s in d["stages"] if s["name"] == "knn"][0]["started_s"] < [s["started_s"] + s["seconds"] for s in d["stages"] if s["name"] == "train"][0]')"
assert_eq "$overlap" "True" "status of $ref: knn started before train ended"
assert_eq "$(jget '[s["name"] for s in d["stages"]]' <"$T/ref.json")" \
    '["ingest", "clean", "scale", "hash", "split", "train", "evaluate", "profile", "knn"]' "stage list of $ref (pipeline order)"
ctl export "$ref" --stage knn -o "$T/ref.knn.csv" || fail "export --stage knn of $ref exit $?"
echo "$ref: $(ctl status "$ref" -o json | jget '" ".join("%s %.3f-%.3f" % (s["name"], s["started_s"], s["started_s"] + s["seconds"]) for s in d["stages"])')"

# the same stages where knn overlaps nothing
model="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
save_result "$model" "$T/model.json"
knn="$(submit_wait "$D/knn.yaml" --set shard_rows=5000)" || exit 1
save_result "$knn" "$T/knn.json"
ctl export "$knn" --stage knn -o "$T/knn.knn.csv" || fail "export --stage knn of $knn exit $?"
cmp "$T/ref.knn.csv" "$T/knn.knn.csv" || fail "knn's recommendations differ with and without the model stages beside them"
"$PY" - "$T/ref.json" "$T/model.json" "$T/knn.json" <<'EOF' || fail "metrics of $ref differ from the jobs run apart (see above)"
import json, sys
ref, model, knn = (json.load(open(p))["metrics"] for p in sys.argv[1:])
bad = []
for part in (model, knn):
    for k, v in part.items():
        if k == "model":
            continue
        w = ref.get(k)
        same = w == v if not isinstance(v, float) else isinstance(w, float) and w.hex() == v.hex()
        if not same:
            bad.append((k, w, v))
# pipeline order: the model stages' metrics, then knn's
want = [k for k in model if k != "model" and k != "train_loss"]
want += [k for k in knn if k not in want and k not in ("model", "train_loss")]
got = [k for k in ref if k not in ("model", "train_loss")]
if got != want:
    bad.append(("order", got, want))
for b in bad:
    print("differs:", b)
sys.exit(1 if bad else 0)
EOF

# SIGKILL the coordinator while train and knn both run: as soon as its
# log says train started (knn started at clean's end and lasts longer
# than scale + split). On a box so loaded that knn was done first, again
# with a new job, up to three times.
for try in 1 2 3; do
    c="$(ctl submit "$D/job.yaml" "${SET[@]}")" || fail "submit exit $?"
    wait_for "grep -q 'job $c: stage train started' '$CLUSTER_DIR/logs/coordinator.log'" 90
    ep="$(head -n 1 "$CLUSTER_DIR/coordinator/endpoint")"
    coord_kill
    coord_start "$ep"
    wait_for '[ "$(alive_workers)" -eq 2 ]' 20
    timeout 120 "$MLOPSCTL" wait "$c" 2>"$T/wait.err"
    rc=$?
    [ "$rc" -ne 124 ] || fail "job $c did not finish within 120 s of the restart; state $(job_state "$c")"
    [ "$rc" -eq 0 ] || fail "job $c after the coordinator restart: wait exit $rc: $(tail -n 2 "$T/wait.err")"
    # train's start may not have been journalled yet: then it was
    # pending, ready, and is started on restore
    resumed="$(ctl logs "$c" | grep -o 'resuming at stage .*')"
    case "$resumed" in
        *knn*) break ;;
    esac
    echo "try $try: knn was done before the crash ($resumed); again"
    [ "$try" -lt 3 ] || fail "knn was done before train started in three tries"
done
save_result "$c" "$T/c.json"
same_metrics "$T/ref.json" "$T/c.json" "job interrupted while train and knn ran vs uninterrupted"
assert_eq "$(metric_order "$T/c.json")" "$(metric_order "$T/ref.json")" "metric order of $c after the restart"
ctl export "$c" --stage knn -o "$T/c.knn.csv" || fail "export --stage knn of $c exit $?"
cmp "$T/ref.knn.csv" "$T/c.knn.csv" || fail "export --stage knn of $c differs from $ref"
echo "test_dag: ok (knn beside train in $ref; $c after a coordinator crash: $resumed)"
