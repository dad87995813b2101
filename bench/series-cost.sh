#!/usr/bin/env bash
# What the dashboard's per-second series costs Redis: the settle script's series step
# (`HINCRBY <ns>:{Q}:series:<minute> p<s> n`, plus `EXPIRE` when that created the field) measured in
# isolation. Two Lua scripts shaped like a one-job settle call — push/remove the job in the in-flight
# list and `HINCRBY` the stats hash — one without and one with the series step, run alternately with
# redis-benchmark against a private redis-server; Redis's own `usec_per_call` for EVALSHA
# (INFO commandstats: time spent inside Redis, not on the socket) is read after each run.
# Prints one line per run and the median difference. Usage: bench/series-cost.sh [CALLS] [ROUNDS]
set -euo pipefail
calls=${1:-200000}
rounds=${2:-3}
dir=$(mktemp -d -t airlock-series.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
cleanup() { [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
cli() { redis-cli -p "$port" "$@"; }

base="redis.call('RPUSH', KEYS[1], ARGV[1]); redis.call('LREM', KEYS[1], -1, ARGV[1]); redis.call('HINCRBY', KEYS[2], 'processed', 1)"
series="if redis.call('HINCRBY', KEYS[3], 'p' .. ARGV[2], 1) == 1 then redis.call('EXPIRE', KEYS[3], 3900) end"
sha_base=$(cli SCRIPT LOAD "$base; return 1")
sha_series=$(cli SCRIPT LOAD "$base; $series; return 1")
job='{"id":"5b0c7c1e-2f4e-4a57-9d0e-0d6f1a8e4b21","task":"mail.send","args":[1],"attempt":0,"queue":"mail"}'

run() { # sha -> usec_per_call
  cli CONFIG RESETSTAT >/dev/null
  # The second of the minute is random (0-59), so a run creates each field once, as a real minute does.
  redis-benchmark -p "$port" -n "$calls" -c 4 -P 16 -r 60 -q \
    EVALSHA "$1" 3 'airlock:{mail}:inflight:w1' 'airlock:{mail}:stats' 'airlock:{mail}:series:29540521' "$job" __rand_int__ >/dev/null
  cli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'
}

diffs=()
for round in $(seq 1 "$rounds"); do
  a=$(run "$sha_base"); b=$(run "$sha_series")
  d=$(python3 -c "print(round($b - $a, 2))")
  diffs+=("$d")
  echo "round $round: without series ${a} µs/call, with series ${b} µs/call, difference ${d} µs"
done
fields=$(cli HLEN 'airlock:{mail}:series:29540521'); ttl=$(cli TTL 'airlock:{mail}:series:29540521')
echo "series hash after the runs: $fields fields, TTL ${ttl}s"
python3 -c "import statistics,sys; print('median difference: %.2f µs of Redis time per settle call' % statistics.median(map(float, sys.argv[1:])))" "${diffs[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
