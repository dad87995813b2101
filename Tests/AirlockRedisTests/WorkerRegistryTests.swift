import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// A typed task whose declared defaults carry a retry budget.
struct WorkerBudgetedTask: AirlockTask {
    static let name = "worker-tests.budgeted"
    static var defaultOptions: DispatchOptions { DispatchOptions(maxRetries: 2) }
    func run(_ context: TaskContext) async throws {}
}

/// Issue 4 (1): the registry of typed tasks and named closures, and (7): retry strategy values.
@Suite("Worker: task registry and retry strategies", .timeLimit(.minutes(5)))
struct WorkerRegistryTests {
    // MARK: Registry

    @Test func registryHoldsTypedTasksAndNamedClosuresWithTheirSettings() throws {
        var registry = TaskRegistry()
        #expect(registry.names.isEmpty)
        registry.register(WorkerOrderTask.self, maxRetries: 7, timeout: .seconds(3), retry: .fixed(.seconds(2)))
        registry.register("proj.tasks.add", maxRetries: 1) { _, _ in }
        registry.register(WorkerBudgetedTask.self)
        #expect(registry.names == ["proj.tasks.add", "worker-tests.budgeted", "worker-tests.order"], "sorted names")

        let typed = try #require(registry["worker-tests.order"])
        #expect(typed.name == "worker-tests.order")
        #expect(typed.maxRetries == 7)
        #expect(typed.timeout == .seconds(3))
        #expect((typed.retry as? FixedRetry)?.interval == .seconds(2))

        let named = try #require(registry["proj.tasks.add"])
        #expect(named.maxRetries == 1)
        #expect(named.timeout == nil)
        #expect(named.retry == nil)

        #expect(registry["worker-tests.budgeted"]?.maxRetries == 2, "a typed task's defaultOptions.maxRetries is its budget")
        #expect(registry["no.such.task"] == nil)

        registry.register("proj.tasks.add", maxRetries: 4) { _, _ in }
        #expect(registry["proj.tasks.add"]?.maxRetries == 4, "registering a name again replaces the entry")
        #expect(registry.names.count == 3)
    }

    @Test func workerRunsTypedTasksAndNamedClosuresWithTheirContext() async throws {
        let harness = try await WorkerHarness.make("registry")
        let probeName = harness.namespace
        let probe = WorkerProbe.named(probeName)
        var registry = TaskRegistry()
        registry.register(WorkerOrderTask.self)
        registry.register("proj.tasks.add") { arguments, context in
            let sum = arguments.args.compactMap(\.intValue).reduce(0, +)
            probe.record("add \(sum) scale=\(arguments.kwargs["scale"]?.intValue ?? -1)")
            probe.record(context)
        }
        let (typedIntent, namedIntent) = try await harness.enqueue {
            (try Airlock.enqueue(WorkerOrderTask(probe: probeName, orderID: 42, customer: "Zoë \"Z\" 🦊", gift: true)),
             try Airlock.enqueue(name: "proj.tasks.add", args: [2, 3], kwargs: ["scale": 10]))
        }
        // A producer in another language calling the typed task positionally (argumentNames).
        try await harness.pushRaw(WorkerKit.envelope(task: WorkerOrderTask.name, queue: "default", id: "positional-1", args: [.string(probeName), 7, "Ada"]))

        let started = Date()
        try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
            try await WorkerKit.eventually("three jobs settled") {
                let stats = try await harness.stats()
                return (stats["processed"] ?? 0) + (stats["dead"] ?? 0) == 3
            }
        }
        let dead = try await harness.dead()
        #expect(dead.isEmpty, "dead letters: \(dead.map { "\($0["task"] ?? nil): \($0["error"] ?? nil)" })")
        #expect(try await harness.stats()["processed"] == 3)
        #expect(Set(probe.events) == ["order 42 Zoë \"Z\" 🦊 gift=true", "add 5 scale=10", "order 7 Ada gift=nil"])

