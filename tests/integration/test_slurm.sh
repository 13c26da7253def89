#!/usr/bin/env bash
# test_slurm.sh: deploy/slurm/mlops.sbatch on a real Slurm (Debian's
# slurm-wlm). The test makes a munge key and starts its own munged, then
# a slurmctld and a slurmd from a one-node configuration it generates
# (this host, its CPUs, ports picked free, every state and spool
# directory under the test's temp dir), then `sbatch --wait` of 2 tasks on it
# of the script: the coordinator in the batch step, two workers by srun.
# The result it writes must equal a local run of the same job (every
# metric, bit for bit). Everything it started is stopped at the end.
#
# Skipped (exit 77, saying why) when not root, without slurm-wlm or
# munge, or when munged, slurmctld or slurmd cannot start here; also in
# sanitizer builds (the script, not the code, is under test).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

skip() {
    echo "skipped: $*"
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "slurmd and munged need root here"
for p in slurmctld slurmd sbatch sinfo munged mungekey; do
    command -v "$p" >/dev/null 2>&1 || skip "no $p (install slurm-wlm and munge: scripts/install-deps.sh --test)"
done
grep -qa __asan_init "$MLOPS_BUILD_DIR/mlops-worker" && skip "sanitizer build (the normal build runs this test)"

S="$T/slurm"
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge" "$S/run"
SL_PIDS=()
_slurm_cleanup() {
    local p
    for p in "${SL_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${SL_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ "$_FAILED" -ne 0 ] || [ "${rc:-0}" -ne 0 ]; then
        for f in "$S"/log/*.log "${W:-$T/sbatch}"/logs/*.log; do
            [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
        done
    fi
}
trap 'rc=$?; _slurm_cleanup; (exit $rc); _cleanup' EXIT

# ------------------------------------------------ the local reference run
D="$T/data"
mkdir -p "$D/data"
cp "$MLOPS_SOURCE_DIR/examples/purchases/job.yaml" "$D/job.yaml"
"$PY" "$MLOPS_SOURCE_DIR/examples/purchases/generate.py" --rows 30000 --seed 7 \
    --out "$D/data/purchases.csv" >/dev/null || fail "generate.py failed"
cluster_start 2
ref="$(submit_wait "$D/job.yaml" --set shard_rows=5000)" || exit 1
save_result "$ref" "$T/local.json"
cluster_down >/dev/null
unset MLOPS_COORDINATOR MLOPS_KEY MLOPS_SERVER_KEY

# -------------------------------------------------------------- munge
mungekey -c -k "$S/munge/munge.key" >/dev/null 2>&1 || skip "mungekey could not make a key"
chmod 700 "$S/munge"
MUNGE_SOCK="$S/munge/munge.sock"
munged --foreground --force --socket="$MUNGE_SOCK" --key-file="$S/munge/munge.key" \
    --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/seed" \
    >/dev/null 2>&1 &
SL_PIDS+=($!)
for _ in $(seq 50); do [ -S "$MUNGE_SOCK" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCK" ] || skip "munged did not start: $(tail -n 2 "$S/log/munged.log" 2>/dev/null)"

# ------------------------------------------------------ slurm, one node
NODE="$(hostname -s)"
CPUS="$(getconf _NPROCESSORS_ONLN)" # (nproc obeys OMP_NUM_THREADS=1, set by lib.sh)
export SLURM_CONF="$S/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=mlopstest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=1024 State=UNKNOWN
PartitionName=mlops Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
slurmctld -D -i -f "$SLURM_CONF" >"$S/log/slurmctld.out" 2>&1 &
SL_PIDS+=($!)
slurmd -D -N "$NODE" -f "$SLURM_CONF" >"$S/log/slurmd.out" 2>&1 &
SL_PIDS+=($!)
up=""
for _ in $(seq 300); do
    st="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1)"
    case "$st" in idle | mixed | allocated) up=1; break ;; esac
    for p in "${SL_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || break 2; done
    sleep 0.1
done
[ -n "$up" ] || skip "Slurm did not come up (node state '${st:-none}'): $(tail -n 2 "$S/log/slurmctld.log" "$S/log/slurmd.log" 2>/dev/null | tr '\n' ' ' | head -c 400)"

# ------------------------------------------------------------- the job
W="$T/sbatch"
mkdir -p "$W"
out="$(cd "$T" && MLOPS_BIN="$MLOPS_BUILD_DIR" MLOPS_WORKDIR="$W" MLOPS_LOCAL_DIR="$T/local" \
    MLOPS_SUBMIT_ARGS="--set shard_rows=5000" timeout 180 \
    sbatch --wait --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --output="$T/sbatch.out" --chdir="$T" \
    "$MLOPS_SOURCE_DIR/deploy/slurm/mlops.sbatch" "$D/job.yaml" "$T/slurm.json" 2>&1)"
rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$T/sbatch.out" >&2 2>/dev/null
    squeue -h -o '%i %T %r' >&2 2>/dev/null
    scontrol show node >&2 2>/dev/null
    fail "sbatch --wait mlops.sbatch exit $rc: $out"
fi
grep -q "2 workers registered" "$T/sbatch.out" || fail "the script did not start 2 workers: $(cat "$T/sbatch.out")"
same_metrics "$T/local.json" "$T/slurm.json" "purchases example: Slurm (sbatch, 2 srun workers) vs local run"
assert_eq "$(jget 'd["state"]' <"$T/slurm.json")" succeeded "the Slurm job's state"
echo "test_slurm: ok ($(grep -c . "$T/sbatch.out") lines of batch output; result = the local run $ref)"
