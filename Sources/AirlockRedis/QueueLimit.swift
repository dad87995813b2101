public import Airlock
import AirlockRedisClient

/// A fleet-wide limit on one queue: at most ``concurrency`` of its jobs held by all workers at
/// once, and at most ``Rate-swift.struct/count`` jobs taken per ``Rate-swift.struct/interval``.
///
/// Enforced in Redis by the fetch script (`docs/PROTOCOL.md`, "Queue limits"): jobs over the limit
/// stay in the ready list, in their place, and workers wait for a lease to be freed or for the
/// next token without polling. The concurrency counts the jobs workers *hold* — running and
/// prefetched — so the number running is never above it. Stored in `<ns>:{Q}:limit`; set with
/// `airlock-workerd limit`, ``RedisAdmin/setLimit(_:on:)`` or a worker's
/// ``RedisJobSource/Configuration/limits``.
///
/// ```swift
/// let limit = try QueueLimit(parsing: "concurrency:5,rate:100/1s")
/// ```
public struct QueueLimit: Sendable, Hashable, CustomStringConvertible {
    /// At most ``count`` jobs per ``interval``, with bursts of up to ``burst`` at once.
    public struct Rate: Sendable, Hashable, CustomStringConvertible {
        /// Jobs per interval (at least 1).
        public let count: Int
        /// The interval, in milliseconds (at least 1).
        public let intervalMilliseconds: Int64
        /// Jobs that may start at once after a quiet period (at least 1): the tokens the bucket holds.
        public let burst: Int

        /// `count` jobs per `interval`; `burst` defaults to 20 ms worth of jobs, at least 1, so a
        /// fleet that wakes a little late does not fall below the rate.
        /// - Throws: ``QueueLimitError`` (`outOfRange`) for a count, interval or burst below 1 (or huge).
        public init(_ count: Int, per interval: Duration, burst: Int? = nil) throws(QueueLimitError) {
            let milliseconds = interval.wholeMilliseconds
            guard (1...QueueLimit.largest).contains(count) else {
                throw QueueLimitError(.outOfRange, "a rate needs a count from 1 to \(QueueLimit.largest), got \(count)")
            }
            // A fraction of a millisecond would be rounded away: the record keeps whole milliseconds.
            guard (1...QueueLimit.longestIntervalMilliseconds).contains(milliseconds), interval == .milliseconds(milliseconds) else {
                throw QueueLimitError(.outOfRange, "a rate's interval must be whole milliseconds from 1ms to 1 day, got \(interval)")
            }
            let burst = burst ?? Self.defaultBurst(count: count, intervalMilliseconds: milliseconds)
            guard (1...QueueLimit.largest).contains(burst) else {
                throw QueueLimitError(.outOfRange, "a burst must be from 1 to \(QueueLimit.largest), got \(burst)")
            }
            self.count = count
            self.intervalMilliseconds = milliseconds
            self.burst = burst
        }

        /// The interval.
        public var interval: Duration { .milliseconds(intervalMilliseconds) }

        /// 20 ms worth of jobs, at least one.
        static func defaultBurst(count: Int, intervalMilliseconds: Int64) -> Int {
            max(1, Int(Int64(count).multipliedReportingOverflow(by: 20).partialValue / intervalMilliseconds))
        }

        /// `100/1s (burst 2)`.
        public var description: String { "\(count)/\(QueueLimit.format(milliseconds: intervalMilliseconds)) (burst \(burst))" }
    }

    /// Most jobs held at once by all workers together; `nil` for no concurrency limit.
    public let concurrency: Int?
    /// Most jobs taken per interval by all workers together; `nil` for no rate limit.
    public let rate: Rate?

