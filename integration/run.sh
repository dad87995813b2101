#!/usr/bin/env bash
# The fleet and failure suite: each scenario starts its own redis-server(s) and worker processes.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
export AIRLOCK_WORKERD="$PWD/.build/debug/airlock-workerd"
swift test --skip-build --filter AirlockIntegrationTests
