#!/usr/bin/env bash
# Usage: scripts/with-postgres.sh scripts/with-redis.sh bench/outbox-drain.sh PATH/TO/airlock-outbox
# (N rows, default 100000; RELAYS, default "1 3"). Reported, not asserted. The bench program
# (bench/outbox.sh) measures the same drain with backlogs written through the outbox itself.
# Relay drain of a backlog generated in SQL, measured from the relay's start to pending = 0.
set -euo pipefail
N=${N:-100000}; RELAYS=${RELAYS:-1 3}; TOOL=$1; NS=drain-$$
PGURL="postgres://postgres@127.0.0.1:$AIRLOCK_TEST_PG_PORT/postgres"
P="psql -q -h 127.0.0.1 -p $AIRLOCK_TEST_PG_PORT -U postgres -At"
"$TOOL" migrate --postgres "$PGURL" >/dev/null
$P -c "INSERT INTO airlock_outbox (namespace, queue, job_id, placement, due_at_ms, envelope)
  SELECT '$NS', 'default', 'job-' || g, 0, 1, convert_to('{\"v\":1,\"id\":\"job-' || g || '\",\"task\":\"bench.outbox\",\"queue\":\"default\",\"enqueued_at\":1}', 'UTF8')
  FROM generate_series(1, $N) g"
for relays in $RELAYS; do
  start=$(date +%s.%N)
  "$TOOL" relay --postgres "$PGURL" --redis "$AIRLOCK_TEST_REDIS_URL" --namespace "$NS" --grace 0 --poll 0.02 --relays-per-process "$relays" --batch-size 1000 &
  pid=$!
  while [ "$($P -c "SELECT count(*) FROM airlock_outbox WHERE namespace = '$NS'")" != 0 ]; do sleep 0.1; done
  end=$(date +%s.%N)
  cpu=$(awk '{printf "%.2f", ($14+$15)/100}' /proc/$pid/stat)
  kill $pid; wait $pid || true
  queued=$(redis-cli -u "$AIRLOCK_TEST_REDIS_URL" LLEN "$NS:{default}:ready")
  echo "drain relays=$relays rows=$N seconds=$(echo "$end - $start" | bc) rows_per_s=$(echo "$N / ($end - $start)" | bc) relay_cpu_s=$cpu queued_total=$queued"
  # the next round drains a fresh backlog of new job ids
  [ "$relays" = "${RELAYS##* }" ] || $P -c "INSERT INTO airlock_outbox (namespace, queue, job_id, placement, due_at_ms, envelope)
    SELECT '$NS', 'default', 'job3-' || g, 0, 1, convert_to('{\"v\":1,\"id\":\"job3-' || g || '\",\"task\":\"bench.outbox\",\"queue\":\"default\",\"enqueued_at\":1}', 'UTF8')
    FROM generate_series(1, $N) g"
done
