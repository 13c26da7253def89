#!/usr/bin/env bash
# test_docker.sh: docker-compose.yml and the image, for real (`make
# test-compose` runs it; so does ctest, as integration.test_docker).
#  1. `make image`'s script (docker/build-image.sh: FROM scratch, nothing
#     pulled) builds the mlops image and the Prometheus one; the image
#     runs as the non-root user mlops, has the volume /data and a
#     `mlopsctl ping` HEALTHCHECK.
#  2. The reference: the purchases example (examples/purchases/job.yaml)
#     run on a local 2-worker cluster (mlopsctl up), and a longer variant.
#  3. `docker-compose --profile prometheus up -d --scale worker=3` on a
#     private project, ephemeral 127.0.0.1 ports, keys mounted from a
#     directory: the containers turn healthy and run as uid 10001; the
#     example submitted from the host gives the local run's metrics, bit
#     for bit, and `mlopsctl export` from the host the same bytes;
#     Prometheus scrapes the coordinator and the three workers.
#  4. The longer job: scaled to 5 workers while it trains, then to 2
#     (SIGTERM drains three), then one of the two is SIGKILLed
#     (docker kill): it succeeds with the local run's metrics.
#  5. A restarted coordinator container still knows the jobs (the journal
#     volume). Then down -v; no container is left, the images are removed.
#
# Skipped (exit 77, which ctest shows as skipped; "skipped: ..." says why) without a docker client, a compose
# (docker-compose or `docker compose`), or a daemon: when no daemon
# answers and we are root with dockerd installed, the test starts its own
# (vfs storage, no iptables, socket and state under the test's temp dir)
# and stops it at the end. Also skipped in sanitizer builds: it tests packaging,
# and the normal build runs it. With MLOPS_REQUIRE_DOCKER=1 (make
# test-compose) each of these is a failure instead.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

