#!/usr/bin/env bash
# test_cancel.sh: `mlopsctl cancel` stops a job's tasks on every worker
# within a few seconds and frees its shards (issue 8 §1.7). Two workers
# with two slots each.
#  - An 800 000-row job (a 200 000-row file four times, long enough to be
#    still running when the cancel comes) cancelled in its clean stage
#    (1600 shards): every
#    worker logs the drop (one away at the cancel gets it when it
#    registers again); within 5 s no worker reports a task executing
#    and the shard directory lists none of the job's shards; a worker
#    restarted on its data directory registers holding no shard (no task
#    wrote one after the drop).
#  - A noop job of 2000 tasks of 200 ms each (noop.task_ms), cancelled
#    while running: the running tasks stop at their next 10 ms step and
#    the ones prefetched into each worker's FIFO never start ("stopped
#    ... its job was cancelled" in the worker logs), the workers are idle
#    within 5 s, and the job's done count stops.
#  - The next job runs normally.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 200000 9 "$D/p1.csv"
{ cat "$D/p1.csv"; for i in 1 2 3; do tail -n +2 "$D/p1.csv"; done; } >"$D/p.csv"
purchases_job "$D/clean.yaml" p.csv
purchases_job "$D/clean1.yaml" p1.csv
cluster_start 2 2
shards() { ctl workers -o json | jget "sum(w['shards'] for w in d['workers'] if w['state'] == 'alive')"; }
executing() { ctl workers -o json | jget "sum(w['executing'] for w in d['workers'] if w['state'] == 'alive')"; }

j="$(ctl submit "$D/clean.yaml" --set shard_rows=500)" || fail "submit exit $?"
wait_for "[ \"\$(stage_state $j clean)\" = running ]" 60
[ "$(shards)" -gt 0 ] || fail "no shards held before the cancel"
out="$(ctl cancel "$j" -o json)" || fail "cancel exit $?"
assert_eq "$(jget 'd["state"]' <<<"$out")" cancelled "state answered by cancel"
t0=$SECONDS
dropped_everywhere() { for w in worker-1 worker-2; do grep -q "dropped the shards of job $1" "$CLUSTER_DIR/logs/$w.log" || return 1; done; }
wait_for "dropped_everywhere $j" 5
wait_for '[ "$(shards)" -eq 0 ]' 5
wait_for '[ "$(executing)" -eq 0 ]' 5
[ $((SECONDS - t0)) -le 6 ] || fail "the workers took $((SECONDS - t0)) s to stop"
assert_eq "$(job_state "$j")" cancelled "job state after the cancel"

kill_worker worker-1
wait "$(worker_pid worker-1)" 2>/dev/null
regs="$(grep -c 'registering with' "$CLUSTER_DIR/logs/worker-1.log")"
worker_start worker-1 2
wait_for "[ \"\$(grep -c 'registering with' \"$CLUSTER_DIR/logs/worker-1.log\")\" -gt $regs ]" 20
assert_eq "$(grep 'registering with' "$CLUSTER_DIR/logs/worker-1.log" | tail -n 1 | grep -o '([0-9]* shards held)')" \
    "(0 shards held)" "shards in worker-1's store after the cancel"
wait_for '[ "$(alive_workers)" -eq 2 ]' 20

printf 'name: many\nnoop: {tasks: 2000, task_ms: 200}\n' >"$D/many.yaml"
n="$(ctl submit "$D/many.yaml")" || fail "submit noop exit $?"
wait_for "[ \"\$(ctl status $n -o json | jget 'd[\"stages\"][0][\"tasks_done\"]')\" -gt 8 ]" 60
ctl cancel "$n" >/dev/null || fail "cancel $n exit $?"
t0=$SECONDS
wait_for "dropped_everywhere $n" 5
wait_for '[ "$(executing)" -eq 0 ]' 5
[ $((SECONDS - t0)) -le 6 ] || fail "the workers took $((SECONDS - t0)) s to stop $n"
stopped="$(cat "$CLUSTER_DIR"/logs/worker-*.log | grep -c "task $n/.* stopped after .* its job was cancelled")"
[ "$stopped" -gt 0 ] || fail "no queued task of $n was stopped by the cancel"
done1="$(ctl status "$n" -o json | jget 'd["stages"][0]["tasks_done"]')"
assert_eq "$(job_state "$n")" cancelled "state of $n"
[ "$done1" -lt 1000 ] || fail "$done1 tasks of $n ran"

k="$(submit_wait "$D/clean1.yaml" --set shard_rows=20000)" || exit 1
assert_eq "$(job_state "$k")" succeeded "the job after the cancel"
assert_eq "$(ctl status "$n" -o json | jget 'd["stages"][0]["tasks_done"]')" "$done1" "tasks done of $n later"
echo "test_cancel: ok ($j's shards freed; $stopped queued tasks of $n stopped, $done1 of 2000 ran; $k ran)"
