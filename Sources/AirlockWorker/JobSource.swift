public import Airlock

/// Where a ``Worker``'s jobs come from and where their outcomes go: the engine's only view of a
/// queue back end.
///
/// The engine (buffer, task slots, retries, shutdown ordering, timeouts) is the same whatever the
/// back end; a source implements each step atomically in its own terms. `RedisJobSource` (in
/// `AirlockRedis`) is the production conformance; ``InMemoryJobSource`` runs the whole engine in
/// memory, for the engine's own tests and for an application's unit tests of its tasks.
///
/// Contract, in the order a run uses it:
/// 1. ``open(_:)`` once; a fatal error (see ``classify(_:)``) ends the run before it starts.
/// 2. Per fetch lane (``lanes(for:)``): ``take(_:from:)`` moves jobs into this worker's hands —
///    *atomically* recorded as held by it, so a crash never loses one — and
///    ``waitForJobs(on:timeout:claimOne:)`` waits for work without polling.
/// 3. ``settle(_:)`` records outcomes; it must be idempotent, since a batch whose reply was lost
///    is sent again. A settlement of a job the worker no longer holds (recovered by another
///    worker) does nothing.
/// 4. ``heartbeat(held:)`` and ``recoverAbandonedJobs()`` on timers; ``promoteDueJobs(of:)`` and
///    ``waitForDelayedChange(on:timeout:)`` per queue.
/// 5. ``close(clean:)`` once, `clean` when the worker holds nothing any more.
///
/// A source may be run again after ``close(clean:)``: everything it opens, it opens in ``open(_:)``.
public protocol JobSource: Sendable {
    /// What the back end is called in log lines ("Redis").
    var name: String { get }

    /// How messages are read and written (Airlock envelopes, Celery protocol v2, …).
    var codec: any WireCodec { get }

    /// Connects and registers the worker. Called once per run, before anything else.
    func open(_ worker: WorkerRegistration) async throws

    /// The lanes a queue is fetched from, highest priority first (one for most back ends; Celery's
    /// kombu layout has a key per priority step). The engine runs one fetcher per lane.
    func lanes(for queue: String) -> [FetchLane]

    /// Takes up to `maximum` ready jobs from `lane` into this worker's hands, atomically recorded
    /// as held by it. `.paused` when the queue is paused, `.limited` when a limit on the queue
    /// lets nothing be taken now (nothing taken; the jobs keep their place).
    func take(_ maximum: Int, from lane: FetchLane) async throws -> TakeResult

    /// Waits, after ``take(_:from:)`` answered `.limited(retryAfter:)`, until the limit may let a
    /// job through: `retryAfter` when given (the next rate token), else until another worker
    /// frees a lease — at most `timeout`, so a changed limit or a shutdown is seen. Waking early
    /// is harmless: the engine takes again, and the source checks the limit again.
    func waitForLimit(on lane: FetchLane, retryAfter: Duration?, timeout: Duration) async throws

    /// Waits up to `timeout` for `lane` to have work, without polling. With `claimOne`, a job that
    /// arrives is taken (as ``take(_:from:)`` would) and returned; without, nothing is taken and
    /// the engine follows with ``take(_:from:)`` once it has a free slot.
    func waitForJobs(on lane: FetchLane, timeout: Duration, claimOne: Bool) async throws -> [FetchedJob]

    /// Records outcomes, in order. Idempotent: a job no longer held is skipped.
    func settle(_ settlements: [Settlement]) async throws

    /// Proves the worker is alive and reports its load; `.reaped` when another worker had given
    /// it up for dead (stalled past its heartbeat TTL) and returned its jobs meanwhile.
    func heartbeat(held: Int) async throws -> HeartbeatResult

    /// Returns the jobs of workers whose heartbeat expired to their queues; how many.
    func recoverAbandonedJobs() async throws -> Int

    /// Moves jobs of `queue` whose due time has come to its ready jobs.
    func promoteDueJobs(of queue: String) async throws -> Promotion

    /// Returns `true` when a producer may have added a delayed job to `queue` that is due
    /// earlier than the promoter knows, `false` after `timeout`.
    func waitForDelayedChange(on queue: String, timeout: Duration) async throws -> Bool

    /// The jobs this worker's record says it holds for `queue` (the back end's truth).
    func heldJobs(of queue: String) async throws -> [[UInt8]]

    /// Returns to its queue every job held for `lane`'s queue except those in `keeping` (counted
    /// with repeats): the jobs a fetch whose reply was lost took without the worker knowing. Done
    /// through the lane's own connection where the source has one, so a request still in transit
    /// on the failed one is dealt with first.
    func returnJobs(of lane: FetchLane, keeping: [[UInt8]]) async throws -> Int

    /// Returns these held jobs of `queue` (each if still held); how many were.
    func returnJobs(_ jobs: [[UInt8]], of queue: String) async throws -> Int

    /// The executor that dispatches the intents a task enqueues (they leave only if it succeeds).
    func followUpExecutor(origin: String) -> any Executor

    /// Appends `token` where the `airlock.record` diagnostic task records (a smoke test reads it).
    func recordDiagnostic(_ token: String) async throws

    /// Ends the run; `clean` when the worker holds nothing any more (it then deregisters).
    func close(clean: Bool) async

    /// Takes the ids of jobs this worker holds that an operator asked to cancel since the last
    /// call (the engine calls it after each heartbeat).
    func takeCancellations() async throws -> [String]

    /// The queues the worker consumes for a configured `queue`, once ``open(_:)`` has returned:
    /// the queue itself, or every partition of a partitioned queue (each then a queue of its own
    /// for the engine: its lanes, promoter and reconciliation).
    func partitions(of queue: String) -> [String]

    /// Whether this source runs periodic jobs (``claimTicks(_:)``).
    var supportsSchedules: Bool { get }

