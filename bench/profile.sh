#!/usr/bin/env bash
# Where the time goes: perf profiles of the drain worker (stock airlock-workerd) and of the enqueue
# producer (AirlockBench enqueue, scopes of 100), each against a private redis-server, plus the CPU
# each process spent per job and Redis's own per-command accounting (INFO commandstats).
#
#   bench/profile.sh [--jobs N] [--intents N] [--out DIR] [--concurrency N] [--prefetch N] [--dwarf] [--no-build]
#
# --dwarf unwinds with DWARF (--call-graph dwarf, 499 Hz): slower and bigger files, but inclusive
# percentages are right through libc and the Swift runtime, where frame-pointer chains break.
# Needs perf (linux-perf). Writes DIR (default bench/results/profile) with perf.data files, text
# reports and summary.txt; prints the summary. Every process it starts is stopped on exit.
# Environment: SWIFT, BENCH_SCRATCH as for bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=300000; INTENTS=500000; OUT=$ROOT/bench/results/profile; BUILD=1
CONC=64; PRE=256; CALLGRAPH=(-F 999 -g)
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) JOBS=$2; shift 2 ;;
    --intents) INTENTS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --prefetch) PRE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --dwarf) CALLGRAPH=(-F 499 --call-graph dwarf,16384); shift ;;
    *) echo "profile: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
