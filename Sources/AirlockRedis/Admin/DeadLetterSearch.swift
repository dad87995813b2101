import Airlock
import AirlockRedisClient

/// Which dead letters a search selects. Every given criterion must hold; an empty query selects
/// every dead letter of the queues.
public struct DeadLetterQuery: Sendable, Hashable {
    /// Queues to search (every known queue when `nil` or empty).
    public var queues: [String]?
    /// Part of the task name, ASCII case-insensitive (malformed entries, which have no task, never match).
    public var task: String?
    /// Part of the error text, ASCII case-insensitive.
    public var error: String?
    /// Dead-lettered at or after this moment (milliseconds since the epoch).
    public var failedFromMilliseconds: Int64?
    /// Dead-lettered before this moment (milliseconds since the epoch).
    public var failedBeforeMilliseconds: Int64?

    /// A query with the given criteria (none by default). Empty strings count as no criterion.
    public init(queues: [String]? = nil, task: String? = nil, error: String? = nil,
                failedFromMilliseconds: Int64? = nil, failedBeforeMilliseconds: Int64? = nil) {
        self.queues = queues?.isEmpty == true ? nil : queues
        self.task = task?.isEmpty == true ? nil : task
        self.error = error?.isEmpty == true ? nil : error
        self.failedFromMilliseconds = failedFromMilliseconds
        self.failedBeforeMilliseconds = failedBeforeMilliseconds
    }

    /// Whether only the queue selection applies (no task, error or time criterion).
    public var selectsWholeLists: Bool { task == nil && error == nil && failedFromMilliseconds == nil && failedBeforeMilliseconds == nil }

    /// Whether `letter` satisfies every criterion (the same test the server-side search applies).
    public func matches(_ letter: DeadLetter) -> Bool {
        if let task {
            guard let name = letter.task, Self.asciiLowercased(name).contains(Self.asciiLowercased(task)) else { return false }
        }
        if let error {
            guard let text = letter.error, Self.asciiLowercased(text).contains(Self.asciiLowercased(error)) else { return false }
        }
        if failedFromMilliseconds != nil || failedBeforeMilliseconds != nil {
            guard let failed = letter.failedAtMilliseconds else { return false }
            if let from = failedFromMilliseconds, failed < from { return false }
            if let before = failedBeforeMilliseconds, failed >= before { return false }
        }
        return true
    }

    /// Lowercases A–Z only, as Lua's `string.lower` does in Redis (the C locale).
    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
    }
}

/// One page of a dead-letter search, newest first.
public struct DeadLetterSearchPage: Sendable, Hashable {
    /// The namespace searched.
    public var namespace: String
    /// The query.
    public var query: DeadLetterQuery
    /// The queues searched.
    public var queues: [String]
    /// The matching entries from ``offset``, newest first.
    public var entries: [DeadLetter]
    /// Position of the first entry among all matches.
    public var offset: Int
    /// How many entries match in all.
    public var total: Int
}

extension RedisAdmin {
    /// The dead letters that match `query`, newest first, from match number `offset` (paging by
    /// index). Two round trips: the queue set, then one script per queue (pipelined) that reads its
    /// dead-letter list in chunks of 1000, counts the matches and returns the first
    /// `offset + limit` of them; the lists are merged by `failed_at` (each list is already newest
    /// first: the worker pushes on the left). The script tests the raw text first and decodes
    /// (`cjson`) only the entries that can match, so a search costs one pass over each list
    /// (bounded by the dead-letter cap), never more, and nothing when the query has no criteria.
    /// - Throws: ``AdminError`` for a queue that is not known.
    public func searchDeadLetters(_ query: DeadLetterQuery, offset: Int = 0, limit: Int = 50) async throws -> DeadLetterSearchPage {
        let queues = try resolveQueues(query.queues, known: try await queueNames())
        let offset = max(0, offset), limit = max(1, limit)
        let found = try await matchingDeadLetters(query, queues: queues, first: offset + limit)
        let merged = found.letters.enumerated().sorted { a, b in
            let x = a.element.letter.failedAtMilliseconds ?? .min, y = b.element.letter.failedAtMilliseconds ?? .min
            return x != y ? x > y : a.offset < b.offset
        }.map(\.element.letter)
        return DeadLetterSearchPage(
            namespace: namespace, query: query, queues: queues, entries: Array(merged.dropFirst(offset).prefix(limit)),
            offset: offset, total: found.total)
    }

