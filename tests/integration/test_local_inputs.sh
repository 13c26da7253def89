#!/usr/bin/env bash
# test_local_inputs.sh: a local cluster reads its input file in place
# (--local-inputs, common/localin.h) and computes exactly what the upload
# path computes.
#  1. On an `mlopsctl up` cluster (2 workers, --local-inputs / by
#     default) the purchases pipeline runs with the input read in place
#     (the job log says so, nothing is written under the coordinator's
#     jobs/ directory) and again with `submit --upload`: every metric is
#     identical bit for bit and `export --stage clean` is byte-identical.
#     A .csv.gz input is uploaded and gives the same clean rows; a join
#     reads its left input in place and uploads its right table, with the
#     metrics and clean rows of the all-uploaded run. An input inside the
#     coordinator's data directory is refused; a bad
#     row read in place fails the job naming its line.
#  2. On a cluster with --local-inputs DIR: a file outside DIR, and a
#     symlink in DIR leading out of it, are refused at submit with one
#     line naming the file. A file rewritten in place (same size, new
#     bytes) between submit and dispatch (no worker yet) fails the job
#     with a line naming it.
#  3. A coordinator started by hand with --local-inputs, SIGKILLed while
#     a job on a local input waits for workers, and restarted: the job
#     re-plans from the journalled file identity and succeeds with the
#     metrics and export of step 1.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D/in" "$D/out"
gen_purchases 40000 5 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
SET=(--set shard_rows=5000)

# -------- 1. in place vs uploaded, on an `up` cluster
cluster_up 2
a="$(submit_wait "$D/full.yaml" "${SET[@]}")" || exit 1
assert_contains "$(ctl logs "$a")" "1 of 1 input files read in place" "log of $a"
[ ! -e "$CLUSTER_DIR/coordinator/jobs/$a/f0" ] || fail "job $a: the input was uploaded to the coordinator"
save_result "$a" "$T/a.json"
ctl export "$a" --stage clean -o "$T/a.clean.csv" || fail "export $a exit $?"

b="$(submit_wait "$D/full.yaml" "${SET[@]}" --upload)" || exit 1
logs="$(ctl logs "$b")"
assert_contains "$logs" "upload complete" "log of $b (--upload)"
case "$logs" in *"read in place"*) fail "job $b: --upload read the input in place" ;; esac
[ -s "$CLUSTER_DIR/coordinator/jobs/$b/f0" ] || fail "job $b: no uploaded copy"
save_result "$b" "$T/b.json"
ctl export "$b" --stage clean -o "$T/b.clean.csv" || fail "export $b exit $?"
same_metrics "$T/a.json" "$T/b.json" "read in place vs uploaded"
cmp "$T/a.clean.csv" "$T/b.clean.csv" || fail "export --stage clean: read in place differs from uploaded"

cp "$D/p.csv" "$CLUSTER_DIR/coordinator/secret.csv"
purchases_job "$CLUSTER_DIR/coordinator/own.yaml" secret.csv
ctl submit "$CLUSTER_DIR/coordinator/own.yaml" >/dev/null 2>"$T/own.err" && fail "an input in the coordinator's data dir was accepted"
assert_contains "$(cat "$T/own.err")" "secret.csv: inside the coordinator's data directory" "refusal"
# a compressed input is uploaded (the coordinator inflates it): the same clean rows
gzip -c "$D/p.csv" >"$D/p.csv.gz"
purchases_job "$D/gz.yaml" p.csv.gz
g="$(submit_wait "$D/gz.yaml" "${SET[@]}")" || exit 1
assert_contains "$(ctl logs "$g")" "upload complete" "log of $g (.csv.gz)"
ctl export "$g" --stage clean -o "$T/g.clean.csv" || fail "export $g exit $?"
cmp "$T/a.clean.csv" "$T/g.clean.csv" || fail "export --stage clean of the .csv.gz input differs"

# a join: the left input read in place, the right table uploaded; the same as all uploaded
"$PY" - "$D/p.csv" "$D/users.csv" <<'EOF2' || fail "cannot write users.csv"
import csv, sys, zlib
users = sorted({r["user_id"] for r in csv.DictReader(open(sys.argv[1]))})
with open(sys.argv[2], "w") as f:
    f.write("user_id,segment\n")
    for u in users:
        f.write("%s,s%d\n" % (u, zlib.crc32(u.encode()) % 7))
EOF2
cat >"$D/join.yaml" <<'EOF2'
name: joined
input: p.csv
shard_rows: 5000
join: [{input: users.csv, on: user_id, columns: [segment], how: left, validate: many_to_one}]
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id, segment]}
clean: {dropna: true, iqr_k: 1.5}
EOF2
j1="$(submit_wait "$D/join.yaml")" || exit 1
assert_contains "$(ctl logs "$j1")" "1 of 2 input files read in place" "log of $j1 (join)"
j2="$(submit_wait "$D/join.yaml" --upload)" || exit 1
save_result "$j1" "$T/j1.json"
save_result "$j2" "$T/j2.json"
same_metrics "$T/j1.json" "$T/j2.json" "join: left read in place vs uploaded"
ctl export "$j1" --stage clean -o "$T/j1.clean.csv" || fail "export $j1 exit $?"
ctl export "$j2" --stage clean -o "$T/j2.clean.csv" || fail "export $j2 exit $?"
cmp "$T/j1.clean.csv" "$T/j2.clean.csv" || fail "join: export --stage clean differs, in place vs uploaded"

