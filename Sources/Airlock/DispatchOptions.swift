#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// How and when an executor should dispatch an intent: Celery's `apply_async` options, typed.
///
/// Executors honour what they understand and ignore the rest; the in-process executor runs
/// everything at once, the Redis executor honours them all. ``extra`` carries options for
/// executors that understand more than these.
public struct DispatchOptions: Sendable, Hashable {
    /// The queue to route to; `nil` means the executor's default queue.
    public var queue: String?
    /// Run no sooner than this long after dispatch.
    public var countdown: Duration?
    /// Run no sooner than this moment. When both are set, the later of the two wins.
    public var eta: Date?
    /// Drop the job, unrun, if it has not started by then.
    public var expires: Expiry?
    /// Retries after the first attempt; `nil` means the task's or worker's default.
    public var maxRetries: Int?
    /// Relative importance; see the executor's documentation for its scale.
    public var priority: Int?
    /// A second intent with the same key, within the key's time-to-live, is not dispatched again.
    public var idempotencyKey: String?
    /// On a partitioned queue (a Redis Cluster queue spread over several slots), intents with the
    /// same key go to the same partition, so they are taken in the order they were enqueued;
    /// without one, intents spread by id. Executors without partitions ignore it.
    public var partitionKey: String?
    /// Options for executors that understand more than the fields above.
    public var extra: [String: JSONValue]

    /// Creates options; every argument is optional.
    public init(
        queue: String? = nil,
        countdown: Duration? = nil,
        eta: Date? = nil,
        expires: Expiry? = nil,
        maxRetries: Int? = nil,
        priority: Int? = nil,
        idempotencyKey: String? = nil,
        partitionKey: String? = nil,
        extra: [String: JSONValue] = [:]
    ) {
        self.queue = queue
        self.countdown = countdown
        self.eta = eta
        self.expires = expires
        self.maxRetries = maxRetries
        self.priority = priority
        self.idempotencyKey = idempotencyKey
        self.partitionKey = partitionKey
        self.extra = extra
    }

    /// These options with every field set in `overrides` taking precedence (`extra` is merged key by key).
    public func merged(with overrides: DispatchOptions) -> DispatchOptions {
        var result = self
        result.queue = overrides.queue ?? queue
        result.countdown = overrides.countdown ?? countdown
        result.eta = overrides.eta ?? eta
        result.expires = overrides.expires ?? expires
        result.maxRetries = overrides.maxRetries ?? maxRetries
        result.priority = overrides.priority ?? priority
        result.idempotencyKey = overrides.idempotencyKey ?? idempotencyKey
        result.partitionKey = overrides.partitionKey ?? partitionKey
        result.extra = extra.merging(overrides.extra) { _, new in new }
        return result
    }

    /// When the job becomes due if dispatched at `now`: the later of `now + countdown` and `eta`,
    /// or `nil` when neither is set.
    public func dueDate(dispatchedAt now: Date) -> Date? {
        let fromCountdown = countdown.map { now.addingTimeInterval($0.timeInterval) }
        switch (fromCountdown, eta) {
        case (nil, nil): return nil
        case (let c?, nil): return c
        case (nil, let e?): return e
        case (let c?, let e?): return max(c, e)
        }
    }

    /// The moment after which the job must not start if dispatched at `now`, or `nil`.
    public func expiryDate(dispatchedAt now: Date) -> Date? {
        switch expires {
        case nil: nil
        case .after(let d)?: now.addingTimeInterval(d.timeInterval)
        case .at(let date)?: date
        }
    }
}

/// When an undelivered job stops being worth running.
public enum Expiry: Sendable, Hashable {
    /// This long after dispatch.
    case after(Duration)
    /// At this moment.
    case at(Date)
}

extension Duration {
    /// The duration in seconds, as Foundation's `TimeInterval`.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
