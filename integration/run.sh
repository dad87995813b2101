#!/usr/bin/env bash
# The fleet and failure suite: each scenario starts its own redis-server and airlock-workerd
# processes (integration/Tests). `make test` runs it after the unit tests; the build below is then
# a no-op. Prints per-scenario figures (lines starting "integration:") and the test summary; exits
# non-zero when any scenario fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# The default build directory (what `make test` just built); AIRLOCK_INTEGRATION_SCRATCH overrides it.
scratch="${AIRLOCK_INTEGRATION_SCRATCH:-.build}"
swift build --build-tests --scratch-path "$scratch"
# Real Celery from PyPI for the interop scenarios (created once, reused).
export AIRLOCK_CELERY_VENV="${AIRLOCK_CELERY_VENV:-$(scripts/celery-venv.sh)}"
export AIRLOCK_WORKERD="$PWD/$scratch/debug/airlock-workerd"
# Headless Chromium and selenium for the scenario that screenshots Prometheus's graph page
# (scripts/browser-venv.sh installs what is missing); screenshots go to the artifacts directory.
export AIRLOCK_BROWSER_VENV="${AIRLOCK_BROWSER_VENV:-$(scripts/browser-venv.sh)}"
export AIRLOCK_INTEGRATION_ARTIFACTS="${AIRLOCK_INTEGRATION_ARTIFACTS:-$PWD/$scratch/integration-artifacts}"
mkdir -p "$AIRLOCK_INTEGRATION_ARTIFACTS"

# Worker processes the tests start are registered here, so that even if the test process crashes
# none outlives the run (the tests kill their own processes on every normal path).
piddir=$(mktemp -d "${TMPDIR:-/tmp}/airlock-integ-pids.XXXXXX")
export AIRLOCK_INTEGRATION_PIDDIR="$piddir"
cleanup() {
    for file in "$piddir"/*; do
        [ -e "$file" ] || continue
        pid=$(basename "$file")
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'airlock-workerd|airlock-integ-'; then
            echo "integration: killing leftover worker process $pid" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$piddir"
}
trap cleanup EXIT

started=$(date +%s)
status=0
swift test --skip-build --scratch-path "$scratch" --no-parallel --filter AirlockIntegrationTests || status=$?
echo "integration: suite finished in $(( $(date +%s) - started )) s, exit status $status; screenshots in $AIRLOCK_INTEGRATION_ARTIFACTS"
if [ "$status" -ne 0 ]; then
    echo "integration: FAILED (see the failing scenarios above)" >&2
fi
exit "$status"
