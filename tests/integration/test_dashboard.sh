#!/usr/bin/env bash
# test_dashboard.sh: the coordinator's web dashboard (--http, started by
# `mlopsctl up`) in a real browser. A cluster of two workers runs a
# purchases pipeline and a job that fails at ingest (a short row);
# then:
#   - every /api/ body equals what `mlopsctl -o json` prints (jobs,
#     status, logs, workers; the workers' last_seen_ms, store and memory
#     aside, which move with each heartbeat);
#   - headless Chromium loads /, /jobs/ID of each job, /workers, /models
#     and /models/NAME; the rendered DOM (--dump-dom) holds the job ids,
#     the stage names, the loss curve, the worker names and the failure
#     reason; on the models pages every version (job, created, metrics,
#     tags, sha256, aliases), every alias move and the gate's decision of
#     both train jobs (one promoted, one kept) equal `mlopsctl model
#     versions/history -o json` and `status -o json`;
#   - a screenshot of each page is kept in BUILD/artifacts/dashboard/;
#   - `mlopsctl report` of the pipeline, of a k-NN recommend job and of
#     the failed job, rendered by Chromium from file://: every number on
#     the page (data-value) equals `result -o json`, the loss, ROC and
#     calibration plots and the confusion matrix are there, the hit rate
#     against the most-popular baseline for the recommend job, no script
#     and nothing fetched from elsewhere; screenshots kept too;
#   - unknown paths are 404, other methods 405, a non-loopback --http
#     without a token is refused, and a client that sends half a request
#     and stalls does not stop the coordinator answering mlopsctl.
# Skipped (exit 77, saying why) where chromium is missing or cannot start.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
command -v chromium >/dev/null 2>&1 || {
    echo "skipped: no chromium program (Debian package chromium; scripts/install-deps.sh --test)"
    exit 77
}
ART="$MLOPS_BUILD_DIR/artifacts/dashboard"
mkdir -p "$ART"
rm -f "$ART"/*.png "$ART"/*.html
CHROME=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
    --user-data-dir="$T/chrome" --hide-scrollbars)
# --virtual-time-budget lets the page's fetches finish before the DOM is
# dumped or the picture taken
dump() { timeout 120 "${CHROME[@]}" --virtual-time-budget=8000 --dump-dom "$1" 2>>"$T/chrome.log"; }
shot() { # URL FILE [WIDTH,HEIGHT]
    timeout 120 "${CHROME[@]}" --virtual-time-budget=8000 --window-size="${3:-1280,900}" \
        --screenshot="$2" "$1" >>"$T/chrome.log" 2>&1
}
probe="$(dump "data:text/html,<p id=x>chromium-ok</p>")"
case "$probe" in
*chromium-ok*) ;;
*)
    echo "skipped: chromium cannot start here: $(tail -n 3 "$T/chrome.log")"
    exit 77
    ;;
esac

# a non-loopback dashboard without a token is refused at start-up
out="$("$MLOPS_BUILD_DIR/mlops-coordinator" --data-dir "$T/refused" --bind tcp://127.0.0.1:0 \
    --http 0.0.0.0:0 2>&1)" && fail "a non-loopback --http without a token started"
assert_contains "$out" "--http 0.0.0.0:0 is not a loopback address"

D="$T/data"
mkdir -p "$D"
gen_purchases 12000 7 "$D/p.csv"
purchases_job "$D/full.yaml" p.csv full
# the gate on: the first version has no champion and is promoted; the
# second must beat it by 100 in log loss, so the gate keeps the first
echo 'promote: {alias: production, metric: logloss}' >>"$D/full.yaml"
# the same data with a field cut from line 2503: the job fails at ingest
awk -F, -v OFS=, 'NR == 2503 { NF = NF - 1 } 1' "$D/p.csv" >"$D/short.csv"
purchases_job "$D/bad.yaml" short.csv
cat >"$D/rec.yaml" <<'YEOF'
name: knn-rec
input: p.csv
shard_rows: 6000
columns: {label: clicked, numeric: [price], categorical: [category]}
clean: {dropna: true}
knn: {k: 20, metric: cosine, mode: recommend, user: user_id, item: item_id, top_n: 10}
YEOF

up="$(ctl -o json up --port 0 --data-dir "$CLUSTER_DIR" --workers 2 2>"$T/up.err")" ||
    fail "mlopsctl up exit $?: $(cat "$T/up.err")"
export MLOPS_COORDINATOR="$(echo "$up" | jget 'd["endpoint"]')"
export MLOPS_KEY="$CLUSTER_DIR/keys/client.key" MLOPS_SERVER_KEY="$CLUSTER_DIR/keys/coordinator.key"
URL="$(echo "$up" | jget 'd["dashboard"]')"
case "$URL" in http://127.0.0.1:*/) ;; *) fail "up -o json gives no dashboard URL: $up" ;; esac
URL="${URL%/}"

