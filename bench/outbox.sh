#!/usr/bin/env bash
# The PostgreSQL outbox's figures (reported, not asserted): the latency a one-intent transaction
# gains from the outbox (p50/p99), commit→queued with Redis healthy, and relays draining a backlog
# of rows, with this process's CPU per transaction and per row. One private PostgreSQL
# (scripts/with-postgres.sh: fsync and synchronous_commit off, as in the tests) and one private
# Redis (scripts/with-redis.sh), stopped on exit.
#
#   bench/outbox.sh [--no-build]
#
# Environment: SWIFT (default swift); OUTBOX_BENCH_TX (transactions per variant, default 3000),
# OUTBOX_BENCH_BACKLOG (rows drained, default 100000), OUTBOX_BENCH_RELAYS (default "1,3"),
# OUTBOX_BENCH_ANALYZE=off (the relays do not ANALYZE on a backlog), OUTBOX_BENCH_BATCH (batch size, default 1000).
# Prints the summary on stderr and `outbox_…=value` lines on stdout (bench/results/outbox.txt too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SWIFT=${SWIFT:-swift}
PKG=$ROOT/Integrations/AirlockPostgres
# A scratch path of its own: a release build in the package's .build would hold SwiftPM's lock on
# it, and the package's tests (scripts/test.sh, `swift test`) would wait for it.
SCRATCH=$PKG/.build-release
if [ "${1:-}" != --no-build ]; then
  "$ROOT/scripts/install-deps.sh"
  (cd "$PKG" && "$SWIFT" build -c release --product AirlockOutboxBench --scratch-path "$SCRATCH")
fi
BIN=$(cd "$PKG" && "$SWIFT" build -c release --scratch-path "$SCRATCH" --show-bin-path)/AirlockOutboxBench
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/outbox.txt
echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')" >"$OUT"
"$ROOT/scripts/with-postgres.sh" "$ROOT/scripts/with-redis.sh" "$BIN" | tee -a "$OUT"
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')" | tee -a "$OUT"
