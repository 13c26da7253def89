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
