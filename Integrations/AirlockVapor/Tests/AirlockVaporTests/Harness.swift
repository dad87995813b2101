import Airlock
import AirlockFluent
import AirlockRedis
import AirlockVapor
import Fluent
import FluentPostgresDriver
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
import Vapor
import VaporOrderAppKit
import VaporTesting

/// The servers the tests use, started by `scripts/test.sh`. A missing one fails the test, with
/// or without CI=true: these tests never skip.
struct TestServers: Sendable {
    let redisURL: String
    let postgresHost: String
    let postgresPort: Int
    let postgresUser: String
    let postgresDatabase: String

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

    var postgresConnection: PostgresConnection.Configuration {
        .init(host: postgresHost, port: postgresPort, username: postgresUser, password: nil, database: postgresDatabase, tls: .disable)
    }

    /// Fails at once when a server does not answer (a connection pool would wait for it forever).
    func checkReachable() async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: postgresConnection, id: 0, logger: quietLogger)
            try await connection.close()
        } catch {
            throw MissingServer("PostgreSQL at \(postgresHost):\(postgresPort) does not answer (\(String(reflecting: error))); run scripts/test.sh")
        }
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), name: "airlock-vapor-check", logger: quietLogger)
        do {
            try await redis.connect()
            await redis.close()
        } catch {
            await redis.close()
            throw MissingServer("Redis at \(redisURL) does not answer (\(error)); run scripts/test.sh")
        }
    }

    /// The example's settings for these servers, in `namespace`, not touching the process-wide configuration.
    func settings(namespace: String, runsWorker: Bool) -> OrderAppSettings {
        var settings = OrderAppSettings(environment: [
            "PGHOST": postgresHost, "PGPORT": "\(postgresPort)", "PGUSER": postgresUser, "PGDATABASE": postgresDatabase,
            "AIRLOCK_REDIS_URL": redisURL,
        ])
        settings.namespace = namespace
        settings.configuresGlobally = false
        settings.runsWorker = runsWorker
        return settings
    }
}

struct MissingServer: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let quietLogger: Logger = {
    var logger = Logger(label: "airlock-vapor-tests")
    logger.logLevel = .error
    return logger
}()

/// The `vapor_orders` table, created once per test process (concurrent migrations would collide
/// in PostgreSQL's catalog).
private let migrated = Task<Void, any Error> {
    let servers = try TestServers.fromEnvironment()
    try await servers.checkReachable()
    let app = try await Application.make(.testing)
    do {
        app.logger = quietLogger
        try OrderApp.configure(app, settings: servers.settings(namespace: "airlock-vapor-migrate", runsWorker: false))
        try await app.autoMigrate()
    } catch {
        try? await app.asyncShutdown()
        throw error
    }
    try await app.asyncShutdown()
}

/// One test's world: its own Redis namespace (so tests running in parallel never see each
/// other's jobs), and connections of its own to read Redis and PostgreSQL from outside the app.
struct Harness: Sendable {
    let servers: TestServers
    let namespace: String
    let keys: RedisKeys

    /// A harness over the servers `scripts/test.sh` started; throws (failing the test) when they are missing.
    static func make() async throws -> Harness {
        let servers = try TestServers.fromEnvironment()
        try await servers.checkReachable()
        try await migrated.value
        let namespace = "airlock-vapor-\(UUID().uuidString.prefix(8).lowercased())"
        return Harness(servers: servers, namespace: namespace, keys: RedisKeys(namespace: namespace))
    }

    /// The jobs in the ready list of `queue`, oldest first (producers LPUSH, so reverse LRANGE),
    /// read on a connection of its own.
    func readyJobs(_ queue: String = "default") async throws -> [Envelope] {
        let redis = RedisClient(configuration: try RedisConfiguration(url: servers.redisURL), name: "airlock-vapor-tests", logger: quietLogger)
        let reply: RedisReply
        do {
            reply = try await redis.send("LRANGE", keys.ready(queue), "0", "-1")
        } catch {
            await redis.close()
            throw error
        }
        await redis.close()
        guard let items = reply.array else { throw TestFailure("LRANGE answered \(reply)") }
        return try items.reversed().map { item in
            guard let bytes = item.bytes else { throw TestFailure("not a bulk string: \(item)") }
            return try Envelope.decode(bytes)
        }
    }

    /// A Redis executor into this harness's namespace (its own connection; closed by the caller).
    func executor() throws -> RedisExecutor {
        try RedisExecutor(url: servers.redisURL, namespace: namespace, logger: quietLogger)
    }

