import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import Testing

@testable import AirlockDaemon

/// `RedisAdmin.workers`: registrations, liveness, in-flight counts.
@Suite("Admin: workers", .timeLimit(.minutes(5)))
struct AdminWorkerTests {
    typealias Kit = AdminTestKit

    @Test func listsRegisteredWorkersAliveAndDead() async throws {
        let f = try await AdminFixture.make("workers-list")
        try await f.addQueues("a", "b")
        let now = epochMilliseconds()
        try await f.registerWorker("w-alive", alive: true, queues: ["a", "b"], heartbeatAt: now - 1_500, startedAt: now - 3_600_000)
        try await f.registerWorker("w-dead", alive: false, queues: ["b"], heartbeatAt: now - 20_000)
        try await f.command("LPUSH", f.keys.inflight("a", worker: "w-alive"), "j1", "j2")
        try await f.command("LPUSH", f.keys.inflight("b", worker: "w-alive"), "j3")
        try await f.command("LPUSH", f.keys.inflight("b", worker: "w-dead"), "j4")
        // Registered but its info hash already expired: still listed, details unknown.
        try await f.command("SADD", f.keys.workers, "w-bare")

        let report = try await f.admin.workers()
        #expect(report.workers.map(\.id) == ["w-alive", "w-bare", "w-dead"])
        let alive = report.workers[0]
        #expect(alive.alive)
        #expect(alive.host == "host-w-alive")
        #expect(alive.pid == 4242)
        #expect(alive.queues == ["a", "b"])
        #expect(alive.concurrency == 8)
        #expect(alive.inFlight == 3)
        #expect(alive.version == "0.1.0")
        #expect(alive.startedAtMilliseconds == now - 3_600_000)
        #expect(alive.heartbeatAtMilliseconds == now - 1_500)
        let age = try #require(alive.heartbeatAgeMilliseconds)
        #expect(age >= 1_500 && age < 10_000)

        let bare = report.workers[1]
        #expect(!bare.alive)
        #expect(bare.host == nil && bare.queues.isEmpty && bare.inFlight == 0)

        let dead = report.workers[2]
        #expect(!dead.alive)
        #expect(dead.inFlight == 1)
    }

    @Test func noWorkersIsAnEmptyList() async throws {
        let f = try await AdminFixture.make("workers-none")
        let report = try await f.admin.workers()
        #expect(report.workers.isEmpty)
        #expect(try Kit.object(report.json)["workers"] == .array([]))
    }

    @Test func jsonFollowsTheDocumentedSchema() async throws {
        let f = try await AdminFixture.make("workers-json")
        try await f.addQueues("a")
        try await f.registerWorker("w1", alive: true, queues: ["a"])
        try await f.registerWorker("w2", alive: false, queues: ["a"])
        let json = try Kit.object(try await f.admin.workers().json)
        let documented = try Kit.documentedExample("airlock.workers/1")
        #expect(Kit.keyPaths(.object(json)) == Kit.keyPaths(.object(documented)))
        #expect(json["schema"] == "airlock.workers/1")
        let workers = try #require(json["workers"]?.arrayValue)
        #expect(workers.map { $0["status"] } == ["alive", "dead"])
        #expect(workers[0]["queues"] == ["a"])
        #expect(workers[0]["pid"] == 4242)
    }

    @Test func aRunningWorkerShowsUpAlive() async throws {
        let f = try await AdminFixture.make("workers-real")
        var configuration = WorkerSetup(redis: try RedisConfiguration(url: f.url))
        configuration.namespace = f.namespace
        configuration.queues = ["hi", "lo"]
        configuration.concurrency = 3
        configuration.name = "probe"
        let worker = Worker(configuration: configuration, registry: TaskRegistry(), logger: Kit.quiet)
        let running = Task { try await worker.run() }
        defer { worker.shutdown() }

        #expect(try await Kit.eventually { try await f.admin.workers().workers.count == 1 })
        let status = try #require(try await f.admin.workers().workers.first)
        #expect(status.id == worker.id)
        #expect(status.alive)
        #expect(status.queues == ["hi", "lo"])
        #expect(status.concurrency == 3)
        #expect(status.pid == Int(ProcessInfo.processInfo.processIdentifier))
        #expect(try await f.admin.queueNames() == ["hi", "lo"])
        #expect(try await f.admin.statsSample().workers == WorkerCounts(registered: 1, alive: 1))

        worker.shutdown()
        try await running.value
        #expect(try await f.admin.workers().workers.isEmpty) // a clean shutdown deregisters
    }
}
