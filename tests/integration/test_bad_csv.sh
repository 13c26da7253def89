#!/usr/bin/env bash
# test_bad_csv.sh: the bad-input cases of issue 8 §2 not in
# test_bad_input.sh, each with its exact one-line message (or, where the
# input is valid, the same answer as a clean file), and the daemons still
# running and serving afterwards.
#  CSV: invalid UTF-8 in a string column fails the job with
#  "FILE:LINE: column 'category': invalid UTF-8 at byte 2 of the field";
#  an empty file and a header-only file are refused by submit (exit 2);
#  a UTF-8 BOM and CRLF line ends give metrics identical to the plain
#  file; a 10 MB field is carried (the job succeeds with every row); a
#  label value outside columns.classes fails the job naming it.
#  Protocol: a TaskResult from a DEALER that never registered is answered
#  Error{NOT_REGISTERED}; a registered worker's result for a job that was
#  removed is ignored (logged), and the coordinator keeps serving.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
HB_MS=250
D="$T/data"
mkdir -p "$D"
cd "$D" || fail "cd $D"
"$PY" - <<'PYEOF' || fail "cannot write the CSVs"
import random
hdr = "price,quantity,age,income,category,item_id,user_id,clicked"
r = random.Random(1)
rows = ["%.2f,%d,%d,%d,c%d,i%d,u%d,%d" % (r.uniform(1, 100), r.randint(1, 5), r.randint(18, 80),
        r.randint(1000, 9000), r.randint(0, 3), r.randint(0, 50), r.randint(0, 30), i % 2) for i in range(400)]
def w(name, data):
    open(name, "wb").write(data)
body = "\n".join([hdr] + rows) + "\n"
w("good.csv", body.encode())
bad = rows[:]
bad[120] = bad[120].replace(",c", ",c\xff", 1)  # line 122 (header is line 1)
w("utf8.csv", ("\n".join([hdr] + bad) + "\n").encode("latin-1"))
big = rows[:]
big[100] = big[100].replace(",c", ",c" + "x" * (10 << 20), 1)
w("big.csv", ("\n".join([hdr] + big) + "\n").encode())
w("empty.csv", b"")
w("header.csv", (hdr + "\n").encode())
w("bom.csv", b"\xef\xbb\xbf" + body.encode())
w("crlf.csv", body.replace("\n", "\r\n").encode())
lab = rows[:]
lab[50] = lab[50][:-1] + "yes"
w("label.csv", ("\n".join([hdr] + lab) + "\n").encode())
PYEOF
cat >job.yaml <<'EOF'
name: p
input: good.csv
shard_rows: 100
columns: {label: clicked, numeric: [price, quantity, age, income], categorical: [category, item_id, user_id]}
clean: {dropna: true, iqr_k: 1.5}
hash: {n_features: 1024}
split: {test_size: 0.2, seed: 42}
train: {model: logistic, epochs: 2}
evaluate: [accuracy, logloss]
EOF
cluster_start 1 1

ref="$(submit_wait job.yaml)" || exit 1
save_result "$ref" "$T/ref.json"

j="$(ctl submit job.yaml --set input=utf8.csv)" || fail "submit utf8.csv exit $?"
ctl wait "$j" >/dev/null 2>&1
assert_eq "$?" 1 "wait exit of invalid UTF-8"
assert_eq "$(ctl status "$j" -o json | jget 'd["error"]')" \
    "utf8.csv:122: column 'category': invalid UTF-8 at byte 2 of the field" "invalid UTF-8 error"

e="$(ctl submit job.yaml --set input=empty.csv 2>&1)"
assert_eq "$?" 2 "submit exit of an empty file"
assert_eq "$e" "mlopsctl: empty.csv: empty file, expected a header row" "empty file message"
e="$(ctl submit job.yaml --set input=header.csv 2>&1)"
assert_eq "$?" 2 "submit exit of a header-only file"
assert_eq "$e" "mlopsctl: header.csv: header only, no data rows" "header-only message"

