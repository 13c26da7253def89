#!/usr/bin/python3
"""Reference test: the population stability index kernel (psi.h) vs numpy.

Random count vectors (with empty bins on either side, few and many bins)
give the PSI numpy computes with the same floor of 1e-4 on each
proportion, to 1e-12; values binned against random deciles give
np.searchsorted(edges, x, side="left"), ties and values on the edges
included; probabilities give min(floor(10 p), 9).
"""
import os
import subprocess
import sys

import numpy as np

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "mlk_psi_tool")
EPS = 1e-4


def psi_np(r, c):
    p = np.maximum(r / r.sum(), EPS)
    q = np.maximum(c / c.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"FAIL: {TOOL} is not built")
        return 1
    rng = np.random.default_rng(11)
    lines, want_psi = [], []
    for case in range(300):
        n = int(rng.choice([2, 10, 21, 50]))
        r = rng.integers(0, 1000, n).astype(float)
        c = rng.integers(0, 1000, n).astype(float)
        if case % 5 == 0:
            c[rng.integers(0, n)] = 0
        if case % 7 == 0:
            r[rng.integers(0, n)] = 0
        r[0] += 1
        c[-1] += 1
        lines.append("psi %d %s %s" % (n, " ".join("%r" % x for x in r), " ".join("%r" % x for x in c)))
        want_psi.append(psi_np(r, c))
    want_bin = []
    for case in range(300):
        x = rng.normal(size=200).round(int(rng.integers(0, 3)))
        edges = np.quantile(x, np.linspace(0.1, 0.9, 9))
        v = float(rng.choice(np.concatenate([x, edges])))
        lines.append("bin 9 %s %r" % (" ".join("%r" % e for e in edges), v))
        want_bin.append(int(np.searchsorted(edges, v, side="left")))
    want_pbin = []
    for p in list(rng.random(200)) + [0.0, 0.1, 0.9, 0.99999, 1.0, 0.30000000000000004]:
        lines.append("pbin %r" % p)
        want_pbin.append(min(int(np.floor(10 * p)), 9))
    out = subprocess.run([TOOL], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL: {TOOL} exit {out.returncode}: {out.stderr}")
        return 1
    got = out.stdout.split()
    bad = 0
    for i, w in enumerate(want_psi):
        g = float(got[i])
        if abs(g - w) > 1e-12 * max(1.0, abs(w)):
            bad += 1
            print(f"FAIL: psi case {i}: C {g!r}, numpy {w!r}")
    o = len(want_psi)
    for i, w in enumerate(want_bin + want_pbin):
        if int(got[o + i]) != w:
            bad += 1
            print(f"FAIL: bin case {i}: C {got[o + i]}, numpy {w}")
    if bad:
        return 1
    print(f"test_psi_ref: {len(want_psi)} PSIs within 1e-12 of numpy, {len(want_bin) + len(want_pbin)} bins exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
