public import Airlock

/// How a ``Worker`` runs its tasks, with production defaults. Where the jobs come from is the
/// ``JobSource``'s business (for Redis: `RedisJobSource` and its configuration).
public struct WorkerConfiguration: Sendable {
    /// Queues to consume, in priority order: when jobs are ready on several, free slots go to the
    /// earlier queue first (see `docs/OPERATIONS.md`).
    public var queues: [String]
    /// Tasks that run at the same time.
    public var concurrency: Int = 10
    /// Jobs taken beyond those running, so a free slot never waits for a round trip. They stay
    /// recorded as this worker's and go back to the front of their queue on shutdown.
    public var prefetch: Int = 10
    /// Most jobs one fetch moves at once.
    public var fetchBatch: Int = 100
    /// How long a graceful shutdown waits for running tasks.
    public var shutdownTimeout: Duration = .seconds(30)
    /// Worker id prefix shown by `airlock-workerd workers` (a unique suffix is always added).
    public var name: String?
    /// How often the worker proves it is alive.
    public var heartbeatInterval: Duration = .seconds(1)
    /// How long a heartbeat lasts; a worker silent this long is dead and its jobs are recovered.
    public var heartbeatTTL: Duration = .seconds(5)
    /// How often each worker looks for dead workers.
    public var reaperInterval: Duration = .seconds(2)
    /// How often the worker compares what the source says it holds with the jobs it holds. A job
    /// found held but unknown at two consecutive sweeps is stranded (a fetch that ran after its
    /// connection had failed) and goes back to its queue. Keep it well above the source's request
    /// timeout.
    public var orphanSweepInterval: Duration = .seconds(30)
    /// Retries after the first attempt when neither the message nor the task says.
    public var defaultMaxRetries: Int = 3
    /// Delay before retries when the task does not say.
    public var retryStrategy: any RetryStrategy = .exponentialJitter()
    /// Longest a task attempt may run when the task does not say; `nil` for no limit.
    public var defaultTimeout: Duration?
    /// How long a stored result (for producers that ask for one) is kept.
    public var resultExpiry: Duration = .seconds(24 * 3600)
    /// Largest message the worker reads, in bytes; a larger one is dead-lettered unread (its bytes
    /// kept) with the reason. The producer's default limit is the same 512 KiB.
    public var maxMessageBytes: Int = 512 * 1024
    /// Longest an idle fetcher waits in the source before it re-checks pause and shutdown.
    public var blockTimeout: Duration = .milliseconds(500)
    /// Spacing of retries while the source is unavailable.
    public var sourceBackoff = Backoff()
    /// Whether this worker enqueues the registry's periodic jobs (``TaskRegistry/schedules``).
    /// Any number of workers may: each tick is enqueued once across them.
    public var runsSchedules = true

    /// A configuration consuming `queues`, every other setting at its default.
    public init(queues: [String] = ["default"]) { self.queues = queues }

    /// Throws when a setting cannot work: an invalid or repeated queue name, no queue, a
    /// concurrency below 1, a negative prefetch or a message limit below 1.
    public func validate() throws(WorkerConfigurationError) {
        if queues.isEmpty { throw WorkerConfigurationError("a worker needs at least one queue") }
        for queue in queues {
            if let problem = QueueName.problem(with: queue) { throw WorkerConfigurationError(problem) }
        }
        if Set(queues).count != queues.count { throw WorkerConfigurationError("queue names repeat in \(queues.map(SafeText.escape))") }
        if concurrency < 1 { throw WorkerConfigurationError("concurrency must be at least 1") }
        if prefetch < 0 { throw WorkerConfigurationError("prefetch must not be negative") }
        if fetchBatch < 1 { throw WorkerConfigurationError("fetchBatch must be at least 1") }
        if maxMessageBytes < 1 { throw WorkerConfigurationError("maxMessageBytes must be at least 1") }
        if !Envelope.Limits.attempts.contains(defaultMaxRetries) {
            throw WorkerConfigurationError("defaultMaxRetries must be in \(Envelope.Limits.attempts.lowerBound)...\(Envelope.Limits.attempts.upperBound)")
        }
        if heartbeatTTL <= heartbeatInterval {
            throw WorkerConfigurationError("heartbeatTTL (\(heartbeatTTL)) must be longer than heartbeatInterval (\(heartbeatInterval)), or a live worker is reaped")
        }
    }
}

/// A ``WorkerConfiguration`` that cannot work; the description says which setting and why.
public struct WorkerConfigurationError: AirlockError {
    /// What is wrong, in one line.
    public let description: String
    init(_ description: String) { self.description = description }
}
