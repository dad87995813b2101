import Airlock
import AirlockRedis
import AirlockVapor
import Synchronization
import Testing
import Vapor
import VaporTesting

/// `app.airlock.useRedis` and `app.airlock.runWorker`: what the lifecycle handlers start and stop.
@Suite("app.airlock lifecycle", .timeLimit(.minutes(2)))
struct WorkerLifecycleTests {
    /// A dependency the application owns; the task reaches it through its registration closure.
    final class Ledger: Sendable {
        private let state = Mutex<[String]>([])
        private let stream: AsyncStream<String>
        private let continuation: AsyncStream<String>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream(of: String.self) }
        var entries: [String] { state.withLock { $0 } }
        func record(_ entry: String) {
            state.withLock { $0.append(entry) }
            continuation.yield(entry)
        }
        func next() async throws -> String {
            for await entry in stream { return entry }
            throw TestFailure("the ledger's stream ended")
        }
    }

    @Test("a task registered with a closure uses the dependency it captured and the application it runs in")
    func taskUsesInjectedDependency() async throws {
        let harness = try await Harness.make()
        let ledger = Ledger()
        try await harness.withBareApp({ app in
            try app.airlock.useRedis(url: harness.servers.redisURL, namespace: harness.namespace, global: false)
            app.middleware.use(AirlockMiddleware())
            var tasks = TaskRegistry()
            tasks.register("ledger.record") { arguments, context in
                guard let entry = arguments.kwargs["entry"]?.stringValue else { throw PermanentFailure("no entry") }
                ledger.record("\(entry) in \(app.environment.name) at attempt \(context.attempt)")
            }
            try app.airlock.runWorker(tasks: tasks) { $0.prefetch = 0 }
            app.post("t", "record", ":entry") { req async throws -> HTTPStatus in
                try Airlock.enqueue(name: "ledger.record", kwargs: ["entry": .string(try #require(req.parameters.get("entry")))])
                return .accepted
            }
        }) { app in
            try await app.testing(method: live).test(.POST, "t/record/first") { #expect($0.status == .accepted) }
            #expect(try await ledger.next() == "first in testing at attempt 0")
        }
        #expect(ledger.entries == ["first in testing at attempt 0"])
    }

    @Test("the worker starts at boot, in the namespace and default queue given to useRedis, and stops at shutdown")
    func workerFollowsTheApplication() async throws {
        let harness = try await Harness.make()
        let worker = try await harness.withBareApp({ app in
            try app.airlock.useRedis(url: harness.servers.redisURL, namespace: harness.namespace, defaultQueue: "mail", global: false)
            #expect(app.airlock.redis?.keys.namespace == harness.namespace)
            #expect(app.airlock.executor is RedisExecutor)
        }) { app in
            let worker = try app.airlock.runWorker(tasks: TaskRegistry()) { $0.concurrency = 1 }
            #expect(worker.namespace == harness.namespace)
            #expect(worker.configuration.queues == ["mail"])
            #expect(!worker.isRunning)
            try await app.asyncBoot()
            #expect(worker.isRunning)
            return worker
        }
        #expect(!worker.isRunning)
        #expect(worker.failure == nil)
    }

    @Test("useRedis's connection is closed when the application shuts down")
    func redisConnectionClosedAtShutdown() async throws {
        let harness = try await Harness.make()
        let executor = try await harness.withBareApp({ app in
            try app.airlock.useRedis(url: harness.servers.redisURL, namespace: harness.namespace, global: false)
        }) { app in
            let executor = try #require(app.airlock.redis)
            #expect(try await executor.client.send("PING").string == "PONG")
            return executor
        }
        await #expect(throws: RedisError.self) { try await executor.client.send("PING") }
    }

    @Test("runWorker without a Redis server says what to do")
    func runWorkerNeedsRedis() async throws {
        let harness = try await Harness.make()
        try await harness.withBareApp({ _ in }) { app in
            let error = #expect(throws: EmbeddedWorkerError.self) { try app.airlock.runWorker(tasks: TaskRegistry()) }
            #expect(error?.description.contains("call app.airlock.useRedis(url:) first") == true)
        }
    }
}
