#!/usr/bin/env bash
# test_disk_full.sh: a worker whose data directory fills up (a 4 MiB
# tmpfs mounted by the test) fails the job with one clear line, and both
# daemons stay up and serve (issue 8 §1.6). Skipped (exit 77) where the
# test cannot mount a tmpfs (not root, or no mount permission here).
#  - a 100 000-row job whose ingest shards need more than 4 MiB fails:
#    its error names the task, the worker and "no space left on the
#    device"; the coordinator and the worker are still running and
#    answer `jobs` and `workers`;
#  - after `rm` of the failed job (which frees the space), a small job on
#    the same worker succeeds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
D="$T/data"
mkdir -p "$D" "$CLUSTER_DIR/full"
if ! mount -t tmpfs -o size=4m tmpfs "$CLUSTER_DIR/full" 2>"$T/mount.err"; then
    echo "skipped: cannot mount a tmpfs for the worker's data directory: $(cat "$T/mount.err")"
    exit 77
fi
_umount() { umount "$CLUSTER_DIR/full" 2>/dev/null || umount -l "$CLUSTER_DIR/full" 2>/dev/null; }
trap '_umount; _cleanup' EXIT
gen_purchases 100000 4 "$D/big.csv"
gen_purchases 2000 4 "$D/small.csv"
purchases_job "$D/big.yaml" big.csv
purchases_job "$D/small.yaml" small.csv

coord_start
worker_start full 1
wait_for '[ "$(alive_workers)" -eq 1 ]' 20
wpid="$(worker_pid full)"

j="$(ctl submit "$D/big.yaml" --set shard_rows=5000)" || fail "submit exit $?"
ctl wait "$j" >/dev/null 2>"$T/wait.err"
assert_eq "$?" 1 "wait exit of the job that fills the disk"
err="$(ctl status "$j" -o json | jget 'd["error"]')"
assert_contains "$err" "ingest task" "error of $j"
assert_contains "$err" "on worker w1 (full): store: no space left on the device writing $j/ingest/" "error of $j"
assert_eq "$(tail -n 1 "$T/wait.err")" "mlopsctl: job $j failed: $err" "wait's line"
kill -0 "$COORD_PID" || fail "the coordinator died"
kill -0 "$wpid" || fail "the worker died on a full disk"
ctl jobs >/dev/null || fail "jobs after the full disk exit $?"
assert_eq "$(worker_state full)" alive "the worker after the full disk"

ctl rm "$j" >/dev/null || fail "rm $j exit $?"
wait_for "grep -q 'dropped the shards of job $j' \"$CLUSTER_DIR/logs/full.log\"" 10
k="$(submit_wait "$D/small.yaml" --set shard_rows=1000)" || exit 1
assert_eq "$(job_state "$k")" succeeded "a small job after the space was freed"
echo "test_disk_full: ok ($j failed: $err; $k succeeded after rm)"
