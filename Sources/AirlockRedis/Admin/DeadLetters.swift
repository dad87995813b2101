public import Airlock
import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One entry of a queue's dead-letter list (`<ns>:{Q}:dead`): the job's envelope plus `error`,
/// `failed_at` (ms) and `attempts`; or, for a message that was not a valid envelope, `task: null`
/// with the message kept in `raw` (UTF-8) or `raw_base64`.
public struct DeadLetter: Sendable, Hashable {
    /// The queue whose dead-letter list holds the entry.
    public let queue: String
    /// The entry exactly as stored (needed verbatim to remove it).
    public let stored: [UInt8]
    /// The entry's fields; empty when the stored bytes are not a JSON object.
    public let fields: [String: JSONValue]

    /// Parses a stored entry of `queue`'s dead-letter list.
    public init(queue: String, stored: [UInt8]) {
        self.queue = queue
        self.stored = stored
        if let value = try? JSONParser.parse(stored), case .object(let fields) = value {
            self.fields = fields
        } else {
            self.fields = [:]
        }
    }

    /// The job id (for a malformed message, the id the worker gave the entry); empty if missing.
    public var id: String { fields["id"]?.stringValue ?? "" }
    /// The task name; `nil` for a malformed message.
    public var task: String? { fields["task"]?.stringValue }
    /// True when the worker could not read the message as an envelope (`task` is null).
    public var isMalformed: Bool { task == nil }
    /// Why the job was dead-lettered.
    public var error: String? { fields["error"]?.stringValue }
    /// Attempts made (0 for a message that was never run).
    public var attempts: Int? { fields["attempts"]?.intValue }
    /// When it was dead-lettered, in milliseconds since the epoch.
    public var failedAtMilliseconds: Int64? { fields["failed_at"]?.intValue.map(Int64.init) }
    /// The job's expiry, in milliseconds since the epoch, if it has one.
    public var expiresAtMilliseconds: Int64? { fields["expires"]?.intValue.map(Int64.init) }

    /// What goes back on the ready list: the envelope with `attempt` 0 and the dead-letter
    /// fields removed (every other field kept), or a malformed message's original bytes.
    func requeueMessage() throws(AdminError) -> (message: [UInt8], raw: Bool) {
        if isMalformed {
            if let raw = fields["raw"]?.stringValue { return (Array(raw.utf8), true) }
            if let encoded = fields["raw_base64"]?.stringValue, let data = Data(base64Encoded: encoded) { return ([UInt8](data), true) }
            throw AdminError(.invalidInput, "dead letter '\(id)' on queue '\(queue)' is a malformed message with no 'raw' or 'raw_base64' field: there is nothing to push back (purge it instead)")
        }
        var envelope = fields
        for field in ["error", "failed_at", "attempts", "last_error"] { envelope[field] = nil }
        envelope["attempt"] = .int(0)
        if let decoded = try? Envelope.decode(fields: envelope) { return (decoded.encoded(), false) }
        var bytes: [UInt8] = []
        JSONWriter.write(.object(envelope), into: &bytes)
        return (bytes, false)
    }
}

/// A page of dead letters, newest first.
public struct DeadLetterPage: Sendable, Hashable {
    /// The namespace listed.
    public var namespace: String
    /// The entries, newest (by `failed_at`) first.
    public var entries: [DeadLetter]
    /// Entries in the selected dead-letter lists (or matching a search), shown or not.
    public var total: Int

    /// A page of these entries.
    public init(namespace: String, entries: [DeadLetter], total: Int) {
        self.namespace = namespace
        self.entries = entries
        self.total = total
    }
}

/// What ``RedisAdmin/retryDeadLetters(ids:)`` did with one entry.
public struct DeadLetterRetry: Sendable, Hashable {
    /// What happened.
    public enum Outcome: Sendable, Hashable {
        /// Back on the ready list as a fresh envelope (attempt 0).
        case requeued
        /// A malformed message: its original bytes went back on the ready list unchanged.
        case requeuedRaw
        /// The entry left the dead-letter list before it could be moved (trimmed, purged or retried
        /// by someone else); nothing was pushed.
        case gone
        /// Not moved, for the reason given (e.g. a malformed entry without its raw bytes).
        case skipped(String)
    }

