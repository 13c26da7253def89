"""Reference test: the C FeatureHasher (mlk_hash_tool) against Debian's
scikit-learn at test time: hash values, indexes and signs of a corpus
(non-ASCII, empty, very long, the INT32_MIN key), scikit-learn's own
docstring example with numeric values, and full CSR equality on a
generated frame (categorical + numeric columns with missing values),
with and without alternate_sign, with many collisions, and through the
CSR byte encoding."""
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.feature_extraction import FeatureHasher
from sklearn.utils import murmurhash3_32

TOOL = os.path.join(os.environ.get("MLOPS_BUILD_DIR", "build"), "mlk_hash_tool")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def run(args, stdin=""):
    p = subprocess.run([TOOL] + args, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"mlk_hash_tool {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def parse_csr(text):
    lines = dict(l.split(" ", 1) if " " in l else (l, "") for l in text.strip().split("\n"))
    nrows, ncols, nnz = (int(x) for x in lines["shape"].split())
    indptr = np.array(lines["indptr"].split(), dtype=np.int64)
    indices = np.array(lines["indices"].split(), dtype=np.int64)
    data = np.array([float(x) for x in lines["data"].split()], dtype=np.float64)
    return (nrows, ncols), indptr, indices, data


def same_csr(name, mine, ref):
    shape, indptr, indices, data = mine
    ref = ref.tocsr()
    check(shape == ref.shape, f"{name}: shape {shape} != {ref.shape}")
    check(np.array_equal(indptr, ref.indptr), f"{name}: indptr differs")
    check(np.array_equal(indices, ref.indices), f"{name}: indices differ")
    check(data.shape == ref.data.shape and np.array_equal(data, ref.data),
          f"{name}: data differ")


def int32_min_key():
    """The 4-byte key whose MurmurHash3 (seed 0) is -2**31: invert each
    step of the 4-byte hash (it is a bijection)."""
    M = 0xFFFFFFFF

    def inv(c):
        return pow(c, -1, 1 << 32)

    def rotr(x, r):
        return ((x >> r) | (x << (32 - r))) & M

    h = 0x80000000
    h ^= h >> 16
    h = (h * inv(0xC2B2AE35)) & M
    h ^= (h >> 13) ^ (h >> 26)
    h = (h * inv(0x85EBCA6B)) & M
    h ^= h >> 16
    h ^= 4
    h = ((h - 0xE6546B64) * inv(5)) & M
    k = rotr(h, 13)
    k = (k * inv(0x1B873593)) & M
    k = rotr(k, 15)
    k = (k * inv(0xCC9E2D51)) & M
    return k.to_bytes(4, "little")


def corpus():
    rng = random.Random(1)
    toks = ["", "a", "ab", "abc", "abcd", "abcde", "dog", "cat=siamese", "héllo wörld",
            "日本語=テスト", "emoji=😀🎉", "Ωμέγα", "x" * 100000, "ü" * 5001]
    alphabet = "abcdefghijklmnopqrstuvwxyzé日=_-0123456789"
    toks += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    out = [t.encode("utf-8") for t in toks]
    key = int32_min_key()
    check(murmurhash3_32(key, seed=0) == -2**31, "INT32_MIN key does not hash to -2**31 in sklearn")
    out.append(key)
    return out


def test_tokens():
    toks = corpus()
    inp = "".join(t.hex() + "\n" for t in toks)
    for nf in (10, 3, 2**20, 2**31 - 1):
        for alt in (True, False):
            args = ["murmur", "--n-features", str(nf)] + ([] if alt else ["--no-alternate-sign"])
            rows = [l.split() for l in run(args, inp).strip().split("\n")]
            check(len(rows) == len(toks), f"murmur: {len(rows)} lines for {len(toks)} tokens")
            X = FeatureHasher(n_features=nf, input_type="string", alternate_sign=alt).transform(
                [[t] for t in toks])
            for i, t in enumerate(toks):
                h, idx, sign = (int(x) for x in rows[i])
                want_h = murmurhash3_32(t, seed=0)
                check(h == want_h, f"murmur({t[:20]!r}) = {h}, sklearn {want_h}")
                s, e = X.indptr[i], X.indptr[i + 1]
                check(e - s == 1 and X.indices[s] == idx and X.data[s] == sign,
                      f"n_features={nf} alt={alt} token {t[:20]!r}: ({idx},{sign}) vs "
                      f"sklearn ({X.indices[s:e]},{X.data[s:e]})")


def rows_input(dicts):
    lines = []
    for d in dicts:
        items = []
        for k, v in d.items():
            if isinstance(v, str):
                items.append((k + "=" + v).encode().hex())
            else:
                items.append(k.encode().hex() + ":" + repr(float(v)))
        lines.append(" ".join(items))
    return "\n".join(lines) + "\n"


def test_docstring_and_dicts():
    D = [{"dog": 1, "cat": 2, "elephant": 4}, {"dog": 2, "run": 5}]
    mine = parse_csr(run(["rows", "--n-features", "10"], rows_input(D)))
    same_csr("docstring example", mine, FeatureHasher(n_features=10).transform(D))
    # values that sum to zero, zero values, empty rows, duplicates
    rng = random.Random(5)
    D = []
    for r in range(400):
        d = {}
        for _ in range(rng.randint(0, 12)):
            k = rng.choice(["a", "b", "c", "dd", "éé", "k" + str(rng.randint(0, 50))])
            d[k] = rng.choice([0, 1, -1, 2.5, "x", "y", "", "ü"])
        D.append(d)
    for nf in (7, 2**20):
        mine = parse_csr(run(["rows", "--n-features", str(nf)], rows_input(D)))
        same_csr(f"random dicts n_features={nf}", mine, FeatureHasher(n_features=nf).transform(D))


def test_frame():
    rng = np.random.default_rng(7)
    n = 5000
    cats = ["red", "green", "blué", "日本", "x" * 300, "a", "ab", "abc", "abcd"]
    cat = rng.choice(cats, n)
    item = np.char.add("item_", rng.integers(0, 2000, n).astype(str))
    user = np.char.add("u", rng.integers(0, 100000, n).astype(str))
    num = np.round(rng.normal(0, 2, n), 3)
    num[rng.random(n) < 0.1] = 0.0
    miss = [rng.random(n) < p for p in (0.05, 0.02, 0.0, 0.1)]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "frame.csv")
        dicts = []
        with open(path, "w", encoding="utf-8") as f:
            f.write("category,amount,item_id,user_id\n")
            for i in range(n):
                vals = [cat[i], repr(float(num[i])), item[i], user[i]]
                row = {}
                out = []
                for c, (name, v) in enumerate(zip(["category", "amount", "item_id", "user_id"], vals)):
                    if miss[c][i]:
                        out.append("")
                        continue
                    out.append(v)
                    if name == "amount":
                        row[name] = float(v)
                    else:
                        row[name] = str(v)
                f.write(",".join(out) + "\n")
                # dict items in --cols order: category, item_id, user_id, amount
                dicts.append({k: row[k] for k in ("category", "item_id", "user_id", "amount") if k in row})
        cols = ["--cols", "category,item_id,user_id,amount", "--numeric", "amount"]
        for nf, alt in ((2**20, True), (2**20, False), (8, True), (1, True)):
            args = ["csv", path, "--n-features", str(nf), "--roundtrip"] + cols
            if not alt:
                args.append("--no-alternate-sign")
            mine = parse_csr(run(args))
            ref = FeatureHasher(n_features=nf, alternate_sign=alt).transform(dicts)
            same_csr(f"frame n_features={nf} alternate_sign={alt}", mine, ref)
        # three string columns: the kernel's own path for the usual row
        # (three tokens on three columns), and its fallback when columns
        # collide (small n_features) or a value is missing
        three = [{k: r[k] for k in ("category", "item_id", "user_id") if k in r} for r in dicts]
        for nf in (2**20, 1000, 8, 1):
            args = ["csv", path, "--n-features", str(nf), "--cols", "category,item_id,user_id"]
            mine = parse_csr(run(args))
            ref = FeatureHasher(n_features=nf).transform(three)
            same_csr(f"frame, 3 string columns, n_features={nf}", mine, ref)


if __name__ == "__main__":
    test_tokens()
    test_docstring_and_dicts()
    test_frame()
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("hasher: identical to scikit-learn")
