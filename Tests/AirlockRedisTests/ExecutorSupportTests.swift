import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import AirlockTestKit
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Helpers shared by the Executor* and Envelope* suites. Everything is namespaced under
// `ExecutorTestKit` (or prefixed `Executor…`) because other suites share this test module.

/// A namespace on a real redis-server: a `RedisExecutor` writing into it and a separate client
/// reading the raw keys back.
struct ExecutorFixture: Sendable {
    let server: RedisServer
    let namespace: String
    let keys: RedisKeys
    /// The executor under test.
    let executor: RedisExecutor
    /// An independent connection, for reading what the executor wrote.
    let reader: RedisClient

    /// A fixture on the shared server (or on `server`), in a namespace no other test uses.
    static func make(
        _ label: String,
        server: RedisServer? = nil,
        password: String? = nil,
        defaultQueue: String = "default",
        maxPayloadBytes: Int = 512 * 1024,
        idempotencyTTL: Duration = .seconds(24 * 3600),
        origin: String? = nil
    ) async throws -> ExecutorFixture {
        let server = if let server { server } else { try await RedisServer.shared() }
        let namespace = RedisServer.uniqueNamespace(label)
        let url = password.map { server.url(password: $0) } ?? server.url
        let executor = RedisExecutor(
            client: RedisClient(configuration: try RedisConfiguration(url: url), name: "executor-under-test", logger: ExecutorTestKit.quiet),
            namespace: namespace, defaultQueue: defaultQueue, maxPayloadBytes: maxPayloadBytes,
            idempotencyTTL: idempotencyTTL, origin: origin, logger: ExecutorTestKit.quiet)
        let reader = try ExecutorTestKit.client(url, name: "executor-test-reader")
        return ExecutorFixture(server: server, namespace: namespace, keys: RedisKeys(namespace: namespace), executor: executor, reader: reader)
    }

    // MARK: Flushing

    /// Runs `body` in a scope that flushes to this fixture's executor. Policy and behaviour are
    /// explicit so a test elsewhere that reconfigures Airlock globally cannot change the outcome.
    @discardableResult
    func flush<R>(_ body: () throws -> R) async throws -> R {
        try await ExecutorTestKit.flush(to: executor, body)
    }

    // MARK: Reading

    /// Every entry of a list, left (newest) to right (oldest, consumed next).
    func list(_ key: String) async throws -> [[UInt8]] {
        try await ExecutorTestKit.list(key, reader)
    }

    /// The ready list of `queue`, left (newest) to right (consumed next).
    func ready(_ queue: String) async throws -> [[UInt8]] { try await list(keys.ready(queue)) }

    /// The ready list of `queue`, decoded, left to right.
    func readyEnvelopes(_ queue: String) async throws -> [Envelope] {
        try await ready(queue).map { try Envelope.decode($0) }
    }

    /// The delayed set of `queue` as (member, score) pairs, lowest score first.
    func delayed(_ queue: String) async throws -> [(bytes: [UInt8], score: Int64)] {
        let reply = try await reader.send(["ZRANGE", keys.delayed(queue), "0", "-1", "WITHSCORES"].map { Array($0.utf8) })
        let flat = try #require(reply.array, "ZRANGE replied \(reply)")
        return stride(from: 0, to: flat.count, by: 2).map { index in
            let score = Int64(Double(flat[index + 1].string ?? "nan") ?? -1)
            return (flat[index].bytes ?? [], score)
        }
    }

    /// Pops the consuming (right) end of a ready list, as a worker would.
    func popReady(_ queue: String) async throws -> Envelope? {
        let reply = try await reader.send("RPOP", keys.ready(queue))
        guard let bytes = reply.bytes else { return nil }
        return try Envelope.decode(bytes)
    }

    /// Every key of this fixture's namespace, sorted.
    func allKeys() async throws -> [String] {
        try await ExecutorTestKit.keys(matching: namespace + ":*", reader)
    }

    /// Members of `<ns>:queues`, sorted.
    func queueNames() async throws -> [String] {
        let reply = try await reader.send("SMEMBERS", keys.queues)
        return (reply.array ?? []).compactMap(\.string).sorted()
    }

    /// Sends an ad-hoc command on the reading connection.
    @discardableResult
    func command(_ args: String...) async throws -> RedisReply {
        try await reader.send(args.map { Array($0.utf8) })
    }
}

enum ExecutorTestKit {
    /// A logger that stays silent, so expected connection failures do not flood the test output.
    static var quiet: Logger {
        var logger = Logger(label: "airlock.executor-tests")
        logger.logLevel = .critical
        return logger
    }

