#!/usr/bin/env bash
# test_worker_register.sh: a worker answers a burst of "not registered"
# errors with one Register. A coordinator that restarted, or stalled past
# its workers' heartbeat expiry, answers NOT_REGISTERED to every message
# a worker had sent before its Register; a worker that registered again
# per answer reached the coordinator as a second registration of a
# worker it had just given tasks, which re-queued them as lost (three in
# a burst failed a job under ASan: test_commit_burst).
#
# The coordinator here is a script (a plain ZeroMQ ROUTER speaking the
# envelope of proto/mlops.proto), so the errors come exactly as the test
# says. Checks, on a real mlops-worker:
#  - 4 NOT_REGISTERED errors at once, while its Register is answered:
#    one Register, not 4;
#  - registered again, one more error: one more Register (the coordinator
#    forgot it again);
#  - a Register left unanswered for more than 3 heartbeats, then an
#    error: it registers again (a lost Register is not waited on for
#    ever), and it did not before.
source "$(dirname "$0")/lib.sh"

"$PY" - "$MLOPS_BUILD_DIR/mlops-worker" "$T" <<'EOF' || fail "worker registration (see above)"
import os, sys, time

sys.path.insert(0, os.path.join(os.environ["MLOPS_SOURCE_DIR"], "tests", "integration"))
from envelope import ScriptCoordinator, field, fields  # noqa: E402

worker_bin, tmp = sys.argv[1], sys.argv[2]
HB_MS = 400


def body_of(buf):
    """The envelope's body field number (10 Register, 12 Heartbeat, ...)."""
    nums = [num for num, wt, _ in fields(buf) if wt == 2]
    return nums[-1] if nums else None


REGISTER_OK = field(1, "w1") + field(2, HB_MS)
NOT_REGISTERED = field(1, 2) + field(2, "register first")
HEARTBEAT = b""

sc = ScriptCoordinator(worker_bin, tmp, "wr")
r, send = sc.r, sc.send


def registers_within(seconds):
    """Registers received in the next SECONDS, heartbeats sent meanwhile
    (so the worker does not take the coordinator for gone)."""
    n, end, next_beat = 0, time.monotonic() + seconds, 0
    while time.monotonic() < end:
        if time.monotonic() >= next_beat:
            send(12, HEARTBEAT)
            next_beat = time.monotonic() + HB_MS / 2000
        if r.poll(20):
            frames = r.recv_multipart()
            sc.ident = frames[0]
            if body_of(frames[-1]) == 10:
                n += 1
    return n


errors = []
try:
    if not r.poll(10000):
        sys.exit("the worker never registered (see %s/worker.log)" % tmp)
    frames = r.recv_multipart()
    sc.ident = frames[0]
    if body_of(frames[-1]) != 10:
        sys.exit("the worker's first message is not a Register")
    # registered, then a burst of errors answered before its Register is
    send(11, REGISTER_OK)
    registers_within(0.3)
    for _ in range(4):
        send(50, NOT_REGISTERED)
    n = registers_within(0.8)
    if n != 1:
        errors.append("4 'not registered' errors at once: %d Registers, want 1" % n)
    send(11, REGISTER_OK)
    registers_within(0.3)
    send(50, NOT_REGISTERED)
    n = registers_within(0.6)
    if n != 1:
        errors.append("registered, then one error: %d Registers, want 1" % n)
    # that Register unanswered: an error within 3 heartbeats waits for it,
    # one after them registers again
    send(50, NOT_REGISTERED)
    n = registers_within(0.3)
    if n != 0:
        errors.append("an error while its Register waits: %d Registers, want 0" % n)
    registers_within(3 * HB_MS / 1000)
    send(50, NOT_REGISTERED)
    n = registers_within(0.6)
    if n != 1:
        errors.append("its Register unanswered for 3 heartbeats, then an error: %d Registers, want 1" % n)
finally:
    sc.stop(errors)
print("test_worker_register: one Register per burst of errors, and again after a lost one")
EOF
