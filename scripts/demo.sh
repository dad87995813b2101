#!/usr/bin/env bash
# make demo: a private Redis, two workers (an application's embedded worker binary), a producer
# sending real jobs through Airlock scopes, then the queue stats. Cleans up after itself.
# DEMO_REDIS_URL=<url> runs it against that Redis instead of a private one — one URL change for a
# TLS Redis (rediss://…) or a Sentinel-managed one (redis+sentinel://…); scripts/production-redis.sh
# starts either on loopback and prints the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release
if [ -n "${DEMO_REDIS_URL:-}" ]; then
  export AIRLOCK_REDIS_URL="$DEMO_REDIS_URL"
  run=(bash -c)
else
  run=(scripts/with-redis.sh bash -c)
fi
exec "${run[@]}" '
  set -euo pipefail
  BIN='"$BIN"'
  logs=$(mktemp -d -t airlock-demo.XXXXXX)
  pids=()
  stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$logs"; }
  trap stop EXIT
  for n in 1 2; do
    $BIN/EmbeddedWorker run --queues default,warehouse --concurrency 8 --name demo-$n --log-level notice >"$logs/worker-$n.log" 2>&1 &
    pids+=($!)
  done
  echo "demo: Redis at $AIRLOCK_REDIS_URL, 2 workers started (queues default, warehouse)"
  $BIN/DemoProducer
  echo
  echo "demo: airlock-workerd stats"
  $BIN/airlock-workerd stats --interval 0 2>/dev/null || $BIN/airlock-workerd queues 2>/dev/null || true
  echo
  echo "demo: airlock-workerd dead list"
  $BIN/airlock-workerd dead list 2>/dev/null || true
  echo
  echo "demo: last lines of worker 1:"
  tail -n 5 "$logs/worker-1.log" | cut -c1-200
'
