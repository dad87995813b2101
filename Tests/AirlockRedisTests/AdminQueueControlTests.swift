import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `RedisAdmin` pause, resume, queue names and enqueue.
@Suite("Admin: queue control and enqueue", .timeLimit(.minutes(5)))
struct AdminQueueControlTests {
    typealias Kit = AdminTestKit

    @Test func pauseAndResumeSetAndDeleteTheFlag() async throws {
        let f = try await AdminFixture.make("control-pause")
        try await f.addQueues("mail")
        #expect(try await f.admin.pause("mail") == false)
        #expect(try await f.command("GET", f.keys.paused("mail")).string == "1")
        #expect(try await f.admin.isPaused("mail"))
        #expect(try await f.admin.pause("mail") == true) // already paused
        #expect(try await f.admin.statsSample()[queue: "mail"]?.paused == true)
        #expect(try await f.admin.resume("mail") == true)
        #expect(try await !f.exists(f.keys.paused("mail")))
        #expect(try await f.admin.resume("mail") == false) // was not paused
        #expect(try await f.admin.statsSample()[queue: "mail"]?.paused == false)
    }

    @Test func anUnknownQueueIsAnErrorUnlessCreated() async throws {
        let f = try await AdminFixture.make("control-unknown")
        try await f.addQueues("known")
        let error = await #expect(throws: AdminError.self) { try await f.admin.pause("typo") }
        #expect(error?.kind == .unknownQueue)
        #expect(error?.description.contains("--create") == true)
        #expect(try await !f.exists(f.keys.paused("typo")))
        await #expect(throws: AdminError.self) { try await f.admin.resume("typo") }

        #expect(try await f.admin.pause("new", create: true) == false)
        #expect(try await f.admin.queueNames() == ["known", "new"])
        #expect(try await f.admin.isPaused("new"))
    }

    @Test func enqueueGoesThroughTheExecutor() async throws {
        let f = try await AdminFixture.make("control-enqueue")
        let result = try await f.admin.enqueue(
            task: "send.mail", arguments: TaskArguments(args: [1], kwargs: ["to": "a@b"]),
            options: DispatchOptions(queue: "mail", maxRetries: 2, priority: 0), origin: "test")
        #expect(result.queue == "mail")
        #expect(result.duplicateOf == nil)
        #expect(result.dueAtMilliseconds == nil)
        let ready = try await f.list(f.keys.ready("mail"))
        let envelope = try Envelope.decode(try #require(ready.first))
        #expect(envelope.id == result.id)
        #expect(UUID(uuidString: result.id) != nil)
        #expect(envelope.task == "send.mail")
        #expect(envelope.args == [1])
        #expect(envelope.kwargs == ["to": "a@b"])
        #expect(envelope.maxRetries == 2)
        #expect(envelope.origin == "test")
        #expect(try await f.admin.queueNames() == ["mail"])

        let delayed = try await f.admin.enqueue(task: "later", options: DispatchOptions(countdown: .seconds(60)))
        #expect(delayed.queue == "default")
        #expect((delayed.dueAtMilliseconds ?? 0) > epochMilliseconds() + 50_000)
        #expect(try await f.command("ZCARD", f.keys.delayed("default")).int == 1)
    }

    @Test func aReusedIdempotencyKeyReportsTheFirstJob() async throws {
        let f = try await AdminFixture.make("control-idem")
        let first = try await f.admin.enqueue(task: "t", options: DispatchOptions(idempotencyKey: "k"))
        let second = try await f.admin.enqueue(task: "t", options: DispatchOptions(idempotencyKey: "k"))
        #expect(first.duplicateOf == nil)
        #expect(second.duplicateOf == first.id)
        #expect(second.id != first.id)
        #expect(try await f.list(f.keys.ready("default")).count == 1)
    }

    /// Workers stop taking from a paused queue within a second and resume as fast.
    @Test func aRunningWorkerHonoursPauseAndResume() async throws {
        let f = try await AdminFixture.make("control-worker")
        try await f.admin.pause("q", create: true)
        var configuration = WorkerSetup(redis: try RedisConfiguration(url: f.url))
        configuration.namespace = f.namespace
        configuration.queues = ["q"]
        configuration.concurrency = 2
        let worker = Worker(configuration: configuration, registry: TaskRegistry(), logger: Kit.quiet)
        let running = Task { try await worker.run() }
        defer { worker.shutdown() }
        #expect(try await Kit.eventually { try await f.admin.statsSample().workers.alive == 1 })

        func processed() async throws -> Int { try await f.admin.statsSample()[queue: "q"]?.counters.processed ?? 0 }
        for _ in 0..<3 { _ = try await f.admin.enqueue(task: "airlock.ping", options: DispatchOptions(queue: "q")) }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await processed() == 0)
        #expect(try await f.admin.statsSample()[queue: "q"]?.ready == 3)

        try await f.admin.resume("q")
        #expect(try await Kit.eventually(within: .seconds(30)) { try await processed() == 3 })

        // Paused while idle (fetcher blocked waiting for work): after a second, new jobs stay put.
        try await f.admin.pause("q")
        try await Task.sleep(for: .milliseconds(1000))
        _ = try await f.admin.enqueue(task: "airlock.ping", options: DispatchOptions(queue: "q"))
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await processed() == 3)
        try await f.admin.resume("q")
        #expect(try await Kit.eventually(within: .seconds(5)) { try await processed() == 4 })

        worker.shutdown()
        try await running.value
    }
}
