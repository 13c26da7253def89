#!/usr/bin/env bash
# test_upload_crash.sh: an acknowledged upload survives a coordinator
# SIGKILL. The coordinator no longer fsyncs an uploaded file on its loop:
# the journal's committer syncs it (and its directory) before the batch
# that records the job as uploaded, and the last chunk's ack goes out
# after that commit (coordinator/upload.c). So once `submit --upload` has
# printed the job id (every chunk acknowledged), a coordinator killed at
# once and restarted on its data directory still has the job with all
# its input: it runs to the same metrics as an uninterrupted run, and its
# stored input is the file's bytes. (SIGKILL keeps the page cache, so
# this checks the ordering - no ack before the commit that names the
# synced file - not a power cut.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
gen_purchases 3000 5 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=1000 --upload)

cluster_start 2 1
a="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
save_result "$a" "$T/a.json"

ep="$MLOPS_COORDINATOR"
for round in 1 2; do
    b="$(ctl submit "$D/full.yaml" "${SET[@]}")" || fail "round $round: submit --upload exit $?"
    coord_kill
    coord_start "$ep"
    f="$CLUSTER_DIR/coordinator/jobs/$b/f0"
    [ -f "$f" ] || fail "round $round: no stored upload $f after the restart"
    cmp -s "$f" "$D/p.csv" || fail "round $round: the stored upload of $b differs from the file"
    timeout 120 "$MLOPSCTL" wait "$b" 2>"$T/wait.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "round $round: job $b after the restart: wait exit $rc: $(tail -n 2 "$T/wait.err"); $(ctl logs "$b" | tail -n 3)"
    save_result "$b" "$T/b$round.json"
    same_metrics "$T/a.json" "$T/b$round.json" "round $round: acknowledged upload, coordinator killed, vs uninterrupted"
done
echo "ok: acknowledged uploads survived two coordinator kills"
