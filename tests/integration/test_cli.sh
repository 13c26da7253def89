#!/usr/bin/env bash
# test_cli.sh: mlopsctl end to end.
# 1. Local behaviour: --help, usage errors, bad job files rejected with
#    exit 2 and the right one-line message before anything is sent (the
#    coordinator endpoint given is dead: had mlopsctl tried to send, it
#    would have exited 3), unreachable coordinator -> exit 3 in bounded
#    time with the endpoint named.
# 2. A real cluster: up, workers, submit --wait of a small clean job,
#    status/result/jobs/logs, export of the clean stage compared value by
#    value with pandas (dropna + IQR filter), the same export again after
#    a worker holding shards is SIGKILLed, a 50-task noop job, a failing
#    job (exit 1 with its error), cancel, a second
#    `up` on the same data dir refused, down (idempotent), and after down
#    the coordinator is unreachable.
source "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- help
out="$(ctl --help)" || fail "--help exit $?"
assert_contains "$out" "Usage:  mlopsctl [OPTIONS] COMMAND" "--help"
for c in up down submit jobs status wait cancel result workers logs export; do
    assert_contains "$out" "  $c " "--help command list"
done
out="$(ctl submit --help)" || fail "submit --help exit $?"
assert_contains "$out" "--set KEY=VALUE" "submit --help"
out="$(ctl export --help)" || fail "export --help exit $?"
assert_contains "$out" "--stage NAME" "export --help"

err="$(ctl frobnicate 2>&1)"
assert_eq "$?" 2 "unknown command exit"
assert_contains "$err" "unknown command 'frobnicate'"
err="$(ctl jobs --bogus 2>&1)"
assert_eq "$?" 2 "unknown option exit"
assert_contains "$err" "jobs: unknown option '--bogus'"
err="$(ctl status 2>&1)"
assert_eq "$?" 2 "missing argument exit"
err="$(ctl jobs -o yaml 2>&1)"
assert_eq "$?" 2 "bad -o exit"
assert_contains "$err" "expected 'table' or 'json', got 'yaml'"
err="$(ctl --timeout 0 jobs 2>&1)"
assert_eq "$?" 2 "bad --timeout exit"

# ------------------------------------------------------------ job files
DEAD="tcp://127.0.0.1:$(free_port)"
J="$T/jobs"
mkdir -p "$J"
"$PY" - "$J/data.csv" <<'EOF'
import sys, numpy as np
rng = np.random.RandomState(7)
n = 3000
price = np.round(rng.lognormal(3, 0.5, n), 2)
qty = rng.randint(1, 11, n).astype(float)
income = np.round(rng.normal(50000, 12000, n), 2)
price[rng.choice(n, 15, replace=False)] *= 200      # outliers
income[rng.choice(n, 10, replace=False)] *= 100
cats = np.array(["books", "toys, games", "électronique", "garden"])
cat = cats[rng.randint(0, 4, n)]
clicked = rng.randint(0, 2, n)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("price,quantity,category,income,clicked\n")
    for i in range(n):
        vals = [repr(price[i]), "%d" % qty[i], cat[i], repr(income[i]), "%d" % clicked[i]]
        if i % 97 == 5:
            vals[i % 4] = ""                          # missing values
        vals[2] = '"%s"' % vals[2] if "," in vals[2] else vals[2]
        f.write(",".join(vals) + "\n")
EOF
cat >"$J/small.yaml" <<'EOF'
name: small
input: data.csv
shard_rows: 500
columns:
  numeric: [price, quantity, income]
  categorical: [category]
clean: {dropna: true, iqr_k: 1.5}
EOF

check_bad_job() { # FILE EXPECTED-MESSAGE [SET...]
    local file="$1" want="$2"
    shift 2
    local e
    e="$(ctl --timeout 2000 -c "$DEAD" submit "$file" "$@" 2>&1 >/dev/null)"
    local rc=$?
    assert_eq "$rc" 2 "exit code for $file $*"
    assert_contains "$e" "$want" "message for $file $*"
    [ "$(printf '%s\n' "$e" | wc -l)" -eq 1 ] || fail "message for $file is not one line: $e"
}

