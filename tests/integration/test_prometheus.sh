#!/usr/bin/env bash
# test_prometheus.sh: a real Prometheus (Debian's prometheus server)
# scrapes the coordinator and both workers of a cluster started by
# `mlopsctl up` (metrics on free loopback ports, read from `up -o json`),
# with a generated scrape config and its own storage dir. Two jobs run
# (a full purchases pipeline and a clean-only one); then, through
# Prometheus' HTTP query API, every series named in docs/metrics.md must
# exist, and the counters must agree with the jobs: done tasks by kind
# equal the tasks of the stages of that kind, the workers' ok tasks equal
# the coordinator's done tasks and each worker's count in `mlopsctl
# workers`, uploaded bytes equal the input file's size (one job uploads
# with --upload, the other reads it in place), two jobs submitted
# and two succeeded, two workers alive. Also: /metrics on a daemon
# answers the exposition content type, an unknown path is 404, and a
# non-loopback --metrics-listen without a token is refused.
# Skipped (exit 77, saying why) where the prometheus program is missing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
command -v prometheus >/dev/null 2>&1 || {
    echo "skipped: no prometheus program (Debian package prometheus; scripts/install-deps.sh --test)"
    exit 77
}
D="$T/data"
mkdir -p "$D"
gen_purchases 20000 5 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
purchases_job "$D/clean.yaml" p.csv

# a non-loopback listener without a token is refused at start-up
out="$("$MLOPS_BUILD_DIR/mlops-coordinator" --data-dir "$T/refused" --bind tcp://127.0.0.1:0 \
    --metrics-listen 0.0.0.0:0 2>&1)" && fail "a non-loopback --metrics-listen without a token started"
assert_contains "$out" "0.0.0.0:0 is not a loopback address"

up="$(ctl -o json up --port 0 --data-dir "$CLUSTER_DIR" --workers 2 2>"$T/up.err")" ||
    fail "mlopsctl up exit $?: $(cat "$T/up.err")"
export MLOPS_COORDINATOR="$(echo "$up" | jget 'd["endpoint"]')"
export MLOPS_KEY="$CLUSTER_DIR/keys/client.key" MLOPS_SERVER_KEY="$CLUSTER_DIR/keys/coordinator.key"
echo "$up" | jget 'd["metrics"]' >"$T/targets.json"
[ "$(jget 'len(d)' <"$T/targets.json")" = 3 ] || fail "up -o json lists no 3 metrics URLs: $up"
coord_url="$(jget 'd["coordinator"]' <"$T/targets.json")"

# the daemon's own listener: the exposition content type, 404 elsewhere
"$PY" - "$coord_url" <<'PYEOF' || fail "the coordinator's /metrics listener misbehaves"
import sys, urllib.request, urllib.error
url = sys.argv[1]
r = urllib.request.urlopen(url, timeout=10)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
body = r.read().decode()
assert 'mlops_build_info{role="coordinator",version="' in body, body[:400]
try:
    urllib.request.urlopen(url.replace("/metrics", "/nope"), timeout=10)
    sys.exit("an unknown path answered 200")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
PYEOF

PROM_PORT="$(free_port)"
"$PY" - "$T/targets.json" "$T/prometheus.yml" <<'PYEOF' || fail "cannot write the scrape config"
import json, sys
t = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
    for name, url in sorted(t.items()):
        hostport = url.split("//")[1].split("/")[0]
        f.write(f"  - job_name: {name}\n    static_configs:\n      - targets: ['{hostport}']\n")
PYEOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$PROM_PORT" </dev/null >"$CLUSTER_DIR/logs/prometheus.log" 2>&1 &
PROM_PID=$!
PROM="http://127.0.0.1:$PROM_PORT"
# Prometheus answers its query API once ready; if it cannot start here
# (for example no writable storage), say so and skip rather than fail
for _ in $(seq 1 300); do
    "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "$PROM/-/ready" 2>/dev/null && break
    kill -0 "$PROM_PID" 2>/dev/null || {
        echo "skipped: prometheus exited at start-up: $(tail -n 3 "$CLUSTER_DIR/logs/prometheus.log")"
        exit 77
    }
    sleep 0.1
done

full="$(submit_wait "$D/full.yaml" --upload)" || exit 1
clean="$(submit_wait "$D/clean.yaml" --set shard_rows=2500)" || exit 1
ctl status "$full" -o json >"$T/full.json" || fail "status $full"
ctl status "$clean" -o json >"$T/clean.json" || fail "status $clean"
ctl workers -o json >"$T/workers.json" || fail "workers"

