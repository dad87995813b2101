public import Airlock
import AirlockRedisClient
import AirlockWorker

/// A job waiting in a queue's delayed set (`<ns>:{Q}:delayed`): scheduled with a countdown or eta,
/// or a failed job waiting for its retry.
public struct DelayedJob: Sendable, Hashable {
    /// The queue whose delayed set holds it.
    public let queue: String
    /// The member exactly as stored (needed verbatim to remove it).
    public let stored: [UInt8]
    /// Its score: when it is due, in milliseconds since the epoch.
    public let dueAtMilliseconds: Int64
    /// The envelope's fields; empty when the member is not a JSON object.
    public let fields: [String: JSONValue]

    /// Parses a member of `queue`'s delayed set with its score.
    public init(queue: String, stored: [UInt8], dueAtMilliseconds: Int64) {
        self.queue = queue
        self.stored = stored
        self.dueAtMilliseconds = dueAtMilliseconds
        if let value = try? JSONParser.parse(stored), case .object(let fields) = value {
            self.fields = fields
        } else {
            self.fields = [:]
        }
    }

    /// The job id; empty if missing.
    public var id: String { fields["id"]?.stringValue ?? "" }
    /// The task name, if the member has one.
    public var task: String? { fields["task"]?.stringValue }
    /// Attempts already made (0 for a job that has not run yet).
    public var attempt: Int { fields["attempt"]?.intValue ?? 0 }
    /// The error of the last failed attempt, for a job waiting for a retry.
    public var lastError: String? { fields["last_error"]?.stringValue }
    /// Whether this is a failed job waiting for another attempt (rather than a scheduled one).
    public var isRetry: Bool { attempt > 0 || lastError != nil }

    /// What goes on the ready list to run it now: the envelope with `eta` set to `now` (a worker
    /// postpones a job whose `eta` is still ahead), every other field kept; a member that is not
    /// an envelope goes as it is.
    func runNowMessage(now: Int64) -> [UInt8] {
        guard var envelope = try? Envelope.decode(stored) else { return stored }
        envelope.eta = now
        return envelope.encoded()
    }
}

/// A page of delayed jobs, soonest due first.
public struct DelayedJobPage: Sendable, Hashable {
    /// The namespace listed.
    public var namespace: String
    /// The queues listed.
    public var queues: [String]
    /// The entries from ``offset``, soonest due first.
    public var entries: [DelayedJob]
    /// Position of the first entry in the whole (merged) list.
    public var offset: Int
    /// Members of the listed delayed sets.
    public var total: Int
}

