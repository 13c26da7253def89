# lib_extra.sh: helpers on top of lib.sh for the cluster integration tests
# (sourced after lib.sh; not a test itself).
#
# Why: these tests start the coordinator and workers as their own
# background processes instead of `mlopsctl up`, so that a test can
# SIGKILL and restart the coordinator on the same endpoint, start workers
# with chosen slots mid-job, and pick the heartbeat. Every process is
# recorded in $CLUSTER_DIR/pids like `up` does, so lib.sh's cleanup
# (`mlopsctl down`, then SIGKILL of the shell's children) stops them all.
#
#   cluster_keys              the keys `up` would make, in $CLUSTER_DIR/keys, made
#                             with `mlopsctl keygen` (kept if already there)
#   coord_start [BIND]        coordinator on BIND (default tcp://127.0.0.1:*),
#                             data in $CLUSTER_DIR/coordinator; waits until it
#                             answers; exports MLOPS_COORDINATOR. With CURVE
#                             (cluster_keys, exports MLOPS_KEY/MLOPS_SERVER_KEY)
#                             unless INSECURE=1
#   coord_kill                SIGKILL the coordinator, wait until it is gone
#   worker_start NAME [SLOTS] one worker (like start_worker, with --slots)
#   cluster_start N [SLOTS]   coord_start + worker-1..N, waits until N alive
#   worker_state NAME         alive/dead as listed by the coordinator
#   worker_field NAME FIELD   one field of that worker in `workers -o json`
#   gen_purchases ROWS SEED FILE   examples/purchases/generate.py
#   purchases_job FILE INPUT [full]  a purchases job file: ingest+clean, or
#                             (with full) the whole pipeline through evaluate
#   submit_wait JOBFILE [SUBMIT ARGS...]  submit --wait; prints the job id
#   save_result JOB FILE      `result -o json` into FILE
#   same_metrics A.json B.json WHAT  fail unless every metric is identical
#                             (bit for bit; the model name holds the job id
#                             and is compared as the name with the id cut)
#   stage_state JOB STAGE     the state of one stage of a job
#   job_state JOB             the state of a job

: "${HB_MS:=1000}"
# COORD_ARGS: extra coordinator flags (e.g. -v when debugging a test)

cluster_keys() {
    local k="$CLUSTER_DIR/keys" n
    mkdir -p "$k/workers" "$k/clients"
    for n in coordinator worker client; do
        [ -f "$k/$n.key_secret" ] || ctl keygen "$n" --out "$k" >/dev/null || fail "keygen $n failed"
    done
    cp "$k/worker.key" "$k/workers/" && cp "$k/client.key" "$k/clients/" || fail "cannot copy keys"
    export MLOPS_KEY="$k/client.key" MLOPS_SERVER_KEY="$k/coordinator.key"
}

coord_start() {
    local bind="${1:-tcp://127.0.0.1:*}"
    local dir="$CLUSTER_DIR/coordinator" keyargs=""
    mkdir -p "$dir" "$CLUSTER_DIR/logs"
    rm -f "$dir/endpoint"
    if [ "${INSECURE:-0}" = 1 ]; then
        unset MLOPS_KEY MLOPS_SERVER_KEY # a plain coordinator answers plain clients only
    else
        cluster_keys
        keyargs="--cert $CLUSTER_DIR/keys/coordinator.key --worker-keys $CLUSTER_DIR/keys/workers"
        keyargs="$keyargs --client-keys $CLUSTER_DIR/keys/clients"
    fi
    # shellcheck disable=SC2086 # key paths hold no spaces ($T is mktemp's)
    "$MLOPS_BUILD_DIR/mlops-coordinator" --bind "$bind" --data-dir "$dir" $keyargs \
        --heartbeat-ms "$HB_MS" ${COORD_ARGS:-} </dev/null >>"$CLUSTER_DIR/logs/coordinator.log" 2>&1 &
    COORD_PID=$!
    echo "coordinator $COORD_PID" >>"$CLUSTER_DIR/pids"
    wait_for '[ -s "$CLUSTER_DIR/coordinator/endpoint" ] || ! kill -0 $COORD_PID' 20
    kill -0 "$COORD_PID" 2>/dev/null || fail "the coordinator exited during start-up (bind $bind)"
    MLOPS_COORDINATOR="$(head -n 1 "$dir/endpoint")"
    export MLOPS_COORDINATOR
    wait_for 'ctl --timeout 500 jobs' 20
}

