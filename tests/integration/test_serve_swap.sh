#!/usr/bin/env bash
# test_serve_swap.sh: hot swap. `mlopsctl up --serve clicks@production`
# starts mlops-serve beside the cluster before the model exists (health
# 503, then 200 once trained and aliased); two versions are trained;
# while client threads hammer /invocations over keep-alive connections,
# the alias moves 6 times: no request fails, and every request sent more
# than 1 s after a move is answered by the version moved to (the reply
# names it). `mlopsctl down` stops the server with the cluster.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
D="$T/data"
mkdir -p "$D"
gen_purchases 8000 5 "$D/train.csv"
purchases_job "$D/train.yaml" train.csv full
sed -i 's/n_features: 65536/n_features: 1024/' "$D/train.yaml"
echo "register: {model: clicks}" >>"$D/train.yaml"
cluster_up 1 --serve clicks@production --serve-listen 127.0.0.1:0
[ -s "$CLUSTER_DIR/serve/serve.addr" ] || fail "up --serve wrote no serve.addr"
URL="http://$(cat "$CLUSTER_DIR/serve/serve.addr")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 503 ] || fail "/health before a model must be 503"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")" = 503 ] || fail "ready before a model must be 503"
submit_wait "$D/train.yaml" >/dev/null || exit 1
submit_wait "$D/train.yaml" --set train.seed=7 --set train.epochs=2 >/dev/null || exit 1
ctl model alias clicks 1 production >/dev/null || fail "alias"
wait_for "curl -sf $URL/health" 10
"$PY" - "$URL" "$MLOPSCTL" <<'PYEOF' || fail "hot swap (see above)"
import http.client, json, subprocess, sys, threading, time
url, ctl = sys.argv[1:]
host, port = url[len("http://"):].split(":")
body = json.dumps({"dataframe_split": {"columns": ["price", "quantity", "age", "income", "category", "item_id", "user_id"],
                                       "data": [[19.99, 2, 41, 52000, "books", "i0042", "u00007"]]}})
log, errors, stop = [], [], threading.Event()

def client():
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append((r.status, data[:200]))
                continue
            log.append((t0, time.monotonic(), json.loads(data)["model"]["version"]))
        except Exception as e:  # a dropped connection is a failed request
            errors.append(repr(e))
            c = http.client.HTTPConnection(host, int(port), timeout=10)

threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads:
    t.start()
time.sleep(0.5)
moves = []
for i in range(6):
    to = 2 if i % 2 == 0 else 1
    t_start = time.monotonic()
    subprocess.run([ctl, "model", "alias", "clicks", str(to), "production"], check=True, stdout=subprocess.DEVNULL)
    moves.append((t_start, time.monotonic(), to))
    time.sleep(1.5)
stop.set()
for t in threads:
    t.join()
assert not errors, f"{len(errors)} failed requests, first: {errors[:3]}"
assert len(log) > 100, f"only {len(log)} requests answered"
worst = 0.0
for k, (ts, tm, to) in enumerate(moves):
    # from the moment `model alias` returned to when the next one started
    end = moves[k + 1][0] if k + 1 < len(moves) else float("inf")
    late = [r for r in log if r[0] >= tm + 1.0 and r[1] < end and r[2] != to]
    assert not late, f"move {k} to v{to}: {len(late)} requests sent > 1 s after it answered by v{late[0][2]}"
    first = [r[1] - tm for r in log if r[0] >= ts and r[1] < end and r[2] == to]
    assert first, f"move {k}: version {to} never answered"
    worst = max(worst, max(0.0, min(first)))
print(f"hot swap: {len(log)} requests, 0 failed, 6 moves, new version answering within {worst * 1000:.0f} ms")
PYEOF
curl -s "$URL/metrics" | grep -q '^mlops_serve_swaps_total 6' || fail "swaps_total: $(curl -s "$URL/metrics" | grep swaps)"
pid="$(awk '$1 == "serve" {p = $2} END {print p}' "$CLUSTER_DIR/pids")"
ctl down --data-dir "$CLUSTER_DIR" >/dev/null || fail "down"
wait_for "! kill -0 $pid" 10
echo "test_serve_swap: ok"
