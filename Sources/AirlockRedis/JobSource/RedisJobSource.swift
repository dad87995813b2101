public import Airlock
public import AirlockRedisClient
public import AirlockWorker
public import Logging
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// The worker's ``JobSource`` on Redis: the key layout and scripts of `docs/PROTOCOL.md`.
///
/// ```swift
/// let source = try RedisJobSource(url: "redis://127.0.0.1:6379/0", namespace: "airlock")
/// let worker = Worker(source: source, configuration: WorkerConfiguration(queues: ["default"]), registry: tasks)
/// ```
///
/// Taking a job is one atomic step — a Lua batch move, or `BLMOVE` when idle — into the worker's
/// own in-flight list (`<ns>:{Q}:inflight:<worker>`); settling is one script per queue and batch
/// that removes the job from that list and records its outcome in the same step. Each fetch lane
/// and each wake listener blocks on a connection (a thread) of its own, so blocking never occupies
/// the cooperative pool. Every connection is opened by ``open(_:)`` and closed by ``close(clean:)``.
public final class RedisJobSource: JobSource, CustomStringConvertible {
    /// Everything the source needs to know, with production defaults.
    public struct Configuration: Sendable {
        /// Where Redis is.
        public var redis: RedisConfiguration
        /// Key prefix; must match the producers'.
        public var namespace: String = "airlock"
        /// The message format of the queues: Airlock envelopes, or Celery's protocol v2.
        public var wireProtocol: WireProtocol = .native
        /// Entries kept in each queue's dead-letter list.
        public var deadLetterCap: Int = 10_000
        /// Replicated acknowledgement of settlements: after each batch, `WAIT` on the settle
        /// connection until this many replicas received it. nil takes ``redis``'s (the URL's
        /// `wait_replicas`/`wait_timeout`); ``RedisReplication/none`` turns it off. A batch that
        /// reached fewer replicas in time stays settled (it is on the primary) and is logged and
        /// counted (`airlock_settlements_unreplicated_total`): a failover could still make its jobs
        /// run again, never lose them.
        public var replication: RedisReplication?
        /// Fleet-wide limits this worker declares, by queue name: written to each queue's
        /// `<ns>:{Q}:limit` at ``RedisJobSource/open(_:)`` (a different record there is replaced,
        /// and logged at notice: the last worker to start wins). Queues not named keep whatever
        /// record an operator set (`airlock-workerd limit`). Every worker enforces the record in
        /// Redis, declared or not.
        public var limits: [String: QueueLimit] = [:]

        /// A configuration for `redis`, every other setting at its default.
        public init(redis: RedisConfiguration) { self.redis = redis }

        /// The keys this configuration's namespace uses.
        public var keys: RedisKeys { RedisKeys(namespace: namespace, for: redis) }

        /// The replicated acknowledgement in force: ``replication``, else ``redis``'s, else none.
        public var settlementReplication: RedisReplication { replication ?? redis.replication ?? .none }
    }

    /// The settings in force.
    public let configuration: Configuration
    /// The key layout.
    public let keys: RedisKeys
    /// How messages are read and written (from ``Configuration/wireProtocol``).
    public let codec: any WireCodec
    let logger: Logger
    let run = Mutex<Run?>(nil)
    /// Idle lanes that Redis refuses `BLMOVE` (at `maxmemory`) poll until this instant.
    let blockingRefused = Mutex<[String: (until: ContinuousClock.Instant, refusals: Int)]>([:])
    /// Whether the last settlement batch reached too few replicas, so the log says it once per change.
    let replicationShort = Atomic<Bool>(false)
    /// Lanes whose queue had a limit record at their last fetch: an idle wait there must not
    /// claim a job with `BLMOVE`, which would take it past the limit.
    let limitedLanes = Mutex<Set<String>>([])
    /// The partition count last warned about, by queue (see `warnOfNewPartitions`).
    let partitionWarnings = Mutex<[String: Int]>([:])

    /// The connections and identity of one run (between ``open(_:)`` and ``close(clean:)``).
    struct Run: Sendable {
        /// The registration, its queues expanded to their partitions.
        let worker: WorkerRegistration
        /// Each configured queue's partitions (the queue alone when it is not partitioned).
        let partitions: [String: [String]]
        /// Heartbeats, the reaper, the promoters and the sweep.
        let control: RedisClient
        /// Settlements.
        let settle: RedisClient
        /// Follow-up jobs and the diagnostic tasks' writes.
        let producer: RedisClient
        /// One per fetch lane, by lane name.
        let fetch: [String: RedisClient]
        /// One wake listener per queue.
        let wake: [String: RedisClient]
        let beats: Counter