    /// The queue it belongs to.
    public var queue: String
    /// The job id.
    public var id: String
    /// The task name; `nil` for a malformed message.
    public var task: String?
    /// What happened.
    public var outcome: Outcome
    /// Set when the job's own expiry has already passed: a worker will drop it unrun.
    public var expiredAtMilliseconds: Int64?

    /// A result with the given values.
    public init(queue: String, id: String, task: String?, outcome: Outcome, expiredAtMilliseconds: Int64? = nil) {
        self.queue = queue
        self.id = id
        self.task = task
        self.outcome = outcome
        self.expiredAtMilliseconds = expiredAtMilliseconds
    }
}

extension RedisAdmin {
    /// The newest `limit` dead letters of `queues` (every known queue when `nil` or empty);
    /// `limit` 0 means all. Two round trips: the queue set, then `LLEN` + `LRANGE 0 limit-1` per queue.
    public func deadLetters(queues requested: [String]? = nil, limit: Int = 20) async throws -> DeadLetterPage {
        let queues = try resolveQueues(requested, known: try await queueNames())
        var commands: [RedisCommand] = []
        for queue in queues {
            commands.append(RedisCommand("LLEN", keys.dead(queue)))
            commands.append(RedisCommand("LRANGE", keys.dead(queue), 0, limit > 0 ? limit - 1 : -1))
        }
        let replies = try await pipeline(commands)
        var total = 0
        var entries: [(order: Int, letter: DeadLetter)] = []
        for (index, queue) in queues.enumerated() {
            total += try replies[index * 2].integer()
            for stored in try replies[index * 2 + 1].bulks() {
                entries.append((entries.count, DeadLetter(queue: queue, stored: stored)))
            }
        }
        entries.sort { a, b in
            let x = a.letter.failedAtMilliseconds ?? .min, y = b.letter.failedAtMilliseconds ?? .min
            return x != y ? x > y : a.order < b.order
        }
        let shown = limit > 0 ? Array(entries.prefix(limit)) : entries
        return DeadLetterPage(namespace: namespace, entries: shown.map(\.letter), total: total)
    }

    /// The dead letter with job id `id` (the newest one, should the id appear more than once).
    /// Two round trips: the queue set, then a server-side search of each dead-letter list that
    /// returns only matching entries.
    /// - Throws: ``AdminError`` (`unknownDeadLetter`) when no entry has that id.
    public func deadLetter(id: String) async throws -> DeadLetter {
        let found = try await findDeadLetters(ids: [id], queues: nil)
        guard let letter = found[id]?.first?.letter else { throw try await unknownDeadLetters([id]) }
        return letter
    }

    /// Moves the dead letters with these job ids back to their queues' ready lists (newest entry per
    /// id): the envelope with `attempt` 0 and `error`/`failed_at`/`attempts` removed, or a malformed
    /// message's raw bytes as they were. Per queue one Lua script removes each entry and pushes its
    /// message, so a job is never in both lists or in neither.
    /// - Throws: ``AdminError`` before moving anything when an id is not found.
    public func retryDeadLetters(ids: [String]) async throws -> [DeadLetterRetry] {
        var seen = Set<String>()
        let ids = ids.filter { seen.insert($0).inserted }
        guard !ids.isEmpty else { return [] }
        let found = try await findDeadLetters(ids: ids, queues: nil)
        let missing = ids.filter { found[$0] == nil }
        guard missing.isEmpty else { throw try await unknownDeadLetters(missing) }
        var plan: [(index: Int, letter: DeadLetter)] = []
        for id in ids {
            guard let newest = found[id]?.first else { continue }
            _ = try newest.letter.requeueMessage() // a malformed entry without raw bytes fails the whole request up front
            plan.append(newest)
        }
        return try await requeue(plan)
    }

    /// Moves every dead letter of `queues` (every known queue when `nil` or empty) back to its
    /// ready list, oldest first, as ``retryDeadLetters(ids:)`` does. Malformed entries without raw
    /// bytes are reported as skipped.
    public func retryAllDeadLetters(queues requested: [String]? = nil) async throws -> [DeadLetterRetry] {
        let queues = try resolveQueues(requested, known: try await queueNames())
        let replies = try await pipeline(queues.map { RedisCommand("LRANGE", keys.dead($0), 0, -1) })
        var plan: [(index: Int, letter: DeadLetter)] = []
        for (queue, reply) in zip(queues, replies) {
            for (index, stored) in try reply.bulks().enumerated() {
                plan.append((index, DeadLetter(queue: queue, stored: stored)))
            }
        }
        return try await requeue(plan)
    }