        let contexts = Dictionary(probe.contexts.map { ($0.jobID, $0) }, uniquingKeysWith: { first, _ in first })
        let typed = try #require(contexts[typedIntent.id.uuidString.lowercased()], "the job id is the intent id")
        #expect(typed.taskName == WorkerOrderTask.name)
        #expect(typed.queue == "default")
        #expect(typed.attempt == 0)
        #expect(typed.maxRetries == 3, "the worker default budget")
        let enqueuedAt = try #require(typed.enqueuedAt)
        #expect(abs(enqueuedAt.timeIntervalSince(started)) < 30)
        let named = try #require(contexts[namedIntent.id.uuidString.lowercased()])
        #expect(named.taskName == "proj.tasks.add")
        #expect(contexts["positional-1"]?.taskName == WorkerOrderTask.name)
    }

    // MARK: Retry strategies

    @Test func fixedRetryWaitsTheSameEveryTime() {
        let strategy = FixedRetry(.milliseconds(250))
        for failures in [1, 2, 3, 10, 1_000] {
            #expect(strategy.delay(afterFailures: failures) == .milliseconds(250))
        }
        let sugar: FixedRetry = .fixed(.seconds(2))
        #expect(sugar.interval == .seconds(2))
        let immediate: FixedRetry = .immediate
        #expect(immediate.delay(afterFailures: 5) == .zero)
    }

    @Test func exponentialRetryDoublesUpToItsMaximum() {
        let strategy = ExponentialJitterRetry(base: .milliseconds(100), maximum: .seconds(1), jitter: 0)
        let delays = (1...6).map { strategy.delay(afterFailures: $0) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        #expect(strategy.delay(afterFailures: 0) == .milliseconds(100), "no failure yet behaves like the first")
        #expect(strategy.delay(afterFailures: -3) == .milliseconds(100))
        #expect(strategy.delay(afterFailures: 10_000) == .seconds(1), "huge failure counts are capped, never overflow")
        #expect(strategy.delay(afterFailures: Int.max) == .seconds(1))
    }

    @Test func jitterSpreadsDelaysWithinItsFraction() {
        let strategy = ExponentialJitterRetry(base: .seconds(1), maximum: .seconds(300), jitter: 0.5)
        for failures in 1...4 {
            let raw = Double(1 << (failures - 1))
            let samples: [Double] = (0..<200).map { _ in strategy.delay(afterFailures: failures).timeInterval }
            let low = raw * 0.5 - 0.001
            let high = raw * 1.5 + 0.001
            let inRange = samples.allSatisfy { (low...high).contains($0) }
            #expect(inRange, "failures \(failures): \(samples.min() ?? -1)…\(samples.max() ?? -1)")
            #expect(Set(samples).count > 20, "jitter actually varies the delay")
        }
        let capped: [Double] = (0..<200).map { _ in strategy.delay(afterFailures: 30).timeInterval }
        let cappedInRange = capped.allSatisfy { (149.999...450.001).contains($0) }
        #expect(cappedInRange, "the cap applies before the jitter")

        #expect(ExponentialJitterRetry(jitter: 3).jitter == 1, "jitter is clamped to 0…1")
        #expect(ExponentialJitterRetry(jitter: -1).jitter == 0)
        let full = ExponentialJitterRetry(base: .seconds(1), maximum: .seconds(1), jitter: 1)
        let fullSamples: [Double] = (0..<200).map { _ in full.delay(afterFailures: 1).timeInterval }
        #expect(fullSamples.allSatisfy { (0.0...2.0).contains($0) }, "never negative")
    }

    @Test func exponentialJitterSugarHasTheDocumentedDefaults() {
        let strategy: ExponentialJitterRetry = .exponentialJitter()
        #expect(strategy.base == .seconds(1))
        #expect(strategy.maximum == .seconds(300))
        #expect(strategy.jitter == 0.5)
        let custom: ExponentialJitterRetry = .exponentialJitter(base: .milliseconds(10), maximum: .seconds(2), jitter: 0.1)
        #expect(custom.base == .milliseconds(10))
        #expect(custom.maximum == .seconds(2))
        #expect(custom.jitter == 0.1)

        let configuration = WorkerSetup(redis: RedisConfiguration())
        let standard = configuration.retryStrategy as? ExponentialJitterRetry
        #expect(standard?.base == .seconds(1) && standard?.maximum == .seconds(300) && standard?.jitter == 0.5,
                "workers default to exponential backoff with jitter")
        #expect(configuration.defaultMaxRetries == 3)
    }
}