coord_kill() {
    kill -KILL "$COORD_PID" 2>/dev/null
    wait "$COORD_PID" 2>/dev/null
    ! kill -0 "$COORD_PID" 2>/dev/null || fail "coordinator pid $COORD_PID survived SIGKILL"
}

worker_start() {
    local name="$1" slots="${2:-1}"
    [ -n "${MLOPS_COORDINATOR:-}" ] || fail "worker_start: no coordinator"
    mkdir -p "$CLUSTER_DIR/logs"
    # shellcheck disable=SC2046 # key paths hold no spaces ($T is mktemp's)
    "$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" \
        --data-dir "$CLUSTER_DIR/$name" --name "$name" --slots "$slots" $(worker_key_args) \
        </dev/null >>"$CLUSTER_DIR/logs/$name.log" 2>&1 &
    echo "$name $!" >>"$CLUSTER_DIR/pids"
}

cluster_start() {
    local n="$1" slots="${2:-1}" i
    coord_start
    for ((i = 1; i <= n; i++)); do worker_start "worker-$i" "$slots"; done
    wait_for "[ \"\$(alive_workers)\" -ge $n ]" 20
}

worker_field() {
    ctl workers -o json | jget "[w[\"$2\"] for w in d[\"workers\"] if w[\"name\"] == \"$1\"][-1]"
}

worker_state() { worker_field "$1" state; }

gen_purchases() {
    "$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows "$1" --seed "$2" --out "$3" ||
        fail "generate.py --rows $1 failed"
}

purchases_job() {
    local file="$1" input="$2" full="${3:-}"
    cat >"$file" <<EOF
name: purchases
input: $input
shard_rows: 5000
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
EOF
    [ -z "$full" ] || cat >>"$file" <<'EOF'
scale: true
hash: {n_features: 65536, alternate_sign: true}
split: {test_size: 0.2, seed: 42}
train: {model: logistic, epochs: 5, learning_rate: optimal, alpha: 0.0001}
evaluate: [accuracy, logloss, auc, f1]
EOF
}

submit_wait() {
    local jf="$1" job rc
    shift
    job="$(ctl submit "$jf" "$@" --wait 2>"$T/submit.err")"
    rc=$?
    [ "$rc" -eq 0 ] || fail "submit --wait $jf $* exit $rc: $(tail -n 3 "$T/submit.err")"
    printf '%s\n' "$job"
}

save_result() {
    ctl result "$1" -o json >"$2" || fail "result $1 exit $?"
}

stage_state() {
    ctl status "$1" -o json | jget "[s[\"state\"] for s in d[\"stages\"] if s[\"name\"] == \"$2\"][0]"
}

job_state() {
    ctl status "$1" -o json | jget 'd["state"]'
}

same_metrics() {
    "$PY" - "$1" "$2" "$3" <<'EOF' || fail "$3: metrics differ (see above)"
import json, sys
a, b, what = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
ma, mb = dict(a["metrics"]), dict(b["metrics"])
for m, d in ((ma, a), (mb, b)):
    if "model" in m:  # "<job>-model": only the suffix may be compared
        m["model"] = m["model"].replace(d["job"], "JOB")
bad = []
for k in sorted(set(ma) | set(mb)):
    va, vb = ma.get(k), mb.get(k)
    if isinstance(va, float) or isinstance(vb, float):
        same = isinstance(va, (int, float)) and isinstance(vb, (int, float)) and \
            float(va).hex() == float(vb).hex()
    elif isinstance(va, list) and isinstance(vb, list):
        same = len(va) == len(vb) and all(float(x).hex() == float(y).hex() for x, y in zip(va, vb))
    else:
        same = va == vb
    if not same:
        bad.append("%s: %r vs %r" % (k, va, vb))
if bad:
    print("%s: %d metric(s) differ between %s and %s:\n  %s" %
          (what, len(bad), a["job"], b["job"], "\n  ".join(bad[:20])), file=sys.stderr)
    sys.exit(1)
if not ma:
    print("%s: no metrics at all" % what, file=sys.stderr)
    sys.exit(1)
EOF
}
