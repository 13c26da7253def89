#!/usr/bin/env bash
# make demo: start a local cluster, make the example data, run the
# purchases pipeline, print its result, stop the cluster.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
CTL="$BUILD/mlopsctl"
ROWS="${DEMO_ROWS:-200000}"
WORKERS="${DEMO_WORKERS:-2}"
DIR="$(mktemp -d /tmp/mlops-demo.XXXXXX)"
cleanup() { "$CTL" down --data-dir "$DIR/cluster" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

echo "== starting a local cluster: 1 coordinator, $WORKERS workers"
export MLOPS_COORDINATOR="$("$CTL" up --workers "$WORKERS" --port 0 --data-dir "$DIR/cluster" | tail -1)"
# the cluster is secure by default: mlopsctl uses the client key `up` made
export MLOPS_KEY="$DIR/cluster/keys/client.key" MLOPS_SERVER_KEY="$DIR/cluster/keys/coordinator.key"
echo "   coordinator at $MLOPS_COORDINATOR"
"$CTL" workers

DATA="${DEMO_DATA:-$ROOT/examples/purchases/data/purchases.csv}"
if [ ! -s "$DATA" ] || [ "$(($(wc -l <"$DATA") - 1))" != "$ROWS" ]; then
  echo "== generating $ROWS purchase rows"
  mkdir -p "$(dirname "$DATA")"
  /usr/bin/python3 "$ROOT/examples/purchases/generate.py" --rows "$ROWS" --seed 7 --out "$DATA"
fi

echo "== submitting examples/purchases/job.yaml"
JOB="$("$CTL" submit "$ROOT/examples/purchases/job.yaml" --set "input=$DATA" --wait | head -1)"
echo "== result of $JOB"
"$CTL" result "$JOB"
echo "== the same as JSON: mlopsctl result $JOB -o json"
"$CTL" result "$JOB" -o json
echo
echo "== the registered models: mlopsctl models"
"$CTL" models
echo
echo "== stopping the cluster"