# a bad row read in place fails the job naming its line, as uploaded
{ head -n 3 "$D/p.csv"; echo "abc,1,2,3,x,y,z,1"; } >"$D/bad.csv"
purchases_job "$D/bad.yaml" bad.csv
ctl submit "$D/bad.yaml" --wait >/dev/null 2>"$T/bad.err" && fail "a bad row read in place did not fail the job"
assert_contains "$(cat "$T/bad.err")" "bad.csv:4: " "error of a bad row read in place"
cluster_down

# -------- 2. refusals and a file changed before dispatch
cluster_up 0 --local-inputs "$D/in"
cp "$D/p.csv" "$D/out/p.csv"
purchases_job "$D/out.yaml" out/p.csv
ctl submit "$D/out.yaml" >/dev/null 2>"$T/out.err" && fail "a file outside --local-inputs was accepted"
assert_eq "$(wc -l <"$T/out.err")" 1 "lines of the refusal"
assert_contains "$(cat "$T/out.err")" "out/p.csv: outside --local-inputs $D/in" "refusal"

ln -s "$D/out/p.csv" "$D/in/link.csv"
purchases_job "$D/link.yaml" in/link.csv
ctl submit "$D/link.yaml" >/dev/null 2>"$T/link.err" && fail "a symlink leading out of --local-inputs was accepted"
assert_contains "$(cat "$T/link.err")" "in/link.csv: resolves to $D/out/p.csv, outside --local-inputs" "refusal"

# the same job to this coordinator with --upload: not its business where the bytes were
c0="$(ctl submit "$D/out.yaml" --upload)" || fail "submit --upload of a file outside the list: exit $?"
ctl cancel "$c0" >/dev/null || fail "cancel $c0 exit $?"

cp "$D/p.csv" "$D/in/m.csv"
purchases_job "$D/m.yaml" in/m.csv
m="$(ctl submit "$D/m.yaml" "${SET[@]}")" || fail "submit of $D/in/m.csv exit $?"
# same size, other bytes, same inode: only the mtime tells
"$PY" - "$D/in/m.csv" <<'EOF' || fail "cannot rewrite m.csv"
import os, sys, time
time.sleep(0.05)  # past the file system's timestamp granularity
with open(sys.argv[1], "r+b") as f:
    head = f.read(4096)
    i = head.index(b"\n") + 1  # the first data row's first byte: a digit or a letter
    f.seek(i)
    f.write(b"9" if head[i:i + 1] != b"9" else b"8")
EOF
"$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" --data-dir "$CLUSTER_DIR/w1" \
    --name w1 $(worker_key_args) --local-inputs "$D/in" </dev/null >>"$CLUSTER_DIR/logs/w1.log" 2>&1 &
echo "w1 $!" >>"$CLUSTER_DIR/pids"
timeout 120 "$MLOPSCTL" wait "$m" >/dev/null 2>&1
assert_eq "$(job_state "$m")" failed "job on a file changed before dispatch"
err="$(ctl result "$m" -o json | jget 'd["error"]')"
assert_contains "$err" "in/m.csv: modified since it was submitted" "error of $m"
cluster_down

# -------- 3. a coordinator crash with a local input: re-planned from the journal
COORD_ARGS="--local-inputs $D"
coord_start
c="$(ctl submit "$D/full.yaml" "${SET[@]}")" || fail "submit exit $?"
wait_for "[ \"\$(job_state $c)\" = running ]" 20
ep="$MLOPS_COORDINATOR"
coord_kill
coord_start "$ep"
for n in 1 2; do
    "$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" --data-dir "$CLUSTER_DIR/c$n" \
        --name "c$n" $(worker_key_args) --local-inputs "$D" </dev/null >>"$CLUSTER_DIR/logs/c$n.log" 2>&1 &
    echo "c$n $!" >>"$CLUSTER_DIR/pids"
done
timeout 120 "$MLOPSCTL" wait "$c" >/dev/null 2>"$T/wait.err" ||
    fail "job $c after the restart: $(tail -n 2 "$T/wait.err"); $(ctl result "$c" -o json | jget 'd.get("error")')"
assert_contains "$(ctl logs "$c")" "read in place" "log of $c"
save_result "$c" "$T/c.json"
same_metrics "$T/a.json" "$T/c.json" "read in place across a coordinator crash vs step 1"
ctl export "$c" --stage clean -o "$T/c.clean.csv" || fail "export $c exit $?"
cmp "$T/a.clean.csv" "$T/c.clean.csv" || fail "export --stage clean of $c differs from $a"
echo "PASS: test_local_inputs"
