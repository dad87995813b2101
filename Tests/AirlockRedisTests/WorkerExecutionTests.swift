import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Issue 4 (6): each task runs in an airlock scope with the Redis executor, per-task timeouts,
/// expired jobs; and (10): the stats hash counters.
@Suite("Worker: task execution", .timeLimit(.minutes(5)))
struct WorkerExecutionTests {
    @Test func followUpsAreDispatchedOnlyWhenTheTaskSucceeds() async throws {
        let harness = try await WorkerHarness.make("followups")
        var registry = TaskRegistry()
        registry.register("parent.ok") { _, _ in
            try Airlock.enqueue(name: "airlock.record", kwargs: ["token": "from-ok"])
            try Airlock.enqueue(name: "report.build", args: [7], options: DispatchOptions(queue: "elsewhere"))
        }
        registry.register("parent.bad", maxRetries: 0) { _, _ in
            try Airlock.enqueue(name: "airlock.record", kwargs: ["token": "from-bad"])
            try Airlock.enqueue(name: "report.build", args: [8], options: DispatchOptions(queue: "elsewhere"))
            throw WorkerTaskError(message: "parent failed after enqueueing")
        }
        try await harness.enqueue {
            try Airlock.enqueue(name: "parent.ok")
            try Airlock.enqueue(name: "parent.bad")
        }
        let workerID = try await harness.withWorker(try harness.configuration(), registry: registry) { worker in
            try await WorkerKit.eventually("the good parent and its follow-up processed, the bad parent dead") {
                let stats = try await harness.stats()
                return stats["processed"] == 2 && stats["dead"] == 1
            }
            return worker.id
        }
        #expect(try await harness.recorded() == ["from-ok"], "the failing task's follow-ups were discarded")
        let elsewhere = try await harness.readyInConsumptionOrder("elsewhere")
        try #require(elsewhere.count == 1)
        #expect(elsewhere[0]["task"] == "report.build")
        #expect(elsewhere[0]["args"] == [7])
        #expect(elsewhere[0]["origin"] == .string(workerID), "follow-ups carry the worker as origin")
        #expect(try await harness.dead().first?["error"] == "parent failed after enqueueing")
    }

    @Test func attemptsOutlivingTheirTimeoutAreCancelledAndCountAsFailures() async throws {
        let harness = try await WorkerHarness.make("timeouts")
        let probe = WorkerProbe()
        func slow(_ label: String) -> TaskRegistry.Handler {
            { _, context in
                probe.record("\(label) start \(context.attempt)")
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    probe.record("\(label) cancelled \(context.attempt)")
                    throw error
                }
            }
        }
        var registry = TaskRegistry()
        registry.register("slow.task", maxRetries: 1, timeout: .milliseconds(200), slow("task"))
        registry.register("slow.default", maxRetries: 0, slow("default"))
        var configuration = try harness.configuration()
        configuration.defaultTimeout = .milliseconds(300)
        try await harness.enqueue {
            try Airlock.enqueue(name: "slow.task")
            try Airlock.enqueue(name: "slow.default")
        }
        try await harness.withWorker(configuration, registry: registry) { _ in
            try await WorkerKit.eventually("both dead") { try await harness.stats()["dead"] == 2 }
        }
        let dead = Dictionary(grouping: try await harness.dead(), by: { $0["task"]?.stringValue ?? "" })
        let task = try #require(dead["slow.task"]?.first)
        #expect(task["attempts"] == 2, "the registry timeout is a failure like any other: retried, then dead")
        #expect(task["error"]?.stringValue?.contains("timed out after 0.2") == true, "\(task["error"] ?? nil)")
        let byDefault = try #require(dead["slow.default"]?.first)
        #expect(byDefault["attempts"] == 1)
        #expect(byDefault["error"]?.stringValue?.contains("timed out after 0.3") == true, "the worker's defaultTimeout applies: \(byDefault["error"] ?? nil)")
        #expect(Set(probe.events) == ["task start 0", "task cancelled 0", "task start 1", "task cancelled 1", "default start 0", "default cancelled 0"],
                "each timed-out attempt was cancelled")
        let stats = try await harness.stats()
        #expect(stats["failed"] == 3)
        #expect(stats["retried"] == 1)
    }

    @Test func expiredJobsAreDroppedUnrunAndCounted() async throws {
        let harness = try await WorkerHarness.make("expired")
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("mark") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        try await harness.enqueue {
            try Airlock.enqueue(name: "mark", kwargs: ["token": "stale"], options: DispatchOptions(expires: .at(Date().addingTimeInterval(-1))))
            try Airlock.enqueue(name: "mark", kwargs: ["token": "fresh"], options: DispatchOptions(expires: .after(.seconds(60))))
        }
        try await harness.pushRaw(WorkerKit.envelope(task: "mark", queue: "default", kwargs: ["token": "stale-raw"], expires: WorkerKit.nowMS() - 5))
        try await harness.withWorker(try harness.configuration(), registry: registry) { worker in
            try await WorkerKit.eventually("two expired, one processed") {
                let stats = try await harness.stats()
                return stats["expired"] == 2 && stats["processed"] == 1
            }
            #expect(try await harness.inflightCount(worker: worker.id) == 0)
        }
        #expect(probe.events == ["fresh"], "expired jobs never run")
        #expect(try await harness.dead().isEmpty, "expired is not a failure")
        #expect(try await harness.stats()["failed"] == nil)
        #expect(try await harness.readyCount() == 0)
    }

    @Test func statsHashCountsEveryOutcome() async throws {
        let harness = try await WorkerHarness.make("stats")
        var registry = TaskRegistry()
        registry.register("ok") { _, _ in }
        // Settled in the script's long form (a result to store) beside the plain acknowledgements' short form.
        registry.registerFunction("ok.kept", keepResult: .seconds(60)) { _, _ in "kept" }
        registry.register("flaky-once") { _, context in
            if context.attempt == 0 { throw WorkerTaskError(message: "first attempt fails") }
        }
        registry.register("doomed", maxRetries: 0) { _, _ in throw WorkerTaskError(message: "always fails") }
        try await harness.enqueue {
            try Airlock.enqueue(name: "ok")
            try Airlock.enqueue(name: "ok.kept")
            try Airlock.enqueue(name: "ok")
            try Airlock.enqueue(name: "flaky-once")
            try Airlock.enqueue(name: "doomed")
            try Airlock.enqueue(name: "no.such.task")
            try Airlock.enqueue(name: "ok", options: DispatchOptions(expires: .at(Date().addingTimeInterval(-1))))
        }
        try await harness.withWorker(try harness.configuration(), registry: registry) { worker in
            try await WorkerKit.eventually("every job settled") {
                let stats = try await harness.stats()
                return stats["processed"] == 4 && stats["dead"] == 2 && stats["expired"] == 1
            }
            // Every settled job left the in-flight list, whichever form settled it.
            try await WorkerKit.eventually("the in-flight list emptied") { try await harness.inflightCount(worker: worker.id) == 0 }
        }
        let kept = try await harness.command("KEYS", harness.namespace + ":{default}:result:*")
        let stored = (kept.array ?? []).compactMap(\.string).filter { !$0.hasSuffix(":done") }
        #expect(stored.count == 1, "the kept result was stored, and only that one: \(kept)")
        #expect(try await harness.stats() == ["processed": 4, "failed": 3, "retried": 1, "dead": 2, "expired": 1],
                "processed = succeeded; failed = failed attempts; retried; dead; expired")
    }
}
