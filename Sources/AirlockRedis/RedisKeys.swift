/// Every Redis key Airlock uses, in one place. `docs/PROTOCOL.md` documents each.
///
/// Keys that belong to a queue carry the queue name as a Redis Cluster hash tag (`{Q}`), so a
/// script touching one queue's keys touches one slot. The fleet's own keys (workers, heartbeats,
/// the queue set, schedules, the batch index, relay reports) start with ``fleet``: on a single
/// server that is the namespace itself; on a Redis Cluster it is `<ns>:{<ns>}`, so they share one
/// slot and the heartbeat script, which touches several of them, stays one slot.
public struct RedisKeys: Sendable, Hashable {
    /// The prefix of every key (default `airlock`).
    public let namespace: String
    /// The prefix of the fleet's keys: ``namespace``, or on a Cluster `<ns>:{<ns>}` (the namespace
    /// itself when it already carries a hash tag, which puts every key in its slot).
    public let fleet: String

    /// Keys under `namespace`, laid out for a Redis Cluster when `cluster` is true.
    public init(namespace: String = "airlock", cluster: Bool = false) {
        self.namespace = namespace
        self.fleet = cluster && !Self.hasHashTag(namespace) ? "\(namespace):{\(namespace)}" : namespace
    }

    /// Keys under `namespace` for the server `configuration` reaches (a Cluster or not).
    public init(namespace: String, for configuration: RedisConfiguration) {
        self.init(namespace: namespace, cluster: configuration.cluster != nil)
    }

    private static func hasHashTag(_ text: String) -> Bool {
        guard let open = text.firstIndex(of: "{"), let close = text[open...].firstIndex(of: "}") else { return false }
        return text.index(after: open) < close
    }

    /// Set of known queue names.
    public var queues: String { "\(fleet):queues" }
    /// Set of registered worker ids.
    public var workers: String { "\(fleet):workers" }
    /// List the `airlock.record` diagnostic task appends to.
    public var diagRecord: String { "\(fleet):diag:record" }
    /// Lease naming the one worker of the fleet that samples and exports the queue gauges.
    public var metricsSampler: String { "\(fleet):metrics:sampler" }

    /// List of jobs ready to run: producers `LPUSH`, consumers take from the right.
    public func ready(_ queue: String) -> String { "\(namespace):{\(queue)}:ready" }
    /// Sorted set of jobs waiting for their due time (score: milliseconds since the epoch).
    public func delayed(_ queue: String) -> String { "\(namespace):{\(queue)}:delayed" }
    /// Capped list of dead letters, newest at the left.
    public func dead(_ queue: String) -> String { "\(namespace):{\(queue)}:dead" }
    /// Jobs a worker has taken from the queue and not yet acknowledged.
    public func inflight(_ queue: String, worker: String) -> String { "\(namespace):{\(queue)}:inflight:\(worker)" }
    /// Set of job ids of `queue` an operator asked `worker` to cancel; the worker takes (and
    /// deletes) it after each heartbeat.
    public func cancelRequests(_ queue: String, worker: String) -> String { "\(namespace):{\(queue)}:cancel:\(worker)" }
    /// Present (value `1`) while the queue is paused.
    public func paused(_ queue: String) -> String { "\(namespace):{\(queue)}:paused" }
    /// Short list producers push to when they add a delayed job, to wake a sleeping promoter early.
    public func wake(_ queue: String) -> String { "\(namespace):{\(queue)}:wake" }
    /// Hash of the queue's fleet-wide limit (``QueueLimit``): `concurrency`, `rate`, `interval_ms`, `burst`.
    public func limit(_ queue: String) -> String { "\(namespace):{\(queue)}:limit" }
    /// Hash of concurrency leases: field a worker id, value how many of the queue's jobs it holds
    /// (its in-flight list's length, as its last fetch or settlement left it).
    public func limitHeld(_ queue: String) -> String { "\(namespace):{\(queue)}:limit:held" }
    /// The rate limit's state: the theoretical arrival time of the next job (ms since the epoch,
    /// Redis's clock, as a decimal string), expiring once it is in the past.
    public func limitRate(_ queue: String) -> String { "\(namespace):{\(queue)}:limit:rate" }
    /// Short list of tokens, one per freed concurrency lease, that workers waiting on the limit block on.
    public func limitWake(_ queue: String) -> String { "\(namespace):{\(queue)}:limit:wake" }
    /// Hash of counters: processed, failed, retried, dead, expired.
    public func stats(_ queue: String) -> String { "\(namespace):{\(queue)}:stats" }
    /// A native job's stored result (JSON), for as long as the job asked; beside it,
    /// `<key>:done`, a one-entry list a waiting producer blocks on.
    public func result(_ queue: String, jobID: String) -> String { "\(namespace):{\(queue)}:result:\(jobID)" }
    /// Marks an idempotency key as used (value: the job id that used it).
    public func idempotency(_ queue: String, key: String) -> String { "\(namespace):{\(queue)}:idem:\(key)" }

