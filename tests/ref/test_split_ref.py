"""Reference test: the C split (mlk_hash_tool) against Debian's
scikit-learn/numpy at test time.
- method sklearn: identical train and test index arrays (same order) to
  train_test_split(arange(n), test_size, random_state=seed) for several
  n, fractional and integer test sizes and seeds; the same refusals.
- method hash: the test set has exactly ceil(test_size * n) rows (the
  n_test scikit-learn would use), and the mask does not depend on how
  the rows are sharded."""
import os
import subprocess
import sys

import numpy as np
from sklearn.model_selection import train_test_split

TOOL = os.path.join(os.environ.get("MLOPS_BUILD_DIR", "build"), "mlk_hash_tool")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def run(args):
    return subprocess.run([TOOL] + args, capture_output=True, text=True)


def size_args(ts):
    return ["--test-count", str(ts)] if isinstance(ts, int) else ["--test-size", repr(ts)]


def sklearn_split(n, ts, seed):
    try:
        tr, te = train_test_split(np.arange(n), test_size=ts, random_state=seed)
        return tr, te
    except ValueError:
        return None


def test_sklearn_method():
    cases = [(10, 0.2, 42), (100, 0.07, 0), (1000, 0.25, 1), (12345, 0.33, 2**32 - 1),
             (7, 0.5, 3), (2, 0.5, 9), (100000, 0.2, 123456789), (50, 7, 5), (1001, 1000, 8),
             (1, 0.5, 0), (10, 10, 0), (5, 0.9999, 1)]
    for n, ts, seed in cases:
        p = run(["split-sklearn", "--n", str(n), "--seed", str(seed)] + size_args(ts))
        ref = sklearn_split(n, ts, seed)
        if ref is None:
            check(p.returncode != 0, f"sklearn refuses n={n} test_size={ts}, C accepted")
            continue
        if p.returncode != 0:
            check(False, f"C refused n={n} test_size={ts}: {p.stderr.strip()}")
            continue
        lines = p.stdout.strip().split("\n")
        tr = np.array(lines[0].split()[1:], dtype=np.int64)
        te = np.array(lines[1].split()[1:], dtype=np.int64)
        check(np.array_equal(tr, ref[0]), f"train differs for n={n} test_size={ts} seed={seed}")
        check(np.array_equal(te, ref[1]), f"test differs for n={n} test_size={ts} seed={seed}")


def test_hash_method():
    for n, ts, seed in [(10, 0.2, 42), (100, 0.07, 0), (9973, 0.25, 1), (65536, 0.2, 7),
                        (65537, 0.33, 99), (3, 0.5, 5), (200000, 0.1, 2024)]:
        ref = sklearn_split(n, ts, 0)
        masks = []
        for shards in (1, 4, 17):
            p = run(["split-hash", "--n", str(n), "--seed", str(seed), "--shards", str(shards)] +
                    size_args(ts))
            if p.returncode != 0:
                check(False, f"split-hash failed: {p.stderr.strip()}")
                return
            out = dict(l.split(" ", 1) for l in p.stdout.strip().split("\n"))
            mask = np.frombuffer(out["mask"].encode(), dtype=np.uint8) - ord("0")
            check(len(mask) == n, f"hash mask has {len(mask)} rows, not {n}")
            check(int(out["n_test"]) == len(ref[1]),
                  f"n={n} test_size={ts}: n_test {out['n_test']} vs sklearn {len(ref[1])}")
            check(int(mask.sum()) == len(ref[1]) and int(out["counted"]) == len(ref[1]),
                  f"n={n}: {mask.sum()} test rows, want {len(ref[1])}")
            masks.append(mask)
        for m in masks[1:]:
            check(np.array_equal(m, masks[0]), f"n={n}: the mask depends on the sharding")
        if n >= 1000:
            # not a contiguous block: test rows spread over the whole range
            idx = np.flatnonzero(masks[0])
            check(idx[0] < n // 10 and idx[-1] > n - n // 10, f"n={n}: test rows are not spread")
    # different seeds give different splits
    a = run(["split-hash", "--n", "1000", "--seed", "1", "--test-size", "0.2"]).stdout
    b = run(["split-hash", "--n", "1000", "--seed", "2", "--test-size", "0.2"]).stdout
    check(a != b, "seeds 1 and 2 give the same hash split")


if __name__ == "__main__":
    test_sklearn_method()
    test_hash_method()
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print("split: identical to scikit-learn")