    /// Deletes every dead letter of `queues` (every known queue when `nil` or empty), atomically per
    /// queue; returns how many each queue lost (queues that lost none are omitted). One round trip
    /// after the queue set: `MULTI LLEN DEL EXEC` per queue, pipelined.
    @discardableResult
    public func purgeDeadLetters(queues requested: [String]? = nil) async throws -> [String: Int] {
        let queues = try resolveQueues(requested, known: try await queueNames())
        var commands: [RedisCommand] = []
        for queue in queues {
            commands.append(RedisCommand("MULTI"))
            commands.append(RedisCommand("LLEN", keys.dead(queue)))
            commands.append(RedisCommand("DEL", keys.dead(queue)))
            commands.append(RedisCommand("EXEC"))
        }
        let replies = try await pipeline(commands)
        var removed: [String: Int] = [:]
        for (index, queue) in queues.enumerated() {
            let count = try replies[index * 4 + 3].elements().first?.integer() ?? 0
            if count > 0 { removed[queue] = count }
        }
        return removed
    }

    /// Deletes the dead letters with these job ids (every entry with each id); returns how many
    /// entries were removed.
    /// - Throws: ``AdminError`` before deleting anything when an id is not found.
    @discardableResult
    public func deleteDeadLetters(ids: [String]) async throws -> Int {
        var seen = Set<String>()
        let ids = ids.filter { seen.insert($0).inserted }
        guard !ids.isEmpty else { return 0 }
        let found = try await findDeadLetters(ids: ids, queues: nil)
        let missing = ids.filter { found[$0] == nil }
        guard missing.isEmpty else { throw try await unknownDeadLetters(missing) }
        let letters = found.values.flatMap { $0 }
        let byQueue = Dictionary(grouping: letters, by: { $0.letter.queue })
        let calls = byQueue.keys.sorted().map { queue -> RedisScript.Call in
            let entries = byQueue[queue]!.sorted { $0.index > $1.index }
            return Self.takeScript.call(
                keys: [Array(keys.dead(queue).utf8), Array(keys.ready(queue).utf8)],
                arguments: [Array("0".utf8)] + entries.flatMap { [$0.letter.stored, []] })
        }
        var removed = 0
        for reply in try await evaluate(calls) {
            for count in try reply.elements() { removed += try count.integer() }
        }
        return removed
    }

    // MARK: Internals

