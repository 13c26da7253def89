#!/usr/bin/env bash
# test_netns.sh: hosts that share nothing. The coordinator, two workers
# and the client each run in their own network namespace (ip netns),
# joined only by a bridge in a fifth namespace that the test creates, on
# 10.77.<n>.0/24 addresses; each has its own data directory, and every
# connection is CURVE (it is not loopback). The purchases example runs
# there: it succeeds, both workers fetched shards from the other over
# the bridge (each one's shards_served and shard_fetches counters, read
# in its own namespace, are above 0), and its metrics and `export
# --stage clean` bytes equal a local loopback run's.
#
# Nothing touches the host's own network namespace. A trap stops the
# processes and deletes the namespaces, on failure too. Skipped (exit 77)
# when not root or when a namespace cannot be made (a container without
# CAP_SYS_ADMIN); also in sanitizer builds (the topology, not the code,
# is under test, and the normal build runs it).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

skip() {
    echo "skipped: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "ip netns needs root"
command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
grep -qa __asan_init "$MLOPS_BUILD_DIR/mlops-worker" && skip "sanitizer build (the normal build runs this test)"

# namespace names unique to this run; a /24 of 10.77 from the pid
NS_SW="mlsw$$" NS_C="mlc$$" NS_W1="mlw1$$" NS_W2="mlw2$$" NS_K="mlk$$"
NET="10.77.$(($$ % 250 + 1))"
NS_ALL=("$NS_C" "$NS_W1" "$NS_W2" "$NS_K" "$NS_SW")
NS_PIDS=()

_netns_cleanup() {
    local p ns
    for p in "${NS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${NS_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    for ns in "${NS_ALL[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
trap 'rc=$?; _netns_cleanup; (exit $rc); _cleanup' EXIT

D="$T/data"
mkdir -p "$D/data"
cp "$MLOPS_SOURCE_DIR/examples/purchases/job.yaml" "$D/job.yaml"
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 40000 --seed 7 \
    --out "$D/data/purchases.csv" >/dev/null || fail "generate.py failed"
SET=(--set shard_rows=4000)

# ------------------------------------------------ the local reference run
cluster_start 2
ref="$(submit_wait "$D/job.yaml" "${SET[@]}")" || exit 1
save_result "$ref" "$T/local.json"
ctl export "$ref" --stage clean -o "$T/local.clean.csv" || fail "local export exit $?"
KEYS="$CLUSTER_DIR/keys" # the same keys serve the namespaced cluster
cluster_down >/dev/null
wait 2>/dev/null
unset MLOPS_COORDINATOR

# ---------------------------------------------------------- the network
ip netns add "$NS_SW" 2>"$T/netns.err" || skip "cannot create a network namespace: $(head -c 200 "$T/netns.err")"
# `ip netns add` can leave a namespace that cannot be entered (inside a
# chroot, where / is not a mount point, its bind mount fails): probe it
ip -n "$NS_SW" link show lo >/dev/null 2>"$T/netns.err" ||
    skip "the network namespace cannot be entered (a chroot?): $(head -c 200 "$T/netns.err")"
ip -n "$NS_SW" link add br0 type bridge 2>"$T/netns.err" ||
    skip "cannot create a bridge (no bridge support in this kernel?): $(head -c 200 "$T/netns.err")"
ip -n "$NS_SW" link set br0 up
i=0
for ns in "$NS_C" "$NS_W1" "$NS_W2" "$NS_K"; do
    i=$((i + 1))
    ip netns add "$ns" || fail "ip netns add $ns"
    ip -n "$NS_SW" link add "p$i" type veth peer name eth0 netns "$ns" || fail "veth for $ns"
    ip -n "$NS_SW" link set "p$i" master br0 up
    ip -n "$ns" addr add "$NET.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
done
C_IP="$NET.1" W1_IP="$NET.2" W2_IP="$NET.3"
in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

# ----------------------------------------------------------- the cluster
N="$T/hosts"
mkdir -p "$N/c" "$N/w1" "$N/w2" "$N/k"
# (ip netns exec directly, not in_ns: $! must be the daemon, for the trap)
ip netns exec "$NS_C" "$MLOPS_BUILD_DIR/mlops-coordinator" --bind "tcp://$C_IP:5555" --data-dir "$N/c" \
    --cert "$KEYS/coordinator.key" --worker-keys "$KEYS/workers" --client-keys "$KEYS/clients" \
    --heartbeat-ms 500 </dev/null >"$T/coordinator.log" 2>&1 &
NS_PIDS+=($!)
for w in 1 2; do
    ns="NS_W$w" ip="W${w}_IP"
    ip netns exec "${!ns}" "$MLOPS_BUILD_DIR/mlops-worker" --coordinator "tcp://$C_IP:5555" --data-dir "$N/w$w" \
        --name "host-w$w" --advertise "${!ip}" --metrics-listen 127.0.0.1:0 \
        --cert "$KEYS/worker.key" --server-key "$KEYS/coordinator.key" \
        --worker-keys "$KEYS/workers" --client-keys "$KEYS/clients" </dev/null >"$T/worker-$w.log" 2>&1 &
    NS_PIDS+=($!)
done
# the client: its own namespace, its own copy of the job and its input
cp -r "$D/job.yaml" "$D/data" "$N/k/"
kctl() { in_ns "$NS_K" "$MLOPSCTL" -c "tcp://$C_IP:5555" --key "$KEYS/client.key" --server-key "$KEYS/coordinator.key" "$@"; }
alive() { kctl workers -o json | jget 'sum(1 for w in d["workers"] if w["state"] == "alive")'; }
wait_for '[ "$(alive)" = 2 ]' 30

job="$(kctl submit "$N/k/job.yaml" "${SET[@]}" --wait 2>"$T/submit.err" | head -1)"
[ -n "$job" ] || { cat "$T/submit.err" >&2; fail "submit --wait across the namespaces failed"; }
kctl result "$job" -o json >"$T/netns.json" || fail "result $job"
same_metrics "$T/local.json" "$T/netns.json" "purchases example: namespaces vs local run"
kctl export "$job" --stage clean -o "$N/k/clean.csv" || fail "export across the namespaces exit $?"
cmp "$T/local.clean.csv" "$N/k/clean.csv" || fail "export across the namespaces differs from the local run's"

# both workers fetched shards from the other over the bridge (served also
# counts the client's export; a fetch can only be from the other worker)
metric() { # NS DIR NAME: a counter of the worker whose data dir is DIR
    in_ns "$1" curl -sf "http://$(cat "$2/metrics.addr")/metrics" | awk -v n="$3" '$1 == n { print $2 }'
}
for w in 1 2; do
    ns="NS_W$w"
    served="$(metric "${!ns}" "$N/w$w" mlops_worker_shards_served_total)"
    fetched="$(metric "${!ns}" "$N/w$w" 'mlops_worker_shard_fetches_total{result="ok"}')"
    [ "${served%.*}" -gt 0 ] 2>/dev/null || fail "worker $w served no shard over the bridge ($served)"
    [ "${fetched%.*}" -gt 0 ] 2>/dev/null || fail "worker $w fetched no shard over the bridge ($fetched)"
    echo "test_netns: worker $w served $served and fetched $fetched shards across the bridge"
done
# and the stores advertised are the namespaces' addresses, nothing else
eps="$(kctl workers -o json | jget '" ".join(sorted(w["endpoint"].split("//")[1].split(":")[0] for w in d["workers"]))')"
assert_eq "$eps" "$W1_IP $W2_IP" "the workers' store addresses"
echo "test_netns: ok ($job across 4 namespaces = the local run $ref)"
