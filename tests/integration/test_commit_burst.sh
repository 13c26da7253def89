#!/usr/bin/env bash
# test_commit_burst.sh: the coordinator SIGKILLed in the middle of a burst
# of requests loses nothing it acknowledged, now that its journal commits
# on a committer thread while the loop goes on (coordinator/coord.c).
# Two workers (1 slot each, heartbeat 250 ms). A client keeps moving an
# alias of a model registered before (two versions) and, once two moves
# are acknowledged, 24 clients submit small noop jobs at once; the
# coordinator is killed once at least 6 submits have been acknowledged,
# with more requests in flight. A build that answered before its commit
# fails here (an acknowledged move or job missing after the restart). After a restart on the same endpoint:
#  - every job id a client printed (its JobAck) is listed, and each one
#    runs to success; no id is listed twice, and a job submitted after
#    the restart gets an id no acknowledged job has;
#  - every alias move the client saw acknowledged is in the alias's
#    history, in order, and the alias points at the last one
#    acknowledged or at a move made after it (one that was committed but
#    not yet answered when the kill came);
#  - the journal holds no half-written batch: the restarted coordinator
#    replays it without skipping a record.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"

HB_MS=250
D="$T/data"
mkdir -p "$D"
gen_purchases 2000 5 "$D/p.csv"
purchases_job "$D/m.yaml" p.csv full
printf 'name: burst\nnoop: {tasks: 40, task_ms: 5}\n' >"$D/noop.yaml"

cluster_start 2 1
submit_wait "$D/m.yaml" --set train.epochs=1 >/dev/null || exit 1
submit_wait "$D/m.yaml" --set train.epochs=1 >/dev/null || exit 1
ctl model alias purchases 1 production >/dev/null || fail "alias exit $?"

# the alias mover: prints each version once its move is acknowledged
( v=1
  while [ ! -e "$T/stop" ]; do
      v=$((3 - v))
      ctl --timeout 2000 model alias purchases "$v" production >/dev/null 2>&1 || break
      echo "$v"
  done ) >"$T/moves.acked" 2>/dev/null &
CLIENTS=($!)
wait_for '[ "$(wc -l <"$T/moves.acked")" -ge 2 ]' 60

# the burst: each client prints its job id only when the JobAck came
for i in $(seq 1 24); do
    ctl --timeout 3000 submit "$D/noop.yaml" >"$T/ack.$i" 2>"$T/err.$i" &
    CLIENTS+=($!)
done
acked() { cat "$T"/ack.* 2>/dev/null | grep -c '^j'; }
wait_for '[ "$(acked)" -ge 6 ]' 60
coord_kill
touch "$T/stop"
wait "${CLIENTS[@]}" 2>/dev/null
n_acked="$(acked)"
cat "$T"/ack.* | grep '^j' | sort >"$T/acked.ids"
echo "acknowledged before the kill: $n_acked submits, $(wc -l <"$T/moves.acked") alias moves"

coord_start "$MLOPS_COORDINATOR"
wait_for '[ "$(alive_workers)" -eq 2 ]' 20
LOG="$CLUSTER_DIR/logs/coordinator.log"
if grep -q "unreadable records skipped" "$LOG"; then fail "replay skipped records: $(grep unreadable "$LOG")"; fi

ctl jobs -o json >"$T/jobs.json" || fail "jobs exit $?"
jget "'\n'.join(sorted(x['job'] for x in d['jobs']))" <"$T/jobs.json" >"$T/listed.ids"
dups="$(sort "$T/listed.ids" | uniq -d | tr '\n' ' ')"
[ -z "$dups" ] || fail "job ids listed twice after the restart: $dups"
missing="$(comm -23 "$T/acked.ids" "$T/listed.ids" | tr '\n' ' ')"
[ -z "$missing" ] || fail "acknowledged jobs lost by the kill: $missing"
while read -r j; do
    timeout 120 "$MLOPSCTL" wait "$j" >/dev/null 2>"$T/wait.err" ||
        fail "acknowledged job $j after the restart: $(tail -n 2 "$T/wait.err"); state $(job_state "$j")"
done <"$T/acked.ids"

# the alias: every acknowledged move is in the history, in order
ctl model history purchases -o json >"$T/hist.json" || fail "model history exit $?"
"$PY" - "$T/hist.json" "$T/moves.acked" <<'EOF' || fail "alias moves acknowledged before the kill are missing (see above)"
import json, sys
seen = [m["to"] for m in json.load(open(sys.argv[1]))["history"] if m["alias"] == "production"]
acked = [int(x) for x in open(sys.argv[2]).read().split()]
# the first move (alias set ... 1, before the burst), then the mover's:
# the acknowledged ones are a prefix of what the history holds after it
if seen[1:1 + len(acked)] != acked:
    print(f"history {seen} does not start with the acknowledged moves {acked} after the first")
    sys.exit(1)
EOF

new="$(submit_wait "$D/noop.yaml")" || exit 1
if grep -qx "$new" "$T/acked.ids"; then fail "job id $new handed out twice across the restart"; fi
echo "test_commit_burst: $n_acked acknowledged submits and $(wc -l <"$T/moves.acked") alias moves survived the kill"