full="$(submit_wait "$D/full.yaml")" || exit 1
full2="$(submit_wait "$D/full.yaml" --set promote.min_delta=100)" || exit 1
ctl model alias purchases 2 staging --reason "canary <b>for</b> 5%" >/dev/null || fail "model alias exit $?"
rec="$(submit_wait "$D/rec.yaml")" || exit 1
bad="$(cd "$D" && ctl submit bad.yaml)" || fail "submit bad.yaml exit $?"
ctl wait "$bad" >/dev/null 2>&1 && fail "the job with a short row succeeded"
for j in "$full" "$full2" "$bad"; do
    ctl status "$j" -o json >"$T/status-$j.json" || fail "status $j"
    ctl logs "$j" -o json >"$T/logs-$j.json" || fail "logs $j"
done
assert_contains "$(jget 'd["error"]' <"$T/status-$bad.json")" "short.csv:2503: expected 8 fields" \
    "the failed job's error"

# /api/ says what mlopsctl says; the snapshot is at most a second old, so
# poll until it has caught up with the jobs' end
"$PY" - "$URL" "$T" "$full" "$bad" "$MLOPSCTL" <<'PYEOF' || fail "/api/ disagrees with mlopsctl -o json (see above)"
import json, subprocess, sys, time, urllib.request, urllib.error
url, T, full, bad, ctl = sys.argv[1:6]
def get(p):
    # a 404 before the deadline: the snapshot (a second old at most) has
    # not caught up with a model or job mlopsctl already sees
    try:
        return json.load(urllib.request.urlopen(url + p, timeout=10))
    except urllib.error.HTTPError as e:
        if e.code != 404 or time.time() > deadline:
            raise
        return {"not yet in the snapshot": p}
def ctl_json(*a):
    return json.loads(subprocess.run([ctl, *a, "-o", "json"], check=True, capture_output=True).stdout)
deadline = time.time() + 30
while True:
    pairs = [(get("/api/jobs"), ctl_json("jobs")), (get("/api/models"), ctl_json("models")),
             (get("/api/models/purchases"), ctl_json("model", "versions", "purchases")),
             (get("/api/models/purchases/history"), ctl_json("model", "history", "purchases"))]
    for j in (full, bad):
        pairs.append((get(f"/api/jobs/{j}"), json.load(open(f"{T}/status-{j}.json"))))
        pairs.append((get(f"/api/jobs/{j}/logs"), json.load(open(f"{T}/logs-{j}.json"))))
        pairs.append((get(f"/api/jobs/{j}/tasks"), ctl_json("tasks", j)))
    wa, wb = get("/api/workers"), ctl_json("workers")
    # the stores hold the jobs' shards by the first heartbeat after them
    stored = all(w["store_bytes"] for w in wa["workers"])
    # store and memory as of each worker's last heartbeat: known, and
    # allowed to move between the two reads
    for w in wa["workers"] + wb["workers"]:
        w.pop("last_seen_ms")
        for k in ("store_bytes", "rss_bytes"):
            v = w.pop(k)
            assert v is None or v >= 0, (k, v)
    pairs.append((wa, wb))
    # the task stream: the same tasks; each worker's usage samples as of
    # the first read are where the second read starts (the ring is far
    # from full), and there is one at least
    sa, sb = get("/api/stream"), ctl_json("stream")
    pairs.append((sa["tasks"], sb["tasks"]))
    for x, y in zip(sa["workers"], sb["workers"]):
        pairs.append(((x["id"], x["name"]), (y["id"], y["name"])))
        pairs.append((x["samples"], y["samples"][:len(x["samples"])]))
        if not x["samples"]:
            pairs.append(("a usage sample of " + x["name"], x))
    bad_pairs = [(a, b) for a, b in pairs if a != b]
    if not stored:
        bad_pairs.append(("store_bytes of every worker > 0", wa))
    if not bad_pairs:
        break
    if time.time() > deadline:
        for a, b in bad_pairs:
            print("api:", json.dumps(a)[:600], "\nctl:", json.dumps(b)[:600], file=sys.stderr)
        sys.exit(1)
    time.sleep(0.3)
