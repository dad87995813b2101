import Airlock
@testable import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Issue 4 (7): retries, retry budgets, dead letters, the dead-letter cap, and permanent errors
/// that go to the dead letter at once while the worker keeps running.
@Suite("Worker: retries and dead letters", .timeLimit(.minutes(5)))
struct WorkerFailureTests {
    @Test func failingJobIsRetriedWithTheNextAttemptUntilItSucceeds() async throws {
        let harness = try await WorkerHarness.make("retry-ok")
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("third-time-lucky") { _, context in
            probe.record(context)
            if context.attempt < 2 { throw WorkerTaskError(message: "not yet") }
        }
        let intent = try await harness.enqueue { try Airlock.enqueue(name: "third-time-lucky") }
        try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
            try await WorkerKit.eventually("succeeded") { try await harness.stats()["processed"] == 1 }
        }
        #expect(probe.contexts.map(\.attempt) == [0, 1, 2])
        #expect(probe.contexts.allSatisfy { $0.jobID == intent.id.uuidString.lowercased() && $0.maxRetries == 3 })
        let stats = try await harness.stats()
        #expect(stats["failed"] == 2)
        #expect(stats["retried"] == 2)
        #expect(stats["dead"] == nil)
        #expect(try await harness.dead().isEmpty)
    }

    @Test func jobIsDeadLetteredAfterItsLastAttemptWithTheErrorAndAttemptCount() async throws {
        let harness = try await WorkerHarness.make("dead-last")
        let probeName = harness.namespace
        let probe = WorkerProbe.named(probeName)
        var registry = TaskRegistry()
        registry.register(WorkerFailingTask.self)
        var configuration = try harness.configuration()
        configuration.defaultMaxRetries = 2
        let before = WorkerKit.nowMS()
        let intent = try await harness.enqueue {
            try Airlock.enqueue(WorkerFailingTask(probe: probeName, permanent: false), options: DispatchOptions(extra: ["trace": "t-9"]), origin: "checkout")
        }
        try await harness.withWorker(configuration, registry: registry) { _ in
            try await WorkerKit.eventually("dead-lettered") { try await harness.stats()["dead"] == 1 }
        }
        let after = WorkerKit.nowMS()
        #expect(probe.events == ["failing attempt 0", "failing attempt 1", "failing attempt 2"], "1 attempt + 2 retries")
        let entry = try #require(try await harness.dead().first)
        #expect(entry["id"] == .string(intent.id.uuidString.lowercased()))
        #expect(entry["task"] == .string(WorkerFailingTask.name))
        #expect(entry["kwargs"] == ["probe": .string(probeName), "permanent": false])
        #expect(entry["attempt"] == 2)
        #expect(entry["attempts"] == 3)
        #expect(entry["error"] == "transient failure at attempt 2")
        let failedAt = try #require(entry["failed_at"]?.intValue)
        #expect((Int(before)...Int(after)).contains(failedAt))
        #expect(entry["last_error"] == nil, "the dead letter says `error`, not `last_error`")
        #expect(entry["origin"] == "checkout")
        #expect(entry["trace"] == "t-9", "unknown fields survive into the dead letter")
        let stats = try await harness.stats()
        #expect(stats["failed"] == 3)
        #expect(stats["retried"] == 2)
        #expect(try await harness.readyCount() == 0)
        #expect(try await harness.delayed().isEmpty)
    }

    /// The budget comes from the envelope's max_retries, else the task's registration, else the worker.
    @Test func retryBudgetComesFromEnvelopeThenTaskThenWorker() async throws {
        let harness = try await WorkerHarness.make("budgets")
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        let handler: TaskRegistry.Handler = { arguments, context in
            probe.record("\(arguments.kwargs["label"]?.stringValue ?? "?") \(context.attempt)")
            throw WorkerTaskError(message: "no")
        }
        registry.register("budget.task", maxRetries: 1, handler)
        registry.register("budget.none", handler)
        var configuration = try harness.configuration()
        configuration.defaultMaxRetries = 2
        try await harness.enqueue {
            try Airlock.enqueue(name: "budget.task", kwargs: ["label": "task"])
            try Airlock.enqueue(name: "budget.task", kwargs: ["label": "envelope-0"], options: DispatchOptions(maxRetries: 0))
            try Airlock.enqueue(name: "budget.task", kwargs: ["label": "envelope-3"], options: DispatchOptions(maxRetries: 3))
            try Airlock.enqueue(name: "budget.none", kwargs: ["label": "worker"])
        }
        try await harness.withWorker(configuration, registry: registry) { _ in
            try await WorkerKit.eventually("all four dead") { try await harness.stats()["dead"] == 4 }
        }
        func attempts(_ label: String) -> Int { probe.events.count { $0.hasPrefix(label + " ") } }
        #expect(attempts("task") == 2, "the task's maxRetries 1")
        #expect(attempts("envelope-0") == 1, "the envelope's max_retries 0 overrides the task's")
        #expect(attempts("envelope-3") == 4, "the envelope's max_retries 3 overrides the task's")
        #expect(attempts("worker") == 3, "the worker's defaultMaxRetries 2")
        let dead = try await harness.dead()
        let attemptsByLabel = Dictionary(dead.map { ($0["kwargs"]?["label"]?.stringValue ?? "?", $0["attempts"]?.intValue ?? -1) }, uniquingKeysWith: { $1 })
        #expect(attemptsByLabel == ["task": 2, "envelope-0": 1, "envelope-3": 4, "worker": 3])
    }

    @Test func deadLetterListIsCappedNewestFirst() async throws {
        let harness = try await WorkerHarness.make("dead-cap")
        var configuration = try harness.configuration(concurrency: 1)
        configuration.deadLetterCap = 5
        try await harness.enqueue {
            for index in 0..<8 {
                try Airlock.enqueue(name: "airlock.fail", kwargs: ["message": .string("fail-\(index)")], options: DispatchOptions(maxRetries: 0))
            }
        }
        try await harness.withWorker(configuration) { _ in
            try await WorkerKit.eventually("eight dead") { try await harness.stats()["dead"] == 8 }
        }
        let dead = try await harness.dead()
        #expect(dead.map { $0["error"]?.stringValue ?? "?" } == ["fail-7", "fail-6", "fail-5", "fail-4", "fail-3"])
    }

    /// Input that can never succeed is dead-lettered at once with the reason; good jobs around it
    /// complete and the worker keeps running.
    @Test func permanentErrorsAreDeadAtOnceAndTheWorkerKeepsGoing() async throws {
        let harness = try await WorkerHarness.make("permanent")
        let probeName = harness.namespace
        let probe = WorkerProbe.named(probeName)
        var registry = TaskRegistry()
        registry.register(WorkerOrderTask.self)
        registry.register(WorkerFailingTask.self)
        var configuration = try harness.configuration(concurrency: 2)
        configuration.defaultMaxRetries = 5   // none of these may use it

        let invalidUTF8 = Array(#"{"v":1,"id":"bad-utf8","task":"airlock.ping","queue":"default","kwargs":{"s":""#.utf8) + [0xFF, 0xFE, 0x41] + Array(#""}}"#.utf8)
        let malformed: [(String, [UInt8])] = [
            ("malformed JSON", Array(#"{"v":1,"id":"x","task":"airlock.ping""#.utf8)),
            ("empty message", []),
            ("not an object", Array("[1,2,3]".utf8)),
            ("missing id", Array(#"{"v":1,"task":"airlock.ping","queue":"default"}"#.utf8)),
            ("missing task", Array(#"{"v":1,"id":"no-task","queue":"default"}"#.utf8)),
            ("args not an array", Array(#"{"v":1,"id":"a1","task":"airlock.ping","queue":"default","args":"nope"}"#.utf8)),
            ("kwargs not an object", Array(#"{"v":1,"id":"k1","task":"airlock.ping","queue":"default","kwargs":[1]}"#.utf8)),
            ("attempt not an integer", Array(#"{"v":1,"id":"t1","task":"airlock.ping","queue":"default","attempt":"1"}"#.utf8)),
            ("id not a string", Array(#"{"v":1,"id":5,"task":"airlock.ping","queue":"default"}"#.utf8)),
            ("another version", Array(#"{"v":2,"id":"v2","task":"airlock.ping","queue":"default"}"#.utf8)),
        ]
        var pushes: [[UInt8]] = malformed.map(\.1)
        pushes.append(invalidUTF8)
        pushes.append(WorkerKit.envelope(task: "no.such.task", queue: "default", id: "unknown-1"))
        pushes.append(WorkerKit.envelope(task: WorkerOrderTask.name, queue: "default", id: "undecodable-1",
                                         kwargs: ["probe": .string(probeName), "orderID": "forty-two", "customer": "Ada"]))
        pushes.append(WorkerKit.envelope(task: WorkerOrderTask.name, queue: "default", id: "too-many-args",
                                         args: [.string(probeName), 1, "Ada", true, "extra"]))
        pushes.append(WorkerKit.envelope(task: WorkerFailingTask.name, queue: "default", id: "permanent-1",
                                         kwargs: ["probe": .string(probeName), "permanent": true], maxRetries: 5))
        // Good jobs interleaved with the bad ones.
        var good: [String] = []
        var mixed: [[UInt8]] = []
        for (index, bad) in pushes.enumerated() {
            let token = "good-\(index)"
            good.append(token)
            mixed.append(WorkerKit.envelope(task: "airlock.record", queue: "default", kwargs: ["token": .string(token)]))
            mixed.append(bad)
        }
        for message in mixed { try await harness.pushRaw(message) }
        let badCount = pushes.count

        try await harness.withWorker(configuration, registry: registry) { worker in
            try await WorkerKit.eventually("every bad message dead and every good one done") {
                let stats = try await harness.stats()
                return stats["dead"] == badCount && stats["processed"] == good.count
            }
            #expect(try await harness.inflightCount(worker: worker.id) == 0)
        }
        #expect(Set(try await harness.recorded()) == Set(good))
        let stats = try await harness.stats()
        #expect(stats["retried"] == nil, "permanent errors are never retried")
        #expect(stats["failed"] == badCount)
        #expect(try await harness.readyCount() == 0)
        #expect(try await harness.delayed().isEmpty)

        let dead = try await harness.dead()
        #expect(dead.count == badCount)
        let wrapped = dead.filter { $0["task"] == .null }
        #expect(wrapped.count == malformed.count + 1, "messages that are not envelopes are wrapped with task null")
        for entry in wrapped {
            #expect(entry["error"]?.stringValue?.hasPrefix("malformed message: ") == true, "\(entry)")
            #expect(entry["attempts"] == 0)
            #expect(entry["queue"] == "default")
            // The message's own id when it has a readable one (so `dead show` finds it), else a fresh one.
            let raw = entry["raw"]?.stringValue.map { Array($0.utf8) } ?? []
            if let own = DecodedJob.readableID(of: raw) {
                #expect(entry["id"]?.stringValue == own)
            } else {
                #expect(entry["id"]?.stringValue.flatMap(UUID.init(uuidString:)) != nil, "a fresh id")
            }
            #expect(entry["failed_at"]?.intValue != nil)
        }
        for (reason, bytes) in malformed {
            let match = wrapped.first { $0["raw"] == .string(String(decoding: bytes, as: UTF8.self)) }
            #expect(match != nil, "\(reason): the original text is kept in `raw`")
        }
        let binary = wrapped.first { $0["raw_base64"] != nil }
        #expect(binary?["raw_base64"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { Array($0) } == invalidUTF8,
                "invalid UTF-8 is kept byte for byte in raw_base64")

        let byID = Dictionary(dead.compactMap { entry in entry["id"]?.stringValue.map { ($0, entry) } }, uniquingKeysWith: { first, _ in first })
        #expect(byID["unknown-1"]?["error"]?.stringValue?.contains("unknown task 'no.such.task'") == true)
        #expect(byID["unknown-1"]?["attempts"] == 0)
        #expect(byID["undecodable-1"]?["error"]?.stringValue?.contains("do not decode") == true, "\(byID["undecodable-1"]?["error"] ?? nil)")
        #expect(byID["undecodable-1"]?["kwargs"]?["orderID"] == "forty-two", "the job is kept as it was")
        #expect(byID["too-many-args"]?["error"]?.stringValue?.contains("positional") == true)
        #expect(byID["permanent-1"]?["error"] == "card declined for good")
        #expect(byID["permanent-1"]?["attempts"] == 1)
        #expect(probe.events == ["failing attempt 0"], "the typed tasks with bad arguments never ran; PermanentFailure ran once")
    }
}