printf 'name: small\ninput: data.csv\ncolumns:\n  numeric: [price]\nclean: {dropna: true, iqr_kk: 1.5}\n' >"$J/unknown.yaml"
check_bad_job "$J/unknown.yaml" "unknown.yaml:5: clean: unknown key 'iqr_kk'"
printf 'name: small\ninput: data.csv\nshard_rows: abc\ncolumns:\n  numeric: [price]\n' >"$J/type.yaml"
check_bad_job "$J/type.yaml" "type.yaml:3: shard_rows: expected a positive integer, got 'abc'"
printf 'name: small\ninput: data.csv\ncolumns:\n  numeric: [price, nope]\n' >"$J/column.yaml"
check_bad_job "$J/column.yaml" "column 'nope' (columns.numeric) is not in the header"
check_bad_job "$J/small.yaml" "train: unknown key 'epoks'" --set train.epoks=3
check_bad_job "$J/small.yaml" "missing.csv" --set input=missing.csv
printf 'name: small\ncolumns:\n  numeric: [price]\n' >"$J/noinput.yaml"
check_bad_job "$J/noinput.yaml" "missing required key 'input'"
check_bad_job "$J/absent.yaml" "cannot read $J/absent.yaml"
printf '\x00\xff\x01garbage: [\n' >"$J/binary.yaml"
e="$(ctl -c "$DEAD" submit "$J/binary.yaml" 2>&1)"
assert_eq "$?" 2 "binary job file exit"
ctl submit --dry-run "$J/small.yaml" 2>/dev/null || fail "valid job rejected by --dry-run"

# ---------------------------------------------------- unreachable coordinator
start=$SECONDS
err="$(ctl -c "$DEAD" --timeout 1000 --retries 1 jobs 2>&1)"
assert_eq "$?" 3 "unreachable exit"
assert_eq "$err" "mlopsctl: cannot reach the coordinator at $DEAD (no reply within 1000 ms, 2 tries)" "unreachable message"
err="$(MLOPS_COORDINATOR="$DEAD" ctl --timeout 500 --retries 0 wait j000001 2>&1)"
assert_eq "$?" 3 "unreachable wait exit"
assert_contains "$err" "cannot reach the coordinator at $DEAD"
err="$(ctl -c "$DEAD" --timeout 500 --retries 0 submit "$J/small.yaml" 2>&1)"
assert_eq "$?" 3 "unreachable submit exit"
[ $((SECONDS - start)) -le 10 ] || fail "unreachable checks took $((SECONDS - start)) s"

# ------------------------------------------------------------- a cluster
cluster_up 2
assert_contains "$MLOPS_COORDINATOR" "tcp://127.0.0.1:"
assert_eq "$(alive_workers)" 2 "alive workers after up"
out="$(ctl workers)" || fail "workers exit $?"
assert_contains "$out" "worker-1"
assert_contains "$out" "worker-2"

err="$(ctl up --port 0 --data-dir "$CLUSTER_DIR" --workers 1 2>&1)"
assert_eq "$?" 1 "second up on the same data dir"
assert_contains "$err" "already running"

job="$(ctl submit "$J/small.yaml" --wait 2>"$T/wait.err")" || {
    cat "$T/wait.err" >&2
    fail "submit --wait exit $?"
}
[[ "$job" =~ ^[A-Za-z0-9_.-]+$ ]] || fail "submit printed '$job', not a job id"
assert_contains "$(cat "$T/wait.err")" "$job succeeded"