for p, code in (("/nope", 404), ("/jobs/j-none", 404), ("/api/nope", 404),
                ("/api/jobs/j-none", 404), ("/api/jobs/j-none/tasks", 404), ("/assets/nope.js", 404), ("/models/nope", 404),
                ("/api/models/nope", 404), ("/api/models/purchases/nope", 404)):
    try:
        urllib.request.urlopen(url + p, timeout=10)
        sys.exit(f"{p} answered 200")
    except urllib.error.HTTPError as e:
        assert e.code == code, (p, e.code)
try:
    urllib.request.urlopen(urllib.request.Request(url + "/api/jobs", data=b"x", method="POST"), timeout=10)
    sys.exit("POST answered 200")
except urllib.error.HTTPError as e:
    assert e.code == 405, e.code
print("ok: /api/ matches mlopsctl -o json")
PYEOF

# a client that sends half a request and stalls holds one connection;
# the coordinator still answers mlopsctl, and the pages still load
exec 7<>"/dev/tcp/127.0.0.1/${URL##*:}" || fail "cannot connect to the dashboard"
printf 'GET /api/jobs HTTP/1.1\r\nHost: x\r\n' >&7
t0=$SECONDS
ctl --timeout 5000 jobs >/dev/null || fail "mlopsctl jobs failed while a dashboard client stalls"
"$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5)" "$URL/api/jobs" ||
    fail "the dashboard stopped answering while one client stalls"
[ $((SECONDS - t0)) -lt 5 ] || fail "a stalled dashboard client slowed the coordinator"
exec 7>&-

# the pages, rendered by the browser
check_page() { # NAME PATH WORDS...
    local name="$1" path="$2" dom
    shift 2
    dom="$(dump "$URL$path")"
    printf '%s\n' "$dom" >"$ART/$name.html"
    "$PY" - "$ART/$name.html" "$@" <<'PYEOF' || fail "page $path lacks what it should show (DOM in $ART/$name.html)"
import html, sys
dom = html.unescape(open(sys.argv[1]).read())
missing = [w for w in sys.argv[2:] if w not in dom]
if missing:
    sys.exit(f"missing from the rendered DOM: {missing}")
PYEOF
    shot "$URL$path" "$ART/$name.png" "${SIZE:-1280,900}"
    [ -s "$ART/$name.png" ] || fail "no screenshot of $path: $(tail -n 3 "$T/chrome.log")"
}
err="$(jget 'd["error"]' <"$T/status-$bad.json")"
check_page jobs / "$full" "$bad" purchases succeeded failed "$err" "Failure reason"
check_page job-full "/jobs/$full" "$full" ingest clean scale hash split train evaluate \
    "Training loss per epoch" 'aria-label="training loss per epoch"' accuracy auc \
    "mlopsctl export $full --stage" "$(jget 'd["lines"][0]' <"$T/logs-$full.json")"
check_page job-failed "/jobs/$bad" "$bad" "$err" ingest "No training loss" Tasks
# the job pages: each stage's bar starts and lasts what status says, each
# task row is what `mlopsctl tasks` says, the failed task names its
# worker and the job's error, and the job links to its model version
for j in "$full" "$bad"; do ctl tasks "$j" -o json >"$T/tasks-$j.json" || fail "tasks $j"; done
"$PY" - "$ART" "$T" "$full" "$bad" <<'PYEOF' || fail "a job page disagrees with mlopsctl status/tasks -o json (see above)"
import json, sys
from html.parser import HTMLParser
art, T, full, bad = sys.argv[1:5]
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stages, self.tasks, self.links, self.reg, self.row = {}, {}, [], None, None
    def handle_starttag(self, tag, a):
        a = dict(a)
        if tag == "g" and "data-stage" in a:
            self.stages[a["data-stage"]] = (json.loads(a["data-started"]), json.loads(a["data-seconds"]))
        if tag == "tr" and "data-task" in a:
            self.row = (a["data-stage"], int(a["data-task"]))
            self.tasks[self.row] = {}
        if self.row and "data-key" in a and "data-value" in a:
            self.tasks[self.row][a["data-key"]] = json.loads(a["data-value"])
        if tag == "a":
            self.links.append(a.get("href"))
            if "data-registered" in a:
                self.reg = a["data-registered"]
