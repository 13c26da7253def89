#!/usr/bin/env bash
# test_demo.sh: `make demo` (examples/demo.sh) as a new user runs it: its
# own secure cluster from `mlopsctl up`, no key in the environment, the
# purchases job to a result and the registered models, exit 0 and the
# cluster stopped afterwards. Smaller data (DEMO_ROWS) in the test's own
# directory (DEMO_DATA), so the checkout is left as it was.
source "$(dirname "$0")/lib.sh"
unset MLOPS_COORDINATOR MLOPS_KEY MLOPS_SERVER_KEY MLOPS_HOME
export HOME="$T/home" # no ~/.mlops to fall back on
mkdir -p "$HOME"
DEMO_ROWS=20000 DEMO_DATA="$T/purchases.csv" bash "$MLOPS_SOURCE_DIR/examples/demo.sh" "$MLOPS_BUILD_DIR" \
    >"$T/demo.out" 2>"$T/demo.err" || fail "make demo exit $?: $(tail -n 5 "$T/demo.err")"
out="$(cat "$T/demo.out")"
assert_contains "$out" "== result of j000001" "the demo prints the result"
assert_contains "$out" "accuracy" "the result has the metrics"
assert_contains "$out" "purchases" "the models listing names the registered model"
[ -s "$T/purchases.csv" ] || fail "the demo did not write its data where DEMO_DATA says"
pgrep -f "mlops-(coordinator|worker) .*/tmp/mlops-demo\." >/dev/null && fail "the demo left daemons running"
echo "PASS test_demo"
