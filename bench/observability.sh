#!/usr/bin/env bash
# What metrics and tracing cost the hot path: the same drain with them off and on, in one run.
#
#   bench/observability.sh [--count N] [--trials T] [--concurrency C] [--prefetch P] [--modes plain,metrics,traced] [--no-build]
#
# One private redis-server; per trial, for each mode in turn (so drift on a shared machine hits
# every mode alike): pre-enqueue N airlock.ping jobs, start one `AirlockBench worker`, time the
# drain with `AirlockBench watch` (first job taken → ready list empty and `processed` reached).
# Modes:
#   plain    no metrics back end, no tracer (the default daemon)
#   metrics  --metrics-listen 127.0.0.1:0: swift-metrics bootstrapped with the Prometheus factory,
#            the queue sampler running (one sample every 0.5 s)
#   traced   metrics as above, plus an in-memory W3C tracer bootstrapped (AIRLOCK_BENCH_TRACING=1):
#            an airlock.run span per job (spans counted, not kept)
# Prints each trial's jobs/s and worker CPU µs per job and, per mode, the medians and their ratios
# to plain's medians.
set -euo pipefail
cd "$(dirname "$0")/.."
N=100000; TRIALS=5; CONC=64; PRE=256; BUILD=1; MODES="plain metrics traced"
while [ $# -gt 0 ]; do
  case "$1" in
    --count) N=$2; shift ;;
    --trials) TRIALS=$2; shift ;;
    --concurrency) CONC=$2; shift ;;
    --prefetch) PRE=$2; shift ;;
    --modes) MODES=${2//,/ }; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "observability: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SWIFT=${SWIFT:-swift}
read -ra build_args < scripts/release-flags   # as `make build-release` builds them
if [ -n "${BENCH_SCRATCH:-}" ]; then build_args+=(--scratch-path "$BENCH_SCRATCH"); fi
if [ "$BUILD" = 1 ]; then $SWIFT build "${build_args[@]}" --product AirlockBench >&2; fi
BIN=$($SWIFT build "${build_args[@]}" --show-bin-path)
[ -x "$BIN/AirlockBench" ] || { echo "observability: $BIN/AirlockBench is missing" >&2; exit 1; }

work=$(mktemp -d -t airlock-obs.XXXXXX)
WORKER=
cleanup() {
  local status=$?
  set +e
  [ -n "$WORKER" ] && kill -KILL "$WORKER" 2>/dev/null
  if [ -s "$work/redis.pid" ]; then
    local rp; rp=$(cat "$work/redis.pid"); kill -TERM "$rp" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$rp" 2>/dev/null || break; sleep 0.05; done
  fi
  if [ "$status" != 0 ]; then tail -n 20 "$work"/*.log >&2 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
export AIRLOCK_REDIS_URL="redis://127.0.0.1:$port/0"

trial() {  # trial <mode> <queue>: prints jobs/s
  local mode=$1 queue=$2 extra=() tracing=0
  case "$mode" in
    metrics) extra=(--metrics-listen 127.0.0.1:0 --metrics-sample-interval 0.5) ;;
    traced) extra=(--metrics-listen 127.0.0.1:0 --metrics-sample-interval 0.5); tracing=1 ;;
  esac
  "$BIN/AirlockBench" fill --queue "$queue" --count "$N" >/dev/null 2>>"$work/bench.log"
  rm -f "$work/ready"
  "$BIN/AirlockBench" watch --queue "$queue" --count "$N" --ready-file "$work/ready" --timeout 600 >"$work/watch.out" 2>>"$work/bench.log" &
  local watcher=$!
  for _ in $(seq 1 500); do [ -f "$work/ready" ] && break; sleep 0.01; done
  AIRLOCK_BENCH_TRACING=$tracing "$BIN/AirlockBench" worker --queues "$queue" --concurrency "$CONC" --prefetch "$PRE" \
    --log-level warning "${extra[@]}" >>"$work/worker.log" 2>&1 &
  WORKER=$!
  wait "$watcher"
  # The worker's CPU (user + system) over its whole life, per job: less disturbed by other load
  # on a shared machine than the rate.
  local ticks; ticks=$(awk '{ print $14 + $15 }' "/proc/$WORKER/stat")
  kill -TERM "$WORKER"; wait "$WORKER" || true; WORKER=
  redis-cli -p "$port" --scan --pattern "airlock:{$queue}:*" | xargs -r redis-cli -p "$port" del >/dev/null
  echo "$(sed -n 's/^result: .*\bper_s=\([0-9]*\).*/\1/p' "$work/watch.out") $(awk -v t="$ticks" -v hz="$HZ" -v n="$N" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
}
HZ=$(getconf CLK_TCK)

declare -A rates cpus
echo "observability: $N jobs per drain, concurrency $CONC prefetch $PRE, $TRIALS trials of: $MODES (load $(cut -d' ' -f1-3 /proc/loadavg))"
for t in $(seq 1 "$TRIALS"); do
  line="trial $t:"
  for mode in $MODES; do
    read -r rate cpu < <(trial "$mode" "obs-$mode-$t")
    rates[$mode]="${rates[$mode]:-} $rate"
    cpus[$mode]="${cpus[$mode]:-} $cpu"
    line="$line $mode=${rate}/s,${cpu}µs"
  done
  echo "observability: $line"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
first=${MODES%% *}
base=$(echo "${rates[$first]}" | median)
cbase=$(echo "${cpus[$first]}" | median)
summary="observability:"
for mode in $MODES; do
  m=$(echo "${rates[$mode]}" | median)
  c=$(echo "${cpus[$mode]}" | median)
  summary="$summary ${mode}_per_s=$m ${mode}_rate_vs_$first=$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.3f", a / b }')"
  summary="$summary ${mode}_cpu_us_per_job=$c ${mode}_cpu_vs_$first=$(awk -v a="$c" -v b="$cbase" 'BEGIN { printf "%.3f", a / b }')"
done
echo "$summary"