    /// Entries whose `id` is one of `ids`, per id, newest first, with their list positions.
    func findDeadLetters(ids: [String], queues requested: [String]?) async throws -> [String: [(index: Int, letter: DeadLetter)]] {
        let queues = try resolveQueues(requested, known: try await queueNames())
        // Entries are JSON: an id with a quote, a backslash or a control character is stored
        // escaped, so each id is searched for as written by the JSON writer too.
        var needles: [[UInt8]] = []
        for id in ids {
            var escaped: [UInt8] = []
            JSONWriter.writeString(id, into: &escaped)
            let inner = Array(escaped.dropFirst().dropLast())
            needles.append(Array(id.utf8))
            if inner != Array(id.utf8) { needles.append(inner) }
        }
        let replies = try await evaluate(queues.map { Self.findScript.call(keys: [Array(keys.dead($0).utf8)], arguments: needles) })
        let wanted = Set(ids)
        var found: [String: [(index: Int, letter: DeadLetter)]] = [:]
        for (queue, reply) in zip(queues, replies) {
            let items = try reply.elements()
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                let index = try items[pair].integer()
                let stored = try items[pair + 1].bulk()
                let letter = DeadLetter(queue: queue, stored: stored)
                if wanted.contains(letter.id) { found[letter.id, default: []].append((index, letter)) }
            }
        }
        for id in found.keys {
            found[id]!.sort { a, b in
                let x = a.letter.failedAtMilliseconds ?? .min, y = b.letter.failedAtMilliseconds ?? .min
                return x != y ? x > y : a.index < b.index
            }
        }
        return found
    }

    func unknownDeadLetters(_ ids: [String]) async throws -> AdminError {
        let queues = try await queueNames()
        let quoted = ids.map { "'\(SafeText.escape($0))'" }.joined(separator: ", ")
        let noun = ids.count == 1 ? "no dead letter has id" : "no dead letters have ids"
        return AdminError(.unknownDeadLetter, "\(noun) \(quoted) in namespace '\(namespace)' (searched the dead-letter lists of \(queues.count) queue(s); `dead list` shows the ids)")
    }

    /// Runs the take script per queue (oldest entries first, in chunks) and reports each entry.
    private func requeue(_ plan: [(index: Int, letter: DeadLetter)]) async throws -> [DeadLetterRetry] {
        let now = epochMilliseconds()
        var results: [DeadLetterRetry] = []
        var calls: [RedisScript.Call] = []
        var callEntries: [[Int]] = [] // indices into `results` per call
        let byQueue = Dictionary(grouping: plan, by: { $0.letter.queue })
        for queue in byQueue.keys.sorted() {
            // Oldest (highest index) first: each LREM from the tail finds its entry at once, and the
            // oldest failure ends up nearest the consuming end of the ready list.
            let entries = byQueue[queue]!.sorted { $0.index > $1.index }
            var args: [[UInt8]] = [Array("1".utf8)]
            var members: [Int] = []
            for entry in entries {
                let letter = entry.letter
                let expired = letter.expiresAtMilliseconds.flatMap { $0 < now ? $0 : nil }
                var result = DeadLetterRetry(queue: queue, id: letter.id, task: letter.task, outcome: .gone, expiredAtMilliseconds: expired)
                do {
                    let (message, raw) = try letter.requeueMessage()
                    result.outcome = raw ? .requeuedRaw : .requeued
                    args.append(letter.stored)
                    args.append(message)
                    members.append(results.count)
                } catch {
                    result.outcome = .skipped(error.description)
                }
                results.append(result)
                if members.count == Self.takeChunk {
                    calls.append(Self.takeScript.call(keys: [Array(keys.dead(queue).utf8), Array(keys.ready(queue).utf8)], arguments: args))
                    callEntries.append(members)
                    args = [Array("1".utf8)]
                    members = []
                }
            }
            if !members.isEmpty {
                calls.append(Self.takeScript.call(keys: [Array(keys.dead(queue).utf8), Array(keys.ready(queue).utf8)], arguments: args))
                callEntries.append(members)
            }
        }
        let replies = try await evaluate(calls)
        for (reply, members) in zip(replies, callEntries) {
            let moved = try reply.elements()
            for (position, resultIndex) in members.enumerated() where try (position < moved.count ? moved[position].integer() : 0) == 0 {
                results[resultIndex].outcome = .gone
            }
        }
        return results
    }

    /// Entries moved per script call, so one call never blocks Redis for long.
    static let takeChunk = 500

    /// KEYS: a dead-letter list. ARGV: job ids. Returns {index, entry, ...} for every entry that
    /// contains one of the ids (the caller checks the parsed id), reading the list in chunks.
    static let findScript = RedisScript("""
        #!lua
        local out = {}
        local length = redis.call('LLEN', KEYS[1])
        local step = 1000
        for start = 0, length - 1, step do
          local chunk = redis.call('LRANGE', KEYS[1], start, start + step - 1)
          for i, entry in ipairs(chunk) do
            for _, id in ipairs(ARGV) do
              if string.find(entry, id, 1, true) then
                out[#out + 1] = start + i - 1
                out[#out + 1] = entry
                break
              end
            end
          end
        end
        return out
        """)

    /// KEYS: dead-letter list, ready list. ARGV: push ("1" moves, "0" only deletes), then pairs of
    /// (stored entry, message to push). Removes each entry (scanning from the oldest end) and, only
    /// if it was there, pushes its message: a job is never in both lists or in neither.
    /// Returns per pair the number of entries removed (0 when it was already gone).
    static let takeScript = RedisScript("""
        #!lua
        local push = ARGV[1] == '1'
        local removed = {}
        for i = 2, #ARGV, 2 do
          local n = redis.call('LREM', KEYS[1], '-1', ARGV[i])
          if n > 0 and push then redis.call('LPUSH', KEYS[2], ARGV[i + 1]) end
          removed[#removed + 1] = n
        end
        return removed
        """)
}
