#!/usr/bin/env bash
# test_many_files.sh: a job reading many input files, plain, gzip and zstd.
#  1. The purchases data cut into three files of 7001, 12000 and 10999
#     records (so shards end at file ends, not at multiples of shard_rows):
#     part-1.csv, part-2.csv.gz, part-3.csv.zst. A job with the glob
#     `part-*` and one with the list of the three names both give an
#     `export --stage ingest` equal, row for row and value for value, to
#     pandas.concat of read_csv of each file (compression inferred), and
#     an `export --stage clean` byte-identical to the single-file job's,
#     with equal metrics; with 1 and with 3 workers alike.
#  2. Bad input: a glob that matches nothing and a file whose header
#     differs are refused by submit (exit 2, the message names them); so
#     are a gzip file corrupt in the middle ("part-2.csv.gz: corrupt gzip
#     stream at byte N") and a truncated zstd file, as submit reads the
#     first MiB of each file's plain text for its header (the
#     coordinator's inflation of a larger file: tests/unit/test_decompress.c).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

D="$T/data"
mkdir -p "$D"
cluster_start 3

gen_purchases 30000 5 "$D/all.csv"
"$PY" - "$D" <<'EOF' || fail "cannot cut the input into parts"
import sys
d = sys.argv[1]
lines = open(d + "/all.csv", encoding="utf-8").read().splitlines(True)
hdr, body = lines[0], lines[1:]
cuts = [0, 7001, 19001, len(body)]
for i in range(3):
    with open("%s/part-%d.csv" % (d, i + 1), "w", encoding="utf-8") as f:
        f.write(hdr + "".join(body[cuts[i]:cuts[i + 1]]))
with open(d + "/other-1.csv", "w", encoding="utf-8") as f:  # a header that differs
    f.write(hdr.rstrip("\n") + ",extra\n" + body[0].rstrip("\n") + ",1\n")
EOF
gzip -9 "$D/part-2.csv" || fail "gzip failed"
zstd -q --rm "$D/part-3.csv" || fail "zstd failed"
cp "$D/part-1.csv" "$D/other-0.csv"

purchases_job "$D/single.yaml" all.csv
purchases_job "$D/glob.yaml" "part-*"
purchases_job "$D/list.yaml" "[part-1.csv, part-2.csv.gz, part-3.csv.zst]"

cat >"$T/concat.py" <<'EOF'
# concat.py EXPORT FILE...: the ingest export against pandas.concat.
# (Debian's pandas has no zstandard module: .zst goes through zstd -dc)
import csv, io, subprocess, sys
import numpy as np, pandas as pd
exp, files = sys.argv[1], sys.argv[2:]
strs = ["category", "item_id", "user_id", "clicked"]
def src(f):
    return io.BytesIO(subprocess.run(["zstd", "-dc", f], check=True, capture_output=True).stdout) \
        if f.endswith(".zst") else f
want = pd.concat([pd.read_csv(src(f), dtype={c: str for c in strs}) for f in files], ignore_index=True)
rows = list(csv.reader(open(exp, newline="", encoding="utf-8")))
hdr, body = rows[0], rows[1:]
if len(body) != len(want):
    sys.exit("ingest export has %d rows, pandas.concat %d" % (len(body), len(want)))
for c in hdr:
    j = hdr.index(c)
    w = want[c].to_numpy(object)
    for i, r in enumerate(body):
        g = r[j]
        if c in strs:
            ok = g == ("" if pd.isna(w[i]) else w[i])
        else:
            ok = (g == "" and np.isnan(w[i])) or (g != "" and float(g).hex() == float(w[i]).hex()) \
                or (g.lower() == "nan" and np.isnan(w[i]))
        if not ok:
            sys.exit("column %s, row %d: mlops %r, pandas %r" % (c, i, g, w[i]))
print("ingest of %d files: %d rows, equal to pandas.concat" % (len(files), len(body)))
EOF

single="$(submit_wait "$D/single.yaml")" || exit 1
ctl export "$single" --stage clean -o "$T/single.csv" || fail "export $single exit $?"
save_result "$single" "$T/single.json"
for jf in glob list; do
    job="$(submit_wait "$D/$jf.yaml")" || exit 1
    ctl export "$job" --stage ingest -o "$T/$jf-ingest.csv" || fail "export $job --stage ingest exit $?"
    "$PY" "$T/concat.py" "$T/$jf-ingest.csv" "$D/part-1.csv" "$D/part-2.csv.gz" "$D/part-3.csv.zst" ||
        fail "$jf: ingest of the parts differs from pandas.concat"
    ctl export "$job" --stage clean -o "$T/$jf.csv" || fail "export $job --stage clean exit $?"
    cmp -s "$T/single.csv" "$T/$jf.csv" || fail "$jf: clean export differs from the single-file job's"
    save_result "$job" "$T/$jf.json"
    same_metrics "$T/single.json" "$T/$jf.json" "$jf job vs single file"
done
# one worker: the same shards and the same output
kill_worker worker-2
kill_worker worker-3
wait_for "[ \"\$(alive_workers)\" -eq 1 ]" 30
job="$(submit_wait "$D/glob.yaml")" || exit 1
ctl export "$job" --stage clean -o "$T/one.csv" || fail "export $job exit $?"
cmp -s "$T/single.csv" "$T/one.csv" || fail "glob job on 1 worker differs from 3 workers"

# ------------------------------------------------------------ bad input
purchases_job "$D/none.yaml" "nothing-*.csv"
out="$(ctl submit "$D/none.yaml" 2>&1)"
assert_eq "$?" 2 "submit of a glob matching nothing"
assert_contains "$out" "input: 'nothing-*.csv' matches no file" "glob error"
purchases_job "$D/other.yaml" "other-*.csv"
out="$(ctl submit "$D/other.yaml" 2>&1)"
assert_eq "$?" 2 "submit of files whose headers differ"
assert_contains "$out" "other-1.csv: header differs from $D/other-0.csv's" "header error"

mkdir -p "$D/bad"
cp "$D/part-1.csv" "$D/bad/"
"$PY" - "$D/part-2.csv.gz" "$D/bad/part-2.csv.gz" <<'EOF' || fail "cannot corrupt the gzip file"
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(len(b) // 2, len(b) // 2 + 64):
    b[i] ^= 0x5a
open(sys.argv[2], "wb").write(b)
EOF
purchases_job "$D/bad/gz.yaml" "part-*"
out="$(ctl submit "$D/bad/gz.yaml" --wait 2>&1)"
assert_eq "$?" 2 "submit of a corrupt gzip file (its first MiB is read for the header)"
assert_contains "$out" "part-2.csv.gz: corrupt gzip stream at byte " "corrupt gzip error"
rm "$D/bad/part-2.csv.gz"
head -c 2000 "$D/part-3.csv.zst" >"$D/bad/part-3.csv.zst"
out="$(ctl submit "$D/bad/gz.yaml" --wait 2>&1)"
assert_eq "$?" 2 "submit of a truncated zstd file"
assert_contains "$out" "part-3.csv.zst: truncated zstd stream" "truncated zstd error"
echo "test_many_files: ok"
