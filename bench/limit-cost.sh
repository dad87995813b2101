#!/usr/bin/env bash
# What queue limits cost (docs/BENCHMARKS.md, "Queue limits: what the hot path pays"). Reported, not asserted.
#
#   bench/limit-cost.sh scripts [CALLS] [ROUNDS] [BEFORE]   the scripts alone, before and after
#   bench/limit-cost.sh drain [JOBS] [ROUNDS]                airlock-workerd drains, no limit vs limits
#   bench/limit-cost.sh compare BEFORE_DIR [JOBS] [ROUNDS]   unlimited drains, BEFORE_DIR's airlock-workerd vs BIN's
#
# scripts: the real fetch and settle scripts of BEFORE (a git revision, default 3436d77: main before
#   limits) and of the work tree, run alternately with redis-benchmark (4 clients, pipeline 16) against a
#   private redis-server on a queue with no limit record — what every unlimited queue pays. Redis's own
#   usec_per_call for EVALSHA (time inside Redis) is read after each run. The fetch call moves 10 jobs
#   of a 100-job list onto itself (a rotation: the list never drains); the settle call acknowledges one
#   job that is no longer held (the per-call part: the loop's LREM, the counters, and after it the
#   lease `HGET`). A third fetch column runs the after script on a queue whose limit never binds
#   (concurrency and rate of 10^9): the cost of the lease and GCRA steps themselves.
# drain: JOBS airlock.ping jobs (default 100000) filled, then one `airlock-workerd run --concurrency 64
#   --prefetch 256` timed by `AirlockBench watch`, as make bench's drain; per round three runs: no limit,
#   a concurrency limit of 320 (= concurrency + prefetch: what the worker can hold anyway, so it never
#   throttles — the overhead alone), and one of 64 (= concurrency: prefetched jobs count, so the worker
#   holds at most 64). Worker and Redis CPU per job from /proc. Needs release builds
#   (swift build -c release --static-swift-stdlib; BIN=dir overrides .build/release).
# compare: the same unlimited drain, alternating the airlock-workerd of BEFORE_DIR (a release build of the
#   revision before limits) and of BIN (AirlockBench from BIN for both): does a queue without a limit pay?
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
dir=$(mktemp -d -t airlock-limit.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  sleep 0.2; rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
cli() { redis-cli -p "$port" "$@"; }
usec() { cli INFO commandstats | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'; }

# The Lua text of `static let <name> = RedisScript("""` … `"""` in a Swift file (given on stdin).
lua() { awk -v name="$1" '
  index($0, "static let " name " = RedisScript(") { on = 1; next }
  on && /^ *"""\)/ { exit }
  on { sub(/^        /, ""); print }'; }

case "$mode" in
scripts)
  calls=${2:-200000}; rounds=${3:-5}; before=${4:-3436d77}
  fetch=Sources/AirlockRedis/JobSource/RedisJobSource+Fetch.swift
  settle=Sources/AirlockRedis/JobSource/RedisJobSource+Settle.swift
  load() { cli SCRIPT LOAD "$(cat)"; }
  f_old=$(git show "$before:$fetch" | lua fetchScript | load)
  f_new=$(lua fetchScript <"$fetch" | load)
  s_old=$(git show "$before:$settle" | lua settleScript | load)
  s_new=$(lua settleScript <"$settle" | load)
  job='{"v":1,"id":"5b0c7c1e-2f4e-4a57-9d0e-0d6f1a8e4b21","task":"airlock.ping","queue":"q","enqueued_at":1}'
  for i in $(seq 1 100); do cli RPUSH 'b:{q}:ready' "${job/5b0c/$i}" >/dev/null; done
  bench() { cli CONFIG RESETSTAT >/dev/null; redis-benchmark -p "$port" -n "$calls" -c 4 -P 16 -q "$@" >/dev/null; usec; }
  # Fetch: KEYS ready, in-flight (the same list: a rotation), paused, then (after) limit, leases, rate state.
  fetch_old() { bench EVALSHA "$f_old" 3 'b:{q}:ready' 'b:{q}:ready' 'b:{q}:paused' 10; }
  fetch_new() { bench EVALSHA "$f_new" 6 'b:{q}:ready' 'b:{q}:ready' 'b:{q}:paused' 'b:{q}:limit' 'b:{q}:limit:held' 'b:{q}:limit:rate' 10 w1; }
  # The same with a limit that never binds (concurrency and rate of 10^9): the lease and GCRA steps' own cost.
  cli HSET 'b:{l}:limit' concurrency 1000000000 rate 1000000000 interval_ms 1000 burst 1000000000 >/dev/null
  for i in $(seq 1 100); do cli RPUSH 'b:{l}:ready' "${job/5b0c/$i}" >/dev/null; done
  fetch_limited() { bench EVALSHA "$f_new" 6 'b:{l}:ready' 'b:{l}:ready' 'b:{l}:paused' 'b:{l}:limit' 'b:{l}:limit:held' 'b:{l}:limit:rate' 10 w1; }
  # Settle one ack of a job no longer held: KEYS in-flight, stats, home, delayed, dead, wake, series (+ leases, limit wake, limit).
  k7=('b:{q}:inflight:w1' 'b:{q}:stats' 'b:{q}:ready' 'b:{q}:delayed' 'b:{q}:dead' 'b:{q}:wake' 'b:{q}:series:1')
  settle_old() { bench EVALSHA "$s_old" 7 "${k7[@]}" 10000 7 ack "$job" '' 0 0 '' 0 0; }
  settle_new() { bench EVALSHA "$s_new" 10 "${k7[@]}" 'b:{q}:limit:held' 'b:{q}:limit:wake' 'b:{q}:limit' 10000 7 w1 ack "$job" '' 0 0 '' 0 0; }
  echo "round fetch_before_us fetch_after_us fetch_limited_us settle_before_us settle_after_us (usec_per_call, $calls calls each; before = $before; load $(cut -d' ' -f1-3 /proc/loadavg))"
  for r in $(seq 1 "$rounds"); do
    echo "$r $(fetch_old) $(fetch_new) $(fetch_limited) $(settle_old) $(settle_new)"
  done
  ;;
drain|compare)
  before_dir=
  if [ "$mode" = compare ]; then before_dir=${2:?compare needs the directory of the earlier airlock-workerd}; shift; fi
  jobs=${2:-100000}; rounds=${3:-3}; BIN=${BIN:-.build/release}
  for exe in AirlockBench airlock-workerd; do
    [ -x "$BIN/$exe" ] || { echo "limit-cost: $BIN/$exe is missing; build with: swift build -c release --static-swift-stdlib" >&2; exit 1; }
  done
  export AIRLOCK_REDIS_URL="redis://127.0.0.1:$port/0"
  HZ=$(getconf CLK_TCK)
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
  redis_pid=$(cat "$dir/redis.pid")
  trial() {  # trial <label> <limit or ''> [<airlock-workerd>]
    local label=$1 limit=$2 workerd=${3:-$BIN/airlock-workerd} queue="ld-$1-$RANDOM" args=()
    [ -n "$limit" ] && args=(--limit "$queue=concurrency:$limit")
    "$BIN/AirlockBench" fill --queue "$queue" --count "$jobs" >/dev/null 2>>"$dir/bench.log"
    rm -f "$dir/ready"
    "$BIN/AirlockBench" watch --queue "$queue" --count "$jobs" --ready-file "$dir/ready" --timeout 600 >"$dir/watch.out" 2>>"$dir/bench.log" &
    local watcher=$!; PIDS+=("$watcher")
    for _ in $(seq 1 500); do [ -f "$dir/ready" ] && break; sleep 0.01; done
    local r0; r0=$(ticks "$redis_pid")
    "$workerd" run --queues "$queue" --concurrency 64 --prefetch 256 --log-level warning "${args[@]}" >>"$dir/worker.log" 2>&1 &
    local worker=$!; PIDS+=("$worker")
    wait "$watcher"
    local w r1; w=$(ticks "$worker"); r1=$(ticks "$redis_pid")
    kill "$worker"; wait "$worker" 2>/dev/null || true
    local rate; rate=$(sed -n 's/^result: .*per_s=\([0-9]*\).*/\1/p' "$dir/watch.out")
    awk -v l="$label" -v rate="$rate" -v w="$w" -v r=$((r1 - r0)) -v n="$jobs" -v hz="$HZ" \
      'BEGIN { printf "%s jobs_per_s=%s worker_cpu_us_per_job=%.2f redis_cpu_us_per_job=%.2f\n", l, rate, w / hz * 1e6 / n, r / hz * 1e6 / n }'
    cli --scan --pattern "airlock:{$queue}:*" | xargs -r redis-cli -p "$port" del >/dev/null
  }
  echo "drain of $jobs airlock.ping, one airlock-workerd run --concurrency 64 --prefetch 256 ($BIN${before_dir:+ vs $before_dir}), $rounds rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  trial warmup ''
  for r in $(seq 1 "$rounds"); do
    if [ -n "$before_dir" ]; then
      trial "r$r-before" '' "$before_dir/airlock-workerd"
      trial "r$r-after" ''
    else
      trial "r$r-none" ''
      trial "r$r-limit320" 320
      trial "r$r-limit64" 64
    fi
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  ;;
*) awk 'NR > 1 { if (!/^#/) exit; print }' "$0"; exit 2 ;;
esac
