/// Every metric Airlock records through swift-metrics: its name, type, labels, help text and,
/// for histograms, its buckets. `docs/OPERATIONS.md` ("Metrics") documents each one.
///
/// Airlock never bootstraps swift-metrics: the application (or `airlock-workerd run
/// --metrics-listen`) chooses the back end. An exporter that wants Prometheus `# HELP` lines and
/// these buckets reads them from here (the daemon's `AirlockPrometheusFactory` does).
///
/// Names follow Prometheus conventions: counters end in `_total`, durations are histograms in
/// seconds ending in `_seconds`, gauges carry a unit (`_jobs`, `_seconds`) or none for a plain count.
public enum AirlockMetrics {
    /// One metric as it is exported.
    public struct Definition: Sendable, Hashable {
        /// What kind of instrument records it.
        public enum Kind: String, Sendable, Hashable {
            /// Only goes up (swift-metrics `Counter`).
            case counter
            /// A value that goes up and down (swift-metrics `Gauge` or `Meter`).
            case gauge
            /// A distribution of durations in seconds (swift-metrics `Timer`).
            case histogram
        }

        /// The exported name.
        public let name: String
        /// The instrument kind.
        public let kind: Kind
        /// The label names, in the order they are recorded.
        public let labels: [String]
        /// One line for Prometheus's `# HELP`.
        public let help: String
        /// The upper bounds of a histogram's buckets (empty for other kinds).
        public let buckets: [Duration]
    }

    // MARK: Per worker

