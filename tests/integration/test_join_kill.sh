#!/usr/bin/env bash
# test_join_kill.sh: a worker SIGKILLed during a shuffle join changes
# nothing but the time. The purchases data as tables (generate.py
# --split: 5 days of events, items, users; 100000 rows in 50 shards),
# joined with items and users by the shuffle path (join_broadcast_limit
# 0, so 4 partitions) on 3 workers (heartbeat 250 ms): first undisturbed,
# the reference; then again, a worker killed once the partitions exist
# (the join is past its join_part phase), so the partitions it held are
# lost and the stage starts over from its journalled plan. The job must
# still have been running after the kill, must succeed, and its `export
# --stage join` and metrics must equal the reference's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 100000 --seed 11 \
    --out "$D/all.csv" --split "$D" --days 5 || fail "generate.py --split failed"
cat >"$D/job.yaml" <<'EOF'
name: shuffled
input: events-*.csv.gz
shard_rows: 2000
join_broadcast_limit: 0
join:
  - {input: items.csv, on: item_id, columns: [category], validate: many_to_one}
  - {input: users.csv, on: user_id, columns: [age, income], validate: many_to_one}
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
EOF
cluster_start 3 1

ref="$(cd "$D" && submit_wait job.yaml)" || exit 1
save_result "$ref" "$T/ref.json"
ctl export "$ref" --stage join -o "$T/ref.csv" || fail "export $ref exit $?"

join_phase() { # JOB: the join stage's phase while it runs, else nothing
    ctl status "$1" -o json | grep -o '"name":"join","state":"running"[^}]*"phase":[0-9]*' |
        grep -o '[0-9]*$'
}
job="$(cd "$D" && ctl submit job.yaml)" || fail "submit exit $?"
wait_for '[ "$(join_phase '"$job"')" -ge 2 ] 2>/dev/null' 60
kill_worker worker-2
state="$(job_state "$job")"
[ "$state" = running ] || fail "job $job was already $state when worker-2 was killed: nothing was tested"
echo "test_join_kill: killed worker-2 at $(ctl status "$job" -o json | grep -o '"name":"join"[^}]*')"
wait_for '[ "$(worker_state worker-2)" = dead ]' 20
timeout 120 "$MLOPSCTL" wait "$job" >/dev/null 2>"$T/wait.err" ||
    fail "job $job did not survive the loss of worker-2: $(tail -n 2 "$T/wait.err")"
save_result "$job" "$T/killed.json"
same_metrics "$T/ref.json" "$T/killed.json" "worker-2 killed during the shuffle join"
ctl export "$job" --stage join -o "$T/killed.csv" || fail "export $job exit $?"
cmp -s "$T/ref.csv" "$T/killed.csv" || fail "export --stage join differs after killing worker-2"
echo "PASS test_join_kill"
