public import Airlock
import AirlockRedisClient

/// Where one job is now, as ``RedisAdmin/locateJob(id:scanLimit:)`` found it.
public struct JobLocation: Sendable, Hashable {
    /// The place.
    public enum Place: Sendable, Hashable {
        /// In the queue's ready list; `ahead` jobs will be taken before it.
        case ready(ahead: Int)
        /// In the queue's delayed set, due at this moment (milliseconds since the epoch).
        case delayed(dueAtMilliseconds: Int64)
        /// Taken by this worker (running, prefetched, or held by a dead worker awaiting recovery).
        case inFlight(worker: String)
        /// In the queue's dead-letter list, at this position (0 = newest).
        case dead(index: Int)
    }

    /// The queue whose keys hold it.
    public var queue: String
    /// Where in that queue.
    public var place: Place
    /// The message exactly as stored there.
    public var stored: [UInt8]
    /// The message's fields; empty when it is not a JSON object.
    public var fields: [String: JSONValue]

    /// A location with the given values; `fields` parsed from `stored`.
    public init(queue: String, place: Place, stored: [UInt8]) {
        self.queue = queue
        self.place = place
        self.stored = stored
        if let value = try? JSONParser.parse(stored), case .object(let fields) = value {
            self.fields = fields
        } else {
            self.fields = [:]
        }
    }
}

/// What ``RedisAdmin/locateJob(id:scanLimit:)`` found: every place that holds a message with the
/// id (normally one; a job retried by hand while a copy still runs can be in two).
public struct JobSearch: Sendable, Hashable {
    /// The id searched for.
    public var id: String
    /// Where it is, ready first, then delayed, in flight and dead, by queue name.
    public var locations: [JobLocation]
    /// Queues searched.
    public var queuesSearched: Int
    /// False when some list or set was longer than the scan limit, so only its first entries were
    /// searched: "not found" is then not conclusive.
    public var complete: Bool

    /// Not in any ready list, delayed set, in-flight list or dead-letter list: the job finished
    /// (native jobs keep no result), expired, was purged, or never existed.
    public var isNotFound: Bool { locations.isEmpty }
}

extension RedisAdmin {
    /// Finds the job with id `id` in every known queue: ready lists, delayed sets, the in-flight
    /// list of every registered worker, dead-letter lists. Two round trips: the queue and worker
    /// sets, then one script per queue (pipelined) that reads each list or set in chunks of 1000
    /// and returns only the entries containing the id. Its cost grows with the jobs held, so each
    /// list or set is searched up to `scanLimit` entries (from the consuming end for ready lists,
    /// soonest first for delayed sets, newest first for dead letters); ``JobSearch/complete`` says
    /// whether that cut anything.
    public func locateJob(id: String, scanLimit: Int = 200_000) async throws -> JobSearch {
        let sets = try await pipeline([RedisCommand("SMEMBERS", keys.queues), RedisCommand("SMEMBERS", keys.workers)])
        let queues = try sets[0].strings().sorted()
        let workers = try sets[1].strings().sorted()
        guard !id.isEmpty else { return JobSearch(id: id, locations: [], queuesSearched: queues.count, complete: true) }
        var arguments: [[UInt8]] = [Array(String(max(1, scanLimit)).utf8)]
        arguments += Self.needles(for: [id])
        let calls = queues.map { queue in
            Self.locateScript.call(
                keys: [Array(keys.ready(queue).utf8), Array(keys.delayed(queue).utf8), Array(keys.dead(queue).utf8)]
                    + workers.map { Array(keys.inflight(queue, worker: $0).utf8) },
                arguments: arguments)
        }
        let replies = try await evaluate(calls)
        var locations: [JobLocation] = []
        var complete = true
        for (queue, reply) in zip(queues, replies) {
            let items = try reply.elements()
            guard let truncated = items.first else { continue }
            if try truncated.integer() != 0 { complete = false }
            for start in stride(from: 1, to: items.count - 2, by: 3) {
                let kind = try items[start].integer()
                let position = try items[start + 1].bulk()
                let stored = try items[start + 2].bulk()
                let place: JobLocation.Place
                switch kind {
                case 1: place = .ready(ahead: Int(String(decoding: position, as: UTF8.self)) ?? 0)
                case 2: place = .delayed(dueAtMilliseconds: Self.score(.bulk(position)))
                case 3: place = .dead(index: Int(String(decoding: position, as: UTF8.self)) ?? 0)
                default:
                    let worker = kind - 4
                    guard workers.indices.contains(worker) else { continue }
                    place = .inFlight(worker: workers[worker])
                }
                let location = JobLocation(queue: queue, place: place, stored: stored)
                // A substring match is only a candidate: the parsed id must be the one asked for.
                if location.fields["id"]?.stringValue == id { locations.append(location) }
            }
        }
        let order: (JobLocation.Place) -> Int = {
            switch $0 {
            case .ready: 0
            case .delayed: 1
            case .inFlight: 2
            case .dead: 3
            }
        }
        locations.sort { order($0.place) < order($1.place) }
        return JobSearch(id: id, locations: locations, queuesSearched: queues.count, complete: complete)
    }

    /// KEYS: ready list, delayed set, dead list, then the queue's in-flight list of each
    /// registered worker. ARGV: scan limit, then needles. Returns {truncated (0/1), then per match:
    /// kind (1 ready, 2 delayed, 3 dead, 4+k in-flight list k), position (jobs ahead of it, due
    /// score, dead index, or 0), entry}.
    static let locateScript = RedisScript("""
        #!lua
        local limit = tonumber(ARGV[1])
        local out = {0}
        local step = 1000
        local function has(entry)
          for n = 2, #ARGV do
            if string.find(entry, ARGV[n], 1, true) then return true end
          end
          return false
        end
        -- from the right (consuming) end: position = jobs taken before it
        local function scanReady(key)
          local length = redis.call('LLEN', key)
          if length > limit then out[1] = 1 end
          local searched = math.min(length, limit)
          for done = 0, searched - 1, step do
            local stop = -1 - done
            local first = math.max(-searched, stop - step + 1)
            local chunk = redis.call('LRANGE', key, first, stop)
            for i = #chunk, 1, -1 do
              if has(chunk[i]) then
                out[#out + 1] = 1
                out[#out + 1] = tostring(done + (#chunk - i))
                out[#out + 1] = chunk[i]
              end
            end
          end
        end
        local function scanList(key, kind)
          local length = redis.call('LLEN', key)
          if length > limit then out[1] = 1 end
          local searched = math.min(length, limit)
          for start = 0, searched - 1, step do
            local chunk = redis.call('LRANGE', key, start, math.min(start + step, searched) - 1)
            for i, entry in ipairs(chunk) do
              if has(entry) then
                out[#out + 1] = kind
                out[#out + 1] = tostring(start + i - 1)
                out[#out + 1] = entry
              end
            end
          end
        end
        local function scanDelayed(key)
          local length = redis.call('ZCARD', key)
          if length > limit then out[1] = 1 end
          local searched = math.min(length, limit)
          for start = 0, searched - 1, step do
            local chunk = redis.call('ZRANGE', key, start, math.min(start + step, searched) - 1, 'WITHSCORES')
            for i = 1, #chunk, 2 do
              if has(chunk[i]) then
                out[#out + 1] = 2
                out[#out + 1] = chunk[i + 1]
                out[#out + 1] = chunk[i]
              end
            end
          end
        end
        scanReady(KEYS[1])
        scanDelayed(KEYS[2])
        scanList(KEYS[3], 3)
        for k = 4, #KEYS do scanList(KEYS[k], k) end
        return out
        """)
}
