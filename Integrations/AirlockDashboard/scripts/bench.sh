#!/usr/bin/env bash
# The dashboard's bench (reported, not asserted): a private redis-server seeded with 100 queues, 50
# live workers, 100,000 dead letters and a full hour of per-second series for every queue
# (airlock-dashboard-seed bench), the release airlock-dashboard over it, and sequential keep-alive
# GETs of each page (bench/bench_client.py): p50/p90/p99/max per page.
#   scripts/bench.sh [COUNT]     (default 300 timed requests per page)
# Also the server's CPU per request (its /proc stat), which other load on the machine moves far less
# than the latency. BENCH_NO_BUILD=1 uses the release binaries already built; BENCH_PATHS="/ /dead"
# times only those pages. Everything started is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}
count=${1:-300}
"$root/scripts/install-deps.sh"
cd "$here"
[ -n "${BENCH_NO_BUILD:-}" ] || $SWIFT build -c release --product airlock-dashboard >&2
[ -n "${BENCH_NO_BUILD:-}" ] || $SWIFT build -c release --product airlock-dashboard-seed >&2
bin=$($SWIFT build -c release --show-bin-path)

work=$(mktemp -d -t airlock-dashboard-bench.XXXXXX)
pid=
cleanup() {
  set +e
  [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
url="redis://127.0.0.1:$port/0"
start=$(date +%s)
"$bin/airlock-dashboard-seed" bench --redis "$url" --namespace bench
echo "bench: seeded in $(( $(date +%s) - start ))s; redis used_memory: $(redis-cli -p "$port" info memory | grep '^used_memory_human' | tr -d '\r')" >&2

"$bin/airlock-dashboard" --redis "$url" --namespace bench --listen 127.0.0.1:0 --refresh 0 --log-level warning >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 1 300); do grep -q 'listening on' "$work/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out" | head -n 1)
[ -n "$base" ] || { cat "$work/log" >&2; exit 1; }
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $count sequential requests per page after 10 warm-up ones" >&2
paths=(/ /live/overview /queues /workers /dead "/dead?error=timeout" /delayed)
[ -z "${BENCH_PATHS:-}" ] || read -r -a paths <<<"$BENCH_PATHS"
echo "bench: dashboard pid $pid" >&2
python3 "$here/bench/bench_client.py" --pid "$pid" "$base" "$count" "${paths[@]}"