        var all: [RedisClient] { [control, settle, producer] + Array(fetch.values) + Array(wake.values) }
    }

    /// A counter shared by the copies of one run.
    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
        func reset() { value.store(0, ordering: .relaxed) }
    }

    /// A source with `configuration`.
    public init(configuration: Configuration, logger: Logger = Logger(label: "airlock.worker")) {
        self.configuration = configuration
        self.keys = configuration.keys
        switch configuration.wireProtocol {
        case .native:
            let keys = configuration.keys
            self.codec = NativeCodec(resultKey: { queue, id in keys.result(queue, jobID: id) })
        case .celery:
            self.codec = CeleryCodec()
        }
        self.logger = logger
    }

    /// A source for `url` (see ``RedisConfiguration/init(url:)``) with every other setting at its default.
    public convenience init(url: String, namespace: String = "airlock", logger: Logger = Logger(label: "airlock.worker")) throws(RedisError) {
        var configuration = Configuration(redis: try RedisConfiguration(url: url))
        configuration.namespace = namespace
        self.init(configuration: configuration, logger: logger)
    }

    /// `Redis`.
    public var name: String { "Redis" }

    /// The Redis URL, password redacted.
    public var description: String { configuration.redis.redactedURL }

    // MARK: Lifecycle

    /// Connects (waiting out nothing: an unreachable Redis throws, and the worker retries),
    /// registers the worker with its first heartbeat and warns once when Redis has no AOF.
    public func open(_ worker: WorkerRegistration) async throws {
        if let previous = run.withLock({ $0 }) {
            // A failed start is retried: drop the connections of the last attempt.
            for client in previous.all { await client.close() }
        }
        let redis = configuration.redis
        func client(_ name: String) -> RedisClient { RedisClient(configuration: redis, name: name, logger: logger) }
        let control = client("airlock-worker")
        do {
            try await control.connect()
        } catch {
            await control.close()
            throw error
        }
        // A partitioned queue is consumed as its partitions: registered, fetched and promoted each.
        var declared: [String: Int] = [:]
        if configuration.wireProtocol == .native {
            do {
                declared = try await QueuePartitions.declared(control, keys: keys)
            } catch where error.serverErrorCode != nil {
                // Something else holds the key (WRONGTYPE): the queues are consumed as they are.
                logger.error("cannot read the partitioned queues; consuming every queue unpartitioned", metadata: [
                    "key": "\(SafeText.escape(keys.partitions))", "error": "\(error)"])
            } catch {
                await control.close()
                throw error
            }
        }
        var partitions: [String: [String]] = [:]
        for queue in worker.queues { partitions[queue] = QueuePartitions.names(queue, count: declared[queue] ?? 1) }
        var registration = worker
        registration.queues = worker.queues.flatMap { partitions[$0] ?? [$0] }
        var fetch: [String: RedisClient] = [:]
        var wake: [String: RedisClient] = [:]
        for queue in registration.queues {
            for lane in lanes(for: queue) { fetch[lane.name] = client("airlock-fetch") }
            wake[queue] = client("airlock-wake")
        }
        let current = Run(
            worker: registration, partitions: partitions, control: control, settle: client("airlock-settle"), producer: client("airlock-followups"),
            fetch: fetch, wake: wake, beats: Counter())
        run.withLock { $0 = current }
        if registration.queues.count > worker.queues.count {
            logger.info("consuming partitioned queues", metadata: [
                "queues": "\(registration.queues.map(SafeText.escape).joined(separator: ","))"])
        }
        _ = try await beat(current, held: 0, full: true)
        try await declareLimits(current.control)
        await warnWithoutAppendOnlyFile(current.control)
    }

    /// Deregisters (when `clean`) and closes every connection of the run.
    public func close(clean: Bool) async {
        guard let current = run.withLock({ state -> Run? in defer { state = nil }; return state }) else { return }
        if clean { await deregister(current) }
        for client in current.all { await client.close() }
    }

    /// Writes ``Configuration/limits`` where the record differs; says so when one was replaced.
    private func declareLimits(_ client: RedisClient) async throws(RedisError) {
        for queue in configuration.limits.keys.sorted() {
            guard let limit = configuration.limits[queue] else { continue }
            let found = try await client.send(RedisCommand("HGETALL", keys.limit(queue))).throwingServerError().fields()
            let previous = QueueLimit(record: found)
            guard previous != limit else { continue }
            _ = try await client.evaluate([QueueLimit.write(limit, queue: queue, keys: keys)])[0].throwingServerError()
            if let previous {
                logger.notice("replaced the queue's limit with the one this worker declares", metadata: [
                    "queue": "\(SafeText.escape(queue))", "limit": "\(limit)", "previous": "\(previous)",
                ])
            } else {
                logger.info("declared the queue's limit", metadata: ["queue": "\(SafeText.escape(queue))", "limit": "\(limit)"])
            }
        }
    }

    /// The run's connections; a call outside a run is a programming error reported as not connected.
    func current() throws(RedisError) -> Run {
        guard let current = run.withLock({ $0 }) else { throw RedisError.notConnected }
        return current
    }

    // MARK: Lanes

    /// Every partition of `queue` as declared in Redis when the run began (the queue alone when
    /// it is not partitioned, and before ``open(_:)``).
    public func partitions(of queue: String) -> [String] {
        run.withLock { $0?.partitions[queue] } ?? [queue]
    }

    /// Native queues have one lane (`<ns>:{Q}:ready`); Celery queues kombu's four priority keys.
    public func lanes(for queue: String) -> [FetchLane] {
        switch configuration.wireProtocol {
        case .native: [FetchLane(queue: queue, name: keys.ready(queue))]
        case .celery: CeleryMessage.queueKeys(queue).map { FetchLane(queue: queue, name: $0) }
        }
    }

    /// Where due, retried, recovered and returned jobs of `queue` go: the key consumed first.
    func homeKey(_ queue: String) -> String {
        switch configuration.wireProtocol {
        case .native: keys.ready(queue)
        case .celery: queue
        }
    }

    // MARK: Producing

    /// A ``RedisExecutor`` on the run's producer connection, in this namespace.
    ///
    /// Follow-ups wait for no replicas of their own: a task's follow-ups are written before its
    /// settlement, and replication keeps Redis's order, so a replica that has the settlement has
    /// them too — and a failover that loses them loses the settlement as well, and the job runs
    /// (and enqueues them) again.
    public func followUpExecutor(origin: String) -> any Executor {
        guard let current = try? current() else {
            return RedisExecutor(client: RedisClient(configuration: configuration.redis), namespace: configuration.namespace, replication: RedisReplication.none)
        }
        return RedisExecutor(
            client: current.producer, namespace: configuration.namespace, defaultQueue: current.worker.queues.first ?? "default", origin: origin,
            replication: RedisReplication.none)
    }

    /// `RPUSH <ns>:diag:record token`.
    public func recordDiagnostic(_ token: String) async throws {
        _ = try await current().producer.send(RedisCommand("RPUSH", keys.diagRecord, token))
    }

    // MARK: Failures

    /// Wrong credentials and missing ACL permissions are fatal; other server replies are refusals
    /// Redis may lift; connection trouble is an outage (which may have applied the request when
    /// it broke after the request was written).
    public func classify(_ error: any Error) -> SourceFailure {
        guard let redis = error as? RedisError else { return .unavailable(mayHaveBeenApplied: true) }
        if redis.isConfigurationProblem { return .fatal }
        if redis.kind == .server { return .refused(reason: redis.serverErrorCode ?? "ERR") }
        return .unavailable(mayHaveBeenApplied: redis.mayHaveBeenApplied)
    }

    /// With Redis's stock RDB-only persistence a crash of Redis loses every job acknowledged since
    /// the last snapshot (docs/OPERATIONS.md, "Persistence"); say so once at start when Redis shows
    /// it. An ACL without INFO, or a managed Redis that hides it, gets no warning.
    private func warnWithoutAppendOnlyFile(_ client: RedisClient) async {
        guard let info = try? await client.send(RedisCommand("INFO", "persistence")).string else { return }
        if Self.appendOnlyDisabled(info: info) {
            logger.warning("Redis has no append-only file (appendonly no): if Redis crashes, jobs acknowledged since its last snapshot are lost; use appendonly yes (see docs/OPERATIONS.md, Persistence)",
                           metadata: ["redis": "\(configuration.redis.redactedURL)"])
        }
    }

    /// Whether an `INFO persistence` reply says the AOF is off.
    static func appendOnlyDisabled(info: String) -> Bool {
        info.split(whereSeparator: \.isNewline).contains { $0.trimmingSpaces() == "aof_enabled:0" }
    }
}

/// The message format of a Redis queue.
public enum WireProtocol: String, Sendable, CaseIterable {
    /// Airlock envelopes on `<ns>:{Q}:ready` (see `docs/PROTOCOL.md`).
    case native
    /// Celery protocol v2 messages on kombu's queue keys (`Q`, then its priority sub-keys), with
    /// results stored the way Celery's Redis result backend stores them (see `docs/CELERY.md`).
    case celery

    /// The codec that reads and writes this format.
    public var codec: any WireCodec {
        switch self {
        case .native: NativeCodec()
        case .celery: CeleryCodec()
        }
    }
}
