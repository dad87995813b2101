#!/usr/bin/env bash
# What `make test` runs for the integrations: every integration package's tests in one build
# (../Package.swift, so SwiftNIO, PostgresNIO, Hummingbird and Vapor are compiled once), against
# one private PostgreSQL, one private Redis and one private Redis Cluster of three primaries and
# three replicas (../../scripts/with-postgres.sh, with-redis.sh, with-redis-cluster.sh: free loopback
# ports, temp data dirs, stopped whatever the outcome). Installs what is missing
# (postgresql, redis, libhiredis-dev) with apt-get; sudo only when not root. Extra arguments go to
# `swift test` (e.g. --filter AirlockVaporTests). Then the dashboard's browser suite (real headless
# Chromium over the real airlock-dashboard binary built here, its own private Redis:
# AirlockDashboard/scripts/test.sh with DASHBOARD_BIN_DIR; it installs chromium and selenium when
# missing). Prints how long the build and the tests took.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
SWIFT=${SWIFT:-swift}

"$root/scripts/install-deps.sh"     # libhiredis-dev, redis-server, redis-tools, python3
cd "$here"
start=$(date +%s)
"$SWIFT" build --build-tests
# The SIGTERM-under-load test runs the Hummingbird example as a child process; the outbox tests
# run airlock-outbox and their crash child, found beside the test binary.
"$SWIFT" build --product OrderApp
"$SWIFT" build --product airlock-outbox
"$SWIFT" build --product OutboxCrashChild
# The dashboard's server and seeder, for its browser suite.
"$SWIFT" build --product airlock-dashboard
"$SWIFT" build --product airlock-dashboard-seed
built=$(date +%s)
bin=$("$SWIFT" build --show-bin-path)
export ORDERAPP_BINARY="$bin/OrderApp"
# The dashboard's trace test writes its waterfall page where the browser suite below looks for it.
export AIRLOCK_DASHBOARD_ARTIFACTS=${AIRLOCK_DASHBOARD_ARTIFACTS:-$here/AirlockDashboard/.build/browser-artifacts}
mkdir -p "$AIRLOCK_DASHBOARD_ARTIFACTS"; rm -f "$AIRLOCK_DASHBOARD_ARTIFACTS/trace-waterfall.html"
"$root/scripts/with-postgres.sh" "$root/scripts/with-redis.sh" "$root/scripts/with-redis-cluster.sh" "$SWIFT" test --skip-build "$@"
tested=$(date +%s)
DASHBOARD_BIN_DIR=$bin SWIFT=$SWIFT "$here/AirlockDashboard/scripts/test.sh"
echo "integrations: build $((built - start)) s, Swift tests $((tested - built)) s, dashboard browser suite $(( $(date +%s) - tested )) s" >&2