for j, name in ((full, "job-full"), (bad, "job-failed")):
    p = Page()
    p.feed(open(f"{art}/{name}.html").read())
    st = json.load(open(f"{T}/status-{j}.json"))
    tk = json.load(open(f"{T}/tasks-{j}.json"))
    for s in st["stages"]:
        assert p.stages[s["name"]] == (s["started_s"], s["seconds"]), (j, s, p.stages.get(s["name"]))
        if s["state"] == "done":
            assert s["started_s"] is not None and s["started_s"] >= 0, s
    listed = 0
    for s in tk["stages"]:
        for t in s["tasks"]:
            listed += 1
            row = p.tasks[(s["name"], t["task"])]
            for k in ("worker", "attempts", "seconds", "rows", "error"):
                assert row[k] == t[k], (j, s["name"], t, k, row)
    assert listed == len(p.tasks) > 0, (listed, len(p.tasks))
    workers = {t["worker"] for s in tk["stages"] for t in s["tasks"] if t["worker"]}
    for w in workers:
        assert f"/workers#w-{w}" in p.links, (j, w)
    if j == full:
        assert p.reg == st["registered"] == "purchases@1", (p.reg, st["registered"])
        assert "/models/purchases" in p.links
        done = [t for s in tk["stages"] for t in s["tasks"]]
        assert all(t["state"] == "done" and t["worker"] and t["attempts"] >= 1 for t in done), done
        ing = next(s for s in tk["stages"] if s["name"] == "ingest")
        assert sum(t["rows"] for t in ing["tasks"]) == 12000, ing
    else:
        # the task that failed names its worker and the job's error; the
        # others, stopped when the job failed, say so
        failed = [t for s in tk["stages"] for t in s["tasks"] if t["state"] == "failed"]
        cause = [t for t in failed if t["error"] == st["error"]]
        assert len(cause) == 1 and cause[0]["worker"], failed
        assert all(t["error"] == "abandoned: the job failed" for t in failed if t not in cause), failed
print("ok: job pages match mlopsctl status/tasks -o json")
PYEOF
check_page workers /workers worker-1 worker-2 alive "Tasks done" MiB "Task stream" \
    "memory and store over time" "$(ctl workers -o json | jget 'd["workers"][0]["endpoint"]')"
ctl stream -o json >"$T/stream.json" || fail "stream exit $?"
# the stream holds every finished task of the jobs (each done task once,
# the failed one too), and the page draws each worker's
"$PY" - "$ART" "$T" "$full" "$full2" "$rec" "$bad" <<'PYEOF' || fail "the workers page disagrees with mlopsctl stream -o json (see above)"
import json, sys
from html.parser import HTMLParser
art, T, jobs = sys.argv[1], sys.argv[2], sys.argv[3:]
stream = json.load(open(f"{T}/stream.json"))
for j in (jobs[0], jobs[3]):
    st = json.load(open(f"{T}/status-{j}.json"))
    ok = [t for t in stream["tasks"] if t["job"] == j and t["ok"]]
    assert len(ok) == sum(s["tasks_done"] for s in st["stages"]), (j, len(ok), st["stages"])
    assert all(0 <= t["end"] - t["start"] < 60 for t in ok), ok[:3]
bad = [t for t in stream["tasks"] if not t["ok"]]
assert [t["job"] for t in bad] == [jobs[3]], bad
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.mem = {}, {}
    def handle_starttag(self, tag, a):
        a = dict(a)
        if tag == "g" and "data-tasks" in a:
            self.rows[a["data-worker"]] = int(a["data-tasks"])
        if tag == "svg" and "data-samples" in a:
            self.mem[a["data-worker"]] = (int(a["data-samples"]), int(a["data-last-rss"]))
