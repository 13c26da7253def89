#!/usr/bin/env bash
# test_registry_ahead.sh: a job whose last stages are knn stages has its
# model's artifact built and written beside them (registry_build.c,
# coord_registry_prepare), and registered at its end. Two such jobs of
# the same model name run at once, so both build their artifact ahead as
# the same next version; whichever ends first registers it, and the
# other finds the number taken and builds its artifact again. Checked:
# versions 1 and 2 exist, each artifact says its own version and the job
# that trained it (lineage.job, and `model show`'s job), its file's
# digest is what `model show` says, and the two weights are the same (the
# same job file and seed). A third job, alone, registers version 3 from
# the artifact it built ahead, identical to the others but for its
# version, job and creation time.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 9 "$D/p.csv"
purchases_job "$D/j.yaml" p.csv full
echo "knn: {k: 5, metric: cosine, mode: recommend, user: user_id, item: item_id, top_n: 5}" >>"$D/j.yaml"

cluster_start 2 1
a="$(ctl submit "$D/j.yaml")" || fail "submit a exit $?"
b="$(ctl submit "$D/j.yaml")" || fail "submit b exit $?"
for j in "$a" "$b"; do
    timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err" || fail "job $j: $(tail -n 2 "$T/wait.err")"
done
c="$(submit_wait "$D/j.yaml")" || exit 1

for v in 1 2 3; do
    ctl model export "purchases@$v" -o "$T/v$v.json" || fail "model export purchases@$v exit $?"
    ctl model show "purchases@$v" -o json >"$T/s$v.json" || fail "model show purchases@$v exit $?"
    assert_eq "$(sha256sum <"$T/v$v.json" | cut -d' ' -f1)" "$(jget 'd["sha256"]' <"$T/s$v.json")" \
        "digest of version $v's artifact"
done
"$PY" - "$T" "$a" "$b" "$c" <<'EOF' || fail "the artifacts built ahead disagree (see above)"
import json, sys
t, jobs = sys.argv[1], sys.argv[2:]
arts = [json.load(open(f"{t}/v{v}.json")) for v in (1, 2, 3)]
shows = [json.load(open(f"{t}/s{v}.json")) for v in (1, 2, 3)]
bad = 0
for v, (a, s) in enumerate(zip(arts, shows), 1):
    if a["version"] != v:
        print(f"version {v}'s artifact says version {a['version']}"); bad = 1
    if a["lineage"]["job"] != s["job"]:
        print(f"version {v}: artifact from {a['lineage']['job']}, registered by {s['job']}"); bad = 1
if sorted(a["lineage"]["job"] for a in arts[:2]) != sorted(jobs[:2]) or arts[2]["lineage"]["job"] != jobs[2]:
    print(f"jobs {[a['lineage']['job'] for a in arts]} vs submitted {jobs}"); bad = 1
def body(a):
    a = dict(a)
    for k in ("version", "created", "lineage"):
        a.pop(k)
    return a
if not (body(arts[0]) == body(arts[1]) == body(arts[2])):
    print("the three artifacts differ beyond version, creation time and lineage"); bad = 1
sys.exit(bad)
EOF
echo "test_registry_ahead: versions 1-3 of jobs $a $b $c"
