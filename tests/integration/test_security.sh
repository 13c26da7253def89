#!/usr/bin/env bash
# test_security.sh: CURVE on every connection (docs/security.md), for real.
#
# A cluster from `mlopsctl up` (secure by default):
#   - a client with no key, an unknown key or a worker key is refused, with
#     a message, and the coordinator logs the refusal with the key's
#     fingerprint; a worker with an unknown key, or with a client key, is
#     not registered; a store request without a known key gets no answer
#     (and with the client key it does, so the check can fail);
#   - a client key added to the directory while the coordinator runs is let
#     in, and refused again once removed;
#   - path escapes in job names, stage names and job ids are refused;
#   - a coordinator bound to a non-loopback address without keys refuses
#     to start.
# Then a capture on lo (tcpdump, filtered to this test's ports) while a
# job runs: a marker string from the input CSV never appears on the wire
# with CURVE, and does appear with --insecure, so the check can fail.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

skip() {
    echo "skipped: $*"
    exit 77
}

command -v tcpdump >/dev/null 2>&1 || skip "no tcpdump (scripts/install-deps.sh --test installs it)"
D="$T/data"
K="$CLUSTER_DIR/keys"
mkdir -p "$D" "$T/other"
MARK="zebra-plaintext-$$-marker"
gen_purchases 3000 5 "$D/raw.csv"
# every 7th row gets the marker as its category (some categories are quoted)
"$PY" - "$D/raw.csv" "$D/p.csv" "$MARK" <<'PYEOF' || fail "cannot mark the input"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
col = rows[0].index("category")
for i, r in enumerate(rows[1:], 1):
    if i % 7 == 0:
        r[col] = sys.argv[3]
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
PYEOF
grep -q "$MARK" "$D/p.csv" || fail "the marker is not in the input"
purchases_job "$D/job.yaml" p.csv

# ------------------------------------------------------------ a secure cluster
cluster_up 2
job="$(submit_wait "$D/job.yaml")" || exit 1
ctl export "$job" --stage clean -o "$T/clean.csv" || fail "export with the client key exit $?"
[ "$(wc -l <"$T/clean.csv")" -gt 100 ] || fail "export wrote too few rows"

# no key at all
out="$(
    unset MLOPS_KEY MLOPS_SERVER_KEY
    ctl --timeout 1500 jobs 2>&1
)"
rc=$?
assert_eq "$rc" 1 "exit of a client without a key"
assert_contains "$out" "did not complete the handshake; mlopsctl has no client key" "no-key message"
wait_for 'grep -q "the handshake failed" "$CLUSTER_DIR/logs/coordinator.log"' 10

# an unknown key
ctl keygen stranger --out "$T/other" >"$T/stranger.txt" || fail "keygen stranger exit $?"
fp="$(cut -f2 "$T/stranger.txt")"
[ "${#fp}" = 16 ] || fail "keygen printed no fingerprint: $(cat "$T/stranger.txt")"
out="$(MLOPS_KEY="$T/other/stranger.key" ctl --timeout 1500 jobs 2>&1)"
assert_eq "$?" 1 "exit of a client with an unknown key"
assert_contains "$out" "refused this client's key; client key $fp" "unknown-key message"
wait_for "grep -q 'refused a connection from 127.0.0.1.*key $fp is not authorised' \"\$CLUSTER_DIR/logs/coordinator.log\"" 10

# a worker key may neither read nor submit
out="$(MLOPS_KEY="$K/worker.key" ctl --timeout 1500 jobs 2>&1)"
assert_eq "$?" 1 "exit of a client with a worker key"
assert_contains "$out" "a worker key cannot submit jobs or read results" "worker-key message"
out="$(MLOPS_KEY="$K/worker.key" ctl --timeout 1500 submit "$D/job.yaml" 2>&1)"
assert_eq "$?" 1 "exit of submit with a worker key"
assert_contains "$out" "a worker key cannot submit jobs" "worker-key submit message"
grep -q "denied Query from 127.0.0.1 (key [0-9a-f]*, worker)" "$CLUSTER_DIR/logs/coordinator.log" ||
    fail "the coordinator did not log the denied query"