    /// A limit with at least one of the two.
    /// - Throws: ``QueueLimitError`` for a concurrency below 1 or neither limit given.
    public init(concurrency: Int? = nil, rate: Rate? = nil) throws(QueueLimitError) {
        if let concurrency, !(1...Self.largest).contains(concurrency) {
            throw QueueLimitError(.outOfRange, "a concurrency limit must be from 1 to \(Self.largest), got \(concurrency); use --clear (clearLimit) to remove one")
        }
        guard concurrency != nil || rate != nil else {
            throw QueueLimitError(.invalidSyntax, "a limit needs a concurrency, a rate or both, such as 'concurrency:5,rate:100/1s'")
        }
        self.concurrency = concurrency
        self.rate = rate
    }

    /// Parses the command-line form: comma-separated `concurrency:N`, `rate:N/INTERVAL` and
    /// `burst:B` (INTERVAL: `500ms`, `1s`, `s`, `2m`, `1h`), such as `concurrency:5,rate:100/1s`.
    /// - Throws: ``QueueLimitError`` saying which part is wrong and what is expected.
    public init(parsing text: String) throws(QueueLimitError) {
        var concurrency: Int?
        var rate: (count: Int, interval: Duration)?
        var burst: Int?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingSpaces()
            let pair = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2 else {
                throw QueueLimitError(.invalidSyntax, "'\(SafeText.escape(item))' in limit '\(SafeText.escape(text))' must be concurrency:N, rate:N/INTERVAL or burst:N")
            }
            switch pair[0] {
            case "concurrency": concurrency = try Self.number(pair[1], of: "concurrency")
            case "rate": rate = try Self.rate(pair[1])
            case "burst": burst = try Self.number(pair[1], of: "burst")
            default:
                throw QueueLimitError(.invalidSyntax, "unknown limit '\(SafeText.escape(pair[0]))' in '\(SafeText.escape(text))': use concurrency:N, rate:N/INTERVAL or burst:N")
            }
        }
        if burst != nil, rate == nil { throw QueueLimitError(.invalidSyntax, "burst:N needs a rate:N/INTERVAL beside it") }
        try self.init(concurrency: concurrency, rate: try rate.map { r throws(QueueLimitError) in try Rate(r.count, per: r.interval, burst: burst) })
    }

    /// `concurrency:5,rate:100/1s,burst:2`: the form ``init(parsing:)`` reads.
    public var description: String {
        var parts: [String] = []
        if let concurrency { parts.append("concurrency:\(concurrency)") }
        if let rate { parts.append("rate:\(rate.count)/\(Self.format(milliseconds: rate.intervalMilliseconds)),burst:\(rate.burst)") }
        return parts.joined(separator: ",")
    }

    // MARK: The record in Redis

    /// The hash fields of `<ns>:{Q}:limit`: `concurrency`, `rate`, `interval_ms`, `burst`.
    var fields: [(String, String)] {
        var fields: [(String, String)] = []
        if let concurrency { fields.append(("concurrency", String(concurrency))) }
        if let rate {
            fields += [("rate", String(rate.count)), ("interval_ms", String(rate.intervalMilliseconds)), ("burst", String(rate.burst))]
        }
        return fields
    }

    /// The limit a `<ns>:{Q}:limit` hash describes; `nil` when it holds none (absent, or fields a
    /// worker would not enforce: the fetch script ignores a concurrency or rate below 1).
    init?(record: [String: String]) {
        let concurrency = record["concurrency"].flatMap(Int.init).flatMap { $0 >= 1 ? $0 : nil }
        var rate: Rate?
        if let count = record["rate"].flatMap(Int.init), count >= 1 {
            let interval = record["interval_ms"].flatMap(Int64.init) ?? 1000
            rate = try? Rate(count, per: .milliseconds(interval), burst: record["burst"].flatMap(Int.init))
        }
        guard let limit = try? QueueLimit(concurrency: concurrency, rate: rate) else { return nil }
        self = limit
    }

    /// Sets `<ns>:{Q}:limit` to exactly `limit` (or deletes it with `nil`) in one step. KEYS:
    /// limit, held, rate state, limit wake. ARGV: field/value pairs (none: clear). Replacing keeps
    /// the leases (they are jobs workers hold) and the rate state (a re-declared limit grants no
    /// new burst); one wake token lets a worker waiting on the old concurrency look again.
    /// Clearing deletes every limit key. Returns 1 when a record was there.
    static let writeScript = RedisScript("""
        #!lua
        local existed = redis.call('DEL', KEYS[1])
        if #ARGV == 0 then
          redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
          return existed
        end
        redis.call('HSET', KEYS[1], unpack(ARGV))
        local concurrency = tonumber(redis.call('HGET', KEYS[1], 'concurrency')) or 0
        if concurrency > 0 then
          redis.call('LPUSH', KEYS[4], '1')
          redis.call('LTRIM', KEYS[4], 0, concurrency - 1)
        end
        return existed
        """)

    /// The call that writes `limit` (or clears with `nil`) for `queue`.
    static func write(_ limit: QueueLimit?, queue: String, keys: RedisKeys) -> RedisScript.Call {
        writeScript.call(
            keys: [keys.limit(queue), keys.limitHeld(queue), keys.limitRate(queue), keys.limitWake(queue)].map { Array($0.utf8) },
            arguments: (limit?.fields ?? []).flatMap { [Array($0.0.utf8), Array($0.1.utf8)] })
    }

    // MARK: Parsing helpers

    static let largest = 1_000_000_000
    static let longestIntervalMilliseconds: Int64 = 86_400_000

    private static func number(_ text: String, of name: String) throws(QueueLimitError) -> Int {
        guard let value = Int(text.trimmingSpaces()) else {
            throw QueueLimitError(.invalidSyntax, "\(name):\(SafeText.escape(text)) needs a whole number, such as \(name):5")
        }
        return value
    }

    /// `100/1s`, `100/s`, `5/500ms`, `10/2m`, `1/1h`.
    private static func rate(_ text: String) throws(QueueLimitError) -> (count: Int, interval: Duration) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        guard parts.count == 2, let count = Int(parts[0]) else {
            throw QueueLimitError(.invalidSyntax, "rate:\(SafeText.escape(text)) must be N/INTERVAL, such as rate:100/1s or rate:5/500ms")
        }
        let unit = String(parts[1].drop { $0.isNumber })
        let amountText = String(parts[1].prefix { $0.isNumber })
        let amount = amountText.isEmpty ? 1 : Int64(amountText)
        let scale: Int64? = switch unit {
        case "ms": 1
        case "s": 1000
        case "m": 60_000
        case "h": 3_600_000
        default: nil
        }
        guard let amount, let scale else {
            throw QueueLimitError(.invalidSyntax, "rate:\(SafeText.escape(text)): the interval must be a number and ms, s, m or h, such as 1s or 500ms")
        }
        let (milliseconds, overflow) = amount.multipliedReportingOverflow(by: scale)
        guard !overflow, milliseconds <= longestIntervalMilliseconds else {
            throw QueueLimitError(.outOfRange, "rate:\(SafeText.escape(text)): the interval must be at most 1 day")
        }
        return (count, .milliseconds(milliseconds))
    }

    /// `1s`, `500ms`, `2m`, `1h`: the largest unit that divides the interval.
    static func format(milliseconds: Int64) -> String {
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

/// A queue limit that cannot be used as given; the description says what is expected.
public struct QueueLimitError: AirlockError, Equatable {
    /// The kind of problem, stable for code that branches on it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case invalidSyntax, outOfRange }
        fileprivate let code: Code
        /// The text is not of the form `concurrency:N,rate:N/INTERVAL,burst:N`, or gives no limit.
        public static let invalidSyntax = Kind(code: .invalidSyntax)
        /// A count, concurrency, burst or interval outside its range.
        public static let outOfRange = Kind(code: .outOfRange)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// The kind of problem.
    public let kind: Kind
    /// What is wrong and what is expected, in one line.
    public let description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
