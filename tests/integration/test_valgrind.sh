#!/usr/bin/env bash
# test_valgrind.sh: one small job (ingest + clean of 2000 rows, two
# shards) with the coordinator and a worker running under valgrind
# memcheck (issue 8 §5). Both are stopped with SIGTERM (a clean exit)
# and each valgrind log must say "ERROR SUMMARY: 0 errors": no invalid
# read or write, no use of uninitialised memory, no definite leak.
# Skipped (exit 77) in sanitizer builds (ASan and valgrind do not mix;
# the normal build runs it) and where valgrind is missing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
if grep -qa __asan_init "$MLOPS_BUILD_DIR/mlops-worker"; then
    echo "skipped: sanitizer build (valgrind cannot run ASan binaries; the normal build runs this test)"
    exit 77
fi
command -v valgrind >/dev/null || { echo "skipped: valgrind is not installed (scripts/install-deps.sh --test)"; exit 77; }
HB_MS=1000
D="$T/data"
mkdir -p "$D" "$CLUSTER_DIR/logs" "$CLUSTER_DIR/coordinator"
gen_purchases 2000 7 "$D/p.csv"
purchases_job "$D/small.yaml" p.csv
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=no --num-callers=20)

"${VG[@]}" --log-file="$T/vg.coordinator" "$MLOPS_BUILD_DIR/mlops-coordinator" --bind 'tcp://127.0.0.1:*' \
    --data-dir "$CLUSTER_DIR/coordinator" --heartbeat-ms "$HB_MS" </dev/null \
    >>"$CLUSTER_DIR/logs/coordinator.log" 2>&1 &
cpid=$!
echo "coordinator $cpid" >>"$CLUSTER_DIR/pids"
wait_for '[ -s "$CLUSTER_DIR/coordinator/endpoint" ]' 120
export MLOPS_COORDINATOR="$(head -n 1 "$CLUSTER_DIR/coordinator/endpoint")"
"${VG[@]}" --log-file="$T/vg.worker" "$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" \
    --data-dir "$CLUSTER_DIR/w1" --name w1 --slots 1 </dev/null >>"$CLUSTER_DIR/logs/w1.log" 2>&1 &
wpid=$!
echo "w1 $wpid" >>"$CLUSTER_DIR/pids"
wait_for '[ "$(ctl --timeout 3000 workers -o json | jget "len(d[\"workers\"])")" -eq 1 ]' 120

job="$(ctl --timeout 20000 submit "$D/small.yaml" --set shard_rows=1000 --wait 2>"$T/submit.err")" ||
    fail "submit under valgrind exit $?: $(tail -n 2 "$T/submit.err")"
assert_eq "$(ctl --timeout 20000 status "$job" -o json | jget 'd["state"]')" succeeded "job under valgrind"

kill -TERM "$wpid"
wait "$wpid"
wrc=$?
kill -TERM "$cpid"
wait "$cpid"
crc=$?
for who in coordinator worker; do
    grep -q "ERROR SUMMARY: 0 errors" "$T/vg.$who" || {
        sed -n '1,80p' "$T/vg.$who" >&2
        fail "valgrind found errors in the $who (log above)"
    }
done
[ "$crc" -ne 99 ] && [ "$wrc" -ne 99 ] || fail "valgrind exit: coordinator $crc, worker $wrc"
echo "test_valgrind: ok ($job succeeded; 0 memcheck errors in the coordinator and the worker)"