"$PY" - "$PROM" "$T" "$MLOPS_SOURCE_DIR/docs/metrics.md" "$D/p.csv" <<'PYEOF' || fail "Prometheus disagrees with the jobs (see above)"
import json, os, re, sys, time, urllib.parse, urllib.request
prom, T, doc, csv = sys.argv[1:5]

def query(q):
    u = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    r = json.load(urllib.request.urlopen(u, timeout=10))
    assert r["status"] == "success", r
    return r["data"]["result"]

def scalar(q):
    res = query(q)
    return float(res[0]["value"][1]) if res else None

jobs = [json.load(open(os.path.join(T, f))) for f in ("full.json", "clean.json")]
workers = json.load(open(os.path.join(T, "workers.json")))["workers"]
by_kind = {}
# ingest is one phase of kind "ingest"; other stages run phases of
# several kinds (clean_qround, ...), so only ingest is compared by kind;
# every stage's tasks count in the total
total = sum(s["tasks_done"] for j in jobs for s in j["stages"])
for j in jobs:
    for s in j["stages"]:
        by_kind[s["name"]] = by_kind.get(s["name"], 0) + s["tasks_done"]
ok_by_worker = {w["name"]: w["tasks_done"] for w in workers if w["state"] == "alive"}
size = os.path.getsize(csv)

want = {
    'sum(mlops_coordinator_tasks_done_total)': total,
    'sum(mlops_worker_tasks_total{result="ok"})': total,
    'mlops_coordinator_tasks_done_total{kind="ingest"}': by_kind["ingest"],
    'mlops_coordinator_jobs_submitted_total': 2,
    'mlops_coordinator_jobs{state="succeeded"}': 2,
    'mlops_coordinator_jobs{state="running"}': 0,
    'mlops_coordinator_workers_alive': 2,
    'mlops_coordinator_uploaded_bytes_total': size,  # the clean job read it in place
    'sum(mlops_coordinator_tasks_failed_total) or vector(0)': 0,
    'count(up == 1)': 3,
}
for name, n in ok_by_worker.items():
    want[f'sum(mlops_worker_tasks_total{{job="{name}",result="ok"}})'] = n

# wait for a scrape taken after both jobs ended (scrape interval 1 s)
deadline = time.time() + 60
while True:
    got = {q: scalar(q) for q in want}
    bad = {q: (got[q], w) for q, w in want.items()
           if got[q] is None or (w is not None and abs(got[q] - w) > 1e-9)}
    if not bad:
        break
    if time.time() > deadline:
        for q, (g, w) in bad.items():
            print(f"{q}: Prometheus says {g}, the jobs say {w}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)

# dispatched >= done, and each duration histogram counted every done task
assert scalar("sum(mlops_coordinator_tasks_dispatched_total)") >= total
assert scalar("sum(mlops_coordinator_task_duration_seconds_count)") == total
assert scalar('sum(mlops_worker_task_duration_seconds_count)') == total
assert scalar("sum(mlops_coordinator_journal_commit_duration_seconds_count)") > 0
assert scalar('min(mlops_worker_resident_memory_bytes)') > 1e6
assert scalar('min(mlops_worker_store_bytes)') > 0
assert scalar('count(mlops_build_info)') == 3

# every metric docs/metrics.md lists exists in Prometheus, and nothing
# the daemons export is missing from the doc
documented = set(re.findall(r"^\| `(mlops_[a-z_]+)`", open(doc).read(), re.M))
documented = {n for n in documented if not n.startswith("mlops_serve_")}  # test_serve.sh checks those
names = set(json.load(urllib.request.urlopen(prom + "/api/v1/label/__name__/values", timeout=10))["data"])
exported = set()
for n in names:
    if not n.startswith("mlops_"):
        continue
    exported.add(re.sub(r"_(bucket|sum|count)$", "", n) if not n.endswith("_total") else n)
missing = sorted(documented - exported - {"mlops_coordinator_tasks_retried_total",
                                          "mlops_coordinator_tasks_handed_back_total",
                                          "mlops_coordinator_tasks_failed_total",
                                          "mlops_worker_shard_fetches_total",
                                          "mlops_worker_shard_fetch_duration_seconds"})
undocumented = sorted(n for n in exported - documented
                      if not n.endswith(("_bucket", "_sum", "_count")))
# a histogram's family name is exported as its _bucket/_sum/_count only
undocumented = [n for n in undocumented if n + "_bucket" not in names]
assert not missing, f"documented but not in Prometheus: {missing}"
assert not undocumented, f"exported but not in docs/metrics.md: {undocumented}"
print(f"ok: {total} tasks done, as Prometheus reports; {len(documented)} documented metrics")
PYEOF
kill "$PROM_PID" 2>/dev/null
wait "$PROM_PID" 2>/dev/null
echo "ok"
