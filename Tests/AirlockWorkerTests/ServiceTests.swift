import Airlock
import AirlockWorker
import Logging
import ServiceLifecycle
import Testing

/// The worker as a swift-service-lifecycle `Service`, inside a `ServiceGroup` beside other services.
@Suite("Worker as a Service")
struct ServiceTests {
    /// Another service of the application (a web server, say): runs until graceful shutdown.
    struct IdleService: Service {
        func run() async throws {
            try await gracefulShutdown()
        }
    }

    @Test func aGroupsGracefulShutdownStopsTheWorkerTheWayShutdownDoes() async throws {
        let queues = InMemoryQueues()
        let gate = EngineGate()
        let probe = EngineProbe()
        var registry = TaskRegistry()
        registry.register("mark") { arguments, _ in
            try await gate.wait()
            probe.record(arguments.kwargs["token"]?.stringValue ?? "?")
        }
        try await Engine.enqueue(queues, (1...4).map { ("mark", ["token": .string("t\($0)")]) })
        let worker = Worker(source: queues.makeSource(), configuration: Engine.configuration(concurrency: 1, prefetch: 3), registry: registry, logger: Engine.quiet)
        let group = ServiceGroup(services: [worker, IdleService()], gracefulShutdownSignals: [], logger: Engine.quiet)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Engine.eventually("one running, three prefetched") { gate.waiting == 1 && queues.heldCount == 4 }
            await group.triggerGracefulShutdown()
            try await Engine.eventually("the unstarted jobs are back") { queues.ready("default").count == 3 }
            gate.open()
            try await tasks.next()   // the group returns once both services did
        }
        #expect(probe.events == ["t1"], "the running task finished; nothing else started")
        #expect(queues.heldCount == 0)
        #expect(queues.workers.isEmpty, "it deregistered")
    }

    @Test func cancellingTheTaskThatRunsTheWorkerStopsItCleanly() async throws {
        let queues = InMemoryQueues()
        let worker = Worker(source: queues.makeSource(), configuration: Engine.configuration(), registry: TaskRegistry(), logger: Engine.quiet)
        let run = Task { try await worker.run() }
        try await Engine.eventually("registered") { queues.workers.contains(worker.id) }
        run.cancel()
        try await run.value
        #expect(queues.workers.isEmpty)
    }
}
