#!/usr/bin/env bash
# soak.sh: `make soak` — many jobs for SOAK_SECONDS (default 1200) on
# three workers while a random worker is SIGKILLed every SOAK_KILL_S
# seconds (default 4) and restarted (every fourth on a fresh data
# directory, so its shards must be recomputed from lineage), and the
# coordinator is SIGKILLed and restarted on its data directory every
# SOAK_COORD_S seconds (default a third of the run). Not a ctest test: it
# is long by design (issue 8 §4).
#
# Jobs are a mix of noop jobs of random size and small purchases
# pipelines whose every metric must equal an undisturbed reference run.
# At the end it waits for every job and prints jobs submitted, completed,
# kills survived, jobs lost (acknowledged but missing, failed or wrong)
# and tasks lost (a noop job that counted fewer tasks than it asked for);
# it exits 1 unless both losses are 0.
#
#   MLOPS_BUILD_DIR   the build (default ./build)
#   SOAK_SECONDS, SOAK_KILL_S, SOAK_COORD_S, SOAK_INFLIGHT (jobs at once, 4)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${MLOPS_BUILD_DIR:=$here/../../build}"
MLOPS_BUILD_DIR="$(cd "$MLOPS_BUILD_DIR" && pwd)" || exit 2
export MLOPS_BUILD_DIR
source "$here/../integration/lib.sh"
source "$here/../integration/lib_extra.sh"

: "${SOAK_SECONDS:=1200}" "${SOAK_KILL_S:=4}" "${SOAK_INFLIGHT:=4}"
: "${SOAK_COORD_S:=$((SOAK_SECONDS / 3))}"
HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 5 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
# a lost worker counts as a try: allow for the kills
PIPE=(--set shard_rows=1000 --set train.epochs=3 --set max_attempts=100)
NOOPSET=(--set max_attempts=100)
printf 'name: soak-noop\nnoop: {tasks: 1}\n' >"$D/noop.yaml"

cluster_start 3 1
ref="$(submit_wait "$D/full.yaml" "${PIPE[@]}")" || exit 1
save_result "$ref" "$T/ref.json"
echo "soak: reference pipeline $ref done; soaking for $SOAK_SECONDS s"

: >"$T/submitted" # job kind expected
RANDOM=$$
declare -A alive_job=()
submitted=0 kills=0 coord_kills=0 fresh=4
t0=$SECONDS
next_kill=$((t0 + SOAK_KILL_S))
next_coord=$((t0 + SOAK_COORD_S))

running_jobs() {
    ctl jobs -o json 2>/dev/null |
        jget '" ".join(x["job"] for x in d["jobs"] if x["state"] in ("uploading", "queued", "running"))'
}

while [ $((SECONDS - t0)) -lt "$SOAK_SECONDS" ]; do
    inflight="$(running_jobs)" || inflight=""
    n=0
    for j in $inflight; do n=$((n + 1)); done
    if [ "$n" -lt "$SOAK_INFLIGHT" ]; then
        i=$((submitted + 1))
        if [ $((i % 3)) -eq 0 ]; then
            job="$(ctl --retries 10 submit --idempotency-key "soak-$$-$i" "$D/full.yaml" "${PIPE[@]}" 2>"$T/submit.err")" ||
                fail "submit $i exit $?: $(cat "$T/submit.err")"
            echo "$job pipeline" >>"$T/submitted"
        else
            tasks=$((1000 + RANDOM % 20000))
            job="$(ctl --retries 10 submit --idempotency-key "soak-$$-$i" "$D/noop.yaml" \
                --set noop.tasks=$tasks "${NOOPSET[@]}" 2>"$T/submit.err")" ||
                fail "submit $i exit $?: $(cat "$T/submit.err")"
            echo "$job noop $tasks" >>"$T/submitted"
        fi
        submitted=$i
    fi
    if [ "$SECONDS" -ge "$next_coord" ]; then
        ep="$MLOPS_COORDINATOR"
        coord_kill
        coord_start "$ep"
        coord_kills=$((coord_kills + 1))
        next_coord=$((SECONDS + SOAK_COORD_S))
        echo "soak: $((SECONDS - t0)) s: coordinator SIGKILLed and restarted"
    fi
    if [ "$SECONDS" -ge "$next_kill" ]; then
        victim="$(ctl workers -o json | jget '[w["name"] for w in d["workers"] if w["state"] == "alive"]' |
            "$PY" -c 'import json, random, sys; v = json.load(sys.stdin); print(random.choice(v) if v else "")')"
        if [ -n "$victim" ]; then
            kill_worker "$victim"
            wait "$(worker_pid "$victim")" 2>/dev/null
            kills=$((kills + 1))
            if [ $((kills % 4)) -eq 0 ]; then
                worker_start "worker-$fresh" 1 # a fresh directory: its victim's shards are gone
                fresh=$((fresh + 1))
            else
                worker_start "$victim" 1
            fi
        fi
        next_kill=$((SECONDS + SOAK_KILL_S))
    fi
    sleep 0.5
done
echo "soak: $((SECONDS - t0)) s: stopped submitting after $submitted jobs; waiting for the last ones"
wait_for '[ -z "$(running_jobs)" ]' 600

ctl jobs -o json >"$T/jobs.json" || fail "jobs exit $?"
for job in $(awk '$2 == "pipeline" { print $1 }' "$T/submitted"); do
    ctl result "$job" -o json >"$T/res.$job.json" 2>/dev/null || echo '{}' >"$T/res.$job.json"
done
for job in $(awk '$2 == "noop" { print $1 }' "$T/submitted"); do
    ctl result "$job" -o json >"$T/res.$job.json" 2>/dev/null || echo '{}' >"$T/res.$job.json"
done
"$PY" - "$T" "$ref" "$kills" "$coord_kills" <<'PYEOF'
import json, os, sys
t, ref, kills, ckills = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
jobs = {x["job"]: x for x in json.load(open(os.path.join(t, "jobs.json")))["jobs"]}
refm = dict(json.load(open(os.path.join(t, "ref.json")))["metrics"])
refm.pop("model", None)
done = lost = tasks_lost = tasks = 0
for line in open(os.path.join(t, "submitted")):
    f = line.split()
    job, kind = f[0], f[1]
    r = json.load(open(os.path.join(t, "res.%s.json" % job)))
    st = jobs.get(job, {}).get("state", "missing")
    m = dict(r.get("metrics", {}))
    m.pop("model", None)
    if kind == "noop":
        want = int(f[2])
        tasks += want
        got = int(m.get("tasks", 0)) if st == "succeeded" else 0
        tasks_lost += want - got
        ok = st == "succeeded" and got == want
    else:
        ok = st == "succeeded" and m == refm
    if ok:
        done += 1
    else:
        lost += 1
        print("soak: LOST %s (%s): state %s, %s" % (job, kind, st, jobs.get(job, {}).get("error", "")))
print("soak: jobs submitted %d, completed %d, worker kills survived %d, coordinator kills survived %d,"
      " jobs lost %d, noop tasks %d, tasks lost %d" % (done + lost, done, kills, ckills, lost, tasks, tasks_lost))
sys.exit(1 if lost or tasks_lost else 0)
PYEOF
rc=$?
[ "$rc" -eq 0 ] || fail "jobs or tasks were lost (above)"
echo "soak: ok"