    /// A quiet client for reading what the executor wrote.
    static func client(_ url: String, name: String? = nil) throws -> RedisClient {
        RedisClient(configuration: try RedisConfiguration(url: url), name: name, logger: quiet)
    }

    /// An executor with its own connection to `url` (like ``RedisExecutor/init(url:namespace:defaultQueue:maxPayloadBytes:logger:)``) that logs nothing.
    static func executor(url: String, namespace: String) throws -> RedisExecutor {
        try RedisExecutor(url: url, namespace: namespace, logger: quiet)
    }
    /// Runs `body` in a scope flushing to `executor`, with explicit policy and behaviour.
    @discardableResult
    static func flush<R>(to executor: any Executor, _ body: () throws -> R) async throws -> R {
        try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) { try body() }
    }

    static func list(_ key: String, _ client: RedisClient) async throws -> [[UInt8]] {
        let reply = try await client.send("LRANGE", key, "0", "-1")
        let elements = try #require(reply.array, "LRANGE \(key) replied \(reply)")
        return elements.map { $0.bytes ?? [] }
    }

    static func keys(matching pattern: String, _ client: RedisClient) async throws -> [String] {
        let reply = try await client.send("KEYS", pattern)
        return (reply.array ?? []).compactMap(\.string).sorted()
    }

    /// The JSON object stored in `bytes`, parsed without going through `Envelope`.
    static func object(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        let value = try JSONParser.parse(bytes)
        return try #require(value.objectValue, "not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
    }

    /// The wire form of an intent's id.
    static func wireID(_ intent: Intent) -> String { intent.id.uuidString.lowercased() }

    /// Runs `body`, which must throw a `DispatchError` whose underlying error is a
    /// `RedisExecutorError`; returns both (or records a failure and returns nil).
    static func dispatchFailure<T>(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> T
    ) async -> (DispatchError, RedisExecutorError)? {
        do {
            _ = try await body()
            Issue.record("expected a DispatchError, but the flush succeeded", sourceLocation: sourceLocation)
            return nil
        } catch let error as DispatchError {
            guard let underlying = error.underlying as? RedisExecutorError else {
                Issue.record("DispatchError's underlying error is \(type(of: error.underlying)): \(error.underlying)", sourceLocation: sourceLocation)
                return nil
            }
            return (error, underlying)
        } catch {
            Issue.record("expected a DispatchError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// A loopback port nothing listens on.
    static func deadPort() throws -> Int { try RedisServer.closedPort() }

    /// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
    static func eventually(within limit: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
        try await Eventually.holds(within: limit, poll: .milliseconds(10), condition)
    }
}

// MARK: - Typed tasks used by the executor suites

/// A typed task with a few argument kinds.
struct ExecutorOrderPlaced: AirlockTask, Equatable {
    static let name = "orders.placed"
    let orderID: Int
    let customer: String
    let total: Double
    let tags: [String]
    let gift: Bool?
    func run(_ context: TaskContext) async throws {}
}

/// A typed task whose type carries default options.
struct ExecutorReportTask: AirlockTask, Equatable {
    static let name = "reports.build"
    static var defaultOptions: DispatchOptions { DispatchOptions(queue: "reports", maxRetries: 3, priority: 1) }
    let reportID: String
    func run(_ context: TaskContext) async throws {}
}

/// A typed task carrying one free-text field (unicode and size tests).
struct ExecutorTextTask: AirlockTask, Equatable {
    static let name = "text.echo"
    let text: String
    func run(_ context: TaskContext) async throws {}
}

/// A typed task that encodes as a bare number instead of an object (an invalid `kwargs`).
struct ExecutorScalarTask: AirlockTask {
    static let name = "scalar.task"
    let value: Int
    init(value: Int) { self.value = value }
    init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(Int.self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
    func run(_ context: TaskContext) async throws {}
}

/// A typed task whose encoding always fails.
struct ExecutorUnencodableTask: AirlockTask {
    static let name = "unencodable.task"
    let value: Double
    func run(_ context: TaskContext) async throws {}
    // JSONEncoder refuses non-finite doubles by default.
    static var nan: ExecutorUnencodableTask { ExecutorUnencodableTask(value: .nan) }
}

/// A loopback TCP socket that listens but never accepts, reads or answers: the kernel completes
/// connections into its backlog, so a client connects fine and then waits for a reply forever.
final class ExecutorSilentListener: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ExecutorSilentListenerError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw ExecutorSilentListenerError("bind/listen on loopback failed")
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

struct ExecutorSilentListenerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