    /// Hash of one minute of per-second counters (`p<second>` processed, `f<second>` failed),
    /// written by the settle script and expiring 65 minutes after its last new field.
    /// `minute` is Unix seconds divided by 60.
    public func series(_ queue: String, minute: Int64) -> String { "\(namespace):{\(queue)}:series:\(minute)" }

    /// Marks a job id as delivered by a producer that deduplicates by job id (the PostgreSQL
    /// outbox's fast path and relay), for the executor's idempotency TTL; value: the job id.
    public func delivered(_ queue: String, jobID: String) -> String { "\(namespace):{\(queue)}:sent:\(jobID)" }

    /// One slot's share of a cross-slot flush was delivered: a list of its jobs' outcomes, in the
    /// slot of the share's first queue, written with the share's jobs (docs/PROTOCOL.md).
    public func flushDelivered(_ queue: String, flushID: String) -> String { "\(namespace):{\(queue)}:flushed:\(flushID)" }
    /// Set of final outcomes of batch jobs settled on `queue` whose batch's record is in another
    /// hash slot (Redis Cluster only), written by the settle script and folded into the record by
    /// the worker right after (docs/PROTOCOL.md, "A batch across slots").
    public func batchTallies(_ queue: String) -> String { "\(namespace):{\(queue)}:batch-tallies" }
    /// Set of the tallies of `queue` that no Airlock wrote (they are not `[field, queue, batch, job]`),
    /// set aside by the fold for an operator.
    public func unreadableBatchTallies(_ queue: String) -> String { "\(namespace):{\(queue)}:batch-tallies:unreadable" }
    /// The commit record of a flush spanning hash slots on a Redis Cluster: a list of its jobs,
    /// removed once every slot's share is delivered.
    public func flushRecord(_ flushID: String) -> String { "\(fleet):flush:\(flushID)" }
    /// Hash of partitioned queues (field: the queue; value: its number of partitions, 2 or more),
    /// see ``QueuePartitions``.
    public var partitions: String { "\(fleet):partitions" }
    /// Sorted set of cross-slot flush records not yet finished (score: when a worker may take one
    /// for abandoned and complete it, ms since the epoch).
    public var flushes: String { "\(fleet):flushes" }

    /// The last tick (ms since the epoch) a periodic job's scheduler recorded for `schedule`,
    /// in the slot of the queue its jobs go to, so the claim that reads it and pushes the job is
    /// one script on one slot.
    public func scheduleTick(_ queue: String, schedule: String) -> String { "\(namespace):{\(queue)}:schedule:\(schedule)" }
    /// Hash of the periodic jobs workers declare (field: schedule name; value: its JSON description).
    public var schedules: String { "\(fleet):schedules" }

    /// Hash recording a batch (total, pending, succeeded, dead, cancelled, its callback jobs'
    /// envelopes, created/completed times), in the slot of the batch's queue — where its callbacks
    /// go — so the settle script counting its last job pushes them in the same step.
    public func batch(_ queue: String, id: String) -> String { "\(namespace):{\(queue)}:batch:\(id)" }
    /// Set of the ids of a batch's jobs already counted, so a job counts once however many
    /// copies of it settle (a redelivery, a dead letter retried by an operator).
    public func batchCounted(_ queue: String, id: String) -> String { "\(namespace):{\(queue)}:batch:\(id):counted" }
    /// Sorted set indexing batches for operators (member: `<id> <queue>`; score: created, ms).
    public var batches: String { "\(fleet):batches" }

    /// Sorted set of the outbox relays that reported (score: their last report, ms since the epoch).
    public var outboxRelays: String { "\(fleet):outbox:relays" }
    /// Hash in which one outbox relay reports the outbox it drains (expires unless refreshed).
    public func outboxRelay(_ relay: String) -> String { "\(fleet):outbox:relay:\(relay)" }

    /// Expiring key whose presence proves the worker is alive.
    public func heartbeat(_ worker: String) -> String { "\(fleet):worker:\(worker):alive" }
    /// Hash describing a worker (host, pid, queues, concurrency, started, version, in flight).
    public func workerInfo(_ worker: String) -> String { "\(fleet):worker:\(worker):info" }
    /// Set (for an hour) by the reaper that recovered a worker's jobs, so the worker — if it was
    /// only stalled, not dead — learns at its next heartbeat that the jobs it holds were given away.
    public func reaped(_ worker: String) -> String { "\(fleet):worker:\(worker):reaped" }
}
