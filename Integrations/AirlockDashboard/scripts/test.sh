#!/usr/bin/env bash
# Runs the dashboard's tests against a private redis-server (free loopback port, data in a temp dir):
#   1. the Swift suite (`swift test`: every page, action, the token, CSRF, read-only, hostile content,
#      over real Redis and a real HTTP listener);
#   2. the browser suite (browser/test_dashboard.py: real headless Chromium driven by selenium) over
#      real data — jobs enqueued with RedisExecutor and run, retried and dead-lettered by a real Worker
#      (`airlock-dashboard-seed demo`, which keeps a live worker running) — served by the real
#      `airlock-dashboard` binary, three times: open on loopback, with a token, and --read-only.
# Screenshots and page sources go to $AIRLOCK_DASHBOARD_ARTIFACTS (default: .build/browser-artifacts).
# Installs what is missing: the root package's system packages; chromium, chromium-driver, python3-venv
# and selenium (../../scripts/browser-venv.sh, the venv in .build/browser-venv). Everything started here is stopped
# on every path.
# Extra arguments go to `swift test` (e.g. --filter Security). SKIP_BROWSER=1 runs only the Swift suite
# (refused under CI=true: there a missing browser is a failure, never a skip).
# DASHBOARD_BIN_DIR=DIR: use the airlock-dashboard and airlock-dashboard-seed already built in DIR and
# run the browser suite only (Integrations/scripts/test.sh does this: its one build ran the Swift suite).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
SWIFT=${SWIFT:-swift}
artifacts=${AIRLOCK_DASHBOARD_ARTIFACTS:-$here/.build/browser-artifacts}
if [ "${CI:-}" = true ] && [ -n "${SKIP_BROWSER:-}" ]; then
  echo "test.sh: SKIP_BROWSER is not allowed under CI=true" >&2; exit 1
fi

"$root/scripts/install-deps.sh"     # libhiredis-dev, redis-server, redis-tools, python3
venv="$here/.build/browser-venv"
if [ -z "${SKIP_BROWSER:-}" ]; then
  AIRLOCK_BROWSER_VENV=$venv "$root/scripts/browser-venv.sh" >/dev/null   # chromium, chromium-driver, selenium
fi

cd "$here"
if [ -n "${DASHBOARD_BIN_DIR:-}" ]; then
  bin=$DASHBOARD_BIN_DIR
  if [ -n "${SKIP_BROWSER:-}" ]; then echo "test.sh: DASHBOARD_BIN_DIR with SKIP_BROWSER runs nothing" >&2; exit 1; fi
else
  start=$(date +%s)
  $SWIFT build --build-tests
  echo "test.sh: built in $(( $(date +%s) - start ))s" >&2
  bin=$($SWIFT build --show-bin-path)
fi
for tool in airlock-dashboard airlock-dashboard-seed; do
  [ -x "$bin/$tool" ] || { echo "test.sh: $bin/$tool is missing" >&2; exit 1; }
done

