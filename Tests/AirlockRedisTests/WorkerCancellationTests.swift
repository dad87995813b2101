import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `airlock-workerd cancel` and `RedisAdmin.cancel` on a real Redis: queued, delayed, running,
/// prefetched and dead-worker jobs, and that nothing cancelled is retried.
@Suite("Worker: cancelling jobs", .timeLimit(.minutes(5)))
struct WorkerCancellationTests {
    static func cli(_ harness: WorkerHarness, _ arguments: [String]) async throws -> CLIResult {
        try await CLI.run(arguments + ["--redis", harness.url, "--namespace", harness.namespace])
    }

    @Test func readyAndDelayedJobsAreRemovedAndCounted() async throws {
        let harness = try await WorkerHarness.make("cancel-queued")
        let ready = UUID().uuidString.lowercased(), delayed = UUID().uuidString.lowercased(), kept = UUID().uuidString.lowercased()
        try await harness.pushRaw(WorkerKit.envelope(task: "t", queue: "default", id: ready))
        try await harness.pushRaw(WorkerKit.envelope(task: "t", queue: "default", id: kept))
        try await harness.command("ZADD", harness.keys.delayed("default"), String(epochMilliseconds() + 3_600_000),
                                  String(decoding: WorkerKit.envelope(task: "t", queue: "default", id: delayed), as: UTF8.self))
        try await harness.command("SADD", harness.keys.queues, "default")

        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        let report = try await admin.cancel(jobID: ready)
        #expect(report.steps == [.init(action: .removedFromReady, queue: "default")])
        let cli = try await Self.cli(harness, ["cancel", delayed])
        #expect(cli.status == 0 && cli.stdout.contains("removed from the delayed jobs of queue 'default'"), "\(cli)")

        #expect(try await harness.readyInConsumptionOrder().compactMap { $0["id"]?.stringValue } == [kept])
        #expect(try await harness.delayed().isEmpty)
        #expect(try await harness.stats()["cancelled"] == 2)
        let stats = try await admin.stats(interval: nil)
        #expect(stats[queue: "default"]?.counters.cancelled == 2)

        // Gone now: exit 1 with one line saying so; the JSON says the same.
        let again = try await Self.cli(harness, ["cancel", ready])
        #expect(again.status == 1 && again.stderr.contains("is ready, delayed or in flight"), "\(again)")
        let json = try await Self.cli(harness, ["cancel", kept, "--json"])
        let document = try WorkerKit.object(Array(json.stdout.utf8))
        #expect(json.status == 0 && document["schema"] == "airlock.cancel/1" && document["cancelled"] == true)
        #expect(document["steps"]?.arrayValue?.first?.objectValue?["action"] == "removed_from_ready")
    }

    @Test func aRunningTaskIsCancelledByItsWorkerAndNeverRetried() async throws {
        let harness = try await WorkerHarness.make("cancel-running")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        var tasks = TaskRegistry()
        tasks.register("slow", maxRetries: 5) { _, _ in
            probe.record("started")
            do {
                try await latch.wait()
            } catch {
                probe.record(error is CancellationError ? "saw cancellation" : "other error")
                throw error
            }
        }
        let id = UUID().uuidString.lowercased()
        try await harness.pushRaw(WorkerKit.envelope(task: "slow", queue: "default", id: id))
        try await harness.withWorker(try harness.configuration(concurrency: 1), registry: tasks) { worker in
            try await WorkerKit.eventually("the task started") { probe.count("started") == 1 }
            let cli = try await Self.cli(harness, ["cancel", id])
            #expect(cli.status == 0 && cli.stdout.contains("requested from worker \(worker.id)"), "\(cli)")
            try await WorkerKit.eventually("the job settled as cancelled") { try await harness.stats()["cancelled"] == 1 }
        }
        #expect(probe.events == ["started", "saw cancellation"])
        let stats = try await harness.stats()
        #expect(stats["failed"] == nil && stats["retried"] == nil && stats["dead"] == nil)
        #expect(try await harness.delayed().isEmpty)
        #expect(try await harness.dead().isEmpty)
        #expect(try await harness.readyCount() == 0)
    }

    @Test func aPrefetchedJobIsDroppedUnrun() async throws {
        let harness = try await WorkerHarness.make("cancel-prefetched")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        var tasks = TaskRegistry()
        tasks.register("slow") { arguments, _ in
            probe.record("ran \(arguments.kwargs["name"]?.stringValue ?? "?")")
            try await latch.wait()
        }
        let first = UUID().uuidString.lowercased(), second = UUID().uuidString.lowercased()
        try await harness.pushRaw(WorkerKit.envelope(task: "slow", queue: "default", id: first, kwargs: ["name": "first"]))
        try await harness.pushRaw(WorkerKit.envelope(task: "slow", queue: "default", id: second, kwargs: ["name": "second"]))
        try await harness.withWorker(try harness.configuration(concurrency: 1, prefetch: 1), registry: tasks) { worker in
            try await WorkerKit.eventually("the first runs, the second is held") {
                guard probe.count("ran first") == 1 else { return false }
                return try await harness.inflightCount(worker: worker.id) == 2
            }
            let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
            #expect(try await admin.cancel(jobID: second).steps.map(\.action) == [.requestedFromWorker])
            try await WorkerKit.eventually("the prefetched job settled as cancelled") { try await harness.stats()["cancelled"] == 1 }
            latch.open()
            try await WorkerKit.eventually("the first finished") { try await harness.stats()["processed"] == 1 }
        }
        #expect(probe.events == ["ran first"])
    }

    @Test func aDeadWorkersJobIsRemovedBeforeAReaperReturnsIt() async throws {
        let f = try await AdminFixture.make("cancel-dead-worker")
        try await f.addQueues("default")
        try await f.registerWorker("gone", alive: false, queues: ["default"])
        let id = UUID().uuidString.lowercased()
        try await f.command("LPUSH", f.keys.inflight("default", worker: "gone"), String(decoding: AdminTestKit.envelope(id: id), as: UTF8.self))
        let report = try await f.admin.cancel(jobID: id)
        #expect(report.steps == [.init(action: .removedFromDeadWorker, queue: "default", worker: "gone")])
        #expect(try await f.command("LLEN", f.keys.inflight("default", worker: "gone")).int == 0)
    }

    @Test func aDeadLetterIsNotCancelledAndHostileIdsAreEscaped() async throws {
        let f = try await AdminFixture.make("cancel-dead-letter")
        try await f.addQueues("default")
        let id = UUID().uuidString.lowercased()
        try await f.command("LPUSH", f.keys.dead("default"), String(decoding: AdminTestKit.deadEntry(id: id), as: UTF8.self))
        let dead = try await CLI.run(["cancel", id], on: f)
        #expect(dead.status == 1 && dead.stdout.contains("is a dead letter of queue 'default'") && dead.stderr.contains("nothing to cancel"), "\(dead)")
        #expect(try await f.command("LLEN", f.keys.dead("default")).int == 1)

        let hostile = try await CLI.run(["cancel", "evil\u{1b}[2J\u{202e}id"], on: f)
        #expect(hostile.status == 1 && !CLI.hasTerminalControls(hostile.stderr) && hostile.stderr.contains("evil\\x1b[2J"), "\(hostile)")
    }
}
