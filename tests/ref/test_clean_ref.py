#!/usr/bin/python3
"""Reference test: CSV parse + dropna + IQR filter in C vs pandas.

Generates CSVs at test time (the purchases generator at small size plus
adversarial files: ties, negatives and -0.0, few distinct values, quoted
fields with commas/quotes/newlines, NA tokens, CRLF + BOM, blank lines),
runs pandas read_csv + dropna(subset=used) + the IQR filter, and
compares with mlk_clean_tool for several shard sizes: the quartiles
bit for bit (float.hex), the row counts and the kept row ids exactly.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

BUILD = os.environ.get("MLOPS_BUILD_DIR", "build")
SRC = os.environ.get("MLOPS_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TOOL = os.path.join(BUILD, "mlk_clean_tool")
GEN = os.path.join(SRC, "examples", "purchases", "generate.py")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def pandas_clean(path, numeric, categorical, k):
    df = pd.read_csv(path)
    df = df.dropna(subset=numeric + categorical)
    quart = {}
    mask = pd.Series(True, index=df.index)
    for c in numeric:
        q1 = df[c].quantile(0.25)
        q3 = df[c].quantile(0.75)
        iqr = q3 - q1
        quart[c] = (float(q1), float(q3))
        mask &= (df[c] >= q1 - k * iqr) & (df[c] <= q3 + k * iqr)
    return quart, list(df.index[mask.values]), len(df)


def tool_clean(path, numeric, categorical, k, shard_rows):
    cmd = [TOOL, "clean", path, "--numeric", ",".join(numeric), "--iqr-k", repr(k),
           "--shard-rows", str(shard_rows)]
    if categorical:
        cmd += ["--categorical", ",".join(categorical)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    lines = p.stdout.splitlines()
    head = lines[0].split()
    stats = dict(zip(head[0::2], map(int, head[1::2])))
    quart = {}
    i = 1
    while lines[i].startswith("quartile "):
        _, name, q1, q3, _lo, _hi = lines[i].split()
        quart[name] = (float(q1), float(q3))
        i += 1
    assert lines[i] == "ids"
    ids = [int(x) for x in lines[i + 1:]]
    return quart, ids, stats


def check(name, path, numeric, categorical, k=1.5, shard_sizes=(1, 7, 1000, 10**9)):
    quart, ids, ndrop = pandas_clean(path, numeric, categorical, k)
    for sr in shard_sizes:
        try:
            cq, cids, stats = tool_clean(path, numeric, categorical, k, sr)
        except RuntimeError as e:
            fail(f"{name} shard_rows={sr}: {e}")
            continue
        for c in numeric:
            a, b = quart[c], cq[c]
            # Bit for bit; numpy may give -0.0 where the kernel gives +0.0.
            if not all(x.hex() == y.hex() or (x == 0 and y == 0) for x, y in zip(a, b)):
                fail(f"{name} shard_rows={sr} column {c}: quartiles pandas "
                     f"{a[0].hex()},{a[1].hex()} C {b[0].hex()},{b[1].hex()}")
        if stats["dropna"] != ndrop:
            fail(f"{name} shard_rows={sr}: rows after dropna pandas {ndrop} C {stats['dropna']}")
        if cids != ids:
            diff = sorted(set(cids) ^ set(ids))[:10]
            fail(f"{name} shard_rows={sr}: kept ids differ (pandas {len(ids)}, C {len(cids)}, "
                 f"first differences {diff})")
    print(f"ok {name}: {len(ids)} rows kept of {ndrop}, shard sizes {list(shard_sizes)}")


def write(path, text, encoding="utf-8"):
    with open(path, "wb") as f:
        f.write(text.encode(encoding))


def main():
    if not os.path.exists(TOOL):
        print(f"missing tool {TOOL}; build first")
        return 1
    rng = np.random.default_rng(123)
    with tempfile.TemporaryDirectory() as d:
        # 1. The purchases generator, small.
        p = os.path.join(d, "purchases.csv")
        subprocess.run([sys.executable, GEN, "--rows", "5000", "--seed", "3", "--out", p],
                       check=True)
        num = ["price", "quantity", "age", "income"]
        cat = ["user_id", "item_id", "category"]
        check("purchases", p, num, cat, shard_sizes=(1, 333, 2000, 10**9))
        check("purchases-k3-numeric-only", p, ["price", "income"], [], k=3.0,
              shard_sizes=(999, 10**9))

        # 2. Ties, negatives, -0.0 / 0.0, few distinct values, tiny n.
        n = 3001
        a = rng.integers(-3, 4, n).astype(float)
        b = np.where(rng.random(n) < 0.5, -0.0, 0.0)
        b[rng.random(n) < 0.3] = -1.5
        c = rng.choice([1.0, 2.0], n)
        e = np.round(rng.standard_t(2, n) * 1e3, 3)
        lines = ["a,b,c,e,s"]
        for i in range(n):
            bv = "-0.0" if (b[i] == 0 and np.signbit(b[i])) else repr(float(b[i]))
            lines.append(f"{a[i]!r},{bv},{c[i]!r},{e[i]!r},x{i % 5}")
        p = os.path.join(d, "ties.csv")
        write(p, "\n".join(lines) + "\n")
        check("ties", p, ["a", "b", "c", "e"], ["s"])
        for m in (1, 2, 3):
            p = os.path.join(d, f"n{m}.csv")
            write(p, "v\n" + "".join(f"{x}\n" for x in [5.5, -2.25, 7.0][:m]))
            check(f"n={m}", p, ["v"], [], shard_sizes=(1, 2, 10))

        # 2b. Many values in one top-level key bin, and a column of three
        # distinct values: exercises the deeper histogram rounds.
        n = 300000
        u = np.round(1.0 + rng.random(n) * 0.0625, 7)
        u[:50] = 5.0
        t = rng.choice([1.0, 2.0, 3.0], n, p=[0.2, 0.5, 0.3])
        p = os.path.join(d, "deep.csv")
        pd.DataFrame({"u": u, "t": t}).to_csv(p, index=False)
        check("deep-rounds", p, ["u", "t"], [], shard_sizes=(70000, 10**9))

        # 3. Quoted fields, NA tokens, CRLF, BOM, blank lines, spaces.
        na_tokens = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "#N/A", "<NA>",
                     "n/a", "-NaN", "-nan", "#NA", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN",
                     "#N/A N/A"]
        rows = ["id,name,x,y"]
        for i in range(800):
            r = rng.random()
            name = ['"a, b"', '"say ""hi"""', '"multi\nline"', "plain", '"NA"', "é家"][i % 6]
            x = f"{rng.normal(10, 3):.4f}"
            y = f"{rng.lognormal(2, 1):.2f}"
            if r < 0.1:
                x = na_tokens[i % len(na_tokens)]
            elif r < 0.13:
                y = na_tokens[(i * 7) % len(na_tokens)]
            elif r < 0.15:
                y = f"{float(y) * 500:.2f}"
            elif r < 0.17:
                x = f'"{x}"'
            elif r < 0.19:
                x = f"{float(x):.3e}"
            rows.append(f"{i},{name},{x},{y}")
            if i % 97 == 0:
                rows.append("")
        text = "\ufeff" + "\r\n".join(rows) + "\r\n"
        p = os.path.join(d, "quoted.csv")
        write(p, text)
        check("quoted-na-crlf-bom", p, ["x", "y"], ["name"], shard_sizes=(1, 50, 10**9))
        p = os.path.join(d, "quoted-lf.csv")
        write(p, "\n".join(rows))  # LF, no BOM, no final newline
        check("quoted-na-lf", p, ["x", "y"], ["name"], shard_sizes=(3, 10**9))

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
