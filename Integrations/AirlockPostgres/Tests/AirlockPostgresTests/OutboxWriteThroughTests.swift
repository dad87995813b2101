import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import PostgresNIO
import Testing

/// The write-through and the fast path against real PostgreSQL and Redis: rows commit or roll
/// back with the data; after COMMIT the jobs reach Redis once and their rows go away; a Redis
/// outage fails nothing.
@Suite("Outbox: write-through and fast path", .timeLimit(.minutes(3)))
struct OutboxWriteThroughTests {
    @Test("commit → one row per intent in the transaction, queued once right after COMMIT, rows deleted in the background")
    func commitQueuesAndDeletes() async throws {
        let kit = try await OutboxKit.make("commit")
        let executor = try kit.executor()
        try await kit.run { client in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            let label = uniqueLabel()
            var ids: [String] = []
            try await Airlock.transaction(on: client, outbox: .using(outbox)) { connection in
                _ = try await insertItem(label, on: connection)
                ids.append(try Airlock.enqueue(OutboxProbe(n: 1)).id.uuidString.lowercased())
                ids.append(try Airlock.enqueue(OutboxProbe(n: 2), options: DispatchOptions(countdown: .seconds(600))).id.uuidString.lowercased())
                #expect(try await kit.queuedJobIDs(redis: executor.client).isEmpty, "nothing leaves before COMMIT")
            }
            #expect(try await committedItems(label, client) == 1)
            #expect(try await kit.queuedJobIDs(redis: executor.client).sorted() == ids.sorted(), "both queued once, at COMMIT")
            #expect(try await kit.rows(client) == 2, "the rows stay until the background delete runs")
            #expect(outbox.pendingDeletes == 2)
            try await withServices([outbox]) {
                try await eventually("the delivered rows are deleted") { try await kit.rows(client) == 0 }
            }
            #expect(try await kit.queuedJobIDs(redis: executor.client).count == 2)
        }
    }

