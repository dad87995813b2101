#!/usr/bin/env bash
# Runs the AirlockHummingbird tests against a private PostgreSQL (../../scripts/with-postgres.sh)
# and a private Redis (../../scripts/with-redis.sh), each on a free loopback port with its data in
# a temp dir, both stopped whatever the outcome. Installs what is missing (postgresql, redis,
# libhiredis-dev) with apt-get; sudo only when not root. Extra arguments go to `swift test`
# (e.g. --filter OrderApp). Prints how long the build and the test run took.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}

"$root/scripts/install-deps.sh"     # libhiredis-dev, redis-server, redis-tools, python3
cd "$here"
start=$(date +%s)
"$SWIFT" build --build-tests
built=$(date +%s)
"$root/scripts/with-postgres.sh" "$root/scripts/with-redis.sh" "$SWIFT" test --skip-build "$@"
echo "AirlockHummingbird: build $((built - start)) s, tests $(( $(date +%s) - built )) s" >&2