p = P()
p.feed(open(f"{art}/workers.html").read())
for w in stream["workers"]:
    n = sum(1 for t in stream["tasks"] if t["worker"] == w["name"])
    assert p.rows.get(w["name"]) == n > 0, (w["name"], p.rows, n)
    samples, rss = p.mem[w["name"]]
    assert samples >= 1 and rss > 0, (w["name"], p.mem)
print("ok: the task stream and the usage charts match mlopsctl stream -o json")
PYEOF
# the purchases job's train registered version 1 of model "purchases"
assert_eq "$(ctl models -o json | jget '[m["name"] for m in d["models"]]')" '["purchases"]' "registered models"
check_page models /models "Models" "purchases" "v1" "v2" "$full" "$full2" production staging
SIZE=1280,1600 check_page model /models/purchases "Model purchases" "Promotion decisions" "Alias history" \
    passed failed promoted kept "canary <b>for</b> 5%"
ctl model versions purchases -o json >"$T/versions.json" || fail "model versions"
ctl model history purchases -o json >"$T/history.json" || fail "model history"
# every value on the two pages (data-value) is the one mlopsctl prints
"$PY" - "$ART" "$T" "$full" "$full2" <<'PYEOF' || fail "the models pages disagree with mlopsctl model ... -o json (see above)"
import json, sys
from html.parser import HTMLParser
art, T, full, full2 = sys.argv[1:5]
class Rows(HTMLParser):
    """tr[data-version|data-seq|data-job] -> {data-key: data-value}; plus data-alias and data-metric"""
    def __init__(self):
        super().__init__()
        self.rows, self.alias, self.metrics, self.row = {}, {}, {}, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            for k in ("data-version", "data-seq", "data-job"):
                if k in a:
                    self.row = (k[5:], a[k])
                    self.rows[self.row] = {}
        if self.row and "data-key" in a and "data-value" in a:
            self.rows[self.row][a["data-key"]] = a["data-value"]
        if self.row and "data-metric" in a:
            self.metrics.setdefault(self.row, {})[a["data-metric"]] = float(a["data-value"])
        if "data-alias" in a:
            self.alias[a["data-alias"]] = int(a["data-value"])
def page(name):
    p = Rows()
    p.feed(open(f"{art}/{name}.html").read())
    return p
vers = json.load(open(f"{T}/versions.json"))["versions"]
hist = json.load(open(f"{T}/history.json"))["history"]
assert [v["job"] for v in vers] == [full, full2], vers
for name in ("models", "model"):
    p = page(name)
    for v in vers:
        row = p.rows.get(("version", str(v["version"])))
        assert row, f"{name}: no row of version {v['version']}"
        for k in ("job", "created", "sha256"):
            assert row[k] == v[k], (name, k, row[k], v[k])
        for k in ("aliases", "tags"):
            assert json.loads(row[k]) == v[k], (name, k, row[k], v[k])
        assert p.metrics[("version", str(v["version"]))] == v["metrics"], (name, v["metrics"])
    want = {a: v["version"] for v in vers for a in v["aliases"]}
    assert want == {"production": 1, "staging": 2}, want
    assert p.alias == want, (name, p.alias)
p = page("model")
# a reason is the user's text: shown as text, never as markup
assert "<b>for</b>" not in open(f"{art}/model.html").read(), "an alias reason reached the DOM as markup"
assert len([k for k in p.rows if k[0] == "seq"]) == len(hist) == 3, hist
for m in hist:
    row = p.rows[("seq", str(m["seq"]))]
    for k in ("time", "alias", "fingerprint", "reason"):
        assert row[k] == m[k], (k, row[k], m[k])
    for k in ("from", "to"):
        assert json.loads(row[k]) == m[k], (k, row[k], m[k])
for j, decision in ((full, "promoted"), (full2, "kept")):
    promo = json.load(open(f"{T}/status-{j}.json"))["promotion"]
    assert promo["decision"] == decision, promo
    row = p.rows[("job", j)]
    assert row["decision"] == decision and row["metric"] == "logloss" == promo["metric"], row
    assert json.loads(row["challenger"]) == promo["challenger"], (row, promo)
    assert json.loads(row["champion"]) == promo["champion"], (row, promo)
    gate = [m for m in hist if m["reason"].startswith(f"promotion gate (job {j})")]
    assert len(gate) == 1 and row["reason"] == gate[0]["reason"], (row, gate)
    assert (promo["champion"] is None) == (j == full), promo
