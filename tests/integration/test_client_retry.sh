#!/usr/bin/env bash
# test_client_retry.sh: mlopsctl rides out a coordinator that goes away
# (issue 8 §1.3). One coordinator and one worker (heartbeat 250 ms):
#  - idempotency: `submit --idempotency-key K` twice answers the same job
#    id and makes one job (its log says so); after a coordinator SIGKILL
#    and restart the key still answers that id (it is journalled);
#  - reads retry: `jobs` started while the coordinator is down, which is
#    restarted a second later on its endpoint and data directory,
#    succeeds (--retries 5); with --retries 0 it exits 3 at once;
#  - wait survives a restart: `wait` on a running 150 000-task noop job,
#    the coordinator SIGKILLed and restarted under it, returns exit 0 with
#    the job succeeded, and every task ran (metric tasks = 150000).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
printf 'name: tiny\nnoop: {tasks: 20}\n' >"$D/tiny.yaml"
printf 'name: long\nnoop: {tasks: 150000}\n' >"$D/long.yaml"
cluster_start 1 2
ep="$MLOPS_COORDINATOR"

# ------------------------------------------------------------ idempotency
a="$(ctl submit --idempotency-key key-1 "$D/tiny.yaml")" || fail "submit exit $?"
b="$(ctl submit --idempotency-key key-1 "$D/tiny.yaml")" || fail "repeated submit exit $?"
assert_eq "$b" "$a" "job id of a submit repeated with the same key"
c="$(ctl submit --idempotency-key key-2 "$D/tiny.yaml")" || fail "submit key-2 exit $?"
[ "$c" != "$a" ] || fail "a different key answered the same job $a"
n="$(ctl jobs -o json | jget "len([x for x in d['jobs'] if x['job'] == '$a'])")"
assert_eq "$n" 1 "jobs listed as $a"
assert_eq "$(ctl jobs -o json | jget "len(d['jobs'])")" 2 "jobs after three submits with two keys"
assert_contains "$(ctl logs "$a")" "submit repeated with the same idempotency key; answered $a"
wait_for "[ \"\$(job_state $a)\" = succeeded ]" 20
e="$(ctl submit --idempotency-key "$(printf 'k%.0s' {1..129})" "$D/tiny.yaml" 2>&1)"
assert_eq "$?" 2 "exit of a 129-byte key"
assert_eq "$e" "mlopsctl: submit: --idempotency-key: expected 1 to 128 characters" "long key message"

coord_kill
coord_start "$ep"
b="$(ctl submit --idempotency-key key-1 "$D/tiny.yaml")" || fail "submit after the restart exit $?"
assert_eq "$b" "$a" "job id of the key after a coordinator restart"
assert_eq "$(ctl jobs -o json | jget "len(d['jobs'])")" 2 "jobs after the restart"

# ------------------------------------------------------------ read retries
coord_kill
start=$SECONDS
ctl --timeout 300 --retries 0 jobs >/dev/null 2>"$T/r0.err"
assert_eq "$?" 3 "jobs --retries 0 while the coordinator is down"
assert_eq "$(cat "$T/r0.err")" "mlopsctl: cannot reach the coordinator at $ep (no reply within 300 ms)"
ctl --timeout 300 --retries 1 jobs >/dev/null 2>"$T/r1.err"
assert_eq "$?" 3 "jobs --retries 1 while the coordinator is down"
assert_eq "$(cat "$T/r1.err")" "mlopsctl: cannot reach the coordinator at $ep (no reply within 300 ms, 2 tries)"
ctl --timeout 300 --retries 5 jobs -o json >"$T/late.json" 2>"$T/late.err" &
late=$!
sleep 1 # the read's first tries go unanswered
coord_start "$ep"
wait "$late" || fail "jobs with retries across the restart exit $?: $(cat "$T/late.err")"
assert_eq "$(jget "len(d['jobs'])" <"$T/late.json")" 2 "jobs read across the restart"
[ $((SECONDS - start)) -le 20 ] || fail "the read retries took $((SECONDS - start)) s"

# ------------------------------------------------------- wait across a restart
wait_for '[ "$(alive_workers)" -eq 1 ]' 20
j="$(ctl submit "$D/long.yaml")" || fail "submit long exit $?"
ctl --timeout 2000 wait "$j" >/dev/null 2>"$T/wait.err" &
waiter=$!
wait_for "[ \"\$(job_state $j)\" = running ]" 20
assert_eq "$(job_state "$j")" running "state of $j before the kill"
coord_kill
kill -0 "$waiter" 2>/dev/null || fail "wait ended when the coordinator died: $(cat "$T/wait.err")"
coord_start "$ep"
timeout 120 tail --pid="$waiter" -f /dev/null
wait "$waiter"
rc=$?
[ "$rc" -eq 0 ] || fail "wait across the restart exit $rc: $(tail -n 3 "$T/wait.err")"
assert_eq "$(job_state "$j")" succeeded "state of $j after wait"
assert_eq "$(ctl result "$j" -o json | jget "d['metrics']['tasks']")" 150000 "tasks run by $j"
echo "test_client_retry: ok (key answered $a twice and after a restart; read and wait survived restarts)"
