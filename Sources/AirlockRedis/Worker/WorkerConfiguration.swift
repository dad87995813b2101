/// Everything a ``Worker`` needs to know, with production defaults.
public struct WorkerConfiguration: Sendable {
    /// Where Redis is.
    public var redis: RedisConfiguration
    /// Key prefix; must match the producers'.
    public var namespace: String = "airlock"
    /// Queues to consume, in priority order: when jobs are ready on several, free slots go to the
    /// earlier queue first (see `docs/OPERATIONS.md`).
    public var queues: [String] = ["default"]
    /// Tasks that run at the same time.
    public var concurrency: Int = 10
    /// Jobs taken from Redis beyond those running, so a free slot never waits for a round trip.
    /// They stay recorded as this worker's in-flight jobs and go back to the front of their queue
    /// on shutdown.
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
    /// Entries kept in each queue's dead-letter list.
    public var deadLetterCap: Int = 10_000
    /// Retries after the first attempt when neither the envelope nor the task says.
    public var defaultMaxRetries: Int = 3
    /// Delay before retries when the task does not say.
    public var retryStrategy: any RetryStrategy = .exponentialJitter()
    /// Longest a task attempt may run when the task does not say; `nil` for no limit.
    public var defaultTimeout: Duration?
    /// The message format of the queues: Airlock envelopes, or Celery's protocol v2.
    public var wireProtocol: WireProtocol = .native
    /// How long a stored result (Celery protocol) is kept.
    public var resultExpiry: Duration = .seconds(24 * 3600)
    /// Longest an idle fetcher blocks in Redis before it re-checks pause and shutdown.
    public var blockTimeout: Duration = .milliseconds(500)

    /// A configuration for `redis`, every other setting at its default.
    public init(redis: RedisConfiguration) { self.redis = redis }

    /// The keys this configuration's namespace uses.
    public var keys: RedisKeys { RedisKeys(namespace: namespace) }
}