extension RedisAdmin {
    /// Delayed jobs of `queues` (every known queue when `nil` or empty), soonest due first, from
    /// position `offset` (paging by index). Two round trips: the queue set, then `ZCARD` and
    /// `ZRANGE 0 offset+limit-1 WITHSCORES` per queue, merged by due time.
    /// - Throws: ``AdminError`` for a queue that is not known.
    public func delayedJobs(queues requested: [String]? = nil, offset: Int = 0, limit: Int = 50) async throws -> DelayedJobPage {
        let queues = try resolveQueues(requested, known: try await queueNames())
        let offset = max(0, offset), limit = max(1, limit)
        var commands: [RedisCommand] = []
        for queue in queues {
            commands.append(RedisCommand("ZCARD", keys.delayed(queue)))
            commands.append(RedisCommand("ZRANGE", keys.delayed(queue), 0, offset + limit - 1, "WITHSCORES"))
        }
        let replies = try await pipeline(commands)
        var total = 0
        var merged: [DelayedJob] = []
        for (index, queue) in queues.enumerated() {
            total += try replies[index * 2].integer()
            let items = try replies[index * 2 + 1].elements()
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                merged.append(DelayedJob(queue: queue, stored: try items[pair].bulk(), dueAtMilliseconds: Self.score(items[pair + 1])))
            }
        }
        // Stable: equal due times keep queue order, then set order.
        let sorted = merged.enumerated().sorted { a, b in
            a.element.dueAtMilliseconds != b.element.dueAtMilliseconds ? a.element.dueAtMilliseconds < b.element.dueAtMilliseconds : a.offset < b.offset
        }.map(\.element)
        return DelayedJobPage(namespace: namespace, queues: queues, entries: Array(sorted.dropFirst(offset).prefix(limit)), offset: offset, total: total)
    }

    /// Moves the delayed jobs of `queue` with these ids to the queue's ready list now (at the back
    /// of the line, as the promoter does), `eta` set to now. Returns how many moved. Three round
    /// trips: the queue check, a server-side search of the delayed set (chunked, returns only
    /// matching members), then one script that removes each member and pushes it only if it was
    /// still there, so a job is never in both places or in neither.
    /// - Throws: ``AdminError`` for an unknown queue.
    @discardableResult
    public func runDelayedNow(queue: String, ids: [String]) async throws -> Int {
        try await takeDelayed(queue: queue, ids: ids, push: true)
    }

    /// Deletes the delayed jobs of `queue` with these ids. Returns how many were removed. Three
    /// round trips, as ``runDelayedNow(queue:ids:)``.
    /// - Throws: ``AdminError`` for an unknown queue.
    @discardableResult
    public func deleteDelayed(queue: String, ids: [String]) async throws -> Int {
        try await takeDelayed(queue: queue, ids: ids, push: false)
    }

    private func takeDelayed(queue: String, ids: [String], push: Bool) async throws -> Int {
        let wanted = Set(ids.filter { !$0.isEmpty })
        guard !wanted.isEmpty else { return 0 }
        _ = try resolveQueues([queue], known: try await queueNames())
        let reply = try await evaluate([Self.findDelayedScript.call(keys: [Array(keys.delayed(queue).utf8)], arguments: Self.needles(for: Array(wanted)))])[0]
        let items = try reply.elements()
        var pairs: [[UInt8]] = [Array((push ? "1" : "0").utf8)]
        let now = epochMilliseconds()
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            let job = DelayedJob(queue: queue, stored: try items[pair].bulk(), dueAtMilliseconds: Self.score(items[pair + 1]))
            guard wanted.contains(job.id) else { continue }
            pairs.append(job.stored)
            pairs.append(push ? job.runNowMessage(now: now) : [])
        }
        guard pairs.count > 1 else { return 0 }
        let moved = try await evaluate([Self.takeDelayedScript.call(
            keys: [Array(keys.delayed(queue).utf8), Array(keys.ready(queue).utf8)], arguments: pairs)])[0]
        return try moved.integer()
    }

    /// The byte strings that find an id inside a stored JSON entry: the id itself and, when the
    /// JSON writer escapes it differently, its escaped form.
    static func needles(for ids: [String]) -> [[UInt8]] {
        var needles: [[UInt8]] = []
        for id in ids {
            var escaped: [UInt8] = []
            JSONWriter.writeString(id, into: &escaped)
            let inner = Array(escaped.dropFirst().dropLast())
            needles.append(Array(id.utf8))
            if inner != Array(id.utf8) { needles.append(inner) }
        }
        return needles
    }

    /// A sorted-set score reply as whole milliseconds (saturating; `inf` and junk become the ends).
    static func score(_ reply: RedisReply) -> Int64 {
        guard let text = reply.string, let value = Double(text) else { return 0 }
        return Int64(saturating: value.rounded(.down)) ?? 0
    }

    /// KEYS: a delayed set. ARGV: needles. Returns {member, score, ...} for every member that
    /// contains one of the needles (the caller checks the parsed id), reading the set in chunks.
    static let findDelayedScript = RedisScript("""
        #!lua
        local out = {}
        local length = redis.call('ZCARD', KEYS[1])
        local step = 1000
        for start = 0, length - 1, step do
          local chunk = redis.call('ZRANGE', KEYS[1], start, start + step - 1, 'WITHSCORES')
          for i = 1, #chunk, 2 do
            for _, needle in ipairs(ARGV) do
              if string.find(chunk[i], needle, 1, true) then
                out[#out + 1] = chunk[i]
                out[#out + 1] = chunk[i + 1]
                break
              end
            end
          end
        end
        return out
        """)

    /// KEYS: delayed set, ready list. ARGV: push ("1" moves, "0" only deletes), then pairs of
    /// (member, message to push). Removes each member and, only if it was there, pushes its
    /// message. Returns how many members were removed.
    static let takeDelayedScript = RedisScript("""
        #!lua
        local push = ARGV[1] == '1'
        local removed = 0
        for i = 2, #ARGV, 2 do
          if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
            removed = removed + 1
            if push then redis.call('LPUSH', KEYS[2], ARGV[i + 1]) end
          end
        end
        return removed
        """)
}
