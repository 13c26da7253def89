#!/usr/bin/env bash
# test_bad_input.sh: bad input reaching the cluster is answered, never
# crashes it.
#  1. A CSV record with the wrong number of fields (a 7-field row at
#     physical line 2503, after a quoted field that spans two lines, in a
#     later shard): the job fails, `wait` exits 1, and `result` gives the
#     error `bad.csv:2503: expected 8 fields, got 7` (the file as named in
#     the job). With --set on_bad_row=skip the same job, with a 9-field
#     row too, succeeds, metrics.rows_bad is 2, and the clean stage equals
#     pandas on the file without those two rows.
#  2. Garbage sent to the coordinator's port and to a worker's store
#     endpoint (raw TCP junk, broken ZMTP greetings, a 2^62-byte frame
#     header, and ZeroMQ messages that are not valid Envelopes: empty,
#     random, wrong version, no body, truncated, bad lengths, two frames,
#     2 MiB random, over 256 MiB): every undecodable DEALER message is
#     answered with Error{BAD_FRAME}, a valid request afterwards is
#     answered, every process is still alive, both workers are still
#     listed alive, and a job run afterwards gives the same metrics as
#     the same job before the garbage.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
cluster_start 2 1

# ------------------------------------------------------------- bad rows
gen_purchases 5000 21 "$D/good.csv"
"$PY" - "$D/good.csv" "$D/bad.csv" "$D/bad2.csv" "$D/bad2_fixed.csv" <<'PYEOF' || fail "cannot write bad CSVs"
import csv, io, sys
good, bad, bad2, fixed = sys.argv[1:5]
def line(fields):
    b = io.StringIO()
    csv.writer(b, lineterminator="\n").writerow(fields)
    return b.getvalue()[:-1]
recs = list(csv.reader(open(good, encoding="utf-8", newline="")))
recs[9][2] = "two\nlines"  # a valid record spanning physical lines 11-12
lines = [line(r) for r in recs]
# physical line 2503 = record index 2501 (header at 0, one record spans 2 lines)
seven, nine = line(recs[2501][:7]), line(recs[4000] + ["extra"])
def write(path, ls):
    open(path, "w", encoding="utf-8", newline="").write("\n".join(ls) + "\n")
write(bad, lines[:2501] + [seven] + lines[2502:])
write(bad2, lines[:2501] + [seven] + lines[2502:4000] + [nine] + lines[4001:])
write(fixed, lines[:2501] + lines[2502:4000] + lines[4001:])
PYEOF
purchases_job "$D/bad.yaml" bad.csv
sed -i 's/^shard_rows: .*/shard_rows: 1000/' "$D/bad.yaml"

# submitted from the data dir, so the file is named as in the job file
job="$(cd "$D" && ctl submit bad.yaml)" || fail "submit bad.yaml exit $?"
err="$(ctl wait "$job" 2>&1)"
assert_eq "$?" 1 "wait exit of a job with a 7-field row"
assert_contains "$err" "bad.csv:2503: expected 8 fields, got 7" "wait's message"
save_result "$job" "$T/bad.json"
assert_eq "$(jget 'd["state"]' <"$T/bad.json")" failed "state of the bad-row job"
msg="$(jget 'd["error"]' <"$T/bad.json")"
assert_contains "$msg" "bad.csv:2503: expected 8 fields, got 7" "result error"
# checked last, so that the rest of the test still runs: the file must be
# named as the job file gives it, without a "./" added
deferred=""
[ "$msg" = "bad.csv:2503: expected 8 fields, got 7" ] ||
    deferred="result error is '$msg', expected 'bad.csv:2503: expected 8 fields, got 7'"

job="$(submit_wait "$D/bad.yaml" --set input=bad2.csv --set on_bad_row=skip)" || exit 1
save_result "$job" "$T/skip.json"
assert_eq "$(jget 'd["metrics"]["rows_bad"]' <"$T/skip.json")" 2 "rows_bad with on_bad_row=skip"
ctl export "$job" --stage clean -o "$T/skip.csv" || fail "export $job exit $?"
"$PY" - "$D/bad2_fixed.csv" "$T/skip.csv" "$T/skip.json" <<'PYEOF' || fail "on_bad_row=skip: clean stage differs from pandas on the file without the bad rows"
import csv, json, sys
import numpy as np, pandas as pd
src, exp, res = sys.argv[1:4]
num = ["price", "quantity", "age", "income"]
strs = ["category", "item_id", "user_id", "clicked"]
df = pd.read_csv(src, dtype={c: str for c in strs}).dropna(subset=num + strs)
m = json.load(open(res))["metrics"]
assert m["rows_after_dropna"] == len(df), (m["rows_after_dropna"], len(df))
keep = np.ones(len(df), bool)
for c in num:
    q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
    assert float(m["q1." + c]).hex() == float(q1).hex(), ("q1." + c, m["q1." + c], q1)
    keep &= ((df[c] >= q1 - 1.5 * (q3 - q1)) & (df[c] <= q3 + 1.5 * (q3 - q1))).to_numpy()
