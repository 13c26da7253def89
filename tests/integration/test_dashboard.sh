#!/usr/bin/env bash
# test_dashboard.sh: the coordinator's web dashboard (--http, started by
# `mlopsctl up`) in a real browser. A cluster of two workers runs a
# purchases pipeline and a job that fails at ingest (a short row);
# then:
#   - every /api/ body equals what `mlopsctl -o json` prints (jobs,
#     status, logs, workers; the workers' last_seen_ms, store and memory
#     aside, which move with each heartbeat);
#   - headless Chromium loads /, /jobs/ID of each job, /workers and
#     /models; the rendered DOM (--dump-dom) holds the job ids, the stage
#     names, the loss curve, the worker names and the failure reason;
#   - a screenshot of each page is kept in BUILD/artifacts/dashboard/;
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
shot() {
    timeout 120 "${CHROME[@]}" --virtual-time-budget=8000 --window-size=1280,900 \
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
# the same data with a field cut from line 2503: the job fails at ingest
awk -F, -v OFS=, 'NR == 2503 { NF = NF - 1 } 1' "$D/p.csv" >"$D/short.csv"
purchases_job "$D/bad.yaml" short.csv

up="$(ctl -o json up --port 0 --data-dir "$CLUSTER_DIR" --workers 2 2>"$T/up.err")" ||
    fail "mlopsctl up exit $?: $(cat "$T/up.err")"
export MLOPS_COORDINATOR="$(echo "$up" | jget 'd["endpoint"]')"
URL="$(echo "$up" | jget 'd["dashboard"]')"
case "$URL" in http://127.0.0.1:*/) ;; *) fail "up -o json gives no dashboard URL: $up" ;; esac
URL="${URL%/}"

full="$(submit_wait "$D/full.yaml")" || exit 1
bad="$(cd "$D" && ctl submit bad.yaml)" || fail "submit bad.yaml exit $?"
ctl wait "$bad" >/dev/null 2>&1 && fail "the job with a short row succeeded"
for j in "$full" "$bad"; do
    ctl status "$j" -o json >"$T/status-$j.json" || fail "status $j"
    ctl logs "$j" -o json >"$T/logs-$j.json" || fail "logs $j"
done
assert_contains "$(jget 'd["error"]' <"$T/status-$bad.json")" "short.csv:2503: expected 8 fields" \
    "the failed job's error"

# /api/ says what mlopsctl says; the snapshot is at most 250 ms old, so
# poll until it has caught up with the jobs' end
"$PY" - "$URL" "$T" "$full" "$bad" "$MLOPSCTL" <<'PYEOF' || fail "/api/ disagrees with mlopsctl -o json (see above)"
import json, subprocess, sys, time, urllib.request, urllib.error
url, T, full, bad, ctl = sys.argv[1:6]
def get(p):
    return json.load(urllib.request.urlopen(url + p, timeout=10))
def ctl_json(*a):
    return json.loads(subprocess.run([ctl, *a, "-o", "json"], check=True, capture_output=True).stdout)
deadline = time.time() + 30
while True:
    pairs = [(get("/api/jobs"), ctl_json("jobs"))]
    for j in (full, bad):
        pairs.append((get(f"/api/jobs/{j}"), json.load(open(f"{T}/status-{j}.json"))))
        pairs.append((get(f"/api/jobs/{j}/logs"), json.load(open(f"{T}/logs-{j}.json"))))
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
                ("/api/jobs/j-none", 404), ("/assets/nope.js", 404), ("/api/models", 404)):
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
    shot "$URL$path" "$ART/$name.png"
    [ -s "$ART/$name.png" ] || fail "no screenshot of $path: $(tail -n 3 "$T/chrome.log")"
}
err="$(jget 'd["error"]' <"$T/status-$bad.json")"
check_page jobs / "$full" "$bad" purchases succeeded failed "$err" "Failure reason"
check_page job-full "/jobs/$full" "$full" ingest clean scale hash split train evaluate \
    "Training loss per epoch" 'aria-label="training loss per epoch"' accuracy auc \
    "mlopsctl export $full --stage" "$(jget 'd["lines"][0]' <"$T/logs-$full.json")"
check_page job-failed "/jobs/$bad" "$bad" "$err" ingest "No training loss"
check_page workers /workers worker-1 worker-2 alive "Tasks done" MiB \
    "$(ctl workers -o json | jget 'd["workers"][0]["endpoint"]')"
check_page models /models "No models registered"
# a page whose scripts failed shows "Loading…" or the error line
for f in "$ART"/*.html; do
    grep -q "cannot reach the coordinator" "$f" && fail "$(basename "$f"): the page could not read /api/"
done
echo "ok: screenshots in $ART"
