#!/usr/bin/env bash
# One queue vs the same queue partitioned over the three primaries of a Redis Cluster
# (docs/BENCHMARKS.md, "Redis Cluster: a partitioned queue"). Reported, not asserted.
#
#   bench/cluster-partitions.sh [JOBS] [ROUNDS]
#
# Starts a real 3-primary + 3-replica cluster on loopback (redis-cli --cluster create), then per round,
# alternating: JOBS airlock.ping jobs filled into a plain queue, or into a queue declared with 3 partitions
# (`airlock-workerd partitions Q 3`, its name chosen so each partition's slot is on another primary),
# drained by one `airlock-workerd run --concurrency 64 --prefetch 256`, timed by `AirlockBench watch`.
# Printed per drain: jobs/s, the worker's CPU per job, and each primary's CPU per job (INFO cpu before and
# after): the plain queue loads one primary, the partitioned one spreads the Redis work over three.
# Needs release builds (swift build -c release --static-swift-stdlib; BIN=dir overrides .build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-100000}
rounds=${2:-3}
BIN=${BIN:-.build/release}
for tool in airlock-workerd AirlockBench; do
  [ -x "$BIN/$tool" ] || { echo "cluster-partitions: $BIN/$tool is missing: swift build -c release --static-swift-stdlib" >&2; exit 1; }
done
dir=$(mktemp -d -t airlock-cluster-bench.XXXXXX)
# Six loopback ports at or below 55535 whose cluster bus (port + 10000) is free too.
read -r -a ports <<<"$(python3 - <<'EOF'
import socket
found = []
while len(found) < 6:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    if port > 55535 or port in found: continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", port + 10000)); b.close()
    except OSError:
        continue
    found.append(port)
print(" ".join(map(str, found)))
EOF
)"
WORKER=
cleanup() {
  [ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null || true
  for port in "${ports[@]}"; do
    [ -f "$dir/$port/redis.pid" ] && kill "$(cat "$dir/$port/redis.pid")" 2>/dev/null || true
  done
  sleep 0.3; rm -rf "$dir"
}
trap cleanup EXIT
for port in "${ports[@]}"; do
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/$port" --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
    --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 200); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
done
redis-cli --cluster create $(for port in "${ports[@]}"; do printf '127.0.0.1:%s ' "$port"; done) \
  --cluster-replicas 1 --cluster-yes >"$dir/create.log"
for port in "${ports[@]}"; do
  for _ in $(seq 1 600); do redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done
done
url="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

# Primary port → its slot ranges; a queue name whose partitions 0..2 hash to three different primaries.
# (Until every replica has attached, CLUSTER NODES may still call it a master: ask each node's ROLE.)
for _ in $(seq 1 600); do
  primaries=""
  for port in "${ports[@]}"; do
    [ "$(redis-cli -p "$port" role | head -1)" = master ] && primaries+="$port "
  done
  [ "$(wc -w <<<"$primaries")" -eq 3 ] && break
  sleep 0.1
done
nodes=$(redis-cli -p "${ports[0]}" cluster nodes)
spread=$(NODES="$nodes" python3 - <<'EOF'
import os
def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
owners = []
for line in os.environ["NODES"].splitlines():
    fields = line.split()
    if "master" not in fields[2] or len(fields) < 9: continue
    port = int(fields[1].split(":")[1].split("@")[0])
    for part in fields[8:]:
        if part.startswith("["): continue
        low, _, high = part.partition("-")
        owners.append((int(low), int(high or low), port))
def owner(tag):
    slot = crc16(tag.encode()) % 16384
    return next(port for low, high, port in owners if low <= slot <= high)
for index in range(1000):
    queue = f"orders{index}"
    names = [queue] + [f"{queue}@p{i}" for i in (1, 2)]
    if len({owner(name) for name in names}) == 3:
        print(queue, owner(queue)); break
EOF
)
read -r partitioned plain_owner <<<"$spread"
plain=$partitioned   # the same name: in its plain run, the queue is partition 0's primary alone
echo "cluster: primaries $primaries; queue $partitioned (plain: all on $plain_owner; partitioned: one partition per primary)"

cpu_ms() {  # used_cpu_user + used_cpu_sys of a node, in ms
  redis-cli -p "$1" info cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.0f", s * 1000 }'
}
proc_cpu_ms() {  # utime + stime of a process, in ms
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

drain() {  # mode round
  local mode=$1 round=$2 ns="bench-cluster-$1-$2" queue=$partitioned count=1
  if [ "$mode" = partitioned ]; then
    count=3
    "$BIN/airlock-workerd" partitions "$queue" 3 --redis "$url" --namespace "$ns" >/dev/null
  fi
  "$BIN/AirlockBench" fill --count "$jobs" --queue "$queue" --partitions "$count" --redis "$url" --namespace "$ns" >/dev/null 2>"$dir/fill.log"
  local ready="$dir/ready-$mode-$round"
  "$BIN/AirlockBench" watch --count "$jobs" --queue "$queue" --partitions "$count" --ready-file "$ready" \
    --redis "$url" --namespace "$ns" >"$dir/watch-$mode-$round" 2>>"$dir/watch.log" &
  local watcher=$!
  for _ in $(seq 1 600); do [ -f "$ready" ] && break; sleep 0.05; done
  declare -A before
  for port in $primaries; do before[$port]=$(cpu_ms "$port"); done
  "$BIN/airlock-workerd" run --redis "$url" --namespace "$ns" --queues "$queue" --concurrency 64 --prefetch 256 \
    --log-level warning >"$dir/worker-$mode-$round.log" 2>&1 &
  WORKER=$!
  wait "$watcher"
  local worker_ms; worker_ms=$(proc_cpu_ms "$WORKER")
  kill -INT "$WORKER"; wait "$WORKER" 2>/dev/null || true; WORKER=
  local nodes_text="" total=0
  for port in $primaries; do
    local used=$(( $(cpu_ms "$port") - ${before[$port]} ))
    total=$(( total + used ))
    nodes_text+=" $(awk -v u="$used" -v n="$jobs" 'BEGIN { printf "%.2f", u * 1000 / n }')"
  done
  local rate; rate=$(sed -n 's/.* = \([0-9]*\) jobs\/s.*/\1/p' "$dir/watch-$mode-$round")
  printf '%-12s round %d: %7s jobs/s; worker %.2f µs CPU/job; Redis %.2f µs CPU/job (per primary:%s)\n' \
    "$mode" "$round" "$rate" "$(awk -v u="$worker_ms" -v n="$jobs" 'BEGIN { print u * 1000 / n }')" \
    "$(awk -v u="$total" -v n="$jobs" 'BEGIN { print u * 1000 / n }')" "$nodes_text"
}

echo "drain of $jobs airlock.ping jobs, one airlock-workerd (--concurrency 64 --prefetch 256), $rounds rounds"
for round in $(seq 1 "$rounds"); do
  drain plain "$round"
  drain partitioned "$round"
done
