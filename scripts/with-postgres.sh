#!/usr/bin/env bash
# Runs a command with a private PostgreSQL server on a free loopback port (data in a temp dir),
# exporting AIRLOCK_TEST_PG_HOST/PORT/USER/DATABASE (and libpq's PGHOST/PGPORT/PGUSER/PGDATABASE),
# and stops the server afterwards, whatever the command's outcome.
# Installs the postgresql package with apt-get when the server binaries are missing (sudo only
# when not root). PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
set -euo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ! -x "$PG_BIN/initdb" ]; then
  # Another release than 15 may already be installed, or be what the distribution ships.
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then
    PG_BIN=$found
  else
    echo "with-postgres: installing postgresql" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    [ -x "$PG_BIN/initdb" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
fi
[ -x "$PG_BIN/initdb" ] || { echo "with-postgres: no PostgreSQL server binaries in $PG_BIN" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { $sudo apt-get update -qq; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 >/dev/null; }

pg() {
  if [ "$(id -u)" -ne 0 ]; then "$@"
  elif command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"
  fi
}

dir=$(mktemp -d -t airlock-pg.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
cleanup() {
  pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# The port is probed free, then taken by the server; another process may take it in between, so retry.
started=""
for _ in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
    started=yes; break
  fi
done
[ -n "$started" ] || { cat "$dir/server.log" >&2; exit 1; }
echo "with-postgres: postgres on 127.0.0.1:$port (data in $dir)" >&2

export AIRLOCK_TEST_PG_HOST=127.0.0.1 AIRLOCK_TEST_PG_PORT=$port AIRLOCK_TEST_PG_USER=postgres AIRLOCK_TEST_PG_DATABASE=postgres
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
"$@"
