import Airlock
import AirlockRedisClient

/// One minute of one queue's per-second counters, as the settle script writes them to
/// `<ns>:{Q}:series:<minute>` (the worker's clock; the hash expires 65 minutes after its last new
/// field).
public struct ThroughputMinute: Sendable, Hashable {
    /// The minute: Unix seconds divided by 60.
    public var minute: Int64
    /// Jobs that succeeded in each second of the minute (60 entries, second 0 first).
    public var processed: [Int]
    /// Failed attempts (retried or dead-lettered) in each second of the minute (60 entries).
    public var failed: [Int]

    /// A minute with no jobs.
    public init(minute: Int64) {
        self.minute = minute
        self.processed = Array(repeating: 0, count: 60)
        self.failed = Array(repeating: 0, count: 60)
    }

    /// The field-wise sum of two minutes (of different queues); keeps `self`'s minute.
    public func adding(_ other: ThroughputMinute) -> ThroughputMinute {
        var sum = self
        for second in 0..<60 {
            sum.processed[second] += other.processed[second]
            sum.failed[second] += other.failed[second]
        }
        return sum
    }

    /// Parses a series hash (`HGETALL` reply: field, value, field, value …): fields `p<s>` and
    /// `f<s>`, `s` from 0 to 59. Fields of another shape and values that are not non-negative
    /// integers are ignored (anyone can write to Redis; a chart is no place to fail). Read from
    /// the bytes, with no String or dictionary per field: the dashboard's overview parses 100
    /// queues × 2 minutes × 120 fields per view.
    init(minute: Int64, pairs items: [RedisReply]) {
        self.init(minute: minute)
        var index = 0
        while index + 1 < items.count {
            defer { index += 2 }
            guard case .bulk(let field) = items[index], case .bulk(let value) = items[index + 1], field.count >= 2,
                  let second = Self.decimal(field.dropFirst()), second < 60, let count = Self.decimal(value[...]) else { continue }
            switch field[0] {
            case UInt8(ascii: "p"): processed[second] = count
            case UInt8(ascii: "f"): failed[second] = count
            default: break
            }
        }
    }

    /// A non-negative decimal of at most 18 digits (no sign, no spaces), or `nil`.
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

/// Processed and failed jobs per second over a window of whole seconds, summed over queues.
public struct ThroughputSeries: Sendable, Hashable {
    /// The queues summed.
    public var queues: [String]
    /// The first second of the window, in Unix seconds.
    public var startSecond: Int64
    /// Jobs that succeeded, one entry per second from ``startSecond``, oldest first.
    public var processed: [Int]
    /// Failed attempts, one entry per second from ``startSecond``, oldest first.
    public var failed: [Int]

    /// The window's length in seconds.
    public var count: Int { processed.count }
    /// Jobs processed in the whole window.
    public var processedTotal: Int { processed.reduce(0, +) }
    /// Failed attempts in the whole window.
    public var failedTotal: Int { failed.reduce(0, +) }

    /// The `seconds` seconds ending with second `endSecond` (inclusive), cut from `minutes`
    /// (per minute, already summed over queues; a missing minute counts as no jobs).
    public init(queues: [String], endSecond: Int64, seconds: Int, minutes: [Int64: ThroughputMinute]) {
        self.queues = queues
        let seconds = max(0, seconds)
        self.startSecond = endSecond - Int64(seconds) + 1
        self.processed = []
        self.failed = []
        processed.reserveCapacity(seconds)
        failed.reserveCapacity(seconds)
        for step in 0..<seconds {
            let second = startSecond + Int64(step)
            let (minute, offset) = second.quotientAndRemainder(dividingBy: 60)
            let counts = minutes[minute]
            processed.append(counts?.processed[Int(offset)] ?? 0)
            failed.append(counts?.failed[Int(offset)] ?? 0)
        }
    }
}

extension RedisAdmin {
    /// The series hashes of `queues` for each minute in `minutes` (Unix minutes), per queue and
    /// minute; a minute without a hash (no jobs, or expired) is absent. One round trip: one
    /// `HGETALL` per queue and minute, pipelined.
    public func throughputMinutes(queues: [String], minutes: ClosedRange<Int64>) async throws -> [String: [Int64: ThroughputMinute]] {
        var commands: [RedisCommand] = []
        commands.reserveCapacity(queues.count * minutes.count)
        for queue in queues {
            for minute in minutes { commands.append(RedisCommand("HGETALL", keys.series(queue, minute: minute))) }
        }
        let replies = try await pipeline(commands)
        var result: [String: [Int64: ThroughputMinute]] = [:]
        var index = 0
        for queue in queues {
            var perMinute: [Int64: ThroughputMinute] = [:]
            for minute in minutes {
                let items = try replies[index].elements()
                index += 1
                if !items.isEmpty { perMinute[minute] = ThroughputMinute(minute: minute, pairs: items) }
            }
            result[queue] = perMinute
        }
        return result
    }

    /// Processed and failed jobs per second over the last `seconds` seconds (at most 3900: the
    /// series keys expire after 65 minutes), summed over `queues` (every known queue when `nil` or
    /// empty), ending with the current second (this process's clock: the series are written with
    /// the workers' clocks, which NTP keeps together). Two round trips: the queue set, then one
    /// `HGETALL` per queue and minute covered (61 per queue for an hour).
    /// - Throws: ``AdminError`` for a queue that is not known; ``RedisError``.
    public func throughput(queues requested: [String]? = nil, seconds: Int = 3600) async throws -> ThroughputSeries {
        let queues = try resolveQueues(requested, known: try await queueNames())
        let seconds = min(max(seconds, 1), 3900)
        let end = epochMilliseconds() / 1000
        let window = Self.minutes(endSecond: end, seconds: seconds)
        let perQueue = try await throughputMinutes(queues: queues, minutes: window)
        var summed: [Int64: ThroughputMinute] = [:]
        for minutes in perQueue.values {
            for (minute, counts) in minutes { summed[minute] = summed[minute]?.adding(counts) ?? counts }
        }
        return ThroughputSeries(queues: queues, endSecond: end, seconds: seconds, minutes: summed)
    }

    /// The Unix minutes a window of `seconds` seconds ending with `endSecond` touches.
    public static func minutes(endSecond: Int64, seconds: Int) -> ClosedRange<Int64> {
        let start = endSecond - Int64(max(seconds, 1)) + 1
        return start.quotientAndRemainder(dividingBy: 60).quotient...endSecond.quotientAndRemainder(dividingBy: 60).quotient
    }
}
