#!/usr/bin/env bash
# retrain.sh: the retrain loop of the purchases example, three days long.
#   day 1: train on day-1 data; no model holds `production` yet, so the
#          new version is promoted.
#   day 2: the same generator, with prices and incomes drifted; retrain,
#          and the promotion gate scores the champion (day 1's model,
#          with its own scaler and hasher) on the same test rows as the
#          challenger: the better one holds `production`.
#   day 3: a misconfigured retrain (hash.n_features: 16) on day-2 data:
#          worse on the same test rows, so production is kept.
# Prints each decision, then the alias history and `mlopsctl models`.
#
# Uses the cluster at $MLOPS_COORDINATOR if set, else starts a local one
# (mlopsctl up) and stops it at the end. RETRAIN_ROWS rows a day (50000).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
CTL="$BUILD/mlopsctl"
ROWS="${RETRAIN_ROWS:-50000}"
DIR="$(mktemp -d /tmp/mlops-retrain.XXXXXX)"
OWN=0
cleanup() {
  [ "$OWN" = 0 ] || "$CTL" down --data-dir "$DIR/cluster" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
if [ -z "${MLOPS_COORDINATOR:-}" ]; then
  OWN=1
  MLOPS_COORDINATOR="$("$CTL" up --workers 2 --port 0 --data-dir "$DIR/cluster" | tail -1)"
  export MLOPS_COORDINATOR
  # secure by default: the client key `up` made
  export MLOPS_KEY="$DIR/cluster/keys/client.key" MLOPS_SERVER_KEY="$DIR/cluster/keys/coordinator.key"
fi
MODEL="${RETRAIN_MODEL:-purchases-clicks}"

gen() { /usr/bin/python3 "$ROOT/examples/purchases/generate.py" --rows "$ROWS" --seed 7 --out "$DIR/$1" "${@:2}"; }
gen day1.csv
gen day2.csv --shift 0.5

cat >"$DIR/retrain.yaml" <<YAML
name: purchases-retrain
input: day1.csv
shard_rows: 16384
columns:
  label: clicked
  numeric: [price, quantity, age, income]
  categorical: [category, item_id, user_id]
clean: {dropna: true}
scale: true
hash: {n_features: 65536, alternate_sign: true}
split: {test_size: 0.2, seed: 42}
train: {model: logistic, epochs: 5, learning_rate: optimal, alpha: 0.0001, seed: 42}
evaluate: [accuracy, logloss, auc]
register: {model: $MODEL}
promote: {alias: production, metric: logloss, min_delta: 0.0}
YAML

decision() {
  "$CTL" result "$1" -o json | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["promotion"]
champ = p["champion"]
c = "no champion" if champ is None else "champion v%d %s %.4f" % (champ["version"], p["metric"], champ["metric"])
print("%s: %s (challenger v%d %s %.4f, %s)" % (sys.argv[1], p["decision"], p["challenger"]["version"], p["metric"], p["challenger"]["metric"], c))
' "$2"
}

day() {
  local label="$1"
  shift
  local job
  job="$("$CTL" submit "$DIR/retrain.yaml" --wait "$@" | head -1)"
  decision "$job" "$label"
}

echo "== day 1: train on day-1 data"
day "day 1" --set register.tags=[day1]
echo "== day 2: retrain on drifted day-2 data"
day "day 2" --set input=day2.csv --set register.tags=[day2]
echo "== day 3: a misconfigured retrain (hash.n_features: 16) on day-2 data"
day "day 3" --set input=day2.csv --set hash.n_features=16 --set register.tags=[day3-misconfigured]
echo
echo "== mlopsctl model history $MODEL"
"$CTL" model history "$MODEL"
echo
echo "== mlopsctl models"
"$CTL" models