    /// Moves every dead letter that matches `query` back to its queue's ready list, as
    /// ``retryDeadLetters(ids:)`` does (attempt 0, dead-letter fields removed; a malformed entry's
    /// raw bytes as they were; one without them is reported as skipped). Oldest failures go first,
    /// so they run first. Three round trips: the queue set, the search (returns every match), then
    /// one script per queue and 5000 entries that rewrites the dead-letter list in one pass without
    /// the matches and pushes each match only if it was still there (a job is never in both lists
    /// or in neither).
    /// - Throws: ``AdminError`` for a queue that is not known.
    public func retryDeadLetters(matching query: DeadLetterQuery) async throws -> [DeadLetterRetry] {
        let queues = try resolveQueues(query.queues, known: try await queueNames())
        let found = try await matchingDeadLetters(query, queues: queues, first: 0)
        let now = epochMilliseconds()
        var results: [DeadLetterRetry] = []
        var plans: [(queue: String, pairs: [(stored: [UInt8], message: [UInt8])], results: [Int])] = []
        for queue in queues {
            // Oldest first: the oldest failure ends up nearest the consuming end of the ready list.
            let letters = found.letters.filter { $0.letter.queue == queue }.sorted { $0.index > $1.index }.map(\.letter)
            var pairs: [(stored: [UInt8], message: [UInt8])] = []
            var members: [Int] = []
            for letter in letters {
                let expired = letter.expiresAtMilliseconds.flatMap { $0 < now ? $0 : nil }
                var result = DeadLetterRetry(queue: queue, id: letter.id, task: letter.task, outcome: .gone, expiredAtMilliseconds: expired)
                do {
                    let (message, raw) = try letter.requeueMessage()
                    result.outcome = raw ? .requeuedRaw : .requeued
                    pairs.append((letter.stored, message))
                    members.append(results.count)
                } catch {
                    result.outcome = .skipped(error.description)
                }
                results.append(result)
            }
            if !pairs.isEmpty { plans.append((queue, pairs, members)) }
        }
        let outcomes = try await bulkTake(plans.map { ($0.queue, $0.pairs) }, push: true)
        for (plan, taken) in zip(plans, outcomes) {
            for (position, resultIndex) in plan.results.enumerated() where !taken[position] {
                results[resultIndex].outcome = .gone
            }
        }
        return results
    }

    /// Deletes every dead letter that matches `query`; returns how many entries were removed.
    /// Three round trips, as ``retryDeadLetters(matching:)``; a query without criteria deletes
    /// whole lists (``purgeDeadLetters(queues:)``).
    /// - Throws: ``AdminError`` for a queue that is not known.
    @discardableResult
    public func deleteDeadLetters(matching query: DeadLetterQuery) async throws -> Int {
        if query.selectsWholeLists { return try await purgeDeadLetters(queues: query.queues).values.reduce(0, +) }
        let queues = try resolveQueues(query.queues, known: try await queueNames())
        let found = try await matchingDeadLetters(query, queues: queues, first: 0)
        var plans: [(queue: String, pairs: [(stored: [UInt8], message: [UInt8])])] = []
        for queue in queues {
            let pairs = found.letters.filter { $0.letter.queue == queue }.sorted { $0.index > $1.index }.map { ($0.letter.stored, [UInt8]()) }
            if !pairs.isEmpty { plans.append((queue, pairs)) }
        }
        return try await bulkTake(plans, push: false).reduce(0) { $0 + $1.filter { $0 }.count }
    }

    // MARK: Internals

