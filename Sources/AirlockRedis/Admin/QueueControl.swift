public import Airlock
import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What ``RedisAdmin/enqueue(task:arguments:options:origin:)`` did.
public struct EnqueueResult: Sendable, Hashable {
    /// The id the new job got (also when it turned out to be a duplicate and was not written).
    public var id: String
    /// The queue it was routed to.
    public var queue: String
    /// When the idempotency key had already been used: the id of the job that used it. Nothing was written.
    public var duplicateOf: String?
    /// When the job is due, in milliseconds since the epoch, if it was given a countdown or eta.
    public var dueAtMilliseconds: Int64?
}

extension RedisAdmin {
    /// Enqueues one job through ``RedisExecutor/enqueue(_:)`` — the same atomic script producers
    /// use — with `options.queue` defaulting to `default`. One round trip.
    /// - Throws: `DispatchError` (from Airlock) wrapping a ``RedisExecutorError`` when it was not written.
    public func enqueue(
        task: String, arguments: TaskArguments = TaskArguments(), options: DispatchOptions = DispatchOptions(), origin: String? = nil
    ) async throws -> EnqueueResult {
        let executor = RedisExecutor(client: client, namespace: namespace, origin: origin, logger: logger)
        let intent = Intent(taskName: task, payload: .dynamic(arguments), options: options, origin: origin)
        let due = options.dueDate(dispatchedAt: Date()).map { epochMilliseconds($0) }
        countRoundTrip()
        let outcomes = try await executor.enqueue([intent])
        var result = EnqueueResult(id: intent.id.jobID, queue: options.queue ?? executor.defaultQueue, dueAtMilliseconds: due)
        if case .duplicate(let existing)? = outcomes.first { result.duplicateOf = existing }
        return result
    }

    /// Sends one task to a Celery fleet through ``CeleryExecutor`` (kombu's queue keys; countdown
    /// and eta become the `eta` header), with `options.queue` defaulting to `celery`.
    /// - Throws: `DispatchError` wrapping a ``RedisExecutorError`` when it was not written.
    public func enqueueCelery(
        task: String, arguments: TaskArguments = TaskArguments(), options: DispatchOptions = DispatchOptions(), origin: String? = nil
    ) async throws -> EnqueueResult {
        let executor = CeleryExecutor(client: client, logger: logger)
        let intent = Intent(taskName: task, payload: .dynamic(arguments), options: options, origin: origin)
        countRoundTrip()
        try await executor.dispatch([intent])
        return EnqueueResult(
            id: intent.id.jobID, queue: options.queue ?? executor.defaultQueue,
            dueAtMilliseconds: options.dueDate(dispatchedAt: Date()).map { epochMilliseconds($0) })
    }

    /// Sets the queue's pause flag (`<ns>:{Q}:paused` = `1`): workers stop taking its jobs within
    /// about a second (jobs already taken finish). Returns whether it was already paused.
    /// - Parameter create: pause a queue that is not known yet (adds it to `<ns>:queues`), so
    ///   workers that start consuming it later begin paused.
    /// - Throws: ``AdminError`` (`unknownQueue`) for a queue not in `<ns>:queues` unless `create`.
    @discardableResult
    public func pause(_ queue: String, create: Bool = false) async throws -> Bool {
        try checkName(queue)
        if create {
            let replies = try await pipeline([RedisCommand("SADD", keys.queues, queue), RedisCommand("SET", keys.paused(queue), "1", "GET")])
            return !replies[1].isNull
        }
        let known = try await send(RedisCommand("SISMEMBER", keys.queues, queue))
        guard try known.integer() == 1 else {
            throw AdminError.unknownQueues([queue], known: try await queueNames(), namespace: namespace).withHint(" — pass --create to pause it anyway")
        }
        let previous = try await send(RedisCommand("SET", keys.paused(queue), "1", "GET"))
        return !previous.isNull
    }

    /// Removes the queue's pause flag: workers take its jobs again within about a second.
    /// Returns whether it was paused.
    /// - Throws: ``AdminError`` (`unknownQueue`) for a queue that is neither known nor paused.
    @discardableResult
    public func resume(_ queue: String) async throws -> Bool {
        try checkName(queue)
        let replies = try await pipeline([RedisCommand("SISMEMBER", keys.queues, queue), RedisCommand("DEL", keys.paused(queue))])
        let wasPaused = try replies[1].integer() > 0
        if try replies[0].integer() != 1 && !wasPaused {
            throw AdminError.unknownQueues([queue], known: try await queueNames(), namespace: namespace)
        }
        return wasPaused
    }

    /// Whether the queue's pause flag is set. One round trip.
    public func isPaused(_ queue: String) async throws -> Bool {
        try await send(RedisCommand("EXISTS", keys.paused(queue))).integer() == 1
    }

    private func checkName(_ queue: String) throws(AdminError) {
        if let problem = QueueName.problem(with: queue) { throw AdminError(.invalidInput, problem) }
    }
}

extension AdminError {
    func withHint(_ hint: String) -> AdminError { AdminError(kind, description + hint) }
}