# a worker with an unknown key, and one with a client key, are not registered
common=(--coordinator "$MLOPS_COORDINATOR" --server-key "$K/coordinator.key"
    --worker-keys "$K/workers" --client-keys "$K/clients")
"$MLOPS_BUILD_DIR/mlops-worker" "${common[@]}" --cert "$T/other/stranger.key" \
    --data-dir "$CLUSTER_DIR/intruder1" --name intruder1 >"$CLUSTER_DIR/logs/intruder1.log" 2>&1 &
echo "intruder1 $!" >>"$CLUSTER_DIR/pids"
"$MLOPS_BUILD_DIR/mlops-worker" "${common[@]}" --cert "$K/client.key" \
    --data-dir "$CLUSTER_DIR/intruder2" --name intruder2 >"$CLUSTER_DIR/logs/intruder2.log" 2>&1 &
echo "intruder2 $!" >>"$CLUSTER_DIR/pids"
wait_for "[ \$(grep -c 'key $fp is not authorised' \"\$CLUSTER_DIR/logs/coordinator.log\") -ge 2 ]" 15
wait_for 'grep -q "denied Register from 127.0.0.1 (key [0-9a-f]*, client): a client key cannot act as a worker" "$CLUSTER_DIR/logs/coordinator.log"' 15
wait_for 'grep -q "the coordinator refused this worker" "$CLUSTER_DIR/logs/intruder2.log"' 15
names="$(ctl workers -o json | jget '" ".join(sorted(w["name"] for w in d["workers"]))')"
assert_eq "$names" "worker-1 worker-2" "registered workers"
kill_worker intruder1
kill_worker intruder2
wait "$(worker_pid intruder1)" "$(worker_pid intruder2)" 2>/dev/null

# the refusals are counted
sec="$(ctl security -o json)" || fail "security query exit $?"
assert_eq "$(echo "$sec" | jget 'd["curve"] and d["refused_keys"] >= 2 and d["denied"] >= 3 and d["handshakes_failed"] >= 1')" \
    True "security counters: $sec"
ctl security | grep -q "^CURVE: *on" || fail "mlopsctl security does not say CURVE is on"

# a store request: answered for the client key only
store="$(ctl workers -o json | jget 'd["workers"][0]["endpoint"]')"
store_ask() {
    "$PY" - "$store" "$K/worker.key" "$1" <<'PYEOF'
import re, sys, zmq
ep, server_file, mode = sys.argv[1:4]
def keys(path):
    text = open(path).read()
    get = lambda k: re.search(k + r'\s*=\s*"(.{40})"', text).group(1).encode()
    return get("public-key"), (get("secret-key") if "secret-key" in text else None)
s = zmq.Context.instance().socket(zmq.DEALER)
s.linger = 0
if mode != "plain":
    pub, sec = zmq.curve_keypair() if mode == "stranger" else keys(mode + "_secret")
    s.curve_publickey, s.curve_secretkey = pub, sec
    s.curve_serverkey = keys(server_file)[0]
s.connect(ep)
s.send(b"not an envelope")
print("answered" if s.poll(1500) else "silent")
PYEOF
}
assert_eq "$(store_ask plain)" silent "store request without a key"
assert_eq "$(store_ask stranger)" silent "store request with an unknown key"
assert_eq "$(store_ask "$K/client.key")" answered "store request with the client key"

# keys added and removed while the coordinator runs
ctl keygen late --out "$T/other" >/dev/null || fail "keygen late"
MLOPS_KEY="$T/other/late.key" ctl --timeout 1000 jobs >/dev/null 2>&1 && fail "an unlisted key got in"
cp "$T/other/late.key" "$K/clients/" || fail "cp late.key"
wait_for 'MLOPS_KEY="$T/other/late.key" ctl --timeout 1000 jobs' 10
rm "$K/clients/late.key"
out="$(MLOPS_KEY="$T/other/late.key" ctl --timeout 1500 jobs 2>&1)"
assert_eq "$?" 1 "exit of a removed key"
assert_contains "$out" "refused this client's key" "removed-key message"
# SIGHUP re-reads the directories too
kill -HUP "$(worker_pid coordinator)"
wait_for 'grep -q "SIGHUP: re-read the keys" "$CLUSTER_DIR/logs/coordinator.log"' 10
ctl jobs >/dev/null || fail "the client key after SIGHUP"