    /// Per queue, the number of matches and the first `first` of them in list order (all when 0).
    func matchingDeadLetters(_ query: DeadLetterQuery, queues: [String], first: Int) async throws -> (total: Int, letters: [(index: Int, letter: DeadLetter)]) {
        let arguments = Self.searchArguments(query, first: first)
        let replies = try await evaluate(queues.map { Self.searchScript.call(keys: [Array(keys.dead($0).utf8)], arguments: arguments) })
        var total = 0
        var letters: [(index: Int, letter: DeadLetter)] = []
        for (queue, reply) in zip(queues, replies) {
            let items = try reply.elements()
            guard let count = items.first else { continue }
            total += try count.integer()
            for pair in stride(from: 1, to: items.count - 1, by: 2) {
                letters.append((try items[pair].integer(), DeadLetter(queue: queue, stored: try items[pair + 1].bulk())))
            }
        }
        return (total, letters)
    }

    /// ARGV of ``searchScript``: first, task needle, task prefilter, error needle, error
    /// prefilter, from, before (empty = none). Needles are ASCII-lowercased; a prefilter is the
    /// needle as the JSON writer stores it, used only when that is the needle itself (so the raw
    /// test can never reject an entry another writer escaped differently).
    static func searchArguments(_ query: DeadLetterQuery, first: Int) -> [[UInt8]] {
        func needle(_ text: String?) -> (needle: [UInt8], prefilter: [UInt8]) {
            guard let text else { return ([], []) }
            let lowered = DeadLetterQuery.asciiLowercased(text)
            var escaped: [UInt8] = []
            JSONWriter.writeString(lowered, into: &escaped)
            let inner = Array(escaped.dropFirst().dropLast())
            return (Array(lowered.utf8), inner == Array(lowered.utf8) ? inner : [])
        }
        let task = needle(query.task), error = needle(query.error)
        return [
            Array(String(max(0, first)).utf8), task.needle, task.prefilter, error.needle, error.prefilter,
            query.failedFromMilliseconds.map { Array(String($0).utf8) } ?? [],
            query.failedBeforeMilliseconds.map { Array(String($0).utf8) } ?? [],
        ]
    }

    /// Runs ``bulkTakeScript`` per queue in chunks; per queue, whether each pair was taken.
    func bulkTake(_ plans: [(queue: String, pairs: [(stored: [UInt8], message: [UInt8])])], push: Bool) async throws -> [[Bool]] {
        var calls: [RedisScript.Call] = []
        var shape: [(plan: Int, start: Int, count: Int)] = []
        for (index, plan) in plans.enumerated() {
            for start in stride(from: 0, to: plan.pairs.count, by: Self.bulkChunk) {
                let chunk = plan.pairs[start..<min(start + Self.bulkChunk, plan.pairs.count)]
                var arguments: [[UInt8]] = [Array((push ? "1" : "0").utf8)]
                arguments.reserveCapacity(1 + chunk.count * 2)
                for pair in chunk {
                    arguments.append(pair.stored)
                    arguments.append(pair.message)
                }
                calls.append(Self.bulkTakeScript.call(keys: [Array(keys.dead(plan.queue).utf8), Array(keys.ready(plan.queue).utf8)], arguments: arguments))
                shape.append((index, start, chunk.count))
            }
        }
        var taken = plans.map { Array(repeating: false, count: $0.pairs.count) }
        for (reply, part) in zip(try await evaluate(calls), shape) {
            for number in try reply.elements() {
                let pair = try number.integer() // 1-based within the chunk
                if (1...part.count).contains(pair) { taken[part.plan][part.start + pair - 1] = true }
            }
        }
        return taken
    }

    /// Entries one bulk script call carries.
    static let bulkChunk = 5000