ctl status "$job" -o json >"$T/status.json" || fail "status exit $?"
assert_eq "$(jget 'd["state"]' <"$T/status.json")" succeeded "status state"
assert_eq "$(jget 'all(s["state"] == "done" for s in d["stages"])' <"$T/status.json")" True "stages done"
ctl result "$job" -o json >"$T/result.json" || fail "result exit $?"
assert_eq "$(jget 'd["metrics"]["rows_in"]' <"$T/result.json")" 3000 "rows_in"
out="$(ctl result "$job")" || fail "result table exit $?"
assert_contains "$out" "rows_after_clean"
assert_contains "$out" "succeeded"
out="$(ctl jobs)" || fail "jobs exit $?"
assert_contains "$out" "$job"
assert_eq "$(ctl jobs -o json | jget "[j['state'] for j in d['jobs'] if j['job'] == '$job'][0]")" succeeded "jobs state"
out="$(ctl logs "$job")" || fail "logs exit $?"
[ -n "$out" ] || fail "logs printed nothing"

ctl export "$job" --stage clean -o "$T/clean.csv" || fail "export exit $?"
[ ! -e "$T/clean.csv.tmp" ] || fail "export left its temp file"
ctl export "$job" --stage clean >"$T/clean-stdout.csv" || fail "export to stdout exit $?"
cmp -s "$T/clean.csv" "$T/clean-stdout.csv" || fail "export to a file and to stdout differ"
"$PY" - "$J/data.csv" "$T/clean.csv" "$T/result.json" <<'EOF' || fail "exported clean rows differ from pandas"
import json, sys
import numpy as np, pandas as pd
src, got_path, result = sys.argv[1:4]
df = pd.read_csv(src)
num = ["price", "quantity", "income"]
df = df.dropna(subset=num + ["category"])
keep = np.ones(len(df), bool)
for c in num:
    q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
    iqr = q3 - q1
    keep &= ((df[c] >= q1 - 1.5 * iqr) & (df[c] <= q3 + 1.5 * iqr)).values
want = df[keep].reset_index(drop=True)
got = pd.read_csv(got_path, keep_default_na=False, na_values=[""])
m = json.load(open(result))["metrics"]
assert len(got) == len(want), "rows: export %d, pandas %d" % (len(got), len(want))
assert m.get("rows_after_clean", len(got)) == len(want), "rows_after_clean %s" % m
for c in got.columns:
    assert c in want.columns, "unexpected column %s" % c
    if c in num:
        a, b = got[c].to_numpy(float), want[c].to_numpy(float)
        assert np.array_equal(a, b), "column %s differs at %s" % (c, np.nonzero(a != b)[0][:5])
    else:
        assert list(got[c].astype(str)) == list(want[c].astype(str)), "column %s differs" % c
for c in num + ["category"]:
    assert c in got.columns, "column %s missing from the export" % c
print("export matches pandas: %d rows" % len(got))
EOF

# submit --wait -o json: one document, the ended job's result, the same
# as `result -o json` prints; without --wait {"job": ID}
ctl submit "$J/small.yaml" --wait -o json >"$T/sw.json" 2>/dev/null || fail "submit --wait -o json exit $?"
swjob="$(jget 'd["job"]' <"$T/sw.json")" || fail "submit --wait -o json printed no JSON: $(head -c 300 "$T/sw.json")"
ctl result "$swjob" -o json >"$T/sw-result.json" || fail "result exit $?"
"$PY" -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:3]); assert a==b and a["state"]=="succeeded", (a, b)' \
    "$T/sw.json" "$T/sw-result.json" || fail "submit --wait -o json differs from result -o json"
out="$(ctl submit "$J/small.yaml" -o json)" || fail "submit -o json exit $?"
assert_eq "$(jget 'sorted(d)' <<<"$out")" '["job"]' "submit -o json keys"

# a job that only schedules 50 empty tasks
printf 'name: fifty\nnoop: {tasks: 50}\n' >"$J/noop.yaml"
noop="$(ctl submit "$J/noop.yaml")" || fail "noop submit exit $?"
ctl wait "$noop" 2>/dev/null || fail "noop wait exit $?"
ctl status "$noop" -o json >"$T/noop.json" || fail "noop status exit $?"
assert_eq "$(jget 'sum(s["tasks_done"] for s in d["stages"])' <"$T/noop.json")" 50 "noop tasks done"

