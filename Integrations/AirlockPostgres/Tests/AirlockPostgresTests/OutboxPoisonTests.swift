import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import Foundation
import PostgresNIO
import Testing

/// Whether `text` holds something a terminal would act on (a C0 control other than newline, DEL,
/// a C1 control, a bidirectional override).
func hasTerminalControls(_ text: String) -> Bool {
    text.unicodeScalars.contains { scalar in
        let value = scalar.value
        return (value < 0x20 && value != 0x0A) || (0x7F...0x9F).contains(value) || (0x202A...0x202E).contains(value)
            || (0x2066...0x2069).contains(value)
    }
}

@Suite("Outbox: poison rows", .timeLimit(.minutes(5)))
struct OutboxPoisonTests {
    /// Inserts a row by hand, as a buggy or hostile writer could.
    private func insertRaw(_ kit: OutboxKit, _ client: PostgresClient, queue: String, jobID: String, envelope: [UInt8]) async throws {
        try await client.query("""
            INSERT INTO airlock_outbox (namespace, queue, job_id, placement, due_at_ms, envelope)
            VALUES (\(kit.namespace), \(queue), \(jobID), 0, \(epochMilliseconds()), \(ByteBuffer(bytes: envelope)))
            """, logger: quietLogger)
    }

    @Test("rows Redis refuses (wrong key type) or that are not valid jobs are parked with their error; the relay keeps delivering the others; the CLI lists them escaped")
    func poisonRowsAreParked() async throws {
        let kit = try await OutboxKit.make("poison")
        let executor = try kit.executor()
        let redis = executor.client
        try await kit.run { client in
            // Good rows (and one for a queue whose ready key will hold a string), left for the relay:
            // this outbox's fast path points at a port nobody listens on.
            let down = Outbox(executor: try kit.executor(url: "redis://127.0.0.1:\(try freePort())/0"), postgres: client, logger: quietLogger)
            var good: [String] = []
            for n in 0..<20 {
                good.append(try await Airlock.transaction(on: client, outbox: .using(down), logger: quietLogger) { _ in
                    try Airlock.enqueue(OutboxProbe(n: n)).id.uuidString.lowercased()
                })
            }
            let wrongType = try await Airlock.transaction(on: client, outbox: .using(down), logger: quietLogger) { _ in
                try Airlock.enqueue(OutboxProbe(n: -1), options: DispatchOptions(queue: "wrongtype")).id.uuidString.lowercased()
            }
            let keys = RedisKeys(namespace: kit.namespace)
            _ = try await redis.send("SET", keys.ready("wrongtype"), "not a list")
            // Rows no producer would write: malformed JSON, a queue with terminal escapes, an oversized envelope.
            try await insertRaw(kit, client, queue: "default", jobID: "malformed-1", envelope: Array(#"{"v":1,"id":"malformed-1","task":"#.utf8))
            try await insertRaw(kit, client, queue: "evil\u{1B}[31mred\u{7}", jobID: "evil-1",
                                envelope: Array(#"{"v":1,"id":"evil-1","task":"t","queue":"evil\u001b[31mred"}"#.utf8))
            try await insertRaw(kit, client, queue: "default", jobID: "huge-1",
                                envelope: Array(#"{"v":1,"id":"huge-1","task":"t","queue":"default","kwargs":{"x":""#.utf8)
                                    + [UInt8](repeating: UInt8(ascii: "a"), count: 600_000) + Array(#""}}"#.utf8))

            let relay = try kit.relay(executor, client, grace: .zero)
            try await withServices([relay]) {
                try await eventually("the good rows are delivered and the four poison rows parked") {
                    let pending = try await kit.rows(client, parked: false), parked = try await kit.rows(client, parked: true)
                    return pending == 0 && parked == 4
                }
                #expect(try await Set(kit.queuedJobIDs(redis: redis)) == Set(good))

                // The relay keeps going: later commits are delivered, the parked rows are not retried.
                let later = try await Airlock.transaction(on: client, outbox: .using(down), logger: quietLogger) { _ in
                    try Airlock.enqueue(OutboxProbe(n: 100)).id.uuidString.lowercased()
                }
                try await eventually("a row committed after the poison is delivered") {
                    try await kit.queuedJobIDs(redis: redis).contains(later)
                }
                let admin = OutboxAdmin(postgres: client, namespace: kit.namespace, logger: quietLogger)
                let parked = try await admin.parked()
                #expect(parked.count == 4)
                #expect(parked.allSatisfy { $0.attempts == 1 }, "parked once, never retried in a loop: \(parked.map(\.attempts))")
                let errors = Dictionary(uniqueKeysWithValues: parked.map { ($0.jobID, $0.lastError) })
                #expect(errors[wrongType]?.contains("WRONGTYPE") == true, "\(errors)")
                #expect(errors["malformed-1"]?.contains("not valid") == true, "\(errors)")
                #expect(errors["huge-1"]?.contains("over the limit") == true, "\(errors)")
                #expect(errors["evil-1"] != nil, "\(errors)")

                // `airlock-workerd stats` reads the relay's report from Redis.
                try await eventually("the relay reports 4 parked rows to Redis") {
                    try await RedisAdmin(client: redis, namespace: kit.namespace).statsSample().outbox.latest?.parked == 4
                }
            }

            // The CLI: every byte from the table escaped.
            let tool = try builtExecutable("airlock-outbox")
            let url = "postgres://\(kit.database.configuration.username)@127.0.0.1:\(kit.database.configuration.port ?? 5432)/\(kit.database.configuration.database ?? "postgres")"
            let list = try await runChild(tool, ["parked", "list", "--postgres", url, "--namespace", kit.namespace])
            #expect(list.status == 0, "\(list.stderr)")
            #expect(!hasTerminalControls(list.stdout), "\(list.stdout.debugDescription)")
            #expect(list.stdout.contains(#"evil\x1b[31mred\x07"#), "\(list.stdout)")
            #expect(list.stdout.contains("WRONGTYPE"))
            let json = try await runChild(tool, ["parked", "list", "--json", "--postgres", url, "--namespace", kit.namespace])
            #expect(json.status == 0, "\(json.stderr)")
            #expect(!hasTerminalControls(json.stdout))
            #expect(json.stdout.contains("\"schema\":\"airlock.outbox.parked/1\""), "\(json.stdout)")

            // Fix the key, retry that row through the CLI: the relay delivers it; delete the rest.
            _ = try await redis.send("DEL", keys.ready("wrongtype"))
            let id = try #require(try await OutboxAdmin(postgres: client, namespace: kit.namespace).parked().first { $0.jobID == wrongType }?.id)
            let retry = try await runChild(tool, ["parked", "retry", String(id), "--postgres", url, "--namespace", kit.namespace])
            #expect(retry.status == 0 && retry.stdout == "1 row(s) back in line\n", "\(retry.stdout) \(retry.stderr)")
            let missing = try await runChild(tool, ["parked", "retry", "999999999", "--postgres", url, "--namespace", kit.namespace])
            #expect(missing.status == 1 && missing.stderr.contains("no parked row with id 999999999"), "\(missing.stderr)")
            try await withServices([try kit.relay(executor, client, grace: .zero)]) {
                try await eventually("the retried row is delivered") { try await kit.queuedJobIDs("wrongtype", redis: redis) == [wrongType] }
            }
            let delete = try await runChild(tool, ["parked", "delete", "--all", "--postgres", url, "--namespace", kit.namespace])
            #expect(delete.status == 0 && delete.stdout == "3 row(s) deleted\n", "\(delete.stdout) \(delete.stderr)")
            #expect(try await kit.rows(client) == 0)
        }
    }

    @Test("a row older than the deduplication window minus the margin is parked, not sent (Redis may have forgotten it was delivered)")
    func rowsPastTheWindowAreParked() async throws {
        let kit = try await OutboxKit.make("window")
        // A 3 s window with a 1 s margin: rows older than 2 s are too old to send safely.
        let executor = try kit.executor(ttl: .seconds(3))
        try await kit.run { client in
            let down = Outbox(executor: try kit.executor(url: "redis://127.0.0.1:\(try freePort())/0"), postgres: client, logger: quietLogger)
            let old = try await Airlock.transaction(on: client, outbox: .using(down), logger: quietLogger) { _ in
                try Airlock.enqueue(OutboxProbe(n: 1)).id.uuidString.lowercased()
            }
            try await client.query("UPDATE airlock_outbox SET created_at = created_at - interval '10 seconds' WHERE job_id = \(old)", logger: quietLogger)
            let fresh = try await Airlock.transaction(on: client, outbox: .using(down), logger: quietLogger) { _ in
                try Airlock.enqueue(OutboxProbe(n: 2)).id.uuidString.lowercased()
            }
            try await withServices([try kit.relay(executor, client, grace: .zero, margin: .seconds(1))]) {
                try await eventually("the fresh row is delivered, the old one parked") {
                    let pending = try await kit.rows(client, parked: false), parked = try await kit.rows(client, parked: true)
                    return pending == 0 && parked == 1
                }
            }
            #expect(try await kit.queuedJobIDs(redis: executor.client) == [fresh])
            let parked = try await OutboxAdmin(postgres: client, namespace: kit.namespace).parked()
            #expect(parked.map(\.jobID) == [old])
            #expect(parked.first?.lastError.contains("older than the deduplication window") == true)
        }
    }
}