    /// KEYS: a dead-letter list. ARGV: first (0 = every match), task needle, task prefilter, error
    /// needle, error prefilter, failed-from ms, failed-before ms ("" = no criterion). Returns
    /// {matches, then index, entry for the first `first` matches in list order}. Each entry is
    /// tested on its raw text (lowercased) first and decoded only if it can match.
    static let searchScript = RedisScript("""
        #!lua
        local first = tonumber(ARGV[1])
        local task, taskPre, err, errPre = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        local from, before = tonumber(ARGV[6]), tonumber(ARGV[7])
        local length = redis.call('LLEN', KEYS[1])
        if task == '' and err == '' and not from and not before then
          local wanted = first == 0 and length or math.min(first, length)
          local out = {length}
          for start = 0, wanted - 1, 1000 do
            local chunk = redis.call('LRANGE', KEYS[1], start, math.min(start + 1000, wanted) - 1)
            for i, entry in ipairs(chunk) do
              out[#out + 1] = start + i - 1
              out[#out + 1] = entry
            end
          end
          return out
        end
        local function timed(entry)
          for value in string.gmatch(entry, '"failed_at"%s*:%s*(%-?%d+)') do
            local t = tonumber(value)
            if (not from or t >= from) and (not before or t < before) then return true end
          end
          return false
        end
        local function matches(entry)
          if taskPre ~= '' or errPre ~= '' then
            local lower = string.lower(entry)
            if taskPre ~= '' and not string.find(lower, taskPre, 1, true) then return false end
            if errPre ~= '' and not string.find(lower, errPre, 1, true) then return false end
          end
          if (from or before) and not timed(entry) then return false end
          local ok, fields = pcall(cjson.decode, entry)
          if not ok or type(fields) ~= 'table' then return false end
          if task ~= '' then
            if type(fields.task) ~= 'string' or not string.find(string.lower(fields.task), task, 1, true) then return false end
          end
          if err ~= '' then
            if type(fields.error) ~= 'string' or not string.find(string.lower(fields.error), err, 1, true) then return false end
          end
          if from or before then
            local t = fields.failed_at
            if type(t) ~= 'number' then return false end
            if from and t < from then return false end
            if before and t >= before then return false end
          end
          return true
        end
        local out = {0}
        local count = 0
        for start = 0, length - 1, 1000 do
          local chunk = redis.call('LRANGE', KEYS[1], start, start + 999)
          for i, entry in ipairs(chunk) do
            if matches(entry) then
              count = count + 1
              if first == 0 or count <= first then
                out[#out + 1] = start + i - 1
                out[#out + 1] = entry
              end
            end
          end
        end
        out[1] = count
        return out
        """)

    /// KEYS: dead-letter list, ready list. ARGV: push ("1" moves, "0" only deletes), then pairs of
    /// (stored entry, message to push). One pass: reads the list in chunks, takes out one entry per
    /// pair that is still there, rewrites the list without them (order kept) and, when pushing,
    /// pushes the taken pairs' messages in the order given. Returns the 1-based numbers of the
    /// pairs taken; a job is never in both lists or in neither.
    static let bulkTakeScript = RedisScript("""
        #!lua
        local push = ARGV[1] == '1'
        local wanted = {}
        for i = 2, #ARGV, 2 do
          local list = wanted[ARGV[i]]
          if not list then list = {}; wanted[ARGV[i]] = list end
          list[#list + 1] = (i - 2) / 2 + 1
        end
        local length = redis.call('LLEN', KEYS[1])
        local kept, taken = {}, {}
        for start = 0, length - 1, 1000 do
          local chunk = redis.call('LRANGE', KEYS[1], start, start + 999)
          for _, entry in ipairs(chunk) do
            local list = wanted[entry]
            if list and #list > 0 then
              taken[#taken + 1] = table.remove(list, 1)
            else
              kept[#kept + 1] = entry
            end
          end
        end
        if #taken == 0 then return {} end
        table.sort(taken)
        redis.call('DEL', KEYS[1])
        for start = 1, #kept, 1000 do
          redis.call('RPUSH', KEYS[1], unpack(kept, start, math.min(start + 999, #kept)))
        end
        if push then
          for start = 1, #taken, 1000 do
            local messages = {}
            for k = start, math.min(start + 999, #taken) do messages[#messages + 1] = ARGV[2 * taken[k] + 1] end
            redis.call('LPUSH', KEYS[2], unpack(messages))
          end
        end
        return taken
        """)
}