want = df[keep]
rows = list(csv.reader(open(exp, newline="", encoding="utf-8")))
hdr, body = rows[0], rows[1:]
assert len(body) == len(want), (len(body), len(want))
for c in num + strs:
    j = hdr.index(c)
    got = [r[j] for r in body]
    if c in num:
        assert all(float(g).hex() == float(w).hex() for g, w in zip(got, want[c])), c
    else:
        assert got == list(want[c]), c
PYEOF

# ------------------------------------------------------------- garbage
job="$(submit_wait "$D/bad.yaml" --set input=good.csv)" || exit 1
save_result "$job" "$T/before.json"
cat >"$T/garbage.py" <<'PYEOF'
"""garbage_frames.py ENDPOINT WHAT [SERVER_KEY_FILE]: throw malformed input at a ROUTER
endpoint of the cluster (the coordinator, or a worker's store) and check
that it keeps answering. Used by test_bad_input.sh (not a test itself).

Sends, each on its own connection where the damage could be sticky:
 - raw TCP: an HTTP request, junk bytes, a half ZMTP greeting, a full
   ZMTP 3.0 greeting followed by junk, a greeting + READY and then a frame
   header announcing 2^62 bytes, a connection reset at once;
 - ZeroMQ DEALER messages: an empty frame, zeros, random bytes, an
   Envelope of protocol version 99, an Envelope without a body, a
   truncated Envelope, a length field far past the end, an overlong
   varint, an unterminated group, two frames in one message, a 2 MiB
   random frame, and one frame over the 256 MiB limit.
Each undecodable message sent over a DEALER must be answered with
Error{code=BAD_FRAME} (the protocol's rule) -- except the oversized
frame, which ZeroMQ itself refuses (maxmsgsize) by dropping the
connection. Finally, a fresh DEALER sends a valid request (Query ping to
the coordinator, ShardGet of a missing key to a store) and must get a
well-formed answer. Exit 1 with a list of what went wrong.
With SERVER_KEY_FILE, the DEALERs speak CURVE with the client key pair
$MLOPS_KEY (the cluster is secure by default), so the garbage reaches
the message handlers and not only the handshake.
"""
import os, random, socket, struct, sys

import zmq

ep, what = sys.argv[1], sys.argv[2]
host, port = ep.replace("tcp://", "").rsplit(":", 1)
port = int(port)
problems = []


sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "tests", "integration"))
from envelope import parse, read_varint, varint  # noqa: E402


def field(num, wt, payload):
    if wt == 0:
        return varint(num << 3) + varint(payload)
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def envelope(version, seq, body_field=None, body=b""):
    e = field(1, 0, version) + field(2, 0, seq)
    if body_field is not None:
        e += field(body_field, 2, body)
    return e


PING = envelope(1, 7, 40, field(1, 2, b"ping"))                  # Query{verb="ping"}
SHARD_GET = envelope(1, 7, 20, field(1, 2, b"nojob/nostage/0"))  # ShardGet{key}
VALID = PING if what == "coordinator" else SHARD_GET

