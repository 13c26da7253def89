#!/usr/bin/env bash
# test_journal_full.sh: a full disk under the coordinator's journal (its
# --data-dir on an 8 MiB tmpfs the test mounts and fills) refuses what
# needs a write with one clear line, keeps everything else answering,
# and resumes once space is freed, with a journal that replays
# (docs/reliability.md, Storage). Skipped (exit 77) where the test
# cannot mount a tmpfs (not root, or no mount permission here).
#  - job A (noop, 1500 tasks of 4 ms, one worker slot) runs; the tmpfs is filled; job B,
#    whose job file carries a 300 KB comment (its record needs pages the
#    journal does not have), is submitted in the background;
#  - the coordinator logs "coordinator journal full"; a submit with
#    --retries 0 fails with "coordinator journal full: DIR/journal:
#    writing N records failed: no space left on the device; a submit
#    refused, retry once space is freed", and so does a cancel; `jobs`
#    and `status` answer, and A is kept (running), not failed;
#  - the filler is removed: the journal is written again, B's submit
#    (retried by mlopsctl) prints its id, A and B succeed;
#  - the coordinator is SIGKILLed and restarted on the same directory:
#    the journal replays with nothing skipped, A and B are listed as
#    succeeded, and no third job exists.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
MNT="$CLUSTER_DIR/coordinator"
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=8m tmpfs "$MNT" 2>"$T/mount.err"; then
    echo "skipped: cannot mount a tmpfs for the coordinator's data directory: $(cat "$T/mount.err")"
    exit 77
fi
_jf_exit() {
    local rc=$?
    [ -z "${COORD_PID:-}" ] || kill -KILL "$COORD_PID" 2>/dev/null
    wait "${COORD_PID:-}" 2>/dev/null
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    (exit "$rc")
    _cleanup
}
trap _jf_exit EXIT
coord_log="$CLUSTER_DIR/logs/coordinator.log"

# more than the 256 a worker slot is given at once (noop's prefetch), so
# A still has tasks to dispatch when the journal fills
printf 'name: long\nnoop: {tasks: 1500, task_ms: 4}\n' >"$T/a.yaml"
{
    printf 'name: big\nnoop: {tasks: 20}\n'
    for i in $(seq 1 3000); do printf '# %0100d\n' "$i"; done
} >"$T/b.yaml"
printf 'name: small\nnoop: {tasks: 2}\n' >"$T/c.yaml"

cluster_start 1 1
a="$(ctl submit "$T/a.yaml")" || fail "submit A exit $?"
wait_for "[ \"\$(job_state $a)\" = running ]" 30

dd if=/dev/zero of="$MNT/filler" bs=64k >/dev/null 2>&1
[ "$(df -P "$MNT" | awk 'NR == 2 { print $4 }')" -lt 64 ] || fail "the tmpfs did not fill: $(df -h "$MNT")"
ctl submit "$T/b.yaml" >"$T/b.id" 2>"$T/b.err" &
BSUB=$!
wait_for "grep -q 'coordinator journal full' '$coord_log'" 60

ctl --retries 0 submit "$T/c.yaml" >/dev/null 2>"$T/c.err"
assert_eq "$?" 1 "exit of a submit while the journal is full"
cerr="$(tail -n 1 "$T/c.err")"
assert_contains "$cerr" "mlopsctl: coordinator journal full: $MNT/journal: writing" "the submit's line"
assert_contains "$cerr" "no space left on the device; a submit refused, retry once space is freed" "the submit's line"
ctl --retries 0 cancel "$a" >/dev/null 2>"$T/cancel.err"
assert_eq "$?" 1 "exit of a cancel while the journal is full"
assert_contains "$(cat "$T/cancel.err")" "coordinator journal full: " "the cancel's line"
assert_contains "$(cat "$T/cancel.err")" "cancel refused" "the cancel's line"
ctl jobs >/dev/null || fail "jobs while the journal is full: exit $?"
assert_eq "$(job_state "$a")" running "job A while the journal is full (kept)"
kill -0 "$COORD_PID" || fail "the coordinator died with its disk full"

rm -f "$MNT/filler"
wait_for "grep -q 'coordinator journal written again' '$coord_log'" 30
wait "$BSUB" || fail "submit B exit $? after space was freed: $(tail -n 2 "$T/b.err")"
b="$(cat "$T/b.id")"
[[ "$b" == j* ]] || fail "submit B printed '$b'"
for j in "$a" "$b"; do
    timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err" || fail "job $j: wait exit $?: $(tail -n 2 "$T/wait.err")"
done

ep="$(head -n 1 "$MNT/endpoint")"
coord_kill
coord_start "$ep"
! grep -q "unreadable records" "$coord_log" || fail "the journal did not replay cleanly: $(grep unreadable "$coord_log")"
ctl jobs -o json >"$T/jobs.json" || fail "jobs after the restart exit $?"
assert_eq "$(jget "sorted((x['job'], x['state']) for x in d['jobs'])" <"$T/jobs.json")" \
    "[[\"$a\", \"succeeded\"], [\"$b\", \"succeeded\"]]" "jobs after the restart"
echo "test_journal_full: ok ($a kept through a full journal, $b submitted through it; replay clean)"
