#!/usr/bin/env bash
# Runs the AirlockPostgres tests against a private PostgreSQL (temp data dir, free loopback port,
# ../../scripts/with-postgres.sh), stopped whatever the outcome. Installs postgresql with apt-get
# when it is missing (sudo only when not root). Extra arguments go to `swift test`
# (e.g. --filter TransactionScope). Prints how long the build and the test run took.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}
cd "$here"
start=$(date +%s)
"$SWIFT" build --build-tests
built=$(date +%s)
"$root/scripts/with-postgres.sh" "$SWIFT" test --skip-build "$@"
echo "AirlockPostgres: build $((built - start)) s, tests $(( $(date +%s) - built )) s" >&2
