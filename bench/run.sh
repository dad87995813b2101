#!/usr/bin/env bash
# make bench: Airlock against one private redis-server (free loopback port, no persistence), side by
# side with Redis's own ceiling and with Celery, Dramatiq, RQ and Sidekiq on the same server.
#
#   bench/run.sh [--quick] [--no-build] [--skip-peers] [--peers LIST] [--only-peers]
#                [--scaling | --no-scaling | --only-scaling]
#
# Prints a table, writes bench/results/latest.json, and ends with one machine-readable line:
#   bench: drain_per_s=… enqueue_per_s=… latency_p50_us=… … redis_lpush_p16_per_s=…
#          sidekiq_drain_per_s=… sidekiq_reliable_drain_per_s=… sidekiq_enqueue_per_s=…
#          redis_lpush_c1_p50_us=… (Redis's one-client round trip: the floor under the latency rows)
#          scaling_capacity_per_s=… … scaling_seconds=…
#          observability_metrics_cpu_vs_plain=… … (bench/observability.sh, full runs only)
#          (one line; the scaling fields, then the observability ones, last; `skipped`
#          when a section did not run)
# --quick: smaller counts, one drain configuration, peers skipped (under a minute once built).
# --skip-peers: no peers. --peers LIST: only these peers (comma-separated: celery,dramatiq,rq,sidekiq).
# --only-peers: Redis's ceiling and the peers only (no Swift build, no Airlock figures); writes
#   bench/results/latest-peers.json instead, e.g. `bench/run.sh --only-peers --peers sidekiq` (~40 s).
# Scaling tables ("How cost grows" in docs/BENCHMARKS.md): drain vs concurrency and worker processes,
#   enqueue vs scope size × producer tasks, envelope size, latency at light load and at 25 % and 50 %
#   of the drain capacity measured in the same run, promoter cost with 1M delayed jobs, admin commands
#   with 1M ready jobs and 100k dead letters. Part of the full run; --quick leaves them out (--scaling puts them back),
#   --no-scaling leaves them out of a full run, and --only-scaling runs Redis's ceiling and the scaling
#   section alone (no peers; writes bench/results/latest-scaling.json), e.g.
#   `BENCH_SCALE=0.01 bench/run.sh --only-scaling` (a quick check of the whole section).
# Python peers are installed into bench/.venv (PyPI); Sidekiq from Debian packages (apt-get install
# ruby-sidekiq ruby-gitlab-sidekiq-fetcher, with sudo when not root) when missing.
# Every process started here (redis-server, workers, peer workers) is stopped on exit, whatever happens.
#
# Environment: SWIFT (default swift); BENCH_SCRATCH=path builds with --scratch-path path (default: .build).
#   SIDEKIQ_LOG_LEVEL (default warn): the Sidekiq peer's log level (info logs two lines per job).
#   BENCH_SCALE (default 1; 0.1 with --quick): multiplies the scaling section's job counts (1M delayed
#   jobs, 1M ready jobs, 100k dead letters, 100k-job drains …), e.g. 0.01 for a check on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL_PEERS="celery dramatiq rq sidekiq"
MODE=full; BUILD=1; PEERS=1; ONLY_PEERS=0; PEER_LIST=$ALL_PEERS; SCALING=; ONLY_SCALING=0
usage() { awk 'NR > 1 { if (!/^#/) exit; print }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick; PEERS=0 ;;
    --full) MODE=full ;;
    --no-build) BUILD=0 ;;
    --skip-peers) PEERS=0 ;;
    --only-peers) ONLY_PEERS=1 ;;
    --scaling) SCALING=1 ;;
    --no-scaling) SCALING=0 ;;
    --only-scaling) ONLY_SCALING=1 ;;
    --peers|--peers=*)
      if [ "$1" = --peers ]; then
        [ $# -ge 2 ] || { echo "bench: --peers needs a list (e.g. --peers sidekiq)" >&2; exit 2; }
        PEER_LIST=$2; shift
      else
        PEER_LIST=${1#--peers=}
      fi
      PEER_LIST=${PEER_LIST//,/ }
      for p in $PEER_LIST; do
        case " $ALL_PEERS " in *" $p "*) ;; *) echo "bench: unknown peer $p (known: ${ALL_PEERS// /,})" >&2; exit 2 ;; esac
      done ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument $1 (try --quick, --no-build, --skip-peers, --peers LIST, --only-peers, --scaling, --no-scaling, --only-scaling)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$ONLY_PEERS" = 1 ]; then
  [ "$PEERS" = 1 ] || { echo "bench: --only-peers runs nothing with --quick or --skip-peers" >&2; exit 2; }
  [ "$ONLY_SCALING" = 0 ] && [ "$SCALING" != 1 ] || { echo "bench: --only-peers and the scaling section do not go together" >&2; exit 2; }
  MODE=peers; BUILD=0; SCALING=0
fi
if [ "$ONLY_SCALING" = 1 ]; then
  [ "$SCALING" != 0 ] || { echo "bench: --only-scaling with --no-scaling runs nothing" >&2; exit 2; }
  MODE=scaling; PEERS=0; SCALING=1
fi
# The scaling section: on in a full run, off with --quick, unless --scaling / --no-scaling says otherwise.
if [ -z "$SCALING" ]; then if [ "$MODE" = quick ]; then SCALING=0; else SCALING=1; fi; fi
# Sections 0 and 2–5 (our own figures): not with --only-peers or --only-scaling.
MAIN=1; if [ "$ONLY_PEERS" = 1 ] || [ "$ONLY_SCALING" = 1 ]; then MAIN=0; fi
[ "$PEERS" = 1 ] || PEER_LIST=
wants() { case " $PEER_LIST " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

SWIFT=${SWIFT:-swift}
read -ra build_args < scripts/release-flags   # as `make build-release` builds them
if [ -n "${BENCH_SCRATCH:-}" ]; then build_args+=(--scratch-path "$BENCH_SCRATCH"); fi
if [ "$BUILD" = 1 ]; then $SWIFT build "${build_args[@]}" >&2; fi
if [ "$ONLY_PEERS" = 1 ]; then
  BIN="(not used: --only-peers)"
else
  BIN=$($SWIFT build "${build_args[@]}" --show-bin-path)
  for exe in AirlockBench airlock-workerd AirlockCoreBench; do
    [ -x "$BIN/$exe" ] || { echo "bench: $BIN/$exe is missing; build with: swift build -c release --static-swift-stdlib" >&2; exit 1; }
  done
fi

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: every pid we start goes in $PIDS; peer workers (their own process groups)
# are appended to $work/pgids by peer_bench.py. cleanup runs on every exit path.
work=$(mktemp -d -t airlock-bench.XXXXXX)
PIDS=()
REDIS_PID=
cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  if [ -f "$work/pgids" ]; then
    while read -r pg; do [ -n "$pg" ] && kill -TERM -- "-$pg" 2>/dev/null; done <"$work/pgids"
  fi
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  if [ -f "$work/pgids" ]; then
    while read -r pg; do [ -n "$pg" ] && kill -KILL -- "-$pg" 2>/dev/null; done <"$work/pgids"
  fi
  if [ -z "$REDIS_PID" ] && [ -s "$work/redis.pid" ]; then REDIS_PID=$(cat "$work/redis.pid"); fi
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$REDIS_PID" 2>/dev/null
  fi
  wait 2>/dev/null
  if [ "$status" != 0 ]; then
    echo "bench: failed (status $status); logs:" >&2
    for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stops one process we started (TERM, then KILL after 10 s) and drops it from $PIDS.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}
# Waits for a `watch` process while checking that the workers it times are still alive, so a worker
# that dies (or is killed by someone else) fails the bench at once instead of after the watch's timeout.
await_watch() {  # await_watch <watch pid> <worker pid>…
  local watcher=$1 p; shift
  while kill -0 "$watcher" 2>/dev/null; do
    for p in "$@"; do
      if ! kill -0 "$p" 2>/dev/null; then
        wait "$p"; local code=$?
        say "worker $p exited (status $code) before the drain finished; see its log below"
        return 1
      fi
    done
    sleep 0.1
  done
  wait "$watcher"
}
# Drops a pid that has exited from $PIDS.
forget() {
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# ---------------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
for _ in $(seq 1 200); do
  [ -s "$work/redis.pid" ] && redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
REDIS_PID=$(cat "$work/redis.pid")
redis-cli -p "$port" ping | grep -q PONG || { echo "bench: redis-server did not start" >&2; exit 1; }
URL="redis://127.0.0.1:$port/0"
export AIRLOCK_REDIS_URL=$URL
NS=airlock
RESULTS=$work/results.txt
: >"$RESULTS"
say() { echo "bench: $*" >&2; }
say "mode $MODE; redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port; binaries in $BIN"
echo "mode=$MODE" >>"$RESULTS"
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')" >>"$RESULTS"

# Runs an AirlockBench subcommand; its `result:` line becomes `<prefix>_<key>=<value>` lines in $RESULTS.
bench() {
  local prefix=$1; shift
  local out r0 r1
  r0=$(ticks "$REDIS_PID")
  out=$("$BIN/AirlockBench" "$@" 2>>"$work/bench.log")
  r1=$(ticks "$REDIS_PID")
  echo "${prefix}_redis_cpu_s=$(awk -v r=$((r1 - r0)) -v hz="$HZ" 'BEGIN { printf "%.2f", r / hz }')" >>"$RESULTS"
  echo "$out" | grep -v '^result:' >&2 || true
  echo "$out" | sed -n 's/^result: //p' | tr ' ' '\n' | sed "s/^/${prefix}_/" >>"$RESULTS"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }   # user+system CPU, clock ticks
HZ=$(getconf CLK_TCK)
rss_mb() { awk -v f="$2" '$1 == f":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

if [ "$MODE" = quick ]; then
  N_CEIL=200000; N_E1=5000; N_E100=200000; N_TYPED=100000; N_DRAIN=100000; N_RSS=100000
  N_LAT=500; N_LATE=500; LATE_SPREAD=2000; DRAIN_CONFIGS="64:256"; DRAIN_TRIALS=1; N_CORE=200000; N_PEER=0
else
  N_CEIL=1000000; N_E1=20000; N_E100=1000000; N_TYPED=500000; N_DRAIN=100000; N_RSS=10000000
  N_LAT=2000; N_LATE=1000; LATE_SPREAD=3000; DRAIN_CONFIGS="16:64 32:128 64:256 128:512"; DRAIN_TRIALS=2; N_CORE=1000000; N_PEER=20000
fi

# Sections 0 and 2–5 measure Airlock and are left out by --only-peers and --only-scaling (the blocks
# are not indented).
if [ "$MAIN" = 1 ]; then
# --- 0. The core alone (recording executor, no Redis) -----------------------------------------
say "core micro-benchmark ($N_CORE intents)"
"$BIN/AirlockCoreBench" "$N_CORE" | tee "$work/core.out" >&2
sed -n 's/^bench-core: //p' "$work/core.out" | tr ' ' '\n' | sed 's/^/core_/' >>"$RESULTS"

fi  # MAIN = 1

# --- 1. Redis's ceiling on this server ---------------------------------------------------------
say "redis-benchmark -P 16 -t lpush,rpop -n $N_CEIL (db 9)"
redis-benchmark -h 127.0.0.1 -p "$port" --dbnum 9 -P 16 -t lpush,rpop -q -n "$N_CEIL" 2>&1 | tr '\r' '\n' \
  | grep 'requests per second' | tee "$work/ceiling.out" >&2
redis-benchmark -h 127.0.0.1 -p "$port" --dbnum 9 -P 1 -t lpush -q -n $((N_CEIL / 10)) 2>&1 | tr '\r' '\n' \
  | grep 'requests per second' | sed 's/^LPUSH/LPUSH_P1/' | tee -a "$work/ceiling.out" >&2
awk -F'[: ]+' '/requests per second/ { printf "redis_%s_per_s=%.0f\n", tolower($1), $2 }' "$work/ceiling.out" >>"$RESULTS"
# The floor under every latency goal: one client, one command at a time, Redis's own client and
# ours (AirlockBench roundtrip: sequential PINGs through RedisClient). A one-intent flush is one
# LPUSH, so its p50 is judged against the first; enqueue→start against about two of them.
say "one-client round trip: redis-benchmark -c 1 -P 1 -t ping,lpush; AirlockBench roundtrip"
redis-benchmark -h 127.0.0.1 -p "$port" --dbnum 9 -c 1 -P 1 -t ping,lpush -n $((N_CEIL / 20)) --csv 2>&1 | tr '\r' '\n' \
  | tr -d '"' | awk -F, '$1 == "PING_MBULK" || $1 == "LPUSH" {
      name = tolower($1 == "PING_MBULK" ? "ping" : $1)
      printf "redis_%s_c1_per_s=%.0f\nredis_%s_c1_p50_us=%.0f\nredis_%s_c1_p99_us=%.0f\n", name, $2, name, $5 * 1000, name, $7 * 1000 }' \
  | tee -a "$RESULTS" >&2
if [ "$MAIN" = 1 ]; then bench client_rt roundtrip --redis "$URL" --count $((N_CEIL / 20)); fi
redis-cli -p "$port" -n 9 flushdb >/dev/null

# --- Drain helpers (sections 3 and S) -------------------------------------------------------------
# Jobs are enqueued first; `watch` times from the first job taken to the ready list empty and the
# queue's `processed` counter up by the job count. Workers start once `watch` has its baseline.
# One trial writes key=value lines (jobs, seconds, per_s, worker/redis CPU per job) to $work/trial.txt.
# A sixth argument pads every job's kwargs with that many bytes (AirlockBench fill --payload-bytes).
drain_trial() {  # drain_trial <queue> <count> <concurrency> <prefetch> <workers> [<payload bytes>]
  local queue=$1 count=$2 conc=$3 pre=$4 workers=$5 payload=${6:-0} wpids=() i
  # shellcheck disable=SC2086 # FILL_FLAGS: extra fill flags, word-split on purpose (--batched)
  "$BIN/AirlockBench" fill --queue "$queue" --count "$count" --payload-bytes "$payload" ${FILL_FLAGS:-} 2>>"$work/bench.log" >"$work/fill.out"
  rm -f "$work/ready"
  # Batched, each batch of 1000 adds its onComplete job to the drain.
  local expect=$count
  [ "${FILL_FLAGS:-}" = --batched ] && expect=$((count + (count + 999) / 1000))
  "$BIN/AirlockBench" watch --queue "$queue" --count "$expect" --ready-file "$work/ready" --timeout 600 \
    >"$work/watch.out" 2>>"$work/bench.log" &
  local watcher=$!; PIDS+=("$watcher")
  for _ in $(seq 1 500); do [ -f "$work/ready" ] && break; sleep 0.01; done
  local r0; r0=$(ticks "$REDIS_PID")
  for i in $(seq 1 "$workers"); do
    "$BIN/airlock-workerd" run --queues "$queue" --concurrency "$conc" --prefetch "$pre" --log-level warning \
      >>"$work/worker.log" 2>&1 &
    wpids+=($!); PIDS+=($!)
  done
  local status=0
  await_watch "$watcher" "${wpids[@]}" || status=$?
  forget "$watcher"
  # CPU per job: the workers' whole lives (start-up is a few ms) and Redis's since the workers started.
  local w=0 r1; r1=$(ticks "$REDIS_PID")
  for i in "${wpids[@]}"; do w=$((w + $(ticks "$i"))); done
  for i in "${wpids[@]}"; do stop_pid "$i"; done
  [ "$status" = 0 ] || { cat "$work/watch.out" >&2; exit 1; }
  sed -n 's/^result: //p' "$work/watch.out" | tr ' ' '\n' >"$work/trial.txt"
  sed -n 's/^result: .*\(envelope_bytes=[0-9-]*\).*/\1/p' "$work/fill.out" >>"$work/trial.txt"
  awk -v w="$w" -v r=$((r1 - r0)) -v n="$expect" -v hz="$HZ" \
    'BEGIN { printf "worker_cpu_us_per_job=%.1f\nredis_cpu_us_per_job=%.1f\n", w / hz * 1e6 / n, r / hz * 1e6 / n }' >>"$work/trial.txt"
  redis-cli -p "$port" --scan --pattern "$NS:{$queue}:*" | xargs -r redis-cli -p "$port" del >/dev/null
}
# drain <label> <count> <concurrency> <prefetch> <workers>: $DRAIN_TRIALS trials, the fastest kept as
# <label>_*, every trial's rate as <label>_trials (the machine is shared: the best trial is the one
# least disturbed by everything else running on it).
drain() {  # drain <label> <count> <concurrency> <prefetch> <workers> [<payload bytes>]
  local label=$1 count=$2 conc=$3 pre=$4 workers=$5 payload=${6:-0} t rate best=0 all=()
  for t in $(seq 1 "$DRAIN_TRIALS"); do
    drain_trial "${label//_/-}-$t" "$count" "$conc" "$pre" "$workers" "$payload"
    rate=$(sed -n 's/^per_s=//p' "$work/trial.txt")
    all+=("$rate")
    if [ "$rate" -gt "$best" ]; then best=$rate; cp "$work/trial.txt" "$work/best-trial.txt"; fi
  done
  sed "s/^/${label}_/" "$work/best-trial.txt" >>"$RESULTS"
  echo "${label}_trials=$(IFS=/; echo "${all[*]}")" >>"$RESULTS"
  say "drain [$label]: $count jobs, $workers worker(s) × concurrency $conc prefetch $pre: ${all[*]} jobs/s (best $best)"
}
if [ "$MAIN" = 1 ]; then  # sections 2–5 (not indented)
# --- 2. Enqueue throughput -------------------------------------------------------------------
say "enqueue (Airlock.scope + RedisExecutor, one producer process)"
bench enq1 enqueue --count "$N_E1" --scope 1
bench enq100 enqueue --count "$N_E100" --scope 100
bench enq100typed enqueue --count "$N_TYPED" --scope 100 --typed
bench enq100x4 enqueue --count "$N_E100" --scope 100 --producers 4
bench enq1x4 enqueue --count "$N_E1" --scope 1 --producers 4

# --- 3. Drain throughput (stock airlock-workerd) ------------------------------------------------
say "drain $N_DRAIN airlock.ping jobs, one worker process, concurrency:prefetch in $DRAIN_CONFIGS, best of $DRAIN_TRIALS"
best=; best_rate=0
for cfg in $DRAIN_CONFIGS; do
  c=${cfg%%:*}; p=${cfg##*:}
  drain "drain_c${c}_p${p}" "$N_DRAIN" "$c" "$p" 1
  rate=$(sed -n "s/^drain_c${c}_p${p}_per_s=//p" "$RESULTS")
  if [ "$rate" -gt "$best_rate" ]; then best_rate=$rate; best=$cfg; fi
done
echo "drain_best_config=$best" >>"$RESULTS"
BC=${best%%:*}; BP=${best##*:}
drain drain2 "$N_DRAIN" "$BC" "$BP" 2
# The same drain with every job in a batch (scopes of 1000 → batches of 1000, each with an onComplete
# callback): the settle script's batch counting, against drain_c…_p… above.
FILL_FLAGS=--batched drain drain_batched "$N_DRAIN" "$BC" "$BP" 1

# --- 4. Enqueue→start latency and delayed-job lateness (AirlockBench's worker: bench.stamp) -----
say "latency: $N_LAT jobs one at a time, ~1 ms apart; lateness: $N_LATE delayed jobs over $LATE_SPREAD ms"
"$BIN/AirlockBench" worker --queues bench-latency,bench-lateness --concurrency 16 --log-level warning \
  >>"$work/worker.log" 2>&1 &
lw=$!; PIDS+=("$lw")
sleep 0.5
bench lat latency --count "$N_LAT" --interval-us 1000 --queue bench-latency
bench late lateness --count "$N_LATE" --spread-ms "$LATE_SPREAD" --lead-ms 1000 --queue bench-lateness
stop_pid "$lw"

# --- 5. Worker memory: idle, then after draining N_RSS jobs -------------------------------------
# drain_watched <queue> <count> <worker pid>: fills <queue> while it is paused (a paused queue is not
# fetched; the second's sleep lets an idle BLMOVE wait end), then unpauses it and waits until the
# worker has run all <count> jobs, the watch sampling its RSS; its output is left in $work/watch.out.
drain_watched() {
  local queue=$1 count=$2 pid=$3 watcher
  redis-cli -p "$port" set "$NS:{$queue}:paused" 1 >/dev/null
  sleep 1
  "$BIN/AirlockBench" fill --queue "$queue" --count "$count" 2>>"$work/bench.log" >&2
  rm -f "$work/ready"
  "$BIN/AirlockBench" watch --queue "$queue" --count "$count" --ready-file "$work/ready" --timeout 900 --rss-pid "$pid" \
    >"$work/watch.out" 2>>"$work/bench.log" &
  watcher=$!; PIDS+=("$watcher")
  for _ in $(seq 1 500); do [ -f "$work/ready" ] && break; sleep 0.01; done
  redis-cli -p "$port" del "$NS:{$queue}:paused" >/dev/null
  await_watch "$watcher" "$pid" || { cat "$work/watch.out" >&2; exit 1; }
  forget "$watcher"
}
say "RSS of one airlock-workerd (concurrency $BC, prefetch $BP): idle, then after $N_RSS jobs"
"$BIN/airlock-workerd" run --queues rss --concurrency "$BC" --prefetch "$BP" --log-level warning >>"$work/worker.log" 2>&1 &
rw=$!; PIDS+=("$rw")
sleep 2
echo "rss_idle_mb=$(rss_mb "$rw" VmRSS)" >>"$RESULTS"
echo "rss_idle_anon_mb=$(rss_mb "$rw" RssAnon)" >>"$RESULTS"
drain_watched rss "$N_RSS" "$rw"
{ grep -v '^result:' "$work/watch.out" || true; } | sed "s/^drain:/drain [rss]:/" >&2
sed -n 's/^result: //p' "$work/watch.out" | tr ' ' '\n' | sed "s/^/rssdrain_/" >>"$RESULTS"
sed -n 's/^rssdrain_rss_mid_mb=/rss_mid_mb=/p' "$RESULTS" >>"$RESULTS"
sleep 1
echo "rss_after_mb=$(rss_mb "$rw" VmRSS)" >>"$RESULTS"
echo "rss_after_anon_mb=$(rss_mb "$rw" RssAnon)" >>"$RESULTS"
echo "rss_peak_mb=$(rss_mb "$rw" VmHWM)" >>"$RESULTS"
echo "rss_capacity=$((BC + BP))" >>"$RESULTS"
echo "rss_jobs=$N_RSS" >>"$RESULTS"
stop_pid "$rw"
redis-cli -p "$port" --scan --pattern "$NS:{rss}:*" | xargs -r redis-cli -p "$port" del >/dev/null

# The same worker with a 10-minute task timeout: every job races a timer, so a timer that outlived its
# job (a cancelled Task.sleep stays allocated until its deadline) would show here, ~0.7 KB per job.
N_RSS_T=$(( N_RSS < 1000000 ? N_RSS : 1000000 ))
say "RSS of one airlock-workerd with --task-timeout 600, after $N_RSS_T jobs"
"$BIN/airlock-workerd" run --queues rsst --concurrency "$BC" --prefetch "$BP" --task-timeout 600 --log-level warning >>"$work/worker.log" 2>&1 &
rw=$!; PIDS+=("$rw")
sleep 1
drain_watched rsst "$N_RSS_T" "$rw"
sleep 1
echo "rss_timeout_after_mb=$(rss_mb "$rw" VmRSS)" >>"$RESULTS"
echo "rss_timeout_jobs=$N_RSS_T" >>"$RESULTS"
stop_pid "$rw"
redis-cli -p "$port" --scan --pattern "$NS:{rsst}:*" | xargs -r redis-cli -p "$port" del >/dev/null

fi  # MAIN = 1, sections 2–5

# --- S. Scaling tables: how cost grows (issue #20; "How cost grows" in docs/BENCHMARKS.md) --------------
# Every figure lands in $RESULTS as sc_* lines; sc_cmd_* lines hold the command of each table (with this
# run's counts) for report.py to print under it. Each subsection's wall time is sc_seconds_<name>.
# BENCH_SCALE multiplies the job counts (never below a small floor).
if [ "$SCALING" = 1 ]; then
SCALE=${BENCH_SCALE:-$([ "$MODE" = quick ] && echo 0.1 || echo 1)}
awk -v s="$SCALE" 'BEGIN { exit !(s > 0 && s <= 10) }' || { echo "bench: BENCH_SCALE must be a number in (0, 10]" >&2; exit 2; }
scaled() { awk -v n="$1" -v s="$SCALE" -v m="${2:-1}" 'BEGIN { v = int(n * s + 0.5); if (v < m) v = m; print v }'; }
# On-CPU time of every thread of a process, ns (/proc/<pid>/task/*/schedstat; clock ticks when that is
# missing). For windows in which the process starts no threads (idle workers, redis-server).
cpu_ns() {
  if [ -r "/proc/$1/schedstat" ]; then
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
  else
    awk -v t="$(ticks "$1")" -v hz="$HZ" 'BEGIN { printf "%.0f\n", t * 1e9 / hz }'
  fi
}
clock_ns() { date +%s%N; }
sc_t0=$(clock_ns)
section_start=$sc_t0
section_done() {  # section_done <name>: records the wall time since the previous call
  local now; now=$(clock_ns)
  echo "sc_seconds_$1=$(awk -v d=$((now - section_start)) 'BEGIN { printf "%.1f", d / 1e9 }')" >>"$RESULTS"
  section_start=$now
}
SC_N_DRAIN=$(scaled 100000 1000)
SC_CONCS="1 4 16 64 256"
SC_PROCS="1 2 4"
SC_SCOPES="1 10 100 1000"
SC_PRODUCERS="1 4 16"
SC_PAYLOADS="100 1024 16384 65536 262144"
SC_BYTE_BUDGET=$(scaled 536870912 4194304)      # envelope runs: at most ~512 MiB of envelopes per run
SC_N_LAT=$(scaled 2000 200)
SC_N_PROMO=$(scaled 1000000 1000)
SC_N_LATE=$(scaled 1000 100)
SC_IDLE_S=$(awk -v s="$SCALE" 'BEGIN { v = int(10 * s + 0.5); if (v < 3) v = 3; print v }')
SC_N_READY=$(scaled 1000000 1000)
SC_N_DEAD=$(scaled 100000 100)
echo "sc_scale=$SCALE" >>"$RESULTS"
say "scaling section (BENCH_SCALE=$SCALE): drains of $SC_N_DRAIN jobs, best of $DRAIN_TRIALS"

# S1. Drain vs concurrency (one process), prefetch 4 × concurrency capped at 1024.
sc_best=; sc_best_rate=0
for c in $SC_CONCS; do
  p=$((4 * c)); [ "$p" -le 1024 ] || p=1024
  drain "sc_conc_c${c}_p${p}" "$SC_N_DRAIN" "$c" "$p" 1
  rate=$(sed -n "s/^sc_conc_c${c}_p${p}_per_s=//p" "$RESULTS")
  if [ "$rate" -gt "$sc_best_rate" ]; then sc_best_rate=$rate; sc_best=$c:$p; fi
done
SBC=${sc_best%%:*}; SBP=${sc_best##*:}
echo "sc_best_config=$sc_best" >>"$RESULTS"
echo "sc_capacity_per_s=$sc_best_rate" >>"$RESULTS"
echo "sc_cmd_conc=AirlockBench fill --queue Q --count $SC_N_DRAIN; airlock-workerd run --queues Q --concurrency C --prefetch min(4C,1024) --log-level warning, timed by AirlockBench watch --queue Q --count $SC_N_DRAIN (best of $DRAIN_TRIALS; CPU from /proc/<pid>/stat)" >>"$RESULTS"
section_done conc

# S2. Drain vs worker processes at the best concurrency.
for w in $SC_PROCS; do drain "sc_proc_w$w" "$SC_N_DRAIN" "$SBC" "$SBP" "$w"; done
echo "sc_cmd_proc=AirlockBench fill --queue Q --count $SC_N_DRAIN; W × airlock-workerd run --queues Q --concurrency $SBC --prefetch $SBP, timed by AirlockBench watch (best of $DRAIN_TRIALS)" >>"$RESULTS"
section_done proc

# S3. Enqueue vs scope size × producer tasks (one process; each task its own RedisExecutor).
say "scaling: enqueue, scopes of ${SC_SCOPES// /, } × ${SC_PRODUCERS// /, } producer tasks"
for s in $SC_SCOPES; do
  n=$((20000 * s)); [ "$n" -le 1000000 ] || n=1000000
  n=$(scaled "$n" $((s * 16)))
  for pr in $SC_PRODUCERS; do
    bench "sc_enq_s${s}_p${pr}" enqueue --count "$n" --scope "$s" --producers "$pr" --queue sc-enqueue
  done
done
echo "sc_cmd_enq=AirlockBench enqueue --count N --scope S --producers P --queue sc-enqueue (N = min(20,000 × S, 1,000,000) × BENCH_SCALE $SCALE)" >>"$RESULTS"
section_done enq

# S4. Envelope size: enqueue (scopes of 100, one producer) and drain (one worker, best concurrency).
say "scaling: envelope sizes (payload ${SC_PAYLOADS// /, } bytes)"
for b in $SC_PAYLOADS; do
  n=$((SC_BYTE_BUDGET / (b + 200))); [ "$n" -le $(scaled 200000 1000) ] || n=$(scaled 200000 1000); [ "$n" -ge 200 ] || n=200
  bench "sc_env_b${b}_enq" enqueue --count "$n" --scope 100 --payload-bytes "$b" --warmup 100 --queue sc-envelope
  n=$((SC_BYTE_BUDGET / (b + 200))); [ "$n" -le "$SC_N_DRAIN" ] || n=$SC_N_DRAIN; [ "$n" -ge 200 ] || n=200
  drain "sc_env_b${b}_drain" "$n" "$SBC" "$SBP" 1 "$b"
done
echo "sc_cmd_env=AirlockBench enqueue --count N --scope 100 --payload-bytes B --queue sc-envelope; AirlockBench fill --count N --payload-bytes B + airlock-workerd run --concurrency $SBC --prefetch $SBP (N = min(200,000 resp. $SC_N_DRAIN, $SC_BYTE_BUDGET B ÷ (B + 200)))" >>"$RESULTS"
section_done env

# S5. Enqueue→start latency at light load, then with a background producer at 25 % and at 50 % of the
# capacity measured in S1 (same worker, same queue: the stamps queue behind real jobs).
quarter=$((sc_best_rate / 4)); half=$((sc_best_rate / 2))
await_ready_empty() {  # await_ready_empty <queue>: up to 60 s
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$port" llen "$NS:{$1}:ready")" = 0 ] && return 0; sleep 0.1; done
}
say "scaling: latency ($SC_N_LAT jobs ~1 ms apart) idle, then beside $quarter and $half airlock.ping/s (25 % and 50 % of $sc_best_rate)"
"$BIN/AirlockBench" worker --queues sc-latency --concurrency "$SBC" --prefetch "$SBP" --log-level warning \
  >>"$work/worker.log" 2>&1 &
slw=$!; PIDS+=("$slw")
sleep 0.5
bench sc_lat_light latency --count "$SC_N_LAT" --interval-us 1000 --queue sc-latency
for load in quarter:$quarter half:$half; do
  w0=$(cpu_ns "$slw")
  bench "sc_lat_${load%%:*}" latency --count "$SC_N_LAT" --interval-us 1000 --queue sc-latency --background-rate "${load##*:}"
  w1=$(cpu_ns "$slw")
  echo "sc_lat_${load%%:*}_worker_cpu_s=$(awk -v d=$((w1 - w0)) 'BEGIN { printf "%.3f", d / 1e9 }')" >>"$RESULTS"
  await_ready_empty sc-latency   # a backlog left by this load must not delay the next one's stamps
done
stop_pid "$slw"
redis-cli -p "$port" --scan --pattern "$NS:{sc-latency}:*" | xargs -r redis-cli -p "$port" del >/dev/null
echo "sc_cmd_lat=AirlockBench worker --queues sc-latency --concurrency $SBC --prefetch $SBP; AirlockBench latency --count $SC_N_LAT --interval-us 1000 --queue sc-latency [--background-rate $quarter | $half]" >>"$RESULTS"
section_done lat

# S6. Promoter cost: an idle worker's CPU over a fixed window and delayed-job lateness, with an empty
# delayed set and then with $SC_N_PROMO jobs in it due in 30 days (seeded with variadic ZADDs).
say "scaling: promoter, idle ${SC_IDLE_S} s + $SC_N_LATE delayed jobs, with 0 and then $SC_N_PROMO far-future jobs in the set"
"$BIN/AirlockBench" worker --queues sc-promoter --concurrency 16 --log-level warning >>"$work/worker.log" 2>&1 &
spw=$!; PIDS+=("$spw")
sleep 2
promoter_phase() {  # promoter_phase <label>
  local label=$1 w0 w1 r0 r1
  sleep 1
  w0=$(cpu_ns "$spw"); r0=$(cpu_ns "$REDIS_PID")
  sleep "$SC_IDLE_S"
  w1=$(cpu_ns "$spw"); r1=$(cpu_ns "$REDIS_PID")
  {
    echo "sc_promo_${label}_idle_s=$SC_IDLE_S"
    echo "sc_promo_${label}_worker_idle_cpu_ms=$(awk -v d=$((w1 - w0)) 'BEGIN { printf "%.2f", d / 1e6 }')"
    echo "sc_promo_${label}_redis_idle_cpu_ms=$(awk -v d=$((r1 - r0)) 'BEGIN { printf "%.2f", d / 1e6 }')"
    echo "sc_promo_${label}_zcard=$(redis-cli -p "$port" zcard "$NS:{sc-promoter}:delayed")"
  } >>"$RESULTS"
  w0=$(cpu_ns "$spw")
  bench "sc_promo_${label}_late" lateness --count "$SC_N_LATE" --spread-ms 3000 --lead-ms 1000 --queue sc-promoter
  w1=$(cpu_ns "$spw")
  echo "sc_promo_${label}_late_worker_cpu_ms=$(awk -v d=$((w1 - w0)) 'BEGIN { printf "%.1f", d / 1e6 }')" >>"$RESULTS"
}
promoter_phase empty
bench sc_promo_seed seed --kind delayed --queue sc-promoter --count "$SC_N_PROMO" --due-in-ms $((30 * 86400 * 1000))
echo "sc_promo_redis_used_mb=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { printf "%.0f", $2 / 1048576 }')" >>"$RESULTS"
promoter_phase full
echo "sc_promo_zcard_after=$(redis-cli -p "$port" zcard "$NS:{sc-promoter}:delayed")" >>"$RESULTS"
stop_pid "$spw"
redis-cli -p "$port" --scan --pattern "$NS:{sc-promoter}:*" | xargs -r redis-cli -p "$port" unlink >/dev/null
echo "sc_cmd_promo=AirlockBench worker --queues sc-promoter --concurrency 16; CPU of its threads over ${SC_IDLE_S} s idle (/proc/<pid>/task/*/schedstat); AirlockBench lateness --count $SC_N_LATE --spread-ms 3000 --lead-ms 1000 --queue sc-promoter; before and after AirlockBench seed --kind delayed --count $SC_N_PROMO --due-in-ms 2592000000" >>"$RESULTS"
section_done promo

# S7. Operator commands against a paused queue with $SC_N_READY ready jobs and $SC_N_DEAD dead letters:
# each command timed as a whole process (wall clock; its CPU and peak RSS from /usr/bin/time when
# present), with redis-server's CPU over the same interval.
say "scaling: admin commands with $SC_N_READY ready jobs (paused queue) and $SC_N_DEAD dead letters"
aq=sc-admin
redis-cli -p "$port" set "$NS:{$aq}:paused" 1 >/dev/null
bench sc_admin_seed_ready seed --kind ready --queue "$aq" --count "$SC_N_READY"
bench sc_admin_seed_dead seed --kind dead --queue "$aq" --count "$SC_N_DEAD"
admin_time() {  # admin_time <label> <command…>: stdout to $work/admin-<label>.out
  local label=$1 r0 r1 t0 t1 status=0; shift
  r0=$(cpu_ns "$REDIS_PID"); t0=$(clock_ns)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %S %M" -o "$work/time.out" "$@" >"$work/admin-$label.out" 2>>"$work/admin.log" || status=$?
  else
    "$@" >"$work/admin-$label.out" 2>>"$work/admin.log" || status=$?
    echo "na na na" >"$work/time.out"
  fi
  t1=$(clock_ns); r1=$(cpu_ns "$REDIS_PID")
  read -r u sy m < <(tail -n 1 "$work/time.out")
  {
    echo "sc_admin_${label}_wall_s=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
    echo "sc_admin_${label}_cli_cpu_s=$(awk -v u="$u" -v s="$sy" 'BEGIN { if (u == "na") print "na"; else printf "%.2f", u + s }')"
    echo "sc_admin_${label}_cli_rss_mb=$(awk -v m="$m" 'BEGIN { if (m == "na") print "na"; else printf "%.1f", m / 1024 }')"
    echo "sc_admin_${label}_redis_cpu_s=$(awk -v d=$((r1 - r0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
    echo "sc_admin_${label}_status=$status"
    echo "sc_admin_${label}_out_lines=$(wc -l <"$work/admin-$label.out")"
    echo "sc_admin_${label}_out_bytes=$(wc -c <"$work/admin-$label.out")"
  } >>"$RESULTS"
  say "admin [$label] $*: $(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }') s (status $status)"
}
admin_time stats "$BIN/airlock-workerd" stats --no-rate
grep -F "$aq" "$work/admin-stats.out" >&2 || true
admin_time list "$BIN/airlock-workerd" dead list
admin_time list_all_json "$BIN/airlock-workerd" dead list --limit 0 --json
admin_time retry_all "$BIN/airlock-workerd" dead retry --all
{
  echo "sc_admin_after_retry_ready=$(redis-cli -p "$port" llen "$NS:{$aq}:ready")"
  echo "sc_admin_after_retry_dead=$(redis-cli -p "$port" llen "$NS:{$aq}:dead")"
} >>"$RESULTS"
bench sc_admin_seed_dead2 seed --kind dead --queue "$aq" --count "$SC_N_DEAD"
admin_time purge_all "$BIN/airlock-workerd" dead purge --all
echo "sc_admin_queues=$(redis-cli -p "$port" scard "$NS:queues")" >>"$RESULTS"
redis-cli -p "$port" --scan --pattern "$NS:{$aq}:*" | xargs -r redis-cli -p "$port" unlink >/dev/null
echo "sc_cmd_admin=airlock-workerd stats --no-rate | dead list | dead list --limit 0 --json | dead retry --all | dead purge --all, each under /usr/bin/time, against queue sc-admin (paused) seeded with AirlockBench seed --kind ready --count $SC_N_READY and --kind dead --count $SC_N_DEAD (re-seeded before the purge)" >>"$RESULTS"
section_done admin
echo "sc_seconds=$(awk -v d=$(( $(clock_ns) - sc_t0 )) 'BEGIN { printf "%.1f", d / 1e9 }')" >>"$RESULTS"
fi  # SCALING = 1

# --- 6. Peers on the same Redis (own db numbers: Celery 1, Dramatiq 2, RQ 3, Sidekiq 4) ---------
# A peer that cannot be installed or run is reported as not measured; it does not fail the bench.
echo "peers=${PEER_LIST// /,}" >>"$RESULTS"
PY_PEERS=
for system in celery dramatiq rq; do wants "$system" && PY_PEERS+="$system "; done
if [ -n "$PY_PEERS" ]; then
  VENV=$ROOT/bench/.venv
  if ! "$VENV/bin/python" -c 'import celery, dramatiq, rq, redis' 2>/dev/null; then
    say "installing Celery, Dramatiq and RQ into bench/.venv (PyPI)"
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check "celery[redis]>=5,<6" "dramatiq[redis]" "rq"; } >&2 \
      || say "could not install the peers (python3 -m venv / pip failed): peers not measured"
  fi
  if "$VENV/bin/python" -c 'import celery, dramatiq, rq, redis' 2>/dev/null; then
    "$VENV/bin/python" -c 'import celery, dramatiq, rq; print("peer_versions=celery-%s,dramatiq-%s,rq-%s" % (celery.__version__, dramatiq.__version__, rq.__version__))' >>"$RESULTS"
    for system in $PY_PEERS; do
      case $system in celery) db=1 ;; dramatiq) db=2 ;; rq) db=3 ;; esac
      say "$system: $N_PEER no-op tasks (db $db)"
      if out=$("$VENV/bin/python" "$ROOT/bench/peers/peer_bench.py" --system "$system" --url "redis://127.0.0.1:$port/$db" \
        --count "$N_PEER" --pgid-file "$work/pgids" --log "$work/$system.log"); then
        echo "$out" | grep -v '^result:' >&2 || true
        echo "$out" | sed -n 's/^result: //p' | tr ' ' '\n' | sed "s/^/${system}_/" >>"$RESULTS"
      else
        say "$system failed; last lines of its worker log:"; tail -n 10 "$work/$system.log" >&2 || true
      fi
    done
  fi
