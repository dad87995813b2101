import Airlock
import AirlockRedisClient
import AirlockWorker

/// A queue's limit as Redis holds it, with the concurrency leases workers hold against it.
public struct QueueLimitStatus: Sendable, Hashable {
    /// The queue.
    public var queue: String
    /// The limit record; `nil` when the queue has none.
    public var limit: QueueLimit?
    /// Jobs each worker holds against the concurrency limit (worker id → count), as its last
    /// fetch or settlement left it. A killed worker keeps its entry until a reaper recovers its
    /// jobs (its heartbeat TTL after it stopped beating).
    public var leases: [String: Int]

    /// The sum of ``leases``: the jobs the fleet holds against the concurrency limit.
    public var held: Int { leases.values.reduce(0, +) }

    /// A status with the given values.
    public init(queue: String, limit: QueueLimit?, leases: [String: Int] = [:]) {
        self.queue = queue
        self.limit = limit
        self.leases = leases
    }
}

extension RedisAdmin {
    /// Sets `queue`'s fleet-wide limit to exactly `limit` (replacing any other; leases and the
    /// rate's state are kept), in one script call. Workers enforce it from their next fetch.
    /// A queue need not be known yet: its workers find the limit when they start.
    /// - Returns: the limit it replaced, if any.
    /// - Throws: ``AdminError`` (`invalidInput`) for a name no worker could consume; ``RedisError``.
    @discardableResult
    public func setLimit(_ limit: QueueLimit, on queue: String) async throws -> QueueLimit? {
        try Self.checkName(queue)
        let previous = try await self.limit(of: queue).limit
        _ = try await evaluate([QueueLimit.write(limit, queue: queue, keys: keys)])
        return previous
    }

    /// `queue`'s limit and the leases held against it (one pipelined round trip: `HGETALL` of
    /// the record and of the leases).
    /// - Throws: ``AdminError`` (`invalidInput`) for a name no worker could consume; ``RedisError``.
    public func limit(of queue: String) async throws -> QueueLimitStatus {
        try Self.checkName(queue)
        let replies = try await pipeline([RedisCommand("HGETALL", keys.limit(queue)), RedisCommand("HGETALL", keys.limitHeld(queue))])
        return QueueLimitStatus(queue: queue, limit: QueueLimit(record: try replies[0].fields()), leases: try Self.leases(replies[1]))
    }

    /// Removes `queue`'s limit and every key it used (leases, rate state, wake list): its jobs are
    /// taken as fast as workers can from their next fetch.
    /// - Returns: whether a limit was set.
    /// - Throws: ``AdminError`` (`invalidInput`) for a name no worker could consume; ``RedisError``.
    @discardableResult
    public func clearLimit(_ queue: String) async throws -> Bool {
        try Self.checkName(queue)
        return try await evaluate([QueueLimit.write(nil, queue: queue, keys: keys)])[0].integer() == 1
    }

    /// Worker id → count from an `HGETALL` of `<ns>:{Q}:limit:held` (a value that is not a
    /// number counts as 0, as the fetch script counts it).
    static func leases(_ reply: RedisReply) throws(RedisError) -> [String: Int] {
        try reply.fields().mapValues { Int($0) ?? 0 }
    }

    private static func checkName(_ queue: String) throws(AdminError) {
        if let problem = QueueName.problem(with: queue) { throw AdminError(.invalidInput, problem) }
    }
}
