import Airlock
import AirlockHummingbird
import AirlockRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import OrderAppKit
import PostgresNIO
import Synchronization
import Testing

/// The servers the tests use, started by `scripts/test.sh`. A missing one fails the test: these
/// tests never skip.
struct TestServers: Sendable {
    let redisURL: String
    let postgresHost: String
    let postgresPort: Int
    let postgresUser: String
    let postgresDatabase: String

    var postgres: PostgresClient.Configuration {
        PostgresClient.Configuration(
            host: postgresHost, port: postgresPort, username: postgresUser, password: nil, database: postgresDatabase, tls: .disable)
    }

    static func fromEnvironment() throws -> TestServers {
        let environment = ProcessInfo.processInfo.environment
        guard let redisURL = environment["AIRLOCK_TEST_REDIS_URL"] else {
            throw MissingServer("AIRLOCK_TEST_REDIS_URL is not set: run these tests with scripts/test.sh, which starts Redis and PostgreSQL")
        }
        guard let port = environment["AIRLOCK_TEST_PG_PORT"].flatMap(Int.init) else {
            throw MissingServer("AIRLOCK_TEST_PG_PORT is not set: run these tests with scripts/test.sh, which starts PostgreSQL and Redis")
        }
        return TestServers(
            redisURL: redisURL, postgresHost: environment["AIRLOCK_TEST_PG_HOST"] ?? "127.0.0.1", postgresPort: port,
            postgresUser: environment["AIRLOCK_TEST_PG_USER"] ?? "postgres",
            postgresDatabase: environment["AIRLOCK_TEST_PG_DATABASE"] ?? "postgres")
    }

    /// Fails at once when a server does not answer (a connection pool would wait for it forever).
    func checkReachable() async throws {
        let configuration = PostgresConnection.Configuration(
            host: postgresHost, port: postgresPort, username: postgresUser, password: nil, database: postgresDatabase, tls: .disable)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: poolLogger)
            try await connection.close()
        } catch {
            throw MissingServer("PostgreSQL at \(postgresHost):\(postgresPort) does not answer (\(String(reflecting: error))); run scripts/test.sh")
        }
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), name: "airlock-hb-check", logger: poolLogger)
        do {
            try await redis.connect()
            await redis.close()
        } catch {
            await redis.close()
            throw MissingServer("Redis at \(redisURL) does not answer (\(error)); run scripts/test.sh")
        }
    }
}

struct MissingServer: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A side effect the test routes enqueue.
struct Probe: AirlockTask {
    static let name = "test.probe"
    let label: String
    func run(_ context: TaskContext) async throws {}
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let quietLogger: Logger = {
    var logger = Logger(label: "airlock-hummingbird-tests")
    logger.logLevel = .warning
    return logger
}()

/// The pools warn when a query waits for `run()` to start, which the tests do on purpose.
let poolLogger: Logger = {
    var logger = Logger(label: "airlock-hummingbird-tests.postgres")
    logger.logLevel = .error
    return logger
}()

/// One test's world: its own Redis namespace (so tests running in parallel never see each
/// other's jobs), an executor into it, a client to read it, and the orders table.
struct Harness: Sendable {
    let servers: TestServers
    let keys: RedisKeys
    let executor: RedisExecutor
    let redis: RedisClient
    let store: OrderStore

    /// A harness over the servers `scripts/test.sh` started; throws (failing the test) when they are missing.
    static func make() async throws -> Harness {
        let servers = try TestServers.fromEnvironment()
        try await servers.checkReachable()
        return try Harness(servers: servers)
    }

    private init(servers: TestServers) throws {
        self.servers = servers
        let namespace = "airlock-hb-\(UUID().uuidString.prefix(8).lowercased())"
        keys = RedisKeys(namespace: namespace)
        redis = RedisClient(configuration: try RedisConfiguration(url: servers.redisURL), name: "airlock-hb-tests", logger: quietLogger)
        executor = RedisExecutor(client: redis, namespace: namespace, logger: quietLogger)
        store = OrderStore(database: PostgresClient(configuration: servers.postgres, backgroundLogger: poolLogger), logger: quietLogger)
    }

    /// The jobs in the ready list of `queue`, oldest first (producers LPUSH, so reverse LRANGE).
    func readyJobs(_ queue: String = "default") async throws -> [Envelope] {
        let reply = try await redis.send("LRANGE", keys.ready(queue), "0", "-1")
        guard let items = reply.array else { throw TestFailure("LRANGE answered \(reply)") }
        return try items.reversed().map { item in
            guard let bytes = item.bytes else { throw TestFailure("not a bulk string: \(item)") }
            return try Envelope.decode(bytes)
        }
    }

    /// Runs `test` against the order app (plus the routes `addRoutes` adds) served over real HTTP.
    func withApp(
        addRoutes: (Router<BasicAirlockRequestContext>) -> Void = { _ in },
        _ test: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let router = OrderAPI.router(store: store, executor: executor)
        addRoutes(router)
        let app = OrderAPI.application(router: router, store: store, port: 0, logger: quietLogger)
        do {
            try await app.test(.live, test)
        } catch {
            await redis.close()
            throw error
        }
        await redis.close()
    }

    /// Runs `body` with the database pool running (for tests that do not start the app).
    func withDatabase<R: Sendable>(_ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [store] in await store.database.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            return try await body(store.database)
        }
    }

    /// Runs `body` while an in-process Airlock worker consumes this harness's namespace and
    /// delivers confirmations to `deliver`; shuts the worker down afterwards.
    func withWorker<R: Sendable>(
        deliver: @escaping @Sendable (Order, TaskContext) async throws -> Void,
        _ body: @Sendable () async throws -> R
    ) async throws -> R {
        let source = try RedisJobSource(url: servers.redisURL, namespace: keys.namespace, logger: quietLogger)
        var configuration = WorkerConfiguration()
        configuration.concurrency = 2
        configuration.prefetch = 0
        configuration.shutdownTimeout = .seconds(5)
        configuration.retryStrategy = .fixed(.milliseconds(200))
        let registry = OrderWorker.registry(services: OrderWorkerServices(store: store, deliver: deliver))
        let worker = Worker(source: source, configuration: configuration, registry: registry, logger: quietLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            let result: Result<R, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            worker.shutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }
}

/// Polls `condition` until it holds or the deadline passes; returns whether it held. The deadline
/// is `timeout` but at least a minute: a hang guard on a shared machine, never a bound on speed.
func eventually(timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + max(timeout, .seconds(60))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// What a worker's confirmation deliveries saw, in order.
final class Deliveries: Sendable {
    struct Seen: Sendable, Equatable {
        var order: Order
        var attempt: Int
    }
    private let state = Mutex<[Seen]>([])
    var seen: [Seen] { state.withLock { $0 } }
    func record(_ order: Order, _ context: TaskContext) { state.withLock { $0.append(Seen(order: order, attempt: context.attempt)) } }
}

extension ByteBuffer {
    /// The body as text.
    var text: String { String(buffer: self) }
}

/// A JSON request body.
func json(_ object: some Encodable) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONEncoder().encode(object))
}
