// The crash test's child process (OutboxCrashTests spawns it 100 times). It commits a few outbox
// transactions normally, rolls one back, then commits one more and kills itself with SIGKILL
// before that transaction's fast path has run (`after-commit`), or after the fast path wrote to
// Redis but before the background delete (`after-send`). Every line it prints is written with
// write(2) before the next step, so the test reads exactly what was committed:
//   committed <job id> <job id>…
//   rolledback <job id>…
// Environment: AIRLOCK_TEST_PG_HOST/PORT/USER/DATABASE, AIRLOCK_TEST_REDIS_URL. Arguments:
// <namespace> <after-commit|after-send>.
import Airlock
import AirlockPostgres
import AirlockRedis
import Foundation
import Logging
import PostgresNIO
#if canImport(Glibc)
import Glibc
#endif

struct ChildTask: AirlockTask {
    static let name = "test.outbox_crash"
    let step: Int
}

struct Rollback: Error {}

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

@main
struct OutboxCrashChild {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, ["after-commit", "after-send"].contains(arguments[2]) else {
            FileHandle.standardError.write(Data("usage: OutboxCrashChild <namespace> <after-commit|after-send>\n".utf8))
            exit(2)
        }
        let namespace = arguments[1]
        let mode = arguments[2]
        let environment = ProcessInfo.processInfo.environment
        let logger = {
            var logger = Logger(label: "outbox-crash-child")
            logger.logLevel = .error
            return logger
        }()

        guard let port = environment["AIRLOCK_TEST_PG_PORT"].flatMap(Int.init), let redisURL = environment["AIRLOCK_TEST_REDIS_URL"] else {
            FileHandle.standardError.write(Data("AIRLOCK_TEST_PG_PORT and AIRLOCK_TEST_REDIS_URL must be set\n".utf8))
            exit(2)
        }
        let configuration = PostgresClient.Configuration(
            host: environment["AIRLOCK_TEST_PG_HOST"] ?? "127.0.0.1", port: port, username: environment["AIRLOCK_TEST_PG_USER"] ?? "postgres",
            password: nil, database: environment["AIRLOCK_TEST_PG_DATABASE"] ?? "postgres", tls: .disable)
        let postgres = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let executor = try RedisExecutor(url: redisURL, namespace: namespace, logger: logger)
        let outbox = Outbox(executor: executor, postgres: postgres, logger: logger)

        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            do {
                // Committed normally: the fast path sends them (the deletes may never run: no outbox service).
                for step in 0..<2 {
                    var ids: [String] = []
                    try await Airlock.transaction(on: postgres, outbox: .using(outbox), logger: logger) { _ in
                        for index in 0..<2 { ids.append(try Airlock.enqueue(ChildTask(step: step * 10 + index)).id.uuidString.lowercased()) }
                    }
                    say("committed " + ids.joined(separator: " "))
                }
                // Rolled back: never queued, by anyone.
                var dropped: [String] = []
                do {
                    try await Airlock.transaction(on: postgres, outbox: .using(outbox), logger: logger) { _ in
                        dropped.append(try Airlock.enqueue(ChildTask(step: 99)).id.uuidString.lowercased())
                        throw Rollback()
                    }
                } catch is Rollback {}
                say("rolledback " + dropped.joined(separator: " "))

                // The one that dies: BEGIN, body, outbox write, COMMIT — then SIGKILL.
                try await postgres.withConnection { connection in
                    let transaction = try await TransactionScope.enter(outbox: outbox)
                    try await connection.query("BEGIN", logger: logger)
                    var ids: [String] = []
                    try await transaction.run {
                        for index in 0..<3 { ids.append(try Airlock.enqueue(ChildTask(step: 100 + index)).id.uuidString.lowercased()) }
                    }
                    let batch = try await transaction.willCommit(on: connection, logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                    say("committed " + ids.joined(separator: " "))
                    if mode == "after-send", let batch {
                        // Redis has the jobs; the rows are still there (the delete never runs).
                        _ = await outbox.deliver(batch)
                    }
                    kill(getpid(), SIGKILL)
                }
            } catch {
                FileHandle.standardError.write(Data("child failed: \(error)\n".utf8))
                exit(1)
            }
            group.cancelAll()
        }
        exit(3)   // never reached: SIGKILL came first
    }
}