skip() {
    # make test-compose sets MLOPS_REQUIRE_DOCKER=1: there a skip is a failure
    [ "${MLOPS_REQUIRE_DOCKER:-0}" != 1 ] || fail "cannot run: $*"
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
grep -qa __asan_init "$MLOPS_BUILD_DIR/mlops-worker" && skip "sanitizer build (the normal build runs this test)"

DOCKERD_PID=""
PROJECT="mlopsit$$"
export MLOPS_IMAGE="mlops-it:$$" MLOPS_PROM_IMAGE="mlops-prom-it:$$"
COMPOSE_LOG="$T/compose.log"

_docker_cleanup() {
    if [ -n "${COMPOSE_UP:-}" ]; then
        if [ "$_FAILED" -ne 0 ]; then
            echo "--- compose logs" >&2
            "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" logs --tail 20 >&2 2>&1
        fi
        "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" --profile prometheus down -v -t 2 >>"$COMPOSE_LOG" 2>&1
    fi
    [ -z "${IMAGE_BUILT:-}" ] || docker rmi -f "$MLOPS_IMAGE" "$MLOPS_PROM_IMAGE" >/dev/null 2>&1
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
IMAGE_BUILT=1
"$MLOPS_SOURCE_DIR/docker/build-image.sh" "$MLOPS_BUILD_DIR" "$MLOPS_IMAGE" >"$T/image.log" 2>&1 ||
    { cat "$T/image.log" >&2; fail "docker/build-image.sh failed"; }
out="$(docker run --rm "$MLOPS_IMAGE" mlopsctl --version 2>&1)" || fail "mlopsctl in the image: $out"
assert_contains "$out" "wire protocol" "mlopsctl --version in the image"
assert_eq "$(docker inspect -f '{{.Config.User}}' "$MLOPS_IMAGE")" mlops "the image's user"
assert_eq "$(docker inspect -f '{{json .Config.Volumes}}' "$MLOPS_IMAGE")" '{"/data":{}}' "the image's volumes"
assert_contains "$(docker inspect -f '{{json .Config.Healthcheck.Test}}' "$MLOPS_IMAGE")" '"mlopsctl","--timeout","3000","ping"' \
    "the image's HEALTHCHECK"
assert_eq "$(docker run --rm "$MLOPS_PROM_IMAGE" --version 2>&1 | head -c 18)" "prometheus, versio" \
    "prometheus in its image"

# ------------------------------------------------- the local reference runs
mkdir -p "$T/ex/data"
cp "$MLOPS_SOURCE_DIR/examples/purchases/job.yaml" "$T/ex/job.yaml"
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 40000 --seed 7 \
    --out "$T/ex/data/purchases.csv" >/dev/null || fail "generate.py failed"
SET1=(--set shard_rows=5000)
SET2=(--set shard_rows=1000 --set train.epochs=1000) # long enough to outlast the scaling and the kill below (200 epochs of 2000-row shards went by first once the journal sent before its commit)
run() { # OUT.json SUBMIT-ARGS...: submit the example, wait, save its result
    local out="$1" job
    shift
    job="$(ctl submit "$T/ex/job.yaml" "$@" --wait 2>"$T/submit.err" | head -1)"
    [ -n "$job" ] || { cat "$T/submit.err" >&2; fail "submit --wait $* failed"; }
    ctl result "$job" -o json >"$out" || fail "result $job"
    echo "$job"
}
cluster_up 2
job="$(run "$T/local1.json" "${SET1[@]}")"
ctl export "$job" --stage clean -o "$T/local.clean.csv" || fail "local export exit $?"
run "$T/local2.json" "${SET2[@]}" >/dev/null
local2_s="$(jget 'd["seconds"]' <"$T/local2.json")"
cluster_down >/dev/null
unset MLOPS_COORDINATOR MLOPS_KEY MLOPS_SERVER_KEY

# ----------------------------------------------------------- the cluster
compose() { "${COMPOSE[@]}" -f "$MLOPS_SOURCE_DIR/docker-compose.yml" -p "$PROJECT" "$@"; }
export MLOPS_PORT="$(free_port)" MLOPS_HTTP_PORT="$(free_port)" MLOPS_PROMETHEUS_PORT="$(free_port)"
export MLOPS_HEALTH_INTERVAL=2s MLOPS_HEARTBEAT_MS=500
# the cluster's keys, as docker-compose.yml asks: made on the host, owned
# by the containers' user (secrets stay 0600); the host's mlopsctl (root
# here) uses the client key
ctl keygen --cluster --out "$T/keys" >/dev/null || fail "keygen --cluster"
chown -R 10001:10001 "$T/keys" || fail "cannot give the keys to uid 10001"
export MLOPS_KEYS="$T/keys" MLOPS_KEY="$T/keys/client.key" MLOPS_SERVER_KEY="$T/keys/coordinator.key"
COMPOSE_UP=1
# the free ports are free when picked, not when docker binds them: a
# test running beside this one can take one in between ("port is
# already allocated"); then the project goes down and up again on new
# ones (it holds nothing yet), three tries at most
for try in 1 2 3; do
    : >"$T/up.log"
    compose --profile prometheus up -d --scale worker=3 >>"$T/up.log" 2>&1 && { cat "$T/up.log" >>"$COMPOSE_LOG"; break; }
    cat "$T/up.log" >>"$COMPOSE_LOG"
    if [ "$try" -lt 3 ] && grep -qE 'port is already allocated|address already in use' "$T/up.log"; then
        echo "test_docker: a published port was taken before docker bound it; again on new ports" >&2
        compose --profile prometheus down -v >>"$COMPOSE_LOG" 2>&1
        export MLOPS_PORT="$(free_port)" MLOPS_HTTP_PORT="$(free_port)" MLOPS_PROMETHEUS_PORT="$(free_port)"
        continue
    fi
    cat "$COMPOSE_LOG" >&2
    fail "docker-compose up -d --scale worker=3 failed"
done
export MLOPS_COORDINATOR="tcp://127.0.0.1:$MLOPS_PORT"
wait_for '[ "$(alive_workers)" = 3 ]' 60
health() { docker inspect -f '{{.State.Health.Status}}' "$@"; }
wait_for '[ "$(health $(compose ps -q coordinator worker) | sort -u)" = healthy ]' 60
for c in $(compose ps -q coordinator worker); do
    pid="$(docker inspect -f '{{.State.Pid}}' "$c")"
    assert_eq "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" 10001 "the uid of container $c's process"
done

# each worker advertises its container's IP address, which the host reaches
ips="$(for c in $(compose ps -q worker); do docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c"; done | sort | tr '\n' ' ')"
hosts="$(ctl workers -o json | jget '" ".join(sorted(w["endpoint"].split("//")[1].split(":")[0] for w in d["workers"] if w["state"] == "alive"))')"
assert_eq "$hosts " "$ips" "worker store hosts (container IPs)"

# ------------------------------------------- the example, from the host
job1="$(run "$T/compose1.json" "${SET1[@]}")"
same_metrics "$T/local1.json" "$T/compose1.json" "purchases example: compose (3 workers) vs local (2 workers)"
assert_eq "$(ctl workers -o json | jget 'all(w["tasks_done"] > 0 for w in d["workers"] if w["state"] == "alive")')" True \
    "every worker ran tasks"
ctl export "$job1" --stage clean -o "$T/compose.clean.csv" 2>"$T/export.err" ||
    { cat "$T/export.err" >&2; fail "mlopsctl export from the host failed"; }
cmp "$T/local.clean.csv" "$T/compose.clean.csv" || fail "export from the host differs from the local run's"

# Prometheus scrapes the coordinator and every worker (with the token)
targets() {
    curl -sf "http://127.0.0.1:$MLOPS_PROMETHEUS_PORT/api/v1/targets?state=active" |
        jget 'sorted(t["labels"]["job"] for t in d["data"]["activeTargets"] if t["health"] == "up")'
}
wait_for '[ "$(targets)" = "[\"mlops-coordinator\", \"mlops-worker\", \"mlops-worker\", \"mlops-worker\"]" ]' 60

# ------------------------------- scale 5 -> 2 and a killed worker, mid-job
job2="$(ctl submit "$T/ex/job.yaml" "${SET2[@]}")" || fail "submit of the second job failed"
wait_for "ctl status $job2 -o json | grep -q '\"name\":\"train\",\"state\":\"running\"'" 60
compose up -d --no-recreate --scale worker=5 >>"$COMPOSE_LOG" 2>&1 || fail "--scale worker=5 failed"
wait_for '[ "$(alive_workers)" = 5 ]' 60
compose up -d --no-recreate --scale worker=2 >>"$COMPOSE_LOG" 2>&1 || fail "--scale worker=2 failed"
wait_for '[ "$(alive_workers)" = 2 ]' 60
assert_eq "$(ctl workers -o json | jget 'sum(1 for w in d["workers"] if w["state"] == "left")')" 3 \
    "workers that drained on the scale-down"
docker kill "$(compose ps -q worker | head -1)" >/dev/null || fail "docker kill of a worker failed"
assert_eq "$(job_state "$job2")" running "the second job after scaling and the kill (else nothing was tested)"
lim="$(echo "$local2_s" | awk '{ printf "%d", ($1 * 10 > 60 ? $1 * 10 : 60) }')"
timeout "$lim" "$MLOPSCTL" wait "$job2" >/dev/null 2>"$T/wait.err" ||
    fail "the second job did not survive the scaling and the kill: $(tail -n 2 "$T/wait.err")"
ctl result "$job2" -o json >"$T/compose2.json" || fail "result $job2"
same_metrics "$T/local2.json" "$T/compose2.json" "scaled 5 -> 2, one worker killed vs local run"

# ---------------------------------------------- the journal volume survives
compose restart -t 5 coordinator >>"$COMPOSE_LOG" 2>&1 || fail "restart coordinator failed"
wait_for '[ "$(job_state $job1) $(job_state $job2)" = "succeeded succeeded" ]' 60

compose --profile prometheus down -v -t 5 >>"$COMPOSE_LOG" 2>&1 || fail "docker-compose down failed"
COMPOSE_UP=""
left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
assert_eq "$left" "" "containers left after down"
echo "ok: compose ran the purchases example as the local run did ($job1), and $job2 through 3 -> 5 -> 2 workers and a kill"
