import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import AirlockWorker
import PostgresNIO
import Synchronization
import Testing

/// Executions per job id, as a worker's task records them.
final class Executions: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    func record(_ id: String) { counts.withLock { $0[id, default: 0] += 1 } }
    var snapshot: [String: Int] { counts.withLock { $0 } }
}

/// A worker on `url`'s `default` queue of `namespace` whose probe task records each execution.
func probeWorker(url: String, namespace: String, executions: Executions) throws -> Worker {
    var tasks = TaskRegistry()
    tasks.register(OutboxProbe.self) { _, context in executions.record(context.jobID) }
    var configuration = WorkerConfiguration(queues: ["default"])
    configuration.concurrency = 20
    return Worker(source: try RedisJobSource(url: url, namespace: namespace, logger: quietLogger), configuration: configuration,
                  registry: tasks, logger: quietLogger)
}

/// Commits `count` outbox transactions of one intent each from `connections` tasks at once.
func commitProbes(_ count: Int, connections: Int, outbox: Outbox, client: PostgresClient) async throws -> [String] {
    try await withThrowingTaskGroup(of: [String].self) { group in
        for lane in 0..<connections {
            group.addTask {
                var ids: [String] = []
                for n in stride(from: lane, to: count, by: connections) {
                    ids.append(try await Airlock.transaction(on: client, outbox: .using(outbox), logger: quietLogger) { _ in
                        try Airlock.enqueue(OutboxProbe(n: n)).id.uuidString.lowercased()
                    })
                }
                return ids
            }
        }
        var ids: [String] = []
        for try await part in group { ids += part }
        return ids
    }
}

@Suite("Outbox: Redis outage", .timeLimit(.minutes(10)))
struct OutboxOutageTests {
    @Test("Redis stopped: 1,000 committed transactions → 1,000 rows kept; Redis back → each queued once (by job id) and run once by a worker")
    func thousandCommitsWhileRedisIsDown() async throws {
        let kit = try await OutboxKit.make("outage")
        let redis = try await OwnRedis.start()
        do {
            let fastPath = try kit.executor(url: redis.url)
            try await redis.stop()
            try await kit.run { client in
                let outbox = Outbox(executor: fastPath, postgres: client, logger: quietLogger)
                let ids = try await commitProbes(1_000, connections: 4, outbox: outbox, client: client)
                #expect(ids.count == 1_000)
                #expect(Set(ids).count == 1_000)
                #expect(try await kit.rows(client) == 1_000, "every committed intent is kept")

                try await redis.start()
                let reader = RedisClient(configuration: try RedisConfiguration(url: redis.url), logger: quietLogger)
                let relay = try kit.relay(try kit.executor(url: redis.url), client)
                try await withServices([relay]) {
                    try await eventually("the relay drains the outbox") { try await kit.rows(client) == 0 }
                }
                let queued = try await kit.queuedJobIDs(redis: reader)
                #expect(queued.count == 1_000, "queued exactly once each (counted by job id in Redis)")
                #expect(Set(queued) == Set(ids))

                let executions = Executions()
                let worker = try probeWorker(url: redis.url, namespace: kit.namespace, executions: executions)
                try await withServices([worker]) {
                    try await eventually("the worker runs all 1,000") { executions.snapshot.values.reduce(0, +) >= 1_000 }
                }
                let runs = executions.snapshot
                #expect(runs.count == 1_000)
                #expect(runs.values.allSatisfy { $0 == 1 }, "each job ran once")
                #expect(Set(runs.keys) == Set(ids))
                await reader.close()
            }
        } catch {
            await redis.destroy()
            throw error
        }
        await redis.destroy()
    }
}
