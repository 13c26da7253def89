#!/usr/bin/env bash
# test_args_repeat.sh: a worker keeps the arguments of the last task
# that carried an args_id, and runs a task that names them with
# args_repeat on those bytes (coordinator/args_repeat.c sends an L-BFGS
# evaluation's point once per worker, not once per task).
#
# The coordinator is a script (a plain ZeroMQ ROUTER speaking the
# envelope), so each case is exactly what the test says. The tasks are
# lbfgs_grad with arguments it refuses before it reads an input, naming
# their class count in the error: so the error tells which bytes the task
# ran on. On a real mlops-worker:
#  - a repeat of arguments it was never sent: answered args_missing (not
#    run, not a failure);
#  - arguments sent under id 5, then a repeat of 5: both run on them;
#  - a repeat of 6 (not held), and a repeat of 5 that carries bytes of
#    its own: args_missing;
#  - arguments under id 7: a repeat of 5 is now args_missing (one set is
#    kept), one of 7 runs on 7's;
#  - a task with arguments and no id runs on them and leaves 7 kept.
source "$(dirname "$0")/lib.sh"

"$PY" - "$MLOPS_BUILD_DIR/mlops-worker" "$T" <<'EOF' || fail "argument repeats (see above)"
import os, sys, time

sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "tests", "integration"))
from envelope import ScriptCoordinator, field, parse  # noqa: E402

worker_bin, tmp = sys.argv[1], sys.argv[2]
HB_MS = 500
SPEC = "name: rep\ninput: p.csv\ncolumns: {label: y, numeric: [x]}\n"

sc = ScriptCoordinator(worker_bin, tmp, "ar")
r, send = sc.r, sc.send
attempt = 0


def lbfgs_args(classes):
    """LbfgsGradArgs{classes, n_features 2^31}: refused as damaged, the
    class count in the message, before any input is read."""
    return field(1, classes) + field(2, 1 << 31)


def task(args=None, args_id=0, repeat=False):
    """Send one lbfgs_grad TaskAssign; return its TaskResult's fields."""
    global attempt
    attempt += 1
    body = (field(1, "j000001") + field(2, 0) + field(3, attempt) + field(4, attempt) +
            field(5, "lbfgs_grad") + field(6, SPEC))
    if args is not None:
        body += field(7, args)
    body += field(9, "")
    if args_id:
        body += field(370, args_id)
    if repeat:
        body += field(371, 1)
    send(13, body)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if not r.poll(100):
            continue
        frames = r.recv_multipart()
        env = parse(frames[-1])
        if 14 in env:
            res = parse(env[14])
            if res.get(4) == attempt:
                return res
    sys.exit("no TaskResult for attempt %d within 10 s" % attempt)


def outcome(res):
    if res.get(370) == 1:
        return "args_missing"
    return (res.get(6) or b"").decode()


errors = []


def expect(what, res, want):
    got = outcome(res)
    if want not in got or (want != "args_missing" and got == "args_missing"):
        errors.append("%s: got %r, want %r" % (what, got, want))


try:
    if not r.poll(10000):
        sys.exit("the worker never registered (see %s/worker.log)" % tmp)
    sc.ident = r.recv_multipart()[0]
    send(11, field(1, "w1") + field(2, HB_MS))
    expect("a repeat of nothing held", task(args_id=5, repeat=True), "args_missing")
    expect("arguments under id 5", task(lbfgs_args(3), args_id=5), "(3 classes")
    expect("a repeat of 5", task(args_id=5, repeat=True), "(3 classes")
    expect("a repeat of 5 again", task(args_id=5, repeat=True), "(3 classes")
    expect("a repeat of 6", task(args_id=6, repeat=True), "args_missing")
    expect("a repeat of 5 with bytes", task(lbfgs_args(9), args_id=5, repeat=True), "args_missing")
    expect("a repeat with no id", task(repeat=True), "args_missing")
    expect("arguments under id 7", task(lbfgs_args(4), args_id=7), "(4 classes")
    expect("a repeat of 5 after 7", task(args_id=5, repeat=True), "args_missing")
    expect("a repeat of 7", task(args_id=7, repeat=True), "(4 classes")
    expect("arguments with no id", task(lbfgs_args(5)), "(5 classes")
    expect("a repeat of 7 after them", task(args_id=7, repeat=True), "(4 classes")
finally:
    sc.stop(errors)
print("test_args_repeat: repeats run on the kept arguments; the others are asked for again")
EOF
