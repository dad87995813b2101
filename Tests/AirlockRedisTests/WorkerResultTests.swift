import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Synchronization
import Testing

/// Native results on a real Redis: a producer waiting on a handle is woken by the worker's
/// settlement, failures come back as failures, and nothing is kept without an expiry.
@Suite("Worker: native job results", .timeLimit(.minutes(5)))
struct WorkerResultTests {
    static func registry() -> TaskRegistry {
        var tasks = TaskRegistry()
        tasks.registerFunction("math.add") { arguments, _ in
            .int(arguments.args.compactMap(\.intValue).reduce(0, +))
        }
        tasks.register("math.explode", maxRetries: 0) { _, _ in throw WorkerTaskError(message: "division by <zero>") }
        return tasks
    }

    @Test func waitersStartedBeforeTheWorkerAreWokenWithTheValue() async throws {
        let harness = try await WorkerHarness.make("results-value")
        let results = JobResults(configuration: try RedisConfiguration(url: harness.url), namespace: harness.namespace)
        let intent = try await harness.enqueue {
            try Airlock.enqueue(name: "math.add", args: [2, 3], options: DispatchOptions().keepingResult(for: .seconds(600)))
        }
        let handle = results.handle(for: intent)
        // Two producers wait before any worker runs; both must wake.
        let first = Task { try await handle.value(as: Int.self, timeout: .seconds(120)) }
        let second = Task { try await handle.value(as: Int.self, timeout: .seconds(120)) }
        try await WorkerKit.eventually("both waiters blocked in Redis") {
            let clients = try await harness.command("CLIENT", "LIST").string ?? ""
            return clients.components(separatedBy: "name=airlock-result-wait").count - 1 >= 2 && clients.contains("cmd=blmove")
        }
        try await harness.withWorker(try harness.configuration(), registry: Self.registry()) { _ in
            let values = [try await first.value, try await second.value]
            #expect(values == [5, 5])
        }
        let key = harness.keys.result("default", jobID: intent.id.uuidString.lowercased())
        let ttl = try #require(try await harness.command("PTTL", key).int)
        #expect(ttl > 0 && ttl <= 600_000)
        let notifyTTL = try #require(try await harness.command("PTTL", key + ":done").int)
        #expect(notifyTTL > 0 && notifyTTL <= 600_000, "the wake-up list expires with the result")
        // A handle asked after the job finished answers at once from the stored result.
        #expect(try await handle.value(as: Int.self, timeout: .seconds(1)) == 5)
    }

    @Test func aFailedJobsHandleThrowsItsError() async throws {
        let harness = try await WorkerHarness.make("results-failure")
        let results = JobResults(configuration: try RedisConfiguration(url: harness.url), namespace: harness.namespace)
        let intent = try await harness.enqueue {
            try Airlock.enqueue(name: "math.explode", options: DispatchOptions().keepingResult(for: .seconds(60)))
        }
        try await harness.withWorker(try harness.configuration(), registry: Self.registry()) { _ in
            await #expect {
                _ = try await results.handle(for: intent).value(as: Int.self, timeout: .seconds(120))
            } throws: { error in
                guard let error = error as? ResultError, error.kind == .failed else { return false }
                return error.reason == "division by <zero>" && error.errorType == "WorkerTaskError"
            }
        }
        #expect(try await harness.dead().count == 1, "the failure is dead-lettered as always")
    }

    @Test func aJobThatAskedForNothingKeepsNothingAndItsHandleTimesOut() async throws {
        let harness = try await WorkerHarness.make("results-none")
        let results = JobResults(configuration: try RedisConfiguration(url: harness.url), namespace: harness.namespace)
        let intent = try await harness.enqueue { try Airlock.enqueue(name: "math.add", args: [1, 1]) }
        try await harness.withWorker(try harness.configuration(), registry: Self.registry()) { _ in
            try await WorkerKit.eventually("the job ran") { try await harness.stats()["processed"] == 1 }
        }
        await #expect {
            _ = try await results.handle(for: intent).value(as: Int.self, timeout: .milliseconds(200))
        } throws: { ($0 as? ResultError)?.kind == .timedOut }
        let leftovers = try await harness.command("KEYS", "\(harness.namespace):*result*").array ?? []
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
