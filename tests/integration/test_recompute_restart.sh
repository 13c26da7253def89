#!/usr/bin/env bash
# test_recompute_restart.sh: a finished stage's task that re-runs for a
# lost shard survives a coordinator restart. The journal keeps such a
# task pending; the restarted coordinator must queue it again, or the
# task that needs the shard waits for it for ever (what stalled
# test_chaos at the train stage's last task). Deterministic, with the
# heartbeat at 1 s:
#  - one worker runs a long train stage; a second one joins on a fresh
#    data directory (it holds none of the shards);
#  - worker-1 is SIGKILLed while it holds a train task, and 1.5
#    intervals later worker-2 SIGSTOPped:
#    worker-1 is declared lost first (at 2-3 intervals), so while
#    worker-2 still counts as alive the train tasks find their split
#    shards lost and their producers (split, and upstream clean and
#    ingest: every shard was on worker-1) are set to re-run; then
#    worker-2 is declared lost too (at 3.5 or more), nothing runs;
#  - the coordinator is SIGKILLed and restarted on its data directory,
#    worker-2 continued: it registers again and the train stage must go
#    on (more epochs logged), which it can only after the re-runs ran.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=1000
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 3 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full

cluster_start 1 1
job="$(ctl submit "$D/full.yaml" --set shard_rows=2000 --set train.epochs=1000)" || fail "submit exit $?"
wait_for "[ \"\$(stage_state $job train)\" = running ]" 60
worker_start worker-2 1
wait_for '[ "$(alive_workers)" -eq 2 ]' 20
pid2="$(worker_pid worker-2)"
# worker-1 dies holding a train task, so that at its loss a train task
# is queued again while worker-2 counts as alive, and that task finds its
# split shard lost. Killed at a random moment it could hold none: an
# epoch takes milliseconds, and a poll of its tasks is stale by the time
# it returns (CI: worker-1 was seen holding two, and held none at its
# kill; the next epoch's tasks had all gone to worker-2). So worker-1 is
# stopped first, which freezes what it holds, and killed only once the
# coordinator, having had 100 ms for the results already sent, still
# counts it running a train task; else it is continued and tried again.
w1_holds() {
    ctl tasks "$job" -o json | grep -q '"state":"running","worker":"worker-1"'
}
pid1="$(worker_pid worker-1)"
held=0
for _ in $(seq 100); do
    kill -STOP "$pid1" || fail "cannot stop worker-1 (pid $pid1)"
    sleep 0.1
    if w1_holds; then held=1; break; fi
    kill -CONT "$pid1"
    sleep "0.0$((RANDOM % 10))"
done
[ "$held" = 1 ] || fail "worker-1 never held a train task when stopped (100 tries)"
kill_worker worker-1
sleep 1.5
kill -STOP "$pid2" || fail "cannot stop worker-2 (pid $pid2)"
wait_for '[ "$(alive_workers)" -eq 0 ]' 20
# the re-runs may be set a few ms after the last worker's loss: on a fast
# box the train task that finds its shard lost is the one re-queued from
# worker-2 when it expires (the single read here missed them)
deadline=$((SECONDS + 6))
until reruns="$(ctl logs "$job" | grep -c 'lost: re-running')" && [ "$reruns" -gt 0 ]; do
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.1
done
[ "$reruns" -gt 0 ] || { kill -CONT "$pid2"; fail "no task was set to re-run for a lost shard before the restart: nothing tested (log: $(ctl logs "$job" | tail -n 3))"; }
[ "$(job_state "$job")" = running ] || { kill -CONT "$pid2"; fail "job $job is $(job_state "$job") before the restart"; }
sleep 0.5 # past --commit-delay-ms: the re-runs are journalled
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
kill -CONT "$pid2"
e0="$(ctl logs "$job" | grep -c 'train: epoch')"
echo "test_recompute_restart: $reruns re-run(s) pending at the restart; $e0 epochs logged"
wait_for '[ "$(alive_workers)" -eq 1 ]' 60
wait_for "[ \"\$(ctl logs $job | grep -c 'train: epoch')\" -ge $((e0 + 3)) ]" 90
[ "$(job_state "$job")" = running ] || fail "job $job is $(job_state "$job") after the restart"
ctl cancel "$job" >/dev/null || fail "cancel $job exit $?"
echo "test_recompute_restart: ok: the re-runs ran after the restart and train went on past epoch $e0"