    /// Jobs a worker finished with, by queue, task and outcome.
    public static let jobs = Definition(
        name: "airlock_jobs_total", kind: .counter, labels: ["queue", "task", "outcome"],
        help: "Jobs this worker settled, by queue, registered task (unknown for any other name) and outcome: succeeded, retried, dead, expired, postponed, cancelled (by a shutdown's deadline, requeued), revoked (by an operator's cancel).",
        buckets: [])
    /// How long task bodies ran.
    public static let runDuration = Definition(
        name: "airlock_job_run_duration_seconds", kind: .histogram, labels: ["queue", "task"],
        help: "Seconds a task attempt ran on this worker (until it returned, threw or timed out).",
        buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                  .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
                  .seconds(30), .seconds(60), .seconds(300)])
    /// How long jobs waited between becoming due and starting.
    public static let queueWait = Definition(
        name: "airlock_job_queue_wait_seconds", kind: .histogram, labels: ["queue"],
        help: "Seconds from a job's enqueue time (its due time when delayed or retried) to the start of its run; clock skew below zero counts as 0.",
        buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                  .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
                  .seconds(300), .seconds(900), .seconds(3600)])
    /// Tasks running now.
    public static let inFlight = Definition(
        name: "airlock_jobs_in_flight", kind: .gauge, labels: ["queue"],
        help: "Tasks running on this worker now.", buckets: [])
    /// Task slots of the worker.
    public static let concurrency = Definition(
        name: "airlock_worker_concurrency", kind: .gauge, labels: [],
        help: "Tasks this worker runs at the same time at most (--concurrency).", buckets: [])
    /// Jobs the reaper returned to their queues.
    public static let reaperRecovered = Definition(
        name: "airlock_reaper_recovered_jobs_total", kind: .counter, labels: [],
        help: "Jobs of dead workers (heartbeat expired) that this worker's reaper returned to their queues.", buckets: [])
    /// Reconnections of the Redis client.
    public static let redisReconnects = Definition(
        name: "airlock_redis_reconnects_total", kind: .counter, labels: ["client"],
        help: "Times a Redis connection of this process was re-established after it had been lost, by connection name.", buckets: [])

    // MARK: Per fleet (exported by the one sampler that holds the lease)

    /// Ready jobs per queue.
    public static let queueReady = Definition(
        name: "airlock_queue_ready_jobs", kind: .gauge, labels: ["queue"],
        help: "Jobs waiting in the queue's ready list (fleet-wide; exported by the sampling worker only).", buckets: [])
    /// Delayed jobs per queue.
    public static let queueDelayed = Definition(
        name: "airlock_queue_delayed_jobs", kind: .gauge, labels: ["queue"],
        help: "Jobs waiting for their due time: countdowns, etas and retries (fleet-wide; exported by the sampling worker only).", buckets: [])
    /// In-flight jobs per queue, across workers.
    public static let queueInFlight = Definition(
        name: "airlock_queue_in_flight_jobs", kind: .gauge, labels: ["queue"],
        help: "Jobs held by registered workers, alive or dead, and not yet settled (fleet-wide; exported by the sampling worker only).", buckets: [])
    /// Dead letters per queue.
    public static let queueDead = Definition(
        name: "airlock_queue_dead_jobs", kind: .gauge, labels: ["queue"],
        help: "Entries in the queue's dead-letter list (fleet-wide; exported by the sampling worker only).", buckets: [])
    /// Age of the job next in line.
    public static let queueOldestAge = Definition(
        name: "airlock_queue_oldest_ready_age_seconds", kind: .gauge, labels: ["queue"],
        help: "Seconds the job next in line has been waiting since it was enqueued or became due; 0 when none waits (exported by the sampling worker only).",
        buckets: [])
    /// Whether the queue is paused.
    public static let queuePaused = Definition(
        name: "airlock_queue_paused", kind: .gauge, labels: ["queue"],
        help: "1 while the queue is paused, else 0 (exported by the sampling worker only).", buckets: [])
    /// Workers with a live heartbeat.
    public static let workersAlive = Definition(
        name: "airlock_workers_alive", kind: .gauge, labels: [],
        help: "Registered workers whose heartbeat is live (exported by the sampling worker only).", buckets: [])
    /// Workers whose heartbeat expired.
    public static let workersDead = Definition(
        name: "airlock_workers_dead", kind: .gauge, labels: [],
        help: "Registered workers whose heartbeat expired: their jobs await recovery (exported by the sampling worker only).", buckets: [])
    /// Whether this process is the fleet's sampler.
    public static let samplerLeader = Definition(
        name: "airlock_queue_sampler_leader", kind: .gauge, labels: [],
        help: "1 while this process holds the fleet's sampler lease and exports the queue gauges, else 0.", buckets: [])

    /// Queues the sampler found but gave no gauges.
    public static let samplerOmittedQueues = Definition(
        name: "airlock_queue_sampler_omitted_queues", kind: .gauge, labels: [],
        help: "Known queues the sampler exported no gauges for: names outside the queue-name rule, and any beyond --metrics-max-queues (exported by the sampling worker only).",
        buckets: [])

    /// Rows waiting in the PostgreSQL outbox, as the latest relay report says.
    public static let outboxPending = Definition(
        name: "airlock_outbox_pending_rows", kind: .gauge, labels: [],
        help: "Rows in the PostgreSQL outbox not yet delivered to Redis, from the most recent relay report; absent while no relay reports (exported by the sampling worker only).",
        buckets: [])
    /// Age of the oldest undelivered outbox row.
    public static let outboxOldestAge = Definition(
        name: "airlock_outbox_oldest_pending_age_seconds", kind: .gauge, labels: [],
        help: "Seconds since the oldest undelivered outbox row was committed; 0 when none waits (exported by the sampling worker only).",
        buckets: [])
    /// Outbox rows parked with an error.
    public static let outboxParked = Definition(
        name: "airlock_outbox_parked_rows", kind: .gauge, labels: [],
        help: "Outbox rows parked with an error, waiting for an operator (airlock-outbox parked list; exported by the sampling worker only).",
        buckets: [])

    /// Every metric, in the order `docs/OPERATIONS.md` lists them.
    public static let all: [Definition] = [
        jobs, runDuration, queueWait, inFlight, concurrency, reaperRecovered, redisReconnects,
        queueReady, queueDelayed, queueInFlight, queueDead, queueOldestAge, queuePaused, workersAlive, workersDead, samplerLeader,
        samplerOmittedQueues, outboxPending, outboxOldestAge, outboxParked,
    ]

    /// The definition of `name`, if it is one of Airlock's.
    public static func definition(named name: String) -> Definition? { byName[name] }

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The `task` label of jobs whose task this worker has not registered (or could not read), so
    /// a job's bytes never choose a label value.
    public static let unknownTask = "unknown"
}
