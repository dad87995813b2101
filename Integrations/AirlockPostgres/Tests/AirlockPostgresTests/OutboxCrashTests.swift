import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import PostgresNIO
import Testing

/// A process killed between COMMIT and the fast path (or between the fast path's Redis write and
/// its delete) loses nothing and queues nothing twice: the relay delivers what was committed, the
/// job-id deduplication absorbs what had already been sent, and rolled-back intents never appear.
@Suite("Outbox: SIGKILL between COMMIT and the flush", .timeLimit(.minutes(15)))
struct OutboxCrashTests {
    @Test("a child that commits and SIGKILLs itself, 100 times → every committed intent queued once by a relay, rolled-back ones never")
    func killedAfterCommit() async throws {
        let kit = try await OutboxKit.make("crash")
        let child = try builtExecutable("OutboxCrashChild")
        try await kit.run { client in try await Self.crashAndRelay(kit: kit, child: child, client: client) }
    }

    /// The test's body, outside the closure (the compiler's region analysis crashed on it inside one).
    private static func crashAndRelay(kit: OutboxKit, child: String, client: PostgresClient) async throws {
        // 100 children, 4 at a time (each is a process of its own: a few hundred ms of start-up).
        let results = try await crashChildren(child, namespace: kit.namespace, redisURL: kit.redisURL, runs: 100, lanes: 4)
        var committed: [String] = []
        var rolledBack: [String] = []
        for (run, result) in results.enumerated() {
            #expect(result.signaled && result.status == SIGKILL, "run \(run) should die of SIGKILL: \(result.status) \(result.stderr)")
            for line in result.stdout.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                switch words.first {
                case "committed"?: committed += words.dropFirst()
                case "rolledback"?: rolledBack += words.dropFirst()
                default: Issue.record("unexpected line from the child: \(line)")
                }
            }
        }
        #expect(committed.count == 100 * 7, "each run committed 2 + 2 + 3 intents")
        #expect(rolledBack.count == 100)
        #expect(try await kit.rows(client) >= 100 * 3, "at least the killed transactions' rows are left")

        let executor = try kit.executor()
        let relay = try kit.relay(executor, client)
        try await withServices([relay]) {
            try await eventually("the relay drains every row the children left") { try await kit.rows(client) == 0 }
        }
        let queued = try await kit.queuedJobIDs(redis: executor.client)
        var counts: [String: Int] = [:]
        for id in queued { counts[id, default: 0] += 1 }
        #expect(Set(counts.keys) == Set(committed), "every committed intent is queued, and nothing else")
        #expect(counts.values.allSatisfy { $0 == 1 }, "none twice: \(counts.filter { $0.value > 1 })")
        #expect(Set(rolledBack).isDisjoint(with: counts.keys), "no rolled-back intent is ever queued")
    }
}

/// Runs the crash child `runs` times, `lanes` at a time; half die before the fast path
/// (`after-commit`), half after it wrote to Redis but before the delete (`after-send`).
/// - Returns: each run's result, in run order.
private func crashChildren(_ child: String, namespace: String, redisURL: String, runs: Int, lanes: Int) async throws -> [ChildResult] {
    try await withThrowingTaskGroup(of: (Int, ChildResult).self) { group in
        var results: [Int: ChildResult] = [:]
        for run in 0..<runs {
            if run >= lanes, let (done, result) = try await group.next() { results[done] = result }
            let mode = run % 2 == 0 ? "after-commit" : "after-send"
            group.addTask {
                (run, try await runChild(child, [namespace, mode], environment: ["AIRLOCK_TEST_REDIS_URL": redisURL]))
            }
        }
        for try await (done, result) in group { results[done] = result }
        return (0..<runs).compactMap { results[$0] }
    }
}