print("ok: /models and /models/purchases match mlopsctl model ... -o json")
PYEOF
# a page whose scripts failed shows "Loading…" or the error line
for f in "$ART"/*.html; do
    grep -q "cannot reach the coordinator" "$f" && fail "$(basename "$f"): the page could not read /api/"
done

# the reports: self-contained HTML, numbers equal to result -o json
for j in "$full" "$rec" "$bad"; do
    ctl report "$j" -o "$ART/report-$j.html" || fail "report $j exit $?"
    ctl result "$j" -o json >"$T/result-$j.json" || fail "result $j"
    dump "file://$ART/report-$j.html" >"$ART/report-$j.dom.html"
    shot "file://$ART/report-$j.html" "$ART/report-$j.png" 1280,2200
done
"$PY" - "$ART" "$T" "$full" "$rec" "$bad" <<'PYEOF' || fail "a report disagrees with result -o json (see above)"
import json, re, sys
from html.parser import HTMLParser
art, T, full, rec, bad = sys.argv[1:6]

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values, self.cm, self.svgs, self.tags, self.ext = {}, {}, [], set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "data-metric" in a:
            self.values[a["data-metric"]] = a["data-value"]
        if "data-cm" in a:
            self.cm[a["data-cm"]] = None
            self._cm = a["data-cm"]
        if tag == "svg":
            self.svgs.append(a.get("aria-label"))
        for k in ("src", "href"):
            if k in a:
                self.ext.append(a[k])
    def handle_data(self, d):
        if getattr(self, "_cm", None):
            self.cm[self._cm] = int(d)
            self._cm = None

def load(j):
    p = Page()
    p.feed(open(f"{art}/report-{j}.dom.html").read())
    return p, json.load(open(f"{T}/result-{j}.json"))

for j in (full, rec, bad):
    p, d = load(j)
    assert "script" not in p.tags and not p.ext, (j, p.ext)
    for k, v in p.values.items():
        want = d["metrics"]["train_loss"][-1] if k == "train_loss.last" else d["metrics"][k]
        assert float(v) == float(want), f"{j} {k}: page {v}, result {want}"
    numeric = [k for k, v in d["metrics"].items() if isinstance(v, (int, float))]
    assert set(numeric) <= set(p.values), f"{j}: metrics missing: {set(numeric) - set(p.values)}"

p, d = load(full)
assert "training loss per epoch" in p.svgs and "Calibration curve" in p.svgs, p.svgs
assert any(s and s.startswith("ROC curve (AUC ") for s in p.svgs), p.svgs
cm = d["evaluation"]["confusion_matrix"]
assert p.cm == {f"{r},{c}": cm[r][c] for r in range(len(cm)) for c in range(len(cm))}, p.cm
assert sum(map(sum, cm)) == d["metrics"]["test_rows"]
ev = d["evaluation"]
assert len(ev["roc"]["fpr"]) <= 101 and ev["roc"]["fpr"][0] == 0 and ev["roc"]["tpr"][-1] == 1
# the trapezoids under the (thinned) ROC points come close to the exact AUC
f, t = ev["roc"]["fpr"], ev["roc"]["tpr"]
area = sum((f[i + 1] - f[i]) * (t[i + 1] + t[i]) / 2 for i in range(len(f) - 1))
assert abs(area - d["metrics"]["auc"]) < 0.01, (area, d["metrics"]["auc"])
assert sum(ev["calibration"]["count"]) == d["metrics"]["test_rows"]

p, d = load(rec)
assert {"hit_rate_at_n", "popular_hit_rate_at_n"} <= set(p.values), p.values
assert "No train or evaluate stage ran" in open(f"{art}/report-{rec}.dom.html").read()
p, d = load(bad)
assert d["error"] in open(f"{art}/report-{bad}.dom.html").read()
print("ok: the reports match result -o json")
PYEOF
echo "ok: screenshots in $ART"