# ---------------------------------------------------------------- raw TCP
GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31
READY = b"\x04" + bytes([len(b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER")]) + \
    b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER"
raw_cases = {
    "http request": b"GET / HTTP/1.0\r\n\r\n",
    "junk bytes": bytes(random.Random(1).randrange(256) for _ in range(4096)),
    "half greeting": GREETING[:11],
    "greeting + junk": GREETING + b"\x00\xff\x13\x37" * 64,
    "greeting + READY + 2^62-byte frame": GREETING + READY + b"\x02" + struct.pack(">Q", 1 << 62) + b"abc",
}
for name, data in raw_cases.items():
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(data)
        s.settimeout(0.3)
        try:
            s.recv(4096)
        except (socket.timeout, ConnectionError):
            pass
        s.close()
    except OSError as e:
        problems.append("raw TCP '%s': cannot connect/send: %s" % (name, e))
s = socket.create_connection((host, port), timeout=2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()  # RST

# ------------------------------------------------------- DEALER messages
ctx = zmq.Context()
ctx.setsockopt(zmq.LINGER, 0)


def zcert_keys(path):
    import re
    text = open(path).read()
    get = lambda k: re.search(k + r'\s*=\s*"(.{40})"', text).group(1).encode()
    return get("public-key"), (get("secret-key") if "secret-key" in text else None)


def dealer():
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.RCVTIMEO, 3000)
    if len(sys.argv) > 3:
        d.curve_publickey, d.curve_secretkey = zcert_keys(os.environ["MLOPS_KEY"] + "_secret")
        d.curve_serverkey = zcert_keys(sys.argv[3])[0]
    d.connect(ep)
    return d


ping_env = VALID
bad_cases = [
    ("empty frame", [b""]),
    ("zeros", [b"\x00" * 16]),
    ("random bytes", [bytes(random.Random(2).randrange(256) for _ in range(1000))]),
    ("version 99", [envelope(99, 7, 40, field(1, 2, b"ping"))]),
    ("no body", [envelope(1, 7)]),
    ("truncated envelope", [ping_env[:-3]]),
    ("length past the end", [field(1, 0, 1) + varint((40 << 3) | 2) + varint(1 << 31) + b"xx"]),
    ("overlong varint", [b"\x08" + b"\xff" * 11 + b"\x01"]),
    ("unterminated group", [field(1, 0, 1) + varint((9 << 3) | 3) + b"\x08\x01"]),
    ("two frames", [ping_env, ping_env]),
    ("2 MiB random", [os.urandom(2 << 20)]),
]
d = dealer()
for name, frames in bad_cases:
    d.send_multipart(frames)
    try:
        rep = d.recv_multipart()
    except zmq.Again:
        problems.append("DEALER '%s': no answer within 3 s (the protocol asks for Error{BAD_FRAME})" % name)
        d.close()
        d = dealer()
        continue
    try:
        env = parse(rep[-1])
        err = parse(env.get(50, b""))
        code = err.get(1, 0)
    except (ValueError, IndexError) as e:
        problems.append("DEALER '%s': answer is not an Envelope: %r (%s)" % (name, rep[-1][:40], e))
        continue
    if 50 not in env or code != 1:
        problems.append("DEALER '%s': answered %s, not Error{code=BAD_FRAME}" % (name, sorted(env)))
d.close()

# one frame over MLOPS_MAX_FRAME: ZeroMQ drops such a connection itself
d = dealer()
d.setsockopt(zmq.RCVTIMEO, 1000)
d.send(b"\x00" * ((256 << 20) + 1))
try:
    d.recv()
    problems.append("DEALER 'over 256 MiB': got an answer to an oversized frame")
except zmq.Again:
    pass
d.close()

# ----------------------------------------------------------- still serving
d = dealer()
d.setsockopt(zmq.RCVTIMEO, 5000)
d.send(VALID)
try:
    env = parse(d.recv())
    if what == "coordinator":
        ok = env.get(2) == 7 and 41 in env and b'"ok":true' in parse(env[41]).get(1, b"")
    else:
        ok = env.get(2) == 7 and 50 in env and parse(env[50]).get(1) == 3  # NOT_FOUND
    if not ok:
        problems.append("valid request after the garbage: unexpected answer %r" % sorted(env))
except zmq.Again:
    problems.append("valid request after the garbage: no answer within 5 s")
d.close()
ctx.term()

if problems:
    print("%s at %s:\n  %s" % (what, ep, "\n  ".join(problems)), file=sys.stderr)
    sys.exit(1)
print("%s at %s: survived %d raw and %d DEALER malformed inputs" %
      (what, ep, len(raw_cases) + 1, len(bad_cases) + 1))
PYEOF
store="$(worker_field worker-1 endpoint)"
[[ "$store" == tcp://* ]] || fail "no store endpoint for worker-1: '$store'"
gerr=""
"$PY" "$T/garbage.py" "$MLOPS_COORDINATOR" coordinator "$MLOPS_SERVER_KEY" || gerr="coordinator"
"$PY" "$T/garbage.py" "$store" store "$CLUSTER_DIR/keys/worker.key" || gerr="$gerr worker-1's store"
for p in $(awk '{print $2}' "$CLUSTER_DIR/pids"); do
    kill -0 "$p" 2>/dev/null || fail "pid $p ($(awk -v p="$p" '$2 == p {print $1}' "$CLUSTER_DIR/pids")) died from the garbage"
done
wait_for '[ "$(alive_workers)" -eq 2 ]' 10
job="$(submit_wait "$D/bad.yaml" --set input=good.csv)" || exit 1
save_result "$job" "$T/after.json"
same_metrics "$T/before.json" "$T/after.json" "the same job before and after the garbage"
[ -z "$gerr" ] || fail "malformed input not answered as the protocol says by: $gerr (details above)"
[ -z "$deferred" ] || fail "$deferred"
echo "test_bad_input: ok"
