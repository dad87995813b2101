#!/usr/bin/env bash
# Runs a command beside a private Redis Cluster: three primaries and three replicas on free
# loopback ports (data in a temp dir), exporting AIRLOCK_TEST_CLUSTER_URL
# (redis+cluster://127.0.0.1:P1,…), and stops every node afterwards, whatever the command's
# outcome. The integrations' tests use it (the root package's tests start their own clusters from
# Swift: Tests/Support/RedisClusterNodes.swift).
set -euo pipefail
dir=$(mktemp -d -t airlock-cluster.XXXXXX)
cleanup() {
  for pidfile in "$dir"/r-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    # Bounded wait (10 s): a node still shutting down writes its log and nodes file again.
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  rm -rf "$dir"
}
trap cleanup EXIT

# A port P is usable when P and its bus port P + 10000 are both free (so P stays below 55535).
ports=$(python3 - <<'EOF'
import random, socket
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
chosen = []
while len(chosen) < 6:
    port = random.randint(20000, 45000)
    if port not in chosen and free(port) and free(port + 10000):
        chosen.append(port)
print(" ".join(map(str, chosen)))
EOF
)
for port in $ports; do
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 2000 \
    --daemonize yes --pidfile "$dir/r-$port.pid" --logfile "$dir/r-$port.log"
done
for port in $ports; do
  for _ in $(seq 1 200); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then break; fi
    sleep 0.05
  done
  redis-cli -p "$port" ping | grep -q PONG || { echo "cluster node on port $port did not start" >&2; cat "$dir/r-$port.log" >&2; exit 1; }
done
# shellcheck disable=SC2046
timeout 120 redis-cli --cluster create $(for port in $ports; do printf '127.0.0.1:%s ' "$port"; done) \
  --cluster-replicas 1 --cluster-yes > "$dir/create.log" 2>&1 || { echo "redis-cli --cluster create failed" >&2; cat "$dir/create.log" >&2; exit 1; }
for port in $ports; do
  ok=no
  for _ in $(seq 1 1200); do
    if redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok; then ok=yes; break; fi
    sleep 0.1
  done
  [ "$ok" = yes ] || { echo "cluster node on port $port never reached cluster_state:ok" >&2; redis-cli -p "$port" cluster info >&2 || true; exit 1; }
done
AIRLOCK_TEST_CLUSTER_URL="redis+cluster://$(echo "$ports" | tr ' ' '\n' | sed 's/^/127.0.0.1:/' | paste -sd, -)"
export AIRLOCK_TEST_CLUSTER_URL
echo "with-redis-cluster: 3 primaries + 3 replicas on 127.0.0.1 ports $ports (data in $dir)" >&2
"$@"
