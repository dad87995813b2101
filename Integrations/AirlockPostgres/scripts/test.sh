#!/usr/bin/env bash
# Runs the AirlockPostgres tests against a private PostgreSQL and a private Redis (temp data dirs,
# free loopback ports, ../../scripts/with-postgres.sh and with-redis.sh), stopped whatever the
# outcome. Installs what is missing (postgresql, redis, libhiredis-dev) with apt-get (sudo only
# when not root). Builds airlock-outbox and the crash test's child beside the test binary. Extra
# arguments go to `swift test` (e.g. --filter Outbox). Prints how long the build and the test run took.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}
"$root/scripts/install-deps.sh"     # libhiredis-dev, redis-server, redis-tools, python3
cd "$here"
start=$(date +%s)
"$SWIFT" build --build-tests
# The outbox tests run these as child processes, found beside the test binary.
"$SWIFT" build --product airlock-outbox
"$SWIFT" build --product OutboxCrashChild
built=$(date +%s)
"$root/scripts/with-postgres.sh" "$root/scripts/with-redis.sh" "$SWIFT" test --skip-build "$@"
echo "AirlockPostgres: build $((built - start)) s, tests $(( $(date +%s) - built )) s" >&2
