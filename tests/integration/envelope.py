"""envelope.py: the protobuf wire format of proto/mlops.proto's Envelope,
written and read by hand for the integration tests' scripts that speak
to a coordinator or a worker directly (a garbage frame, a client that
never reads, a script coordinator). By hand rather than generated
Python: the tests send what no generated encoder would (wrong wire
types, truncated fields), and read only the few fields they check.

    varint(n)                 the base-128 bytes of n
    field(num, value)         an int as a varint field, bytes/str as a
                              length-delimited one
    envelope(seq, num, body)  Envelope{version 1, seq, body field num}
    read_varint(buf, i)       (value, next index)
    fields(buf)               [(num, wire type, value)] of a message's
                              top-level fields (varints as ints,
                              the others as bytes)
    parse(buf)                {num: value} of them (the last one wins)
    ScriptCoordinator(worker_bin, tmp, name)
                              a ROUTER playing the coordinator to a real
                              mlops-worker it starts (test_worker_register,
                              test_args_repeat)
"""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    value = value.encode() if isinstance(value, str) else value
    return varint((num << 3) | 2) + varint(len(value)) + value


def envelope(seq, num, body):
    return field(1, 1) + field(2, seq) + field(num, body)


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    out, i = [], 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = bytes(buf[i:i + n]), i + n
        elif wt == 1:
            v, i = bytes(buf[i:i + 8]), i + 8
        elif wt == 5:
            v, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ValueError("wire type %d of field %d" % (wt, num))
        out.append((num, wt, v))
    return out


def parse(buf):
    return {num: v for num, _, v in fields(buf)}


class ScriptCoordinator:
    """A plain ZeroMQ ROUTER on 127.0.0.1 (an ephemeral port) playing the
    coordinator to one real mlops-worker, which it starts (--name NAME,
    its store and its log, worker.log, under TMP). send() writes one
    envelope to the worker once `ident` is known (the ROUTER identity of
    the worker's first message); stop() ends the worker."""

    def __init__(self, worker_bin, tmp, name):
        import subprocess
        import zmq
        self.ctx = zmq.Context()
        self.r = self.ctx.socket(zmq.ROUTER)
        self.r.linger = 0
        port = self.r.bind_to_random_port("tcp://127.0.0.1")
        self.log_path = tmp + "/worker.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([worker_bin, "--coordinator", "tcp://127.0.0.1:%d" % port,
                                      "--data-dir", tmp + "/store", "--name", name],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.ident = None
        self.seq = 100

    def send(self, body_field, body):
        self.seq += 1
        self.r.send_multipart([self.ident, envelope(self.seq, body_field, body)])

    def log_tail(self, n=3000):
        with open(self.log_path) as f:
            return f.read()[-n:]

    def stop(self, errors=None):
        """End the worker. With ERRORS (a list), add one if the worker had
        exited by itself, and if any, print them and the log's tail and
        exit 1."""
        import subprocess
        import sys
        if errors is not None and self.proc.poll() is not None:
            errors.append("the worker exited (%s)" % self.proc.returncode)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if errors:
            print("\n".join(errors), file=sys.stderr)
            print(self.log_tail(), file=sys.stderr)
            sys.exit(1)