    /// In one atomic step: records `claim.initialize` as the schedule's last tick if it has
    /// none (and enqueues nothing), or enqueues each job whose tick is later than the recorded
    /// last tick and records `claim.advanceTo` if later still. Any number of workers may claim
    /// the same ticks; each is enqueued once.
    func claimTicks(_ claim: TickClaim) async throws -> TickClaimResult

    /// Publishes the schedules this worker runs, for operators (`airlock-workerd schedules`).
    func describeSchedules(_ schedules: [PeriodicJob], worker: String) async throws

    /// What kind of failure `error` (thrown by this source) is, so the engine knows whether to
    /// retry, reconcile or stop.
    func classify(_ error: any Error) -> SourceFailure
}

extension JobSource {
    /// `job source`.
    public var name: String { "job source" }

    /// Unknown errors are taken as outages whose request may have run: retried with backoff,
    /// and followed by a reconciliation of what the worker holds.
    public func classify(_ error: any Error) -> SourceFailure { .unavailable(mayHaveBeenApplied: true) }

    /// Sleeps `retryAfter` (or `timeout`), at most `timeout`: for a source with nothing to block on.
    public func waitForLimit(on lane: FetchLane, retryAfter: Duration?, timeout: Duration) async throws {
        try? await Task.sleep(for: min(retryAfter ?? timeout, timeout))
    }

    /// No cancellations.
    public func takeCancellations() async throws -> [String] { [] }

    /// No partitions: every queue is itself.
    public func partitions(of queue: String) -> [String] { [queue] }

    /// No periodic jobs.
    public var supportsSchedules: Bool { false }

    /// Throws ``ScheduleError`` (`unsupported`).
    public func claimTicks(_ claim: TickClaim) async throws -> TickClaimResult {
        throw ScheduleError(.unsupported, "\(name) cannot run periodic jobs")
    }

    /// Publishes nothing.
    public func describeSchedules(_ schedules: [PeriodicJob], worker: String) async throws {}
}

/// One place jobs of a queue are fetched from.
public struct FetchLane: Sendable, Hashable, CustomStringConvertible {
    /// The queue.
    public let queue: String
    /// The source's name for the lane (for Redis, the key).
    public let name: String
    /// Creates a lane.
    public init(queue: String, name: String) {
        self.queue = queue
        self.name = name
    }
    /// `queue` (and the lane name when it differs).
    public var description: String { name == queue ? queue : "\(queue) (\(name))" }
}

/// A job as fetched: the exact bytes the back end holds (needed verbatim to settle it) and its queue.
public struct FetchedJob: Sendable, Hashable {
    /// The queue it came from.
    public let queue: String
    /// The message exactly as it sat in the back end.
    public let raw: [UInt8]
    /// Creates a fetched job.
    public init(queue: String, raw: [UInt8]) {
        self.queue = queue
        self.raw = raw
    }
}

/// What ``JobSource/take(_:from:)`` found.
public enum TakeResult: Sendable {
    /// These jobs (possibly none) are now held by this worker.
    case jobs([FetchedJob])
    /// The queue is paused: nothing was taken.
    case paused
    /// A fleet-wide limit on the queue lets nothing be taken now (nothing was taken): wait
    /// `retryAfter` for a rate limit's next token, or — `nil` — for a concurrency lease to be freed
    /// (see ``JobSource/waitForLimit(on:retryAfter:timeout:)``).
    case limited(retryAfter: Duration?)
}

/// What ``JobSource/heartbeat(held:)`` learnt.
public enum HeartbeatResult: Sendable, Equatable {
    /// Alive and registered.
    case alive
    /// Another worker had recovered this worker's jobs (it stalled past its TTL); the worker must
    /// give up the jobs it holds but has not started.
    case reaped
    /// The queues behind the worker's configured ones changed (on Redis Cluster, a partitioned
    /// queue was given more partitions): the worker restarts in place — a graceful stop, then
    /// the source opened again — to consume them all.
    case queuesChanged
}

/// What ``JobSource/promoteDueJobs(of:)`` did.
public struct Promotion: Sendable, Equatable {
    /// Jobs moved to the ready jobs.
    public var moved: Int
    /// Whether more due jobs wait (the source moves a bounded batch per call).
    public var more: Bool
    /// When the next delayed job is due (ms since the epoch), if any.
    public var nextDueAt: Int64?
    /// Creates a promotion report.
    public init(moved: Int, more: Bool, nextDueAt: Int64?) {
        self.moved = moved
        self.more = more
        self.nextDueAt = nextDueAt
    }
}

/// How the engine treats a failure of its source.
public enum SourceFailure: Sendable, Equatable {
    /// The back end could not be reached or the connection broke: retry with backoff. When the
    /// request may have run, the engine reconciles what the worker holds before fetching again.
    case unavailable(mayHaveBeenApplied: Bool)
    /// The back end answered and refused (out of memory, loading, busy): retry with backoff.
    case refused(reason: String)
    /// The back end refuses this worker for good (credentials, permissions): stop the worker.
    case fatal
}

/// Who the worker is, as ``JobSource/open(_:)`` registers it.
public struct WorkerRegistration: Sendable {
    /// The worker id (`<name>-<pid>-<random>`).
    public var id: String
    /// The queues it consumes, in priority order.
    public var queues: [String]
    /// How long a heartbeat proves the worker alive.
    public var heartbeatTTL: Duration
    /// Static facts operators see (host, pid, concurrency, version, protocol, start time…).
    public var description: [String: String]

    /// Creates a registration.
    public init(id: String, queues: [String], heartbeatTTL: Duration, description: [String: String]) {
        self.id = id
        self.queues = queues
        self.heartbeatTTL = heartbeatTTL
        self.description = description
    }
}
