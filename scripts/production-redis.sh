#!/usr/bin/env bash
# Starts a production-shaped Redis on loopback for trying Airlock against it (make demo, the CLI):
#
#   scripts/production-redis.sh tls       a redis-server with a TLS port only; CA and server certificate
#                                         made here by openssl (machine-notes-2 §4)
#   scripts/production-redis.sh sentinel  a primary, a replica and three sentinels, quorum 2 (§3)
#   scripts/production-redis.sh stop      stops everything it started and removes its directory
#
# Prints the URL to use, e.g.  make demo DEMO_REDIS_URL='<url>'
# State lives in $AIRLOCK_PRODUCTION_REDIS_DIR (default /tmp/airlock-production-redis); one setup at a time.
set -euo pipefail
dir=${AIRLOCK_PRODUCTION_REDIS_DIR:-/tmp/airlock-production-redis}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_all() {
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

# Waits until `redis-cli … ping` answers PONG.
await_ping() {
  for _ in $(seq 1 200); do
    if redis-cli "$@" ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.05
  done
  echo "production-redis: no PONG from redis-cli $*" >&2
  return 1
}

start_tls() {
  cd "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=airlock-demo-ca 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 -extfile ext.cnf 2>/dev/null
  port=$(free_port)
  redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --tls-cert-file server.crt --tls-key-file server.key \
    --tls-ca-cert-file ca.crt --tls-auth-clients no --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  await_ping --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port"
  echo "production-redis: TLS redis-server on 127.0.0.1:$port (plaintext disabled; CA $dir/ca.crt)" >&2
  echo "DEMO_REDIS_URL='rediss://127.0.0.1:$port/0?tls_ca_file=$dir/ca.crt'"
}

start_sentinel() {
  cd "$dir"
  master=$(free_port); replica=$(free_port)
  redis-server --port "$master" --bind 127.0.0.1 --dir "$dir" --dbfilename m.rdb --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/master.pid" --logfile "$dir/master.log"
  redis-server --port "$replica" --bind 127.0.0.1 --dir "$dir" --dbfilename r.rdb --save "" --appendonly no \
    --replicaof 127.0.0.1 "$master" --daemonize yes --pidfile "$dir/replica.pid" --logfile "$dir/replica.log"
  await_ping -p "$master"; await_ping -p "$replica"
  ports=()
  for n in 1 2 3; do
    port=$(free_port); ports+=("$port")
    cat > "$dir/sentinel-$n.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel-$n.pid
logfile $dir/sentinel-$n.log
dir $dir
sentinel monitor mymaster 127.0.0.1 $master 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
sentinel parallel-syncs mymaster 1
CONF
    redis-server "$dir/sentinel-$n.conf" --sentinel
  done
  # Ready when the replica is in sync and every sentinel sees it and the other two (machine-notes-2 §3).
  for _ in $(seq 1 300); do
    ready=1
    redis-cli -p "$replica" info replication | grep -q master_link_status:up || ready=0
    for port in "${ports[@]}"; do
      info=$(redis-cli -p "$port" sentinel master mymaster 2>/dev/null | tr '\n' ' ')
      echo "$info" | grep -q "num-other-sentinels 2" || ready=0
      echo "$info" | grep -q "num-slaves 1" || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  [ "$ready" = 1 ] || { echo "production-redis: the sentinels did not settle; logs in $dir" >&2; exit 1; }
  hosts=$(printf '127.0.0.1:%s,' "${ports[@]}"); hosts=${hosts%,}
  echo "production-redis: master 127.0.0.1:$master, replica 127.0.0.1:$replica, sentinels $hosts" >&2
  echo "production-redis: kill -9 \$(cat $dir/master.pid) fails it over (the sentinels promote the replica in ~2.5 s)" >&2
  echo "DEMO_REDIS_URL='redis+sentinel://$hosts/mymaster/0?wait_replicas=1&wait_timeout=500'"
}

case "${1:-}" in
  tls|sentinel)
    if [ -d "$dir" ]; then echo "production-redis: $dir exists; run '$0 stop' first" >&2; exit 1; fi
    mkdir -p "$dir"
    trap 'status=$?; [ $status -eq 0 ] || stop_all; exit $status' EXIT
    if [ "$1" = tls ]; then start_tls; else start_sentinel; fi ;;
  stop) stop_all ;;
  *) awk 'NR > 1 { if (!/^#/) exit; print }' "$0"; exit 2 ;;
esac
