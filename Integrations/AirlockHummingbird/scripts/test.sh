#!/usr/bin/env bash
# Runs the AirlockHummingbird tests against a private PostgreSQL (temp data dir, free loopback
# port) and a private Redis (../../scripts/with-redis.sh). Both are stopped whatever the outcome.
# Installs what is missing (postgresql, redis, libhiredis-dev) with apt-get; sudo only when not root.
# Extra arguments go to `swift test` (e.g. --filter OrderApp).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
"$root/scripts/install-deps.sh"     # libhiredis-dev, redis-server, redis-tools, python3
if [ ! -x "$PG_BIN/initdb" ]; then
  echo "test.sh: installing postgresql" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  # Another release than 15 may be what the distribution ships.
  [ -x "$PG_BIN/initdb" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
[ -x "$PG_BIN/initdb" ] || { echo "test.sh: no PostgreSQL server binaries in $PG_BIN" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user; otherwise as ourselves.
pg() {
  if [ "$(id -u)" -ne 0 ]; then "$@"
  elif command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"
  fi
}

dir=$(mktemp -d -t airlock-pg.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "test.sh: postgres on 127.0.0.1:$port (data in $dir)" >&2

export AIRLOCK_TEST_PG_HOST=127.0.0.1 AIRLOCK_TEST_PG_PORT=$port AIRLOCK_TEST_PG_USER=postgres AIRLOCK_TEST_PG_DATABASE=postgres
cd "$here"
"$root/scripts/with-redis.sh" "$SWIFT" test "$@"
