#!/usr/bin/env bash
# Runs every benchmark in bench/ (bench_*.py with Debian's python3, which
# drive the C side through the build's tools and run the anchor in the
# same process run) and prints their ratio lines. Not a test.
set -uo pipefail
BUILD="${1:-build}"
export MLOPS_BUILD_DIR="$(cd "$BUILD" && pwd)"
export MLOPS_SOURCE_DIR="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$MLOPS_SOURCE_DIR/bench/out"
status=0
for b in "$MLOPS_SOURCE_DIR"/bench/bench_*.py; do
  [ -e "$b" ] || continue
  if [ -n "${BENCH:-}" ] && [[ "$(basename "$b")" != *"$BENCH"* ]]; then continue; fi
  echo "=== $(basename "$b")"
  /usr/bin/python3 "$b" || { echo "FAILED: $b"; status=1; }
done
echo "=== summary (ratios, higher is better for mlops)"
cat "$MLOPS_SOURCE_DIR"/bench/out/*.ratio 2>/dev/null
exit $status
