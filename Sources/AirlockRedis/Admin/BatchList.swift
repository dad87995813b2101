import Airlock
import AirlockRedisClient
import AirlockWorker

/// One batch's progress, from its record (`<ns>:{Q}:batch:<id>`).
public struct BatchProgress: Sendable, Hashable {
    /// The batch id.
    public var id: String
    /// The queue its record and callbacks live in.
    public var queue: String
    /// What its producer said it is.
    public var description: String
    /// Jobs in the batch, follow-ups included.
    public var total: Int
    /// Jobs whose final outcome is still to come.
    public var pending: Int
    /// Jobs that succeeded.
    public var succeeded: Int
    /// Jobs that failed for good.
    public var dead: Int
    /// Jobs cancelled by an operator or expired before they started.
    public var cancelled: Int
    /// Whether an onSuccess callback was declared.
    public var hasOnSuccess: Bool
    /// Whether an onComplete callback was declared.
    public var hasOnComplete: Bool
    /// When it was written, ms since the epoch.
    public var createdAtMilliseconds: Int64?
    /// When its last job settled (and its callbacks were queued), ms since the epoch.
    public var completedAtMilliseconds: Int64?
    /// Why a callback could not be queued, if one could not (its queue's key held something else).
    public var callbackError: String?

    /// Whether every job has settled.
    public var isComplete: Bool { completedAtMilliseconds != nil }
}

/// What `airlock-workerd batches` shows.
public struct BatchReport: Sendable, Hashable {
    /// The namespace listed.
    public var namespace: String
    /// The batches, newest first (those whose records expired are left out).
    public var batches: [BatchProgress]

    /// A report of these batches.
    public init(namespace: String, batches: [BatchProgress]) {
        self.namespace = namespace
        self.batches = batches
    }
}

extension RedisAdmin {
    /// The newest `limit` batches of the operators' index (`<ns>:batches`) with their progress;
    /// index entries whose record has expired are removed. Two round trips.
    public func batches(limit: Int = 50) async throws -> BatchReport {
        let members = try await pipeline([RedisCommand("ZREVRANGE", keys.batches, 0, max(0, limit - 1))])[0].strings()
        var listed: [(member: String, id: String, queue: String)] = []
        for member in members {
            guard let space = member.firstIndex(of: " ") else { continue }
            let id = String(member[..<space]), queue = String(member[member.index(after: space)...])
            if QueueName.problem(with: queue) == nil { listed.append((member, id, queue)) }
        }
        let records = listed.isEmpty ? [] : try await pipeline(listed.map { RedisCommand("HGETALL", keys.batch($0.queue, id: $0.id)) })
        var batches: [BatchProgress] = []
        var gone: [String] = []
        for (entry, reply) in zip(listed, records) {
            let fields = try reply.throwingServerError().fields()
            if fields.isEmpty {
                gone.append(entry.member)
            } else {
                batches.append(Self.progress(id: entry.id, queue: entry.queue, fields))
            }
        }
        if !gone.isEmpty { _ = try? await pipeline([RedisCommand("ZREM", [keys.batches] + gone)]) }
        return BatchReport(namespace: namespace, batches: batches)
    }

    /// One batch's progress, nil when no record exists (never written, or expired). Without
    /// `queue`, the index says where the record is.
    public func batch(id: String, queue: String? = nil) async throws -> BatchProgress? {
        var queues: [String] = queue.map { [$0] } ?? []
        if queue == nil {
            // Members are `<id> <queue>`: scan for the id's, its glob characters escaped.
            let pattern = id.reduce(into: "") { text, c in
                if "*?[]\\".contains(c) { text.append("\\") }
                text.append(c)
            } + " *"
            var cursor = "0"
            repeat {
                let reply = try await pipeline([RedisCommand("ZSCAN", keys.batches, cursor, "MATCH", pattern, "COUNT", 1000)])[0].throwingServerError().elements()
                guard reply.count == 2 else { break }
                cursor = try reply[0].text()
                let found = try reply[1].strings()
                for member in stride(from: 0, to: found.count, by: 2) where found[member].hasPrefix("\(id) ") {
                    queues.append(String(found[member].dropFirst(id.count + 1)))
                }
            } while cursor != "0"
        }
        for queue in queues where QueueName.problem(with: queue) == nil {
            let fields = try await pipeline([RedisCommand("HGETALL", keys.batch(queue, id: id))])[0].throwingServerError().fields()
            if !fields.isEmpty { return Self.progress(id: id, queue: queue, fields) }
        }
        return nil
    }

    private static func progress(id: String, queue: String, _ fields: [String: String]) -> BatchProgress {
        func int(_ name: String) -> Int { fields[name].flatMap { Int($0) } ?? 0 }
        return BatchProgress(
            id: id, queue: queue, description: fields["description"] ?? "", total: int("total"), pending: int("pending"),
            succeeded: int("succeeded"), dead: int("dead"), cancelled: int("cancelled"),
            hasOnSuccess: !(fields["on_success"] ?? "").isEmpty, hasOnComplete: !(fields["on_complete"] ?? "").isEmpty,
            createdAtMilliseconds: fields["created_at"].flatMap { Int64($0) }, completedAtMilliseconds: fields["completed_at"].flatMap { Int64($0) },
            callbackError: fields["callback_error"])
    }
}
