# lib.sh: sourced by tests/integration/test_*.sh (ctest runs them with
# MLOPS_BUILD_DIR and MLOPS_SOURCE_DIR set).
#
# Every test gets its own temp dir $T (removed on exit) and its cluster
# lives in $T/cluster on ephemeral 127.0.0.1 ports, so tests can run in
# parallel. A trap stops everything the test started, on success and on
# failure alike, and on failure prints the tail of each process log.
# Synchronisation is always a bounded poll (wait_for), never a bare sleep.
#
#   cluster_up N          mlopsctl up --port 0 --workers N; exports MLOPS_COORDINATOR,
#                         and MLOPS_KEY / MLOPS_SERVER_KEY (the keys up made)
#   worker_key_args       the key flags of a worker of this cluster (none with
#                         INSECURE=1 or no $CLUSTER_DIR/keys)
#   cluster_down          mlopsctl down (idempotent)
#   start_worker NAME     one more worker process, recorded in the pid file
#   kill_worker NAME      SIGKILL that worker (one started by up or start_worker)
#   wait_for CMD SECONDS  poll CMD (a shell string) until it succeeds, or fail
#   alive_workers         how many workers the coordinator lists alive
#   jget EXPR             read JSON on stdin, print a Python expression of it (d = the doc)
#   fail MSG / assert_eq ACTUAL EXPECTED [WHAT] / assert_contains TEXT PART [WHAT]
#   ctl ARGS...           run mlopsctl (the build's binary)

set -uo pipefail

: "${MLOPS_BUILD_DIR:?MLOPS_BUILD_DIR must point at the build directory}"
: "${MLOPS_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export MLOPS_BUILD_DIR MLOPS_SOURCE_DIR
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=/usr/bin/python3
MLOPSCTL="$MLOPS_BUILD_DIR/mlopsctl"
[ -x "$MLOPSCTL" ] || { echo "FAIL: $MLOPSCTL is not built" >&2; exit 1; }

T="$(mktemp -d "${TMPDIR:-/tmp}/mlops-it.XXXXXX")"
CLUSTER_DIR="$T/cluster"
unset MLOPS_COORDINATOR MLOPS_HOME MLOPS_KEY MLOPS_SERVER_KEY
export HOME="$T/home" # never touch the real ~/.mlops
mkdir -p "$HOME"
_FAILED=0

ctl() { "$MLOPSCTL" "$@"; }

fail() {
    _FAILED=1
    echo "FAIL: $*" >&2
    exit 1
}

assert_eq() {
    [ "$1" == "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

assert_contains() {
    case "$1" in
        *"$2"*) ;;
        *) fail "${3:-text} does not contain '$2': $1" ;;
    esac
}

# wait_for CMD SECONDS: poll every 0.1 s; fail naming CMD on timeout.
wait_for() {
    local cmd="$1" secs="$2"
    local deadline=$((SECONDS + ${secs%.*} + 1))
    while ! eval "$cmd" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $cmd"
        sleep 0.1
    done
}

# poll_for CMD SECS: like wait_for, without the sleep between tries, for
# a state that lasts only tens of milliseconds (a stage's phase)
poll_for() {
    local cmd="$1" secs="$2"
    local deadline=$((SECONDS + ${secs%.*} + 1))
    until eval "$cmd" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $cmd"
    done
}

jget() {
    "$PY" -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

# A free TCP port on 127.0.0.1 (nothing listens on it afterwards).
free_port() {
    "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cluster_up() {
    local n="$1"
    shift
    local ep
    ep="$(ctl up --port 0 --data-dir "$CLUSTER_DIR" --workers "$n" "$@")" ||
        fail "mlopsctl up --workers $n failed (exit $?)"
    [ -n "$ep" ] || fail "mlopsctl up printed no endpoint"
    export MLOPS_COORDINATOR="$ep"
    export MLOPS_KEY="$CLUSTER_DIR/keys/client.key" MLOPS_SERVER_KEY="$CLUSTER_DIR/keys/coordinator.key"
}

worker_key_args() {
    local k="$CLUSTER_DIR/keys"
    [ "${INSECURE:-0}" != 1 ] && [ -f "$k/worker.key" ] || return 0
    echo "--cert $k/worker.key --server-key $k/coordinator.key --worker-keys $k/workers --client-keys $k/clients"
}

cluster_down() {
    [ -d "$CLUSTER_DIR" ] || return 0
    ctl down --data-dir "$CLUSTER_DIR" 2>/dev/null
}

alive_workers() {
    ctl workers -o json | jget 'sum(1 for w in d["workers"] if w["state"] == "alive")'
}

start_worker() {
    local name="$1"
    [ -n "${MLOPS_COORDINATOR:-}" ] || fail "start_worker: no cluster"
    mkdir -p "$CLUSTER_DIR/logs"
    # shellcheck disable=SC2046 # key paths hold no spaces ($T is mktemp's)
    "$MLOPS_BUILD_DIR/mlops-worker" --coordinator "$MLOPS_COORDINATOR" \
        --data-dir "$CLUSTER_DIR/$name" --name "$name" $(worker_key_args) \
        </dev/null >>"$CLUSTER_DIR/logs/$name.log" 2>&1 &
    echo "$name $!" >>"$CLUSTER_DIR/pids"
}

# The pid recorded last for NAME in the cluster's pid file.
worker_pid() {
    awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$CLUSTER_DIR/pids" 2>/dev/null
}

kill_worker() {
    local pid
    pid="$(worker_pid "$1")"
    [ -n "$pid" ] || fail "kill_worker: no worker named $1"
    kill -KILL "$pid" 2>/dev/null || true
}

_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$rc" -ne 0 ] || [ "$_FAILED" -ne 0 ]; then
        for f in "$CLUSTER_DIR"/logs/*.log; do
            [ -e "$f" ] || continue
            echo "--- tail of $f" >&2
            tail -n 20 "$f" >&2
        done
    fi
    cluster_down >/dev/null 2>&1
    # background workers of start_worker are children of this shell
    local pids
    pids="$(jobs -p)"
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM
