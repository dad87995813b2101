#!/usr/bin/env bash
# Runs a command with a private redis-server on a free loopback port (data in a temp dir),
# exporting AIRLOCK_TEST_REDIS_URL / AIRLOCK_REDIS_URL, and stops the server afterwards,
# whatever the command's outcome.
set -euo pipefail
dir=$(mktemp -d -t airlock-redis.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
cleanup() {
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to exit (bounded: 10 s): a server still shutting down writes its log again,
    # re-creating a file in the directory rm is emptying ("Directory not empty", exit status 1).
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then break; fi
  sleep 0.05
done
redis-cli -p "$port" ping | grep -q PONG || { echo "redis-server did not start on port $port" >&2; cat "$dir/redis.log" >&2; exit 1; }
export AIRLOCK_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
export AIRLOCK_REDIS_URL="$AIRLOCK_TEST_REDIS_URL"
echo "with-redis: redis-server on 127.0.0.1:$port (data in $dir)" >&2
"$@"