    @Test("the body throws → ROLLBACK: no row, nothing queued; a failed COMMIT likewise")
    func rollbackLeavesNothing() async throws {
        let kit = try await OutboxKit.make("rollback")
        let executor = try kit.executor()
        try await kit.run { client in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            await #expect(throws: Teapot.self) {
                try await Airlock.transaction(on: client, outbox: .using(outbox)) { connection in
                    _ = try await insertItem(uniqueLabel(), on: connection)
                    try Airlock.enqueue(OutboxProbe(n: 1))
                    throw Teapot()
                }
            }
            let error = try await #require(throws: TransactionNotCommitted.self) {
                try await Airlock.transaction(on: client, outbox: .using(outbox)) { connection in
                    try Airlock.enqueue(OutboxProbe(n: 2))
                    do { try await connection.query("SELECT 1/0", logger: quietLogger) } catch {}
                }
            }
            #expect(error.droppedIntents.count == 1)
            #expect(try await kit.rows(client) == 0)
            #expect(try await kit.queuedJobIDs(redis: executor.client).isEmpty)
        }
    }

    @Test("Redis unreachable after COMMIT → the transaction succeeds (no CommittedButNotDispatched) and the rows wait for a relay")
    func redisDownFailsNothing() async throws {
        let kit = try await OutboxKit.make("down")
        let down = try kit.executor(url: "redis://127.0.0.1:\(try freePort())/0")
        try await kit.run { client in
            let outbox = Outbox(executor: down, postgres: client, logger: quietLogger)
            let label = uniqueLabel()
            let sent = try await Airlock.transaction(on: client, outbox: .using(outbox)) { connection in
                _ = try await insertItem(label, on: connection)
                return try Airlock.enqueue(OutboxProbe(n: 1)).id.uuidString.lowercased()
            }
            #expect(!sent.isEmpty)
            #expect(try await committedItems(label, client) == 1)
            #expect(try await kit.rows(client) == 1, "the committed intent is kept")
            #expect(outbox.pendingDeletes == 0)

            // A relay with a working Redis delivers it.
            let executor = try kit.executor()
            try await withServices([try kit.relay(executor, client)]) {
                try await eventually("the relay delivers the kept row") { try await kit.rows(client) == 0 }
            }
            #expect(try await kit.queuedJobIDs(redis: executor.client) == [sent])
        }
    }

    @Test("an intent that cannot become a job → rolled back before COMMIT (TransactionNotCommitted.outboxWriteFailed): no data, no row")
    func unsendableIntentRollsBack() async throws {
        let kit = try await OutboxKit.make("unsendable")
        let executor = try kit.executor()
        try await kit.run { client in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            let label = uniqueLabel()
            let error = try await #require(throws: TransactionNotCommitted.self) {
                try await Airlock.transaction(on: client, outbox: .using(outbox)) { connection in
                    _ = try await insertItem(label, on: connection)
                    try Airlock.enqueue(OutboxProbe(n: 1), options: DispatchOptions(queue: "not a {valid} queue"))
                }
            }
            #expect(error.reason == .outboxWriteFailed)
            #expect((error.underlying as? OutboxError)?.kind == .unsendableIntent, "\(error)")
            #expect(error.description.contains("its data was not committed"), "\(error)")
            #expect(try await committedItems(label, client) == 0)
            #expect(try await kit.rows(client) == 0)
        }
    }

    @Test("Airlock.configure(outbox:) sets the default; outbox: .off writes nothing; policies still judge every intent")
    func configuredDefaultAndPolicies() async throws {
        let kit = try await OutboxKit.make("default")
        let executor = try kit.executor()
        try await kit.run { client in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            // The default is process-wide and other suites run transactions in parallel: set it
            // only for as long as it takes to read it back.
            Airlock.configure(outbox: outbox)
            let resolved = TransactionOutbox.configured.resolved
            Airlock.configure(outbox: nil)
            #expect(resolved === outbox)
            #expect(TransactionOutbox.configured.resolved == nil)
            #expect(TransactionOutbox.off.resolved == nil)

            let recorder = RecordingExecutor()
            try await Airlock.transaction(on: client, outbox: .off, executor: recorder) { _ in
                try Airlock.enqueue(OutboxProbe(n: 2))
            }
            #expect(recorder.intents.count == 1, "without the outbox the intents go to the executor as before")

            try await Airlock.transaction(on: client, outbox: .using(outbox), policy: DropAll()) { _ in
                try Airlock.enqueue(OutboxProbe(n: 3))
            }
            #expect(try await kit.queuedJobIDs(redis: executor.client).isEmpty, "a policy that drops leaves no row and sends nothing")
            #expect(try await kit.rows(client) == 0)
        }
    }

    @Test("the same rows sent by the fast path and again by a relay (crash before the delete) are queued once")
    func fastPathAndRelayDeduplicate() async throws {
        let kit = try await OutboxKit.make("dedup")
        let executor = try kit.executor()
        try await kit.run { client in
            let outbox = Outbox(executor: executor, postgres: client, logger: quietLogger)
            var ids: [String] = []
            for n in 0..<5 {
                ids.append(try await Airlock.transaction(on: client, outbox: .using(outbox)) { _ in
                    try Airlock.enqueue(OutboxProbe(n: n), options: n == 0 ? DispatchOptions(idempotencyKey: "probe-\(kit.namespace)") : DispatchOptions()).id.uuidString.lowercased()
                })
            }
            #expect(try await kit.rows(client) == 5, "delivered, not yet deleted (the outbox service is not running)")
            let relay = try kit.relay(executor, client, grace: .zero)
            try await withServices([relay]) {
                try await eventually("the relay takes the rows") { try await kit.rows(client) == 0 }
            }
            #expect(try await kit.queuedJobIDs(redis: executor.client).sorted() == ids.sorted(), "each job once")
            #expect(relay.delivered == 5, "the relay counts duplicates as delivered")
        }
    }

    @Test("a full batch (a backlog) makes the relay ANALYZE the table, so its claims are not planned for an empty table")
    func backlogRefreshesStatistics() async throws {
        let kit = try await OutboxKit.make("analyze")
        let down = try kit.executor(url: "redis://127.0.0.1:\(try freePort())/0")
        try await kit.run { client in
            let outbox = Outbox(executor: down, postgres: client, logger: quietLogger)
            try await Airlock.transaction(on: client, outbox: .using(outbox)) { _ in
                for n in 0..<30 { try Airlock.enqueue(OutboxProbe(n: n)) }
            }
            let before = try await Self.manualAnalyzeCount(client)
            let executor = try kit.executor()
            // Batches of 10: the first claim comes back full.
            try await withServices([try kit.relay(executor, client, grace: .zero, batchSize: 10)]) {
                try await eventually("the relay delivers the backlog") { try await kit.rows(client) == 0 }
                // Other suites' relays may analyze too: this shows that one did, at least.
                try await eventually("the table was analyzed by hand (not by autovacuum)") { try await Self.manualAnalyzeCount(client) > before }
            }
            #expect(try await kit.queuedCount(redis: executor.client) == 30)
        }
    }

    /// `ANALYZE airlock_outbox` runs so far (autovacuum's are counted apart).
    static func manualAnalyzeCount(_ client: PostgresClient) async throws -> Int {
        let rows = try await client.query("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'airlock_outbox'", logger: quietLogger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}
