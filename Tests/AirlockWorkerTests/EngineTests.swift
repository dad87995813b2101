import Airlock
import AirlockWorker
import Foundation
import Synchronization
import Testing

@Suite("Worker engine over in-memory queues")
struct EngineTests {
    static func tokens(_ prefix: String, _ count: Int) -> [(task: String, kwargs: [String: JSONValue])] {
        (1...count).map { ("mark", ["token": .string("\(prefix)\($0)")]) }
    }

    /// `mark` records its token; with a gate, it waits there first (only for `gated` tokens when given).
    static func registry(_ probe: EngineProbe, gate: EngineGate? = nil, gated: Set<String>? = nil) -> TaskRegistry {
        var registry = TaskRegistry()
        registry.register("mark") { arguments, _ in
            let token = arguments.kwargs["token"]?.stringValue ?? "?"
            try await probe.running {
                if let gate, gated?.contains(token) ?? true { try await gate.wait() }
                probe.record(token)
            }
        }
        return registry
    }

    @Test func everyJobRunsOnceAndIsAcknowledged() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        try await Engine.enqueue(queues, Self.tokens("t", 50))
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(concurrency: 4), registry: Self.registry(probe), logger: Engine.quiet))
        try await Engine.eventually("all 50 acknowledged") { queues.counters("default")["processed"] == 50 }
        try await run.stop()
        #expect(Set(probe.events) == Set((1...50).map { "t\($0)" }))
        #expect(probe.events.count == 50)
        #expect(queues.heldCount == 0)
        #expect(queues.workers.isEmpty, "a clean stop deregisters")
    }

    @Test func neverMoreThanConcurrencyRunAndNeverMoreThanConcurrencyPlusPrefetchAreHeld() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        let gate = EngineGate()
        try await Engine.enqueue(queues, Self.tokens("t", 40))
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 3, prefetch: 2), registry: Self.registry(probe, gate: gate),
            logger: Engine.quiet))
        try await Engine.eventually("three tasks wait at the gate") { gate.waiting == 3 }
        try await Engine.eventually("the prefetch is full") { queues.heldCount == 5 }
        #expect(queues.ready("default").count == 35, "no more than concurrency + prefetch taken")
        gate.open()
        try await Engine.eventually("all ran") { queues.counters("default")["processed"] == 40 }
        try await run.stop()
        #expect(probe.maxRunning == 3)
    }

    @Test func freeSlotsGoToTheEarlierQueueFirst() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        try await Engine.enqueue(queues, Self.tokens("low", 5), options: DispatchOptions(queue: "low"))
        try await Engine.enqueue(queues, Self.tokens("high", 5), options: DispatchOptions(queue: "high"))
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(queues: ["high", "low"], concurrency: 1), registry: Self.registry(probe),
            logger: Engine.quiet))
        try await Engine.eventually("all ran") { probe.events.count == 10 }
        try await run.stop()
        #expect(probe.events == (1...5).map { "high\($0)" } + (1...5).map { "low\($0)" })
    }

    @Test func failuresAreRetriedUntilTheBudgetIsSpentThenDeadLettered() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        var registry = TaskRegistry()
        registry.register("flaky", maxRetries: 2) { _, context in
            probe.record("attempt \(context.attempt)")
            throw EngineTaskError(description: "nope \(context.attempt)")
        }
        registry.register("doomed") { _, _ in throw PermanentFailure("card declined for good") }
        try await Engine.enqueue(queues, [("flaky", [:]), ("doomed", [:])])
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("both dead") { queues.dead("default").count == 2 }
        try await run.stop()
        #expect(probe.events == ["attempt 0", "attempt 1", "attempt 2"], "the registry's budget: two retries")
        let dead = try queues.dead("default").map(Engine.object)
        let flaky = try #require(dead.first { $0["task"] == "flaky" })
        #expect(flaky["attempts"] == 3)
        #expect(flaky["error"] == "nope 2")
        #expect(flaky["last_error"] == nil)
        let doomed = try #require(dead.first { $0["task"] == "doomed" })
        #expect(doomed["attempts"] == 1, "a permanent failure is never retried")
        let counters = queues.counters("default")
        #expect(counters["failed"] == 4 && counters["retried"] == 2 && counters["dead"] == 2)
    }

    @Test func theMessagesRetryBudgetWinsOverTheTasksAndTheWorkersDefault() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        var registry = TaskRegistry()
        registry.register("flaky", maxRetries: 5) { _, context in
            probe.record("attempt \(context.attempt) of \(context.maxRetries ?? -1)")
            throw EngineTaskError(description: "no")
        }
        try await Engine.enqueue(queues, [("flaky", [:])], options: DispatchOptions(maxRetries: 1))
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("dead") { queues.dead("default").count == 1 }
        try await run.stop()
        #expect(probe.events == ["attempt 0 of 1", "attempt 1 of 1"])
    }

    @Test func anAttemptThatOutlivesItsTimeoutIsCancelledAndCountsAsAFailure() async throws {
        let queues = InMemoryQueues()
        var registry = TaskRegistry()
        registry.register("slow", maxRetries: 1, timeout: .milliseconds(50)) { _, _ in try await Task.sleep(for: .seconds(600)) }
        try await Engine.enqueue(queues, [("slow", [:])])
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("dead after two timed-out attempts") { queues.dead("default").count == 1 }
        try await run.stop()
        let entry = try Engine.object(try #require(queues.dead("default").first))
        #expect(entry["attempts"] == 2)
        #expect(entry["error"]?.stringValue?.contains("timed out after 0.05") == true, "\(entry["error"] ?? nil)")
    }

    @Test func shutdownReturnsUnstartedJobsInOrderAndLetsRunningTasksFinish() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        let gate = EngineGate()
        try await Engine.enqueue(queues, Self.tokens("t", 6))
        let original = queues.ready("default")
        let run = EngineRun(Worker(
            source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1, prefetch: 3), registry: Self.registry(probe, gate: gate),
            logger: Engine.quiet))
        try await Engine.eventually("one running, three prefetched") { gate.waiting == 1 && queues.heldCount == 4 }
        run.worker.shutdown()
        // Running tasks get the shutdown timeout; the unstarted ones are back already.
        try await Engine.eventually("the prefetched jobs are back") { queues.ready("default").count == 5 }
        gate.open()
        try await run.stop()
        #expect(probe.events == ["t1"], "the running task finished; nothing else started")
        #expect(queues.ready("default") == Array(original.dropFirst()), "returned to the front, in their original order, byte for byte")
        #expect(queues.counters("default")["processed"] == 1)
    }

    @Test func aTaskOutlivingTheShutdownTimeoutIsCancelledAndItsJobReturnedUnchanged() async throws {
        let queues = InMemoryQueues()
        var registry = TaskRegistry()
        registry.register("stubborn") { _, _ in try await Task.sleep(for: .seconds(600)) }
        try await Engine.enqueue(queues, [("stubborn", [:])])
        let original = queues.ready("default")
        var configuration = Engine.configuration(concurrency: 1)
        configuration.shutdownTimeout = .milliseconds(100)
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: configuration, registry: registry, logger: Engine.quiet))
        try await Engine.eventually("it runs") { queues.heldCount == 1 }
        try await run.stop()
        #expect(queues.ready("default") == original, "back at the front, attempt unchanged")
        #expect(queues.counters("default")["failed"] == nil, "a cancelled-at-shutdown job is not a failure")
    }

    @Test func unreadableUnknownAndOversizedMessagesAreDeadLetteredWithTheirReason() async throws {
        let queues = InMemoryQueues()
        queues.push(Array("not json".utf8), to: "default")
        queues.push(Envelope(id: "u1", task: "no.such.task", queue: "default", enqueuedAt: epochMilliseconds()).encoded(), to: "default")
        queues.push(Envelope(id: "big", task: "mark", kwargs: ["token": .string(String(repeating: "x", count: 2000))], queue: "default",
                             enqueuedAt: epochMilliseconds()).encoded(), to: "default")
        queues.push(Array(#"{"v":1,"id":"n1","task":"mark","queue":"default","attempt":9223372036854775807}"#.utf8), to: "default")
        let probe = EngineProbe()
        var configuration = Engine.configuration()
        configuration.maxMessageBytes = 1024
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: configuration, registry: Self.registry(probe), logger: Engine.quiet))
        try await Engine.eventually("four dead letters") { queues.dead("default").count == 4 }
        try await run.stop()
        let reasons = try queues.dead("default").map(Engine.object).map { ($0["id"]?.stringValue ?? "", $0["error"]?.stringValue ?? "") }
        let byID = Dictionary(reasons, uniquingKeysWith: { a, _ in a })
        #expect(byID["u1"]?.contains("unknown task 'no.such.task'") == true)
        #expect(byID["big"]?.contains("over this worker's limit of 1024") == true)
        #expect(byID["n1"]?.contains("'attempt' is out of range") == true)
        #expect(reasons.contains { $0.1 == "malformed message: envelope is not a JSON object" }, "\(reasons)")
        #expect(probe.events.isEmpty)
    }

    @Test func followUpsLeaveOnlyWhenTheTaskSucceeds() async throws {
        let queues = InMemoryQueues()
        var registry = TaskRegistry()
        registry.register("parent") { arguments, _ in
            try Airlock.enqueue(name: "child", kwargs: ["of": arguments.kwargs["name"] ?? .null])
            if arguments.kwargs["fail"] == true { throw PermanentFailure("parent failed") }
        }
        registry.register("child") { _, _ in }
        try await Engine.enqueue(queues, [("parent", ["name": "good"]), ("parent", ["name": "bad", "fail": true])])
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("the good parent and its child processed, the bad one dead") {
            queues.counters("default")["processed"] == 2 && queues.dead("default").count == 1
        }
        try await run.stop()
        #expect(queues.ready("default").isEmpty, "the failed parent's child never left")
    }

    @Test func delayedJobsRunWhenDueAndExpiredJobsAreDroppedUnrun() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        try await Engine.enqueue(queues, [("mark", ["token": "later"])], options: DispatchOptions(countdown: .milliseconds(200)))
        queues.push(Envelope(id: "old", task: "mark", kwargs: ["token": "expired"], queue: "default", enqueuedAt: 1, expires: 2).encoded(), to: "default")
        #expect(queues.delayed("default").count == 1)
        let enqueuedAt = epochMilliseconds()
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: Self.registry(probe), logger: Engine.quiet))
        try await Engine.eventually("the delayed job ran") { probe.events == ["later"] }
        let ranAt = epochMilliseconds()
        try await run.stop()
        #expect(ranAt >= enqueuedAt + 200, "never before it was due")
        #expect(queues.counters("default")["expired"] == 1)
        #expect(queues.delayed("default").isEmpty)
    }

    @Test func aWorkerGivenUpForDeadReturnsItsUnstartedJobsInsteadOfRunningThemTwice() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        let gate = EngineGate()
        try await Engine.enqueue(queues, Self.tokens("t", 4))
        var zombieConfiguration = Engine.configuration(concurrency: 1, prefetch: 3)
        zombieConfiguration.heartbeatInterval = .milliseconds(200)
        let registry = Self.registry(probe, gate: gate, gated: ["t1"])
        let zombie = EngineRun(Worker(source: queues.makeSource(), configuration: zombieConfiguration, registry: registry, logger: Engine.quiet))
        try await Engine.eventually("the zombie holds all four") { gate.waiting == 1 && queues.heldCount == 4 }
        // Its heartbeat lapses (a stall); another worker reaps it and runs what it held.
        let rescuer = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(concurrency: 4), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("reaped") {
            queues.expireHeartbeat(of: zombie.worker.id)
            return !queues.workers.contains(zombie.worker.id)
        }
        try await Engine.eventually("the rescuer runs t2…t4 and waits with t1 at the gate") { probe.events.count == 3 && gate.waiting == 2 }
        try await Engine.eventually("the zombie learnt it and gave its unstarted jobs up") { queues.workers.contains(zombie.worker.id) }
        gate.open()
        try await Engine.eventually("t1 settled") { queues.counters("default")["processed"] == 4 }
        try await rescuer.stop()
        try await zombie.stop()
        for token in ["t2", "t3", "t4"] { #expect(probe.count(token) == 1, "\(token) ran \(probe.count(token)) times") }
        #expect(probe.count("t1") == 2, "only the job running at the reap ran twice")
        #expect(queues.heldCount == 0)
    }

    /// A typed task whose work needs an application service: the registration closure captures it.
    struct SendReceipt: AirlockTask {
        static let name = "shop.send_receipt"
        let orderID: Int
        let email: String
    }

    /// Stands in for a mailer an application would inject.
    final class Outbox: Sendable {
        private let sent = Mutex<[String]>([])
        func send(_ text: String) { sent.withLock { $0.append(text) } }
        var messages: [String] { sent.withLock { $0 } }
    }

    @Test func aTypedTaskReachesTheServicesItsRegistrationCaptured() async throws {
        let queues = InMemoryQueues()
        let outbox = Outbox()
        var registry = TaskRegistry()
        registry.register(SendReceipt.self) { task, context in
            outbox.send("order \(task.orderID) → \(task.email) (job \(context.jobID))")
        }
        var enqueued: Intent?
        try await Airlock.scope(policy: AllowAll(), executor: queues.executor(), behavior: DefaultScopeBehavior()) {
            enqueued = try Airlock.enqueue(SendReceipt(orderID: 7, email: "ada@example.com"))
        }
        let run = EngineRun(Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("sent") { !outbox.messages.isEmpty }
        try await run.stop()
        let id = try #require(enqueued).id.uuidString.lowercased()
        #expect(outbox.messages == ["order 7 → ada@example.com (job \(id))"])
    }

    @Test func aClosureRegisteredTaskRunWithoutItsRegistrationSaysHowItIsMeantToRun() async throws {
        let error = await #expect(throws: UnrunnableTaskError.self) {
            try await SendReceipt(orderID: 1, email: "x").run(TaskContext(jobID: "j", taskName: SendReceipt.name))
        }
        #expect(error?.description.contains("tasks.register(SendReceipt.self) { task, context in") == true)
    }

    @Test func aWorkerCanRunAgainAfterItStopped() async throws {
        let queues = InMemoryQueues()
        let probe = EngineProbe()
        let worker = Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: Self.registry(probe), logger: Engine.quiet)
        for round in 1...3 {
            try await Engine.enqueue(queues, [("mark", ["token": .string("round \(round)")])])
            let run = EngineRun(worker)
            try await Engine.eventually("round \(round) ran") { probe.events.count == round }
            try await run.stop()
        }
        #expect(probe.events == ["round 1", "round 2", "round 3"])
    }

    @Test func theCeleryCodecWritesCeleryRetriesAndResults() async throws {
        let queues = InMemoryQueues()
        var registry = TaskRegistry()
        registry.registerFunction("add") { arguments, _ in .int((arguments.args.first?.intValue ?? 0) + (arguments.args.last?.intValue ?? 0)) }
        registry.register("flaky", maxRetries: 1) { _, context in if context.attempt == 0 { throw EngineTaskError(description: "once") } }
        queues.push(CeleryMessage.make(id: "c1", task: "add", args: [2, 3], kwargs: [:], queue: "celery").encoded(), to: "celery")
        queues.push(CeleryMessage.make(id: "c2", task: "flaky", args: [], kwargs: [:], queue: "celery").encoded(), to: "celery")
        let run = EngineRun(Worker(source: queues.makeSource(codec: .celery), configuration: Engine.configuration(queues: ["celery"]), registry: registry, logger: Engine.quiet))
        try await Engine.eventually("both processed") { queues.counters("celery")["processed"] == 2 }
        try await run.stop()
        let result = try Engine.object(try #require(queues.result("celery-task-meta-c1")))
        #expect(result["status"] == "SUCCESS")
        #expect(result["result"] == 5)
        #expect(queues.counters("celery")["retried"] == 1)
    }
}
