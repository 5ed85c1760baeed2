#!/usr/bin/env bash
# Score the aggregator against the simulator's ground truth on one scenario run, as the verdict
# table in docs/rules.md was made: embedded broker, `dustwatch serve` with a fresh store, the
# simulated fleet at the given speed, then `dustwatch score`.
#
#   scripts/score-run.sh SPEED [SCENARIO] [RULES]     e.g. scripts/score-run.sh 3600, scripts/score-run.sh max
#
# Needs the release build (cargo build --release -p dustwatch -p sensors-sim). Writes its files
# in a temporary directory it prints; the score table goes to stdout.
set -euo pipefail
speed=${1:?speed: a number or max}
scenario=${2:-huiji-red-alert}
rules=${3:-}
bin=$(cd "$(dirname "$0")/.." && pwd)/target/release
dir=$(mktemp -d /tmp/dustwatch-score.XXXXXX)
port=$((20000 + RANDOM % 20000))
http=$((port + 1))
echo "run in $dir (MQTT $port, HTTP $http)" >&2
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$bin/dustwatch" broker --mqtt-listen "127.0.0.1:$port" 2>"$dir/broker.log" &
pids+=($!)
"$bin/sensors-sim" registry --scenario "$scenario" >"$dir/registry.toml"
rules_arg=()
[ -n "$rules" ] && rules_arg=(--rules "$rules")
sleep 1
"$bin/dustwatch" serve --broker "mqtt://127.0.0.1:$port" --http "127.0.0.1:$http" \
  --registry "$dir/registry.toml" --data "$dir/data" "${rules_arg[@]}" 2>"$dir/serve.log" &
serve=$!
pids+=($serve)
sleep 2
"$bin/sensors-sim" --broker "mqtt://127.0.0.1:$port" --scenario "$scenario" --speed "$speed" \
  --truth "$dir/truth.json" 2>"$dir/sim.log" >"$dir/sim.out"
# Let ingest and the rules catch up, then stop the aggregator cleanly (it saves what it judged).
sleep 10
kill -INT "$serve"
wait "$serve" || true
"$bin/dustwatch" score --truth "$dir/truth.json" --data "$dir/data" "${rules_arg[@]}"