# path escapes
sed 's/^name: .*/name: ..\/..\/etc\/cron.d\/x/' "$D/job.yaml" >"$D/evil.yaml"
out="$(ctl submit "$D/evil.yaml" 2>&1)"
assert_eq "$?" 2 "exit of a job name with a path"
assert_contains "$out" "name: expected 1..128 characters from [A-Za-z0-9_.-], not starting with '.'"
out="$(ctl export "$job" --stage ../../../etc/passwd -o "$T/x.csv" 2>&1)"
assert_eq "$?" 1 "exit of an export of stage ../../../etc/passwd"
out="$(ctl status ../../../etc/passwd 2>&1)"
assert_eq "$?" 1 "exit of status ../../../etc/passwd"
assert_contains "$out" "no job"
[ ! -e "$T/x.csv" ] || [ ! -s "$T/x.csv" ] || fail "a refused export wrote $T/x.csv"

# the capture: the marker must not be on the wire
ports() {
    local p="${MLOPS_COORDINATOR##*:}" w
    for w in $(ctl workers -o json | jget '" ".join(w["endpoint"].split(":")[-1] for w in d["workers"] if w["state"] == "alive")'); do
        p="$p $w"
    done
    echo "$p"
}
capture() { # FILE: capture lo, on this cluster's ports, while a job runs
    local f="$1" filt="" p
    for p in $(ports); do filt="${filt:+$filt or }tcp port $p"; done
    tcpdump -i lo -U -s 0 -w "$f" "$filt" 2>"$f.err" &
    local cap=$!
    wait_for "grep -q 'listening on' '$f.err' || ! kill -0 $cap" 10
    kill -0 "$cap" 2>/dev/null || skip "tcpdump cannot capture on lo: $(tail -n 1 "$f.err")"
    # --upload: the CSV itself crosses the wire (an `up` cluster reads it in place)
    submit_wait "$D/job.yaml" --upload >/dev/null || exit 1
    ctl export "$(ctl jobs -o json | jget 'd["jobs"][-1]["job"]')" --stage clean >/dev/null ||
        fail "export during the capture"
    sleep 0.5 # the last packets reach the file (tcpdump -U flushes per packet)
    kill -INT "$cap"
    wait "$cap" 2>/dev/null
    [ -s "$f" ] || fail "tcpdump wrote nothing to $f"
}
capture "$T/secure.pcap"
n="$(grep -a -c "$MARK" "$T/secure.pcap")"
assert_eq "$n" 0 "packets with the marker, CURVE on"
cluster_down

# ------------------------------------------- refusing to serve the world in plain
out="$("$MLOPS_BUILD_DIR/mlops-coordinator" --bind tcp://0.0.0.0:0 --data-dir "$T/plain" 2>&1)"
assert_eq "$?" 1 "exit of a coordinator on 0.0.0.0 without keys"
assert_contains "$out" "refusing to serve tcp://0.0.0.0:0 without keys"

# -------------------------------------------------- --insecure, on loopback
rm -rf "$CLUSTER_DIR"
INSECURE=1 COORD_ARGS=--insecure cluster_start 2
grep -q "INSECURE: serving tcp://127.0.0.1:\* without CURVE" "$CLUSTER_DIR/logs/coordinator.log" ||
    fail "no warning at start of an insecure coordinator"
capture "$T/plain.pcap"
n="$(grep -a -c "$MARK" "$T/plain.pcap")"
[ "$n" -gt 0 ] || fail "the marker is not in the plain-text capture: the check cannot see plain text"
grep -q "INSECURE: plain-text connection from 127.0.0.1" "$CLUSTER_DIR/logs/coordinator.log" ||
    fail "no warning on the connections of an insecure coordinator"
assert_eq "$(ctl security -o json | jget 'd["curve"]')" False "security query of a plain coordinator"
echo "ok: refusals, key reload, path escapes; marker in the capture: 0 times with CURVE, on $n lines in plain"