# a job that fails on the cluster: submit --wait exits 1 with its error
printf 'price,quantity,category,income,clicked\n1.5,2,a,3,1\nabc,3,b,4,0\n' >"$J/bad.csv"
bad="$(ctl submit "$J/small.yaml" --set input=bad.csv --wait 2>"$T/bad.err")"
assert_eq "$?" 1 "submit --wait of a failing job"
assert_contains "$(cat "$T/bad.err")" "job $bad failed: "
assert_contains "$(cat "$T/bad.err")" "bad.csv:3: column 'price': 'abc' is not a number"
out="$(ctl submit "$J/small.yaml" --set input=bad.csv --wait -o json 2>/dev/null)"
assert_eq "$?" 1 "submit --wait -o json of a failing job"
assert_eq "$(jget 'd["state"]' <<<"$out")" failed "submit --wait -o json of a failing job: state"

# cancel: a long noop job, cancelled at once; wait then exits 1
long="$(ctl submit "$J/noop.yaml" --set noop.tasks=200000)" || fail "long noop submit exit $?"
out="$(ctl cancel "$long")" || fail "cancel exit $?"
assert_eq "$out" "$long cancelled" "cancel output"
err="$(ctl wait "$long" 2>&1)"
assert_eq "$?" 1 "wait on a cancelled job"
assert_contains "$err" "job $long cancelled"

# errors from the coordinator: exit 1 with its message
err="$(ctl status j999999 2>&1)"
assert_eq "$?" 1 "status of an unknown job"
assert_contains "$err" "j999999"
err="$(ctl export "$job" --stage nosuchstage 2>&1)"
assert_eq "$?" 1 "export of an unknown stage"

# a worker killed with SIGKILL is noticed and listed dead
kill_worker worker-2
wait_for '[ "$(ctl workers -o json | jget "[w[\"state\"] for w in d[\"workers\"] if w[\"name\"] == \"worker-2\"][0]")" = dead ]' 20
# its shards are recomputed elsewhere; export still gives the same rows
ctl --timeout 2000 export "$job" --stage clean -o "$T/clean-again.csv" 2>/dev/null ||
    fail "export after losing a worker exit $?"
cmp -s "$T/clean.csv" "$T/clean-again.csv" || fail "export after losing a worker differs"
start_worker worker-3
wait_for '[ "$(alive_workers)" -ge 2 ]' 20

# down stops everything; twice is fine; then nothing answers
pids="$(awk '{print $2}' "$CLUSTER_DIR/pids")"
ctl down --data-dir "$CLUSTER_DIR" 2>/dev/null || fail "down exit $?"
for p in $pids; do
    if kill -0 "$p" 2>/dev/null && ! grep -q '^Z' <(awk '{print $3}' "/proc/$p/stat" 2>/dev/null); then
        fail "pid $p still running after down"
    fi
done
[ ! -e "$CLUSTER_DIR/pids" ] || fail "down left the pid file"
ctl down --data-dir "$CLUSTER_DIR" 2>/dev/null || fail "second down exit $?"
ctl --timeout 500 jobs >/dev/null 2>&1
rc=$?
if [ "$rc" != 3 ]; then
    # Tests run in parallel: another test's process may have been given
    # the freed ephemeral port. Only a listener we started is a failure.
    port="${MLOPS_COORDINATOR##*:}"
    owner="$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
    for p in $pids; do [ "$owner" = "$p" ] && fail "jobs after down: our pid $p still answers (exit $rc)"; done
    [ -n "$owner" ] || fail "jobs after down: expected exit 3, got $rc"
    echo "note: port $port was reused by pid $owner (another test); our processes are gone"
fi
echo "test_cli: ok"
