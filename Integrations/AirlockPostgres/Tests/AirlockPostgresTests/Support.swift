import Airlock
import AirlockPostgres
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The PostgreSQL server the tests use, started by `scripts/test.sh`. A missing one fails the
/// test: these tests never skip.
struct TestDatabase: Sendable {
    let configuration: PostgresClient.Configuration
    let client: PostgresClient

    /// The server named by `AIRLOCK_TEST_PG_*`; throws (failing the test) when it is not set or does not answer.
    static func make() async throws -> TestDatabase {
        let environment = ProcessInfo.processInfo.environment
        guard let port = environment["AIRLOCK_TEST_PG_PORT"].flatMap(Int.init) else {
            throw TestFailure("AIRLOCK_TEST_PG_PORT is not set: run these tests with scripts/test.sh, which starts PostgreSQL")
        }
        let host = environment["AIRLOCK_TEST_PG_HOST"] ?? "127.0.0.1"
        let user = environment["AIRLOCK_TEST_PG_USER"] ?? "postgres"
        let database = environment["AIRLOCK_TEST_PG_DATABASE"] ?? "postgres"
        // A pool waits for an absent server forever; one direct connection fails at once.
        do {
            let connection = try await PostgresConnection.connect(
                configuration: .init(host: host, port: port, username: user, password: nil, database: database, tls: .disable),
                id: 0, logger: quietLogger)
            try await connection.close()
        } catch {
            throw TestFailure("PostgreSQL at \(host):\(port) does not answer (\(String(reflecting: error))); run scripts/test.sh")
        }
        let configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: nil, database: database, tls: .disable)
        return TestDatabase(configuration: configuration, client: PostgresClient(configuration: configuration, backgroundLogger: quietLogger))
    }

    /// Runs `body` with the pool running and the `items` table created.
    func run<R: Sendable>(_ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [client] in await client.run() }
            defer { group.cancelAll() }
            try await client.withTransaction(logger: quietLogger) { connection in
                // Suites run in parallel: concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog.
                try await connection.query("SELECT pg_advisory_xact_lock(7265477)", logger: quietLogger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS airlock_pg_items (id BIGSERIAL PRIMARY KEY, label TEXT NOT NULL)", logger: quietLogger)
            }
            return try await body(client)
        }
    }
}

/// Inserts an item on `connection` (inside the caller's transaction) and returns its id.
func insertItem(_ label: String, on connection: PostgresConnection) async throws -> Int {
    let rows = try await connection.query("INSERT INTO airlock_pg_items (label) VALUES (\(label)) RETURNING id", logger: quietLogger)
    for try await id in rows.decode(Int.self) { return id }
    throw TestFailure("INSERT … RETURNING id returned no row")
}

/// How many committed rows have `label`, as another connection sees them.
func committedItems(_ label: String, _ client: PostgresClient) async throws -> Int {
    let rows = try await client.query("SELECT count(*) FROM airlock_pg_items WHERE label = \(label)", logger: quietLogger)
    for try await count in rows.decode(Int.self) { return count }
    throw TestFailure("count(*) returned no row")
}

/// A label no other test uses.
func uniqueLabel() -> String { "item-\(UUID().uuidString.prefix(8).lowercased())" }

/// The side effect the tests enqueue: a notification about an item.
struct NotifyItem: AirlockTask {
    static let name = "test.notify_item"
    let itemID: Int
    func run(_ context: TaskContext) async throws {}
}

/// Records, at dispatch time, whether each item an intent names is already visible from another
/// connection — that is, whether the dispatch happened after the commit.
final class VisibilityExecutor: Executor {
    private let client: PostgresClient
    private let seen = Mutex<[Bool]>([])

    init(client: PostgresClient) { self.client = client }

    /// One entry per dispatched ``NotifyItem``: whether its row was committed.
    var visibility: [Bool] { seen.withLock { $0 } }

    func dispatch(_ intents: [Intent]) async throws {
        for intent in intents {
            guard let task = intent.task as? NotifyItem else { continue }
            let rows = try await client.query("SELECT count(*) FROM airlock_pg_items WHERE id = \(task.itemID)", logger: quietLogger)
            var visible = false
            for try await count in rows.decode(Int.self) { visible = count == 1 }
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

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct Teapot: Error {}

let quietLogger: Logger = {
    var logger = Logger(label: "airlock-postgres-tests")
    logger.logLevel = .error
    return logger
}()