SWIFT=${SWIFT:-swift}
build_args=(-c release)
if [ -n "${BENCH_SCRATCH:-}" ]; then build_args+=(--scratch-path "$BENCH_SCRATCH"); fi
if [ "$BUILD" = 1 ]; then $SWIFT build "${build_args[@]}" >&2; fi
BIN=$($SWIFT build "${build_args[@]}" --show-bin-path)
mkdir -p "$OUT"
work=$(mktemp -d -t airlock-profile.XXXXXX)
PIDS=(); REDIS_PID=
cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  if [ -z "$REDIS_PID" ] && [ -s "$work/redis.pid" ]; then REDIS_PID=$(cat "$work/redis.pid"); fi
  [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null
  wait 2>/dev/null
  [ "$status" = 0 ] || { echo "profile: failed; logs:" >&2; tail -n 20 "$work"/*.log >&2; }
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
for _ in $(seq 1 200); do [ -s "$work/redis.pid" ] && redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
REDIS_PID=$(cat "$work/redis.pid")
export AIRLOCK_REDIS_URL="redis://127.0.0.1:$port/0"
rc() { redis-cli -p "$port" "$@"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # user+system CPU, clock ticks
HZ=$(getconf CLK_TCK)
# INFO commandstats lines prefixed with their total µs, for sorting.
commandstats() { rc info commandstats | tr -d '\r' | grep '^cmdstat_' | awk -F'[=,]' '{ print $4, $0 }'; }
SUMMARY=$OUT/summary.txt
{
  echo "Airlock profile, $(date -u +%FT%TZ); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
} >"$SUMMARY"

# Self (exclusive) and inclusive top symbols, demangled.
report() {  # report <perf.data> <name>
  local data=$1 name=$2
  perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep . | head -12 >"$OUT/$name.dso.txt"
  perf report -i "$data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.5 2>/dev/null \
    | grep -v '^#' | grep . | swift demangle --simplified | cut -c1-200 >"$OUT/$name.self.txt"
  perf report -i "$data" --stdio --children --sort symbol -g none --percent-limit 1 2>/dev/null \
    | grep -v '^#' | grep . | swift demangle --simplified | grep -v '(inlined)' | cut -c1-200 >"$OUT/$name.inclusive.txt"
}

# --- Drain: worker starts on a paused, empty queue; perf attaches; the queue fills; then unpause ----
echo "profile: drain of $JOBS airlock.ping (airlock-workerd, concurrency $CONC, prefetch $PRE)" >&2
rc set "airlock:{prof}:paused" 1 >/dev/null
"$BIN/airlock-workerd" run --queues prof --concurrency "$CONC" --prefetch "$PRE" --log-level warning >"$work/worker.log" 2>&1 &
worker=$!; PIDS+=("$worker")
"$BIN/AirlockBench" fill --queue prof --count "$JOBS" 2>>"$work/bench.log" >&2
sleep 1
rc config resetstat >/dev/null
perf record "${CALLGRAPH[@]}" -p "$worker" -o "$OUT/drain-worker.perf.data" 2>>"$work/perf.log" &
pw=$!; PIDS+=("$pw")
perf record -F 999 -g -p "$REDIS_PID" -o "$OUT/drain-redis.perf.data" 2>>"$work/perf.log" &
pr=$!; PIDS+=("$pr")
sleep 0.5
rm -f "$work/ready"
"$BIN/AirlockBench" watch --queue prof --count "$JOBS" --ready-file "$work/ready" >"$work/watch.out" 2>>"$work/bench.log" &
watcher=$!; PIDS+=("$watcher")
for _ in $(seq 1 500); do [ -f "$work/ready" ] && break; sleep 0.01; done
w0=$(ticks "$worker"); r0=$(ticks "$REDIS_PID")
rc del "airlock:{prof}:paused" >/dev/null
wait "$watcher"
w1=$(ticks "$worker"); r1=$(ticks "$REDIS_PID")
kill -INT "$pw" "$pr"; wait "$pw" "$pr" 2>/dev/null || true
commandstats | sort -nr | cut -d' ' -f2- >"$OUT/drain-redis.commandstats.txt"
kill -TERM "$worker"; wait "$worker" || true
grep '^drain' "$work/watch.out" >>"$SUMMARY"
awk -v w=$((w1 - w0)) -v r=$((r1 - r0)) -v n="$JOBS" -v hz="$HZ" 'BEGIN {
  printf "drain CPU per job: worker %.1f µs, redis %.1f µs (worker %.2f s, redis %.2f s)\n", w / hz * 1e6 / n, r / hz * 1e6 / n, w / hz, r / hz }' >>"$SUMMARY"
report "$OUT/drain-worker.perf.data" drain-worker
report "$OUT/drain-redis.perf.data" drain-redis

# --- Enqueue: one producer, scopes of 100 ----------------------------------------------------------
echo "profile: enqueue of $INTENTS intents in scopes of 100 (AirlockBench enqueue)" >&2
rc config resetstat >/dev/null
r0=$(ticks "$REDIS_PID")
perf record "${CALLGRAPH[@]}" -o "$OUT/enqueue.perf.data" -- "$BIN/AirlockBench" enqueue --count "$INTENTS" --scope 100 --warmup 0 \
  >"$work/enqueue.out" 2>>"$work/perf.log"
r1=$(ticks "$REDIS_PID")
commandstats | sort -nr | cut -d' ' -f2- >"$OUT/enqueue-redis.commandstats.txt"
grep '^enqueue' "$work/enqueue.out" >>"$SUMMARY"
sed -n 's/^result: //p' "$work/enqueue.out" | tr ' ' '\n' | sed -n 's/^cpu_us_per_intent=/enqueue CPU per intent: producer /p' | sed 's/$/ µs/' >>"$SUMMARY"
awk -v r=$((r1 - r0)) -v n="$INTENTS" -v hz="$HZ" 'BEGIN { printf "enqueue CPU per intent: redis %.2f µs\n", r / hz * 1e6 / n }' >>"$SUMMARY"
report "$OUT/enqueue.perf.data" enqueue

# --- Enqueue, scopes of 1: the per-flush overhead (one scope per web request is the common case) ---
echo "profile: enqueue of 20000 intents in scopes of 1" >&2
perf record "${CALLGRAPH[@]}" -o "$OUT/enqueue1.perf.data" -- "$BIN/AirlockBench" enqueue --count 20000 --scope 1 --warmup 0 \
  >"$work/enqueue1.out" 2>>"$work/perf.log"
grep '^enqueue' "$work/enqueue1.out" >>"$SUMMARY"
report "$OUT/enqueue1.perf.data" enqueue1

for name in drain-worker enqueue enqueue1; do
  { echo; echo "== $name: CPU by DSO"; cat "$OUT/$name.dso.txt"; echo; echo "== $name: inclusive (top frames)"; head -60 "$OUT/$name.inclusive.txt"; } >>"$SUMMARY"
done
{ echo; echo "== drain: Redis time per command (INFO commandstats)"; head -12 "$OUT/drain-redis.commandstats.txt"
  echo; echo "== enqueue: Redis time per command"; head -8 "$OUT/enqueue-redis.commandstats.txt"; } >>"$SUMMARY"
cat "$SUMMARY"
echo "profile: reports in $OUT (perf report -i $OUT/drain-worker.perf.data for the call graphs)" >&2
