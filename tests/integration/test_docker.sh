#!/usr/bin/env bash
# test_docker.sh: docker-compose.yml and the image, for real.
# Builds a local image from this build (docker/build-image.sh: nothing is
# pulled), starts `docker-compose up -d --scale worker=3` on a private
# project and an ephemeral 127.0.0.1 port, then from the host: three
# workers register, each advertising its own container host name; a small
# purchases job (ingest .. evaluate) succeeds, its shards moving between
# containers by peer fetch; `mlopsctl export` run inside the compose
# network returns every cleaned row; a restarted coordinator container
# still knows the job (the journal volume). Then down -v, and the image
# is removed.
#
# Skipped (exit 77, which ctest shows as skipped; "skipped: ..." says why) without a docker client, a compose
# (docker-compose or `docker compose`), or a daemon: when no daemon
# answers and we are root with dockerd installed, the test starts its own
# (vfs storage, no iptables, socket and state under the test's temp dir)
# and stops it at the end. Also skipped in sanitizer builds: it tests packaging,
# and the normal build runs it.
source "$(dirname "$0")/lib.sh"

skip() {
    echo "skipped: $*"
    exit 77
}

command -v docker >/dev/null 2>&1 || skip "no docker client"
if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    skip "no docker-compose and no 'docker compose'"
fi
ldd "$MLOPS_BUILD_DIR/mlops-worker" | grep -q libasan && skip "sanitizer build (the normal build runs this test)"

DOCKERD_PID=""
PROJECT="mlopsit$$"
export MLOPS_IMAGE="mlops-it:$$"
COMPOSE_LOG="$T/compose.log"

_docker_cleanup() {
    if [ -n "${COMPOSE_UP:-}" ]; then
        if [ "$_FAILED" -ne 0 ]; then
            echo "--- compose logs" >&2
            "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" logs --tail 20 >&2 2>&1
        fi
        "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" down -v -t 2 >>"$COMPOSE_LOG" 2>&1
    fi
    [ -z "${IMAGE_BUILT:-}" ] || docker rmi -f "$MLOPS_IMAGE" >/dev/null 2>&1
    if [ -n "$DOCKERD_PID" ]; then
        kill -TERM "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
}
trap 'rc=$?; _docker_cleanup; (exit $rc); _cleanup' EXIT

# ------------------------------------------------------------- the daemon
if ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || skip "no docker daemon answers, and starting one needs root"
    command -v dockerd >/dev/null 2>&1 || skip "no docker daemon answers and dockerd is not installed"
    mkdir -p "$T/docker" "$T/dx"
    export DOCKER_HOST="unix://$T/dx/docker.sock"
    dockerd --storage-driver=vfs --iptables=false --data-root "$T/docker" --exec-root "$T/dx" \
        --pidfile "$T/dx/docker.pid" -H "$DOCKER_HOST" >"$T/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 300); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! docker info >/dev/null 2>&1; then
        tail -n 5 "$T/dockerd.log"
        skip "dockerd did not come up (log above)"
    fi
fi

# -------------------------------------------------------------- the image
"$MLOPS_SOURCE_DIR/docker/build-image.sh" "$MLOPS_BUILD_DIR" "$MLOPS_IMAGE" >"$T/image.log" 2>&1 ||
    { cat "$T/image.log" >&2; fail "docker/build-image.sh failed"; }
IMAGE_BUILT=1
out="$(docker run --rm "$MLOPS_IMAGE" mlopsctl --version 2>&1)" || fail "mlopsctl in the image: $out"
assert_contains "$out" "wire protocol" "mlopsctl --version in the image"

# ----------------------------------------------------------- the cluster
compose() { "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" "$@"; }
export MLOPS_PORT="$(free_port)"
# the cluster's keys, as docker-compose.yml asks: the host's mlopsctl
# uses the client key, the containers read them all from /keys
ctl keygen --cluster --out "$T/keys" >/dev/null || fail "keygen --cluster"
export MLOPS_KEYS="$T/keys" MLOPS_KEY="$T/keys/client.key" MLOPS_SERVER_KEY="$T/keys/coordinator.key"
COMPOSE_UP=1
compose up -d --scale worker=3 >>"$COMPOSE_LOG" 2>&1 ||
    { cat "$COMPOSE_LOG" >&2; fail "docker-compose up -d --scale worker=3 failed"; }
export MLOPS_COORDINATOR="tcp://127.0.0.1:$MLOPS_PORT"
wait_for '[ "$(alive_workers)" = 3 ]' 60

# each worker advertises its container's host name, not loopback
ids="$(compose ps -q worker | cut -c1-12 | sort | tr '\n' ' ')"
hosts="$(ctl workers -o json | jget '" ".join(sorted(w["endpoint"].split("//")[1].split(":")[0] for w in d["workers"] if w["state"] == "alive"))')"
assert_eq "$hosts " "$ids" "worker store hosts (container ids)"

# ------------------------------------------------------------------ a job
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 20000 --seed 3 --out "$T/data.csv" ||
    fail "generate.py failed"
cat >"$T/job.yaml" <<'YAML'
name: docker-smoke
input: data.csv
shard_rows: 5000
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
scale: true
hash: {n_features: 65536, alternate_sign: true}
split: {test_size: 0.2, seed: 42}
train: {model: logistic, epochs: 2}
evaluate: [accuracy, auc]
YAML
job="$(ctl submit "$T/job.yaml" --wait 2>"$T/submit.err" | head -1)"
[ -n "$job" ] || { cat "$T/submit.err" >&2; fail "submit --wait failed"; }
res="$(ctl result "$job" -o json)" || fail "result $job"
assert_eq "$(echo "$res" | jget 'd["state"]')" succeeded "job state"
assert_eq "$(echo "$res" | jget 'd["metrics"]["rows_in"]')" 20000 "rows_in"
assert_eq "$(echo "$res" | jget '0.5 < d["metrics"]["accuracy"] <= 1 and 0.5 < d["metrics"]["auc"] <= 1')" True \
    "accuracy and auc in (0.5, 1]"
clean_rows="$(echo "$res" | jget 'd["metrics"]["rows_after_clean"]')"
# the work was spread: every worker ran tasks
assert_eq "$(ctl workers -o json | jget 'all(w["tasks_done"] > 0 for w in d["workers"] if w["state"] == "alive")')" True \
    "every worker ran tasks"

# export fetches every shard from the worker stores: inside the network
compose exec -T coordinator mlopsctl -c tcp://coordinator:5555 --key /keys/client.key export "$job" --stage clean >"$T/clean.csv" \
    2>"$T/export.err" || { cat "$T/export.err" >&2; fail "export inside the compose network failed"; }
assert_eq "$(head -1 "$T/clean.csv")" "price,quantity,age,income,category,item_id,user_id,clicked" "export header"
assert_eq "$(($(wc -l <"$T/clean.csv") - 1))" "$clean_rows" "exported rows = rows_after_clean"

# ---------------------------------------------- the journal volume survives
compose restart -t 5 coordinator >>"$COMPOSE_LOG" 2>&1 || fail "restart coordinator failed"
wait_for 'ctl jobs -o json | jget "[j[\"state\"] for j in d[\"jobs\"] if j[\"job\"] == \"$job\"]" | grep -q succeeded' 60
wait_for '[ "$(alive_workers)" = 3 ]' 60

compose down -v -t 5 >>"$COMPOSE_LOG" 2>&1 || fail "docker-compose down failed"
COMPOSE_UP=""
left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
assert_eq "$left" "" "containers left after down"
echo "ok: docker compose cluster of 3 workers ran $job ($clean_rows cleaned rows exported)"