j="$(ctl submit job.yaml --set input=label.csv --set 'columns.classes=[0, 1]')" || fail "submit label.csv exit $?"
ctl wait "$j" >/dev/null 2>&1
assert_eq "$?" 1 "wait exit of a label value that is not a class"
assert_eq "$(ctl status "$j" -o json | jget 'd["error"]')" \
    "label.csv: column 'clicked': label value 'yes' is not one of columns.classes (0, 1)" "label error"
k="$(submit_wait job.yaml --set 'columns.classes=[0, 1]')" || exit 1

for f in bom crlf; do
    k="$(submit_wait job.yaml --set input=$f.csv)" || exit 1
    save_result "$k" "$T/$f.json"
    same_metrics "$T/ref.json" "$T/$f.json" "$f.csv vs the plain file"
done

k="$(submit_wait job.yaml --set input=big.csv --set shard_rows=1000)" || exit 1
assert_eq "$(ctl result "$k" -o json | jget 'd["metrics"]["rows_in"]')" 400 "rows of the file with a 10 MB field"

# ------------------------------------------------------------ protocol
ctl rm "$ref" >/dev/null || fail "rm $ref exit $?"
# the fake worker speaks CURVE with the cluster's worker key, as a worker would
"$PY" - "$MLOPS_COORDINATOR" "$ref" "$CLUSTER_DIR/keys/worker.key" "$MLOPS_SERVER_KEY" <<'PYEOF' || fail "protocol cases (above)"
import os
import re
import sys
import zmq
ep, removed = sys.argv[1], sys.argv[2]


def zcert_keys(path):
    text = open(path).read()
    get = lambda k: re.search(k + r'\s*=\s*"(.{40})"', text).group(1).encode()
    return get("public-key"), (get("secret-key") if "secret-key" in text else None)

sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "tests", "integration"))
from envelope import envelope as env, field as f, parse  # noqa: E402

ctx = zmq.Context()
ctx.setsockopt(zmq.LINGER, 0)
result = f(1, removed) + f(2, 0) + f(3, 0) + f(4, 1) + f(5, 1)
d = ctx.socket(zmq.DEALER)
d.setsockopt(zmq.RCVTIMEO, 5000)
if os.path.exists(sys.argv[3] + "_secret"):
    d.curve_publickey, d.curve_secretkey = zcert_keys(sys.argv[3] + "_secret")
    d.curve_serverkey = zcert_keys(sys.argv[4])[0]
d.connect(ep)
# a worker id never registered
d.send(env(5, 14, result))
e = parse(d.recv())
if parse(e.get(50, b"")).get(1) != 2:
    sys.exit("TaskResult before Register: expected Error{NOT_REGISTERED}, got fields %s" % sorted(e))
# registered, then a result for the removed job
d.send(env(6, 10, f(1, "fake") + f(2, 1) + f(3, "tcp://127.0.0.1:1")))
e = parse(d.recv())
if 11 not in e:
    sys.exit("Register: expected RegisterOk, got fields %s" % sorted(e))
d.send(env(7, 14, result))
# the ping is a client's query: a client key asks it (a worker key may not)
d.close()
d = ctx.socket(zmq.DEALER)
d.setsockopt(zmq.RCVTIMEO, 5000)
if os.environ.get("MLOPS_KEY") and os.path.exists(os.environ["MLOPS_KEY"] + "_secret"):
    d.curve_publickey, d.curve_secretkey = zcert_keys(os.environ["MLOPS_KEY"] + "_secret")
    d.curve_serverkey = zcert_keys(sys.argv[4])[0]
d.connect(ep)
d.send(env(8, 40, f(1, "ping")))
while True:
    e = parse(d.recv())
    if e.get(2) == 8:
        break
if 41 not in e:
    sys.exit("ping after a result for a removed job: no Reply (fields %s)" % sorted(e))
print("protocol: NOT_REGISTERED answered; result for removed job %s ignored; ping answered" % removed)
PYEOF
wait_for "grep -q 'result for unknown job/stage $ref/0 from' \"$CLUSTER_DIR/logs/coordinator.log\"" 10
for p in $(awk '{print $2}' "$CLUSTER_DIR/pids"); do
    kill -0 "$p" 2>/dev/null || fail "pid $p died"
done
k="$(submit_wait job.yaml)" || exit 1
echo "test_bad_csv: ok"
