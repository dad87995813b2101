/// One atomic step of a scheduler in its ``JobSource``: enqueue the jobs of the ticks no worker
/// enqueued yet, and record the latest tick considered (``JobSource/claimTicks(_:)``).
public struct TickClaim: Sendable {
    /// The schedule's name (``PeriodicJob/name``).
    public var schedule: String
    /// The queue its jobs go to; the schedule's record lives beside it (in Redis, in its slot).
    public var queue: String
    /// Each tick (ms since the epoch) with its job's message, oldest first. A tick no later than
    /// the recorded last tick is skipped: another worker enqueued it.
    public var jobs: [(tick: Int64, message: [UInt8])]
    /// Recorded as the last tick when it is later than the recorded one.
    public var advanceTo: Int64?
    /// Recorded as the last tick when the schedule has none yet (its first pass ever): ticks
    /// before it passed before the schedule existed and are never enqueued.
    public var initialize: Int64?

    /// Creates a claim.
    public init(schedule: String, queue: String, jobs: [(tick: Int64, message: [UInt8])] = [], advanceTo: Int64? = nil, initialize: Int64? = nil) {
        self.schedule = schedule
        self.queue = queue
        self.jobs = jobs
        self.advanceTo = advanceTo
        self.initialize = initialize
    }
}

/// What ``JobSource/claimTicks(_:)`` did.
public struct TickClaimResult: Sendable, Hashable {
    /// The schedule's last tick as recorded after the claim; `nil` when it has none.
    public var last: Int64?
    /// How many of the claim's jobs were enqueued (the others' ticks were taken).
    public var enqueued: Int
    /// Creates a result.
    public init(last: Int64?, enqueued: Int) {
        self.last = last
        self.enqueued = enqueued
    }
}