fi

# Sidekiq (Debian's ruby-sidekiq 6.4 and ruby-gitlab-sidekiq-fetcher): bench/peers/sidekiq_bench.rb pushes
# $N_PEER jobs with push_bulk, then runs one `sidekiq` process; each concurrency with the default
# BasicFetch (BRPOP, at-most-once) and with gitlab's ReliableFetch (at-least-once, like ours).
SIDEKIQ_CONCURRENCY="10 25"
sidekiq_ok() {
  command -v sidekiq >/dev/null 2>&1 && ruby -e 'require "sidekiq"; require "sidekiq-reliable-fetch"' >/dev/null 2>&1
}
install_sidekiq() {
  local sudo=() pkgs=(ruby-sidekiq ruby-gitlab-sidekiq-fetcher)
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo" >&2; return 1; }
    sudo=(sudo -n)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" \
    || { "${sudo[@]}" apt-get update -q && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"; }
}
if wants sidekiq; then
  if ! sidekiq_ok; then
    say "installing Sidekiq (apt-get install -y ruby-sidekiq ruby-gitlab-sidekiq-fetcher; log in $work/sidekiq-install.log)"
    install_sidekiq >"$work/sidekiq-install.log" 2>&1 || true
    sidekiq_ok || { say "could not install Sidekiq: not measured; last lines of apt-get:"; tail -n 5 "$work/sidekiq-install.log" >&2; }
  fi
  if sidekiq_ok; then
    ruby -e 'require "sidekiq"; f = Gem::Specification.find_by_name("gitlab-sidekiq-fetcher").version rescue "?"
             puts "sidekiq_versions=sidekiq-#{Sidekiq::VERSION},gitlab-sidekiq-fetcher-#{f},ruby-#{RUBY_VERSION}"' >>"$RESULTS"
    for fetch in basic reliable; do
      for c in $SIDEKIQ_CONCURRENCY; do
        say "sidekiq: $N_PEER no-op jobs, $fetch fetch, -c $c (db 4)"
        if out=$(ruby "$ROOT/bench/peers/sidekiq_bench.rb" --url "redis://127.0.0.1:$port/4" --count "$N_PEER" \
          --concurrency "$c" --fetch "$fetch" --pgid-file "$work/pgids" --log "$work/sidekiq.log"); then
          echo "$out" | grep -v '^result:' >&2 || true
          echo "$out" | sed -n 's/^result: //p' | tr ' ' '\n' | sed "s/^/sidekiq_${fetch}_c${c}_/" >>"$RESULTS"
        else
          say "sidekiq ($fetch fetch, -c $c) failed; last lines of its log:"; tail -n 10 "$work/sidekiq.log" >&2 || true
        fi
      done
    done
    # The best concurrency of each fetch (sidekiq_per_s: BasicFetch, sidekiq_reliable_per_s: ReliableFetch),
    # and the best push_bulk rate of the four runs.
    awk -F= '
      match($1, /^sidekiq_(basic|reliable)_c[0-9]+_per_s$/) {
        split($1, k, "_"); f = k[2]; c = substr(k[3], 2)
        if (!(f in best) || $2 + 0 > best[f] + 0) { best[f] = $2; conc[f] = c }
      }
      $1 ~ /^sidekiq_(basic|reliable)_c[0-9]+_enqueue_per_s$/ {
        if ($2 + 0 > enq + 0) enq = $2; trials = trials (trials == "" ? "" : "/") $2
      }
      END {
        if ("basic" in best) printf "sidekiq_per_s=%s\nsidekiq_best_concurrency=%s\n", best["basic"], conc["basic"]
        if ("reliable" in best) printf "sidekiq_reliable_per_s=%s\nsidekiq_reliable_best_concurrency=%s\n", best["reliable"], conc["reliable"]
        if (enq != "") printf "sidekiq_enqueue_per_s=%s\nsidekiq_enqueue_trials=%s\n", enq, trials
      }' "$RESULTS" >>"$RESULTS.sidekiq"
    cat "$RESULTS.sidekiq" >>"$RESULTS"; rm -f "$RESULTS.sidekiq"
  fi