work=$(mktemp -d -t airlock-dashboard.XXXXXX)
pids=()
cleanup() {
  local status=$?
  set +e
  exec 9>&- 2>/dev/null           # closes the seeder's stdin: its live worker shuts down cleanly
  # start_dashboard runs in a command substitution (a subshell): its servers' pids come from a file.
  if [ -f "$work/dashboard.pids" ]; then while read -r pid; do pids+=("$pid"); done <"$work/dashboard.pids"; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null; fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
redis-cli -p "$port" ping | grep -q PONG || { echo "test.sh: redis-server did not start" >&2; cat "$work/redis.log" >&2; exit 1; }
export AIRLOCK_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
echo "test.sh: redis-server on 127.0.0.1:$port" >&2

# The Swift suite's trace test writes its waterfall page here; the browser suite screenshots it.
export AIRLOCK_DASHBOARD_ARTIFACTS=$artifacts
if [ -z "${DASHBOARD_BIN_DIR:-}" ]; then
  mkdir -p "$artifacts"; rm -f "$artifacts/trace-waterfall.html"
  start=$(date +%s)
  # ClusterTests need a Redis Cluster of their own (three primaries, three replicas).
  "$root/scripts/with-redis-cluster.sh" $SWIFT test --skip-build "$@"
  echo "test.sh: Swift suite ran in $(( $(date +%s) - start ))s" >&2
fi
[ -z "${SKIP_BROWSER:-}" ] || exit 0

# Real data: the seeder runs real jobs through a real worker, prints what it seeded, and keeps a live
# worker (and a trickle of jobs) running while its stdin is open.
mkfifo "$work/seed.in"
"$bin/airlock-dashboard-seed" demo --redis "$AIRLOCK_TEST_REDIS_URL" --namespace dash-demo --hold 900 \
  <"$work/seed.in" >"$work/seed.json" 2>"$work/seed.log" &
pids+=($!)
exec 9>"$work/seed.in"
for _ in $(seq 1 1200); do grep -q '"ready"' "$work/seed.json" 2>/dev/null && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
grep -q '"ready"' "$work/seed.json" || { echo "test.sh: the seeder did not finish" >&2; cat "$work/seed.log" >&2; exit 1; }

# The real binary, three times: open on loopback (linking trace ids to a tracing UI), with a token, and read-only.
start_dashboard() { # name, extra args...
  local name=$1; shift
  "$bin/airlock-dashboard" --redis "$AIRLOCK_TEST_REDIS_URL" --namespace dash-demo --listen 127.0.0.1:0 "$@" \
    >"$work/$name.out" 2>"$work/$name.log" &
  echo "$!" >>"$work/dashboard.pids"   # not pids+=: this runs in $(…), a subshell
  for _ in $(seq 1 300); do grep -q 'listening on' "$work/$name.out" 2>/dev/null && break; sleep 0.05; done
  grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.out" | head -n 1
}
trace_url='https://tempo.example/trace/{trace_id}'
open_url=$(start_dashboard open --trace-url "$trace_url")
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
token_url=$(AIRLOCK_DASHBOARD_TOKEN=$token start_dashboard token)
ro_url=$(start_dashboard read-only --read-only)
[ -n "$open_url" ] && [ -n "$token_url" ] && [ -n "$ro_url" ] || { echo "test.sh: airlock-dashboard did not start" >&2; cat "$work"/*.log >&2; exit 1; }
echo "test.sh: dashboard at $open_url (open), $token_url (token), $ro_url (read-only)" >&2

# A bound to a non-loopback address without a token refuses to start (exit 2).
set +e
"$bin/airlock-dashboard" --redis "$AIRLOCK_TEST_REDIS_URL" --listen 0.0.0.0:0 >"$work/refused.out" 2>"$work/refused.err"
refused=$?
set -e
if [ "$refused" -ne 2 ] || ! grep -q 'without a token' "$work/refused.err"; then
  echo "test.sh: airlock-dashboard on 0.0.0.0 without a token did not refuse (exit $refused)" >&2; cat "$work/refused.err" >&2; exit 1
fi
echo "test.sh: 0.0.0.0 without a token refused (exit 2)" >&2

mkdir -p "$artifacts"
start=$(date +%s)
DASH_URL=$open_url DASH_TRACE_URL=$trace_url DASH_TOKEN_URL=$token_url DASH_TOKEN=$token DASH_RO_URL=$ro_url REDIS_PORT=$port SEED_JSON="$work/seed.json" \
  ARTIFACTS="$artifacts" "$venv/bin/python" "$here/browser/test_dashboard.py"
echo "test.sh: browser suite ran in $(( $(date +%s) - start ))s; screenshots in $artifacts" >&2
grep -h 'dashboard action' "$work/open.log" | head -n 5 >&2 || true
