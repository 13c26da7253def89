#!/usr/bin/env bash
# test_tries_restart.sh: a task's tries survive coordinator SIGKILLs
# (docs/reliability.md, Tries and timeouts). A one-task noop job whose
# task sleeps far past its task_timeout of 2 s, with max_attempts 3: the
# coordinator is SIGKILLed and restarted after the first timeout and
# again after the second. The job fails after the third, with "failed 3
# of 3 attempts", and its log shows exactly two re-queues (a coordinator
# that forgot the count would re-queue twice more before failing).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
printf 'name: stuck\nmax_attempts: 3\ntask_timeout: 2\nnoop: {tasks: 1, task_ms: 600000}\n' >"$T/j.yaml"
cluster_start 1 4
ep="$(head -n 1 "$CLUSTER_DIR/coordinator/endpoint")"
j="$(ctl submit "$T/j.yaml")" || fail "submit exit $?"
for n in 1 2; do
    wait_for "ctl logs $j | grep -q 'attempt $n of 3'" 60
    coord_kill
    coord_start "$ep"
done
timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err"
assert_eq "$?" 1 "wait exit of the job whose task keeps timing out"
err="$(ctl status "$j" -o json | jget 'd["error"]')"
assert_contains "$err" "noop task 0 failed 3 of 3 attempts" "error of $j"
assert_contains "$err" "timed out after 2 s (task_timeout)" "error of $j"
assert_eq "$(ctl logs "$j" | grep -c 're-queued')" 2 "re-queues in the log of $j"
echo "test_tries_restart: ok ($err)"
