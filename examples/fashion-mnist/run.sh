#!/usr/bin/env bash
# run.sh: run the Fashion-MNIST example with one command.
# Uses the coordinator at $MLOPS_COORDINATOR (or mlopsctl's default) if one
# answers; otherwise starts a local cluster (mlopsctl up, ephemeral port,
# $WORKERS workers, data in a temp dir) and stops it at the end.
#   MLOPSCTL  the mlopsctl binary (default: ../../build/mlopsctl, else PATH)
#   WORKERS   workers of the local cluster (default 2)
# Extra arguments go to `mlopsctl submit` (e.g. --set knn.k=5).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ctl="${MLOPSCTL:-$here/../../build/mlopsctl}"
[ -x "$ctl" ] || ctl="$(command -v mlopsctl)" || { echo "run.sh: mlopsctl not found (build first, or set MLOPSCTL)" >&2; exit 2; }
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -r "/usr/share/datasets/fashion-mnist/$f" ] || { echo "run.sh: /usr/share/datasets/fashion-mnist/$f is missing" >&2; exit 2; }
done
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

started=""
if ! "$ctl" --timeout 1000 workers >/dev/null 2>&1; then
    started="$(mktemp -d "${TMPDIR:-/tmp}/mlops-fashion.XXXXXX")"
    trap '"$ctl" down --data-dir "$started" >/dev/null 2>&1 || true; rm -rf "$started"' EXIT
    MLOPS_COORDINATOR="$("$ctl" up --port 0 --data-dir "$started" --workers "${WORKERS:-2}")"
    export MLOPS_COORDINATOR
    echo "started a local cluster at $MLOPS_COORDINATOR (${WORKERS:-2} workers)"
fi
job="$("$ctl" submit "$here/job.yaml" "$@" --wait)"
"$ctl" result "$job"