    /// Builds the order app (in this harness's namespace; with the embedded worker when
    /// `worker`, delivering to `mailer`), lets `configure` add to it, runs `test`, and shuts the
    /// application down whatever happens.
    @discardableResult
    func withApp<R>(
        worker: Bool = false,
        mailer: any Mailer = LogMailer(logger: quietLogger),
        configure: (Application) throws -> Void = { _ in },
        _ test: (Application) async throws -> R
    ) async throws -> R {
        let app = try await Application.make(.testing)
        app.logger = quietLogger
        let result: Result<R, any Error>
        do {
            try OrderApp.configure(app, settings: servers.settings(namespace: namespace, runsWorker: worker), mailer: mailer)
            try configure(app)
            result = .success(try await test(app))
        } catch {
            result = .failure(error)
        }
        try await app.asyncShutdown()
        return try result.get()
    }

    /// A plain Vapor application (no order app, no request scope unless `configure` adds one).
    @discardableResult
    func withBareApp<R>(_ configure: (Application) throws -> Void, _ test: (Application) async throws -> R) async throws -> R {
        let app = try await Application.make(.testing)
        app.logger = quietLogger
        let result: Result<R, any Error>
        do {
            try configure(app)
            result = .success(try await test(app))
        } catch {
            result = .failure(error)
        }
        try await app.asyncShutdown()
        return try result.get()
    }

    /// Points `app`'s default Fluent database at the test PostgreSQL.
    func usePostgres(_ app: Application) {
        app.databases.use(
            .postgres(configuration: .init(
                hostname: servers.postgresHost, port: servers.postgresPort, username: servers.postgresUser,
                database: servers.postgresDatabase, tls: .disable)),
            as: .psql)
    }

    /// Runs `body` on a connection of its own: what another client sees, committed rows only.
    func withConnection<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        let connection = try await PostgresConnection.connect(configuration: servers.postgresConnection, id: 1, logger: quietLogger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// How many committed orders have `item`.
    func committedOrders(item: String) async throws -> Int {
        try await withConnection { connection in
            let rows = try await connection.query("SELECT count(*) FROM vapor_orders WHERE item = \(item)", logger: quietLogger)
            for try await count in rows.decode(Int.self) { return count }
            throw TestFailure("count(*) returned no row")
        }
    }

    /// Whether the committed order `id` is marked confirmed; `nil` when there is no such row.
    func isConfirmed(orderID id: Int) async throws -> Bool? {
        try await withConnection { connection in
            let rows = try await connection.query("SELECT confirmed_at IS NOT NULL FROM vapor_orders WHERE id = \(id)", logger: quietLogger)
            for try await confirmed in rows.decode(Bool.self) { return confirmed }
            return nil
        }
    }
}

/// Real HTTP: a server on a free loopback port for each request.
let live = Application.Method.running(hostname: "127.0.0.1", port: 0)

/// A side effect the test routes enqueue.
struct Probe: AirlockTask {
    static let name = "test.probe"
    let label: String
    func run(_ context: TaskContext) async throws {}
}

/// A mailer that records each confirmation and lets a test wait for them, without polling.
final class RecordingMailer: Mailer {
    struct Sent: Sendable, Equatable {
        var order: OrderView
        var attempt: Int
    }
    private let stream: AsyncStream<Sent>
    private let continuation: AsyncStream<Sent>.Continuation
    private let state = Mutex<[Sent]>([])

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Sent.self)
    }

    /// Every confirmation sent so far, in order.
    var sent: [Sent] { state.withLock { $0 } }

    func sendConfirmation(of order: OrderView, attempt: Int) async throws {
        let sent = Sent(order: order, attempt: attempt)
        state.withLock { $0.append(sent) }
        continuation.yield(sent)
    }

    /// Waits for the next confirmation (the suite's time limit fails a test that never gets one).
    func next() async throws -> Sent {
        for await sent in stream { return sent }
        throw TestFailure("the mailer's stream ended")
    }
}

/// Records, at dispatch time, whether each confirmation's order is visible from another
/// connection — that is, whether the dispatch happened after the commit.
final class VisibilityExecutor: Executor {
    private let harness: Harness
    private let seen = Mutex<[Bool]>([])

    init(harness: Harness) { self.harness = harness }

    var visibility: [Bool] { seen.withLock { $0 } }

    func dispatch(_ intents: [Intent]) async throws {
        for intent in intents where intent.taskName == OrderTasks.sendConfirmation {
            guard let id = try intent.arguments().kwargs["orderID"]?.intValue else { continue }
            let visible = try await harness.isConfirmed(orderID: id) != nil
            seen.withLock { $0.append(visible) }
        }
    }
}

/// An executor whose back end is down.
struct UnreachableExecutor: Executor {
    struct Down: Error, CustomStringConvertible {
        var description: String { "executor back end unreachable" }
    }
    func dispatch(_ intents: [Intent]) async throws {
        throw DispatchError(dispatched: [], notDispatched: intents, underlying: Down())
    }
}

struct Teapot: Error {}

/// A unique item name, so a test finds its own rows.
func uniqueItem() -> String { "item-\(UUID().uuidString.prefix(8).lowercased())" }

extension TestingHTTPResponse {
    /// The body as text.
    var text: String { String(buffer: body) }
}

/// A JSON request body.
func json(_ object: some Encodable) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONEncoder().encode(object))
}
