/// One Redis command: its arguments as bytes, and how long Redis may keep the connection silent
/// before it answers.
///
/// The connection needs the second to set its read timeout: an ordinary command gets
/// ``RedisConfiguration/commandTimeout``, a blocking one (``blmove(_:_:from:to:timeout:)``,
/// ``blpop(_:timeout:)``, ``wait(replicas:timeout:)``) its own timeout plus a second, so a healthy
/// connection waiting for work is never mistaken for a dead one. Commands are built knowing this,
/// never parsed back out of their bytes.
///
/// ```swift
/// let length = try await client.send(RedisCommand("LLEN", key)).integer()
/// let job = try await client.send(.blmove(ready, inflight, from: .right, to: .left, timeout: .milliseconds(500)))
/// ```
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    /// How long the server may stay silent before replying.
    public enum Blocking: Sendable, Hashable {
        /// An ordinary command: the reply comes at once.
        case no
        /// Blocks at most this long server-side.
        case upTo(Duration)
        /// Blocks until something happens (a timeout of 0).
        case forever
    }

    /// The command name and its arguments, each exactly as sent.
    public var arguments: [[UInt8]]
    /// Whether, and how long, the command blocks server-side.
    public var blocking: Blocking

    /// A command from raw argument bytes (the first is the command name).
    public init(arguments: [[UInt8]], blocking: Blocking = .no) {
        self.arguments = arguments
        self.blocking = blocking
    }

    /// A non-blocking command: `RedisCommand("HINCRBY", key, "processed", 1)`.
    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments)
    }

    /// A non-blocking command from an argument list.
    public init(_ name: String, _ arguments: [any RedisArgument]) {
        var bytes: [[UInt8]] = [Array(name.utf8)]
        bytes.reserveCapacity(arguments.count + 1)
        for argument in arguments { bytes.append(argument.redisBytes) }
        self.init(arguments: bytes)
    }

    /// The command name, upper-cased, for messages.
    public var name: String { String(decoding: arguments.first ?? [], as: UTF8.self).uppercased() }

    /// `NAME arg arg …`, arguments shortened, for logs and test failures (never the whole payload).
    public var description: String {
        arguments.prefix(6).map { argument in
            let text = String(decoding: argument.prefix(40), as: UTF8.self)
            return argument.count > 40 ? text + "…" : text
        }.joined(separator: " ") + (arguments.count > 6 ? " …(\(arguments.count) arguments)" : "")
    }

    // MARK: Blocking commands

    /// Which end of a list.
    public enum ListEnd: String, Sendable {
        /// The head (index 0).
        case left = "LEFT"
        /// The tail (index -1).
        case right = "RIGHT"
    }

    /// `BLMOVE source destination from to timeout`: waits up to `timeout` for an element to move
    /// (`Duration.zero` waits forever).
    public static func blmove(_ source: [UInt8], _ destination: [UInt8], from: ListEnd, to: ListEnd, timeout: Duration) -> RedisCommand {
        RedisCommand(
            arguments: [Array("BLMOVE".utf8), source, destination, Array(from.rawValue.utf8), Array(to.rawValue.utf8), seconds(timeout)],
            blocking: blocking(timeout))
    }

    /// `BLPOP key… timeout`: waits up to `timeout` for an element (`Duration.zero` waits forever).
    public static func blpop(_ keys: [[UInt8]], timeout: Duration) -> RedisCommand {
        RedisCommand(arguments: [Array("BLPOP".utf8)] + keys + [seconds(timeout)], blocking: blocking(timeout))
    }

    /// `WAIT replicas timeout-ms`: waits until `replicas` replicas acknowledged every write this
    /// connection made, or `timeout` passed (`Duration.zero` waits forever).
    public static func wait(replicas: Int, timeout: Duration) -> RedisCommand {
        RedisCommand(
            arguments: [Array("WAIT".utf8), Array(String(replicas).utf8), Array(String(timeout.wholeMillisecondsForRedis).utf8)],
            blocking: blocking(timeout))
    }

    private static func blocking(_ timeout: Duration) -> Blocking {
        timeout <= .zero ? .forever : .upTo(timeout)
    }

    /// A timeout in seconds with millisecond precision, as blocking list commands take it.
    private static func seconds(_ timeout: Duration) -> [UInt8] {
        let milliseconds = max(0, timeout.wholeMillisecondsForRedis)
        let fraction = milliseconds % 1000
        let digits = String(fraction)
        return Array("\(milliseconds / 1000).\(String(repeating: "0", count: 3 - digits.count))\(digits)".utf8)
    }
}

extension Duration {
    /// Whole milliseconds, saturated, for timeouts sent to Redis.
    var wholeMillisecondsForRedis: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? 0 : Int64.max / 2 }
        return product + attoseconds / 1_000_000_000_000_000
    }
}

/// Something that can be sent as one argument of a ``RedisCommand``.
public protocol RedisArgument: Sendable {
    /// The bytes sent.
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument {
    /// The UTF-8 bytes.
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgument {
    /// The UTF-8 bytes.
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    /// The bytes themselves.
    public var redisBytes: [UInt8] { self }
}

extension Int: RedisArgument {
    /// The decimal digits.
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

extension Int64: RedisArgument {
    /// The decimal digits.
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}