fi

# --- 7. What metrics and tracing cost the drain (issue #18's goal: at most 5 % slower) ------------
# bench/observability.sh with the binaries built above: its own redis-server, the same jobs drained
# with metrics off, with --metrics-listen, and with metrics plus the in-memory tracer, modes
# interleaved in each trial. Full runs only; its ratios end the summary line.
if [ "$MAIN" = 1 ] && [ "$MODE" = full ]; then
  say "observability: 50,000 airlock.ping jobs per drain, 5 trials of plain, metrics, traced"
  if out=$(SWIFT=$SWIFT "$ROOT/bench/observability.sh" --no-build --count 50000 --trials 5); then
    echo "$out" >&2
    echo "$out" | sed -n 's/^observability: \(plain_per_s=.*\)$/\1/p' | tr ' ' '\n' | sed 's/^/obs_/' >>"$RESULTS"
  else
    say "observability.sh failed: not measured"
  fi
else
  echo "obs_skipped=1" >>"$RESULTS"
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')" >>"$RESULTS"
mkdir -p "$ROOT/bench/results"
case $MODE in
  peers) OUT=$ROOT/bench/results/latest-peers.json ;;
  scaling) OUT=$ROOT/bench/results/latest-scaling.json ;;
  *) OUT=$ROOT/bench/results/latest.json ;;
esac
python3 "$ROOT/bench/report.py" "$RESULTS" "$OUT"
