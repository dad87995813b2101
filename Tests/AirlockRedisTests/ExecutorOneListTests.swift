import Airlock
@testable import AirlockRedis
import AirlockRedisClient
import AirlockTestSupport
import AirlockWorker
import Foundation
import Testing

/// A flush of ready jobs to one end of one queue is written as one variadic `LPUSH`/`RPUSH`, not
/// through the enqueue script: the same list afterwards, the same refusals, the same outcomes.
@Suite("RedisExecutor one-list flushes", .timeLimit(.minutes(5)))
struct ExecutorOneListTests {
    typealias Kit = ExecutorTestKit

    /// The flush shapes that take the push (`back`, `front`) and one that does not (`mixed`).
    enum Shape: String, CaseIterable, Sendable {
        case back, front, mixed

        /// The options of the intent at `index` on queue `q`: plain, with a priority, or, for the
        /// third of `mixed`, delayed.
        func options(_ index: Int) -> DispatchOptions {
            switch self {
            case .back: DispatchOptions(queue: "q")
            case .front: DispatchOptions(queue: "q", priority: 3)
            case .mixed: DispatchOptions(queue: "q", countdown: index == 2 ? .seconds(60) : nil)
            }
        }

        /// Five intents enqueued in the current scope.
        func enqueue() throws -> [Intent] {
            try (0..<5).map { try Airlock.enqueue(name: "\(rawValue).\($0)", args: [.int($0)], options: options($0)) }
        }

        /// The same five intents, made outside any scope.
        func intents() -> [Intent] {
            (0..<5).map { Intent(taskName: "\(rawValue).\($0)", payload: .dynamic(TaskArguments(args: [.int($0)])), options: options($0)) }
        }
    }

    @Test func aOneListFlushIsOnePushAndNoScript() async throws {
        // A dedicated server, so nobody else's commands show up in the statistics.
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("one-push", server: server)
        try await fixture.flush { _ = try Shape.back.enqueue() }
        var calls = ExecutorAtomicityTests.commandCalls(try #require(try await fixture.command("INFO", "commandstats").string))
        #expect(calls["lpush"] == 1 && calls["evalsha"] == nil && calls["eval"] == nil && calls["script|load"] == nil, "\(calls)")
        try await fixture.command("CONFIG", "RESETSTAT")
        try await fixture.flush { _ = try Shape.front.enqueue() }
        calls = ExecutorAtomicityTests.commandCalls(try #require(try await fixture.command("INFO", "commandstats").string))
        #expect(calls["rpush"] == 1 && calls["lpush"] == nil && calls["evalsha"] == nil, "\(calls)")
        try await fixture.command("CONFIG", "RESETSTAT")
        try await fixture.flush { _ = try Shape.mixed.enqueue() }
        calls = ExecutorAtomicityTests.commandCalls(try #require(try await fixture.command("INFO", "commandstats").string))
        #expect(calls["evalsha"] != nil, "a flush with a delayed job still takes the script: \(calls)")
        #expect(try await fixture.queueNames() == ["q"], "the push registers its queue as the script path does")
    }

    /// The same encoded jobs, written by the push into one namespace and by the enqueue script into
    /// another: byte for byte the same ready list, in the same order, and the same outcomes.
    @Test(arguments: [Shape.back, .front])
    func aOneListFlushLandsAsTheScriptWouldLandIt(_ shape: Shape) async throws {
        let pushed = try await ExecutorFixture.make("one-same-push")
        let scripted = try await ExecutorFixture.make("one-same-script")
        let now = Date()
        let intents = shape.intents()
        // Queue 'q' is written literally into each envelope, so both namespaces get identical bytes.
        let jobs = try intents.map { try pushed.executor.job(for: $0, now: now, trace: nil) }
        #expect(jobs.map(\.bytes) == (try intents.map { try scripted.executor.job(for: $0, now: now, trace: nil).bytes }))
        // Three prior jobs, so the order against a backlog shows too.
        for fixture in [pushed, scripted] {
            try await fixture.command("RPUSH", fixture.keys.ready("q"), "old-1", "old-2", "old-3")
        }
        let outcomes = try await pushed.executor.enqueue(jobs: jobs, deduplicatingByJobID: false)
        let call = scripted.executor.enqueueCall(jobs, deduplicatingByJobID: false, idempotencyTTLMilliseconds: 60_000, header: .none).call
        let reply = try await scripted.executor.client.evaluate([call])[0].throwingServerError()
        #expect(outcomes == Array(repeating: .queued, count: jobs.count))
        #expect(reply.array?.map(\.string) == Array(repeating: "", count: jobs.count), "\(reply)")
        let list = try await pushed.ready("q")
        #expect(list == (try await scripted.ready("q")))
        #expect(list.count == 8)
        // Workers take from the right: plain jobs go in behind the backlog, the flush's first
        // taken first; prioritised ones ahead of the backlog.
        let backlog = ["old-1", "old-2", "old-3"].map { Array($0.utf8) }
        #expect(list == (shape == .back ? jobs.map(\.bytes).reversed() + backlog : backlog + jobs.map(\.bytes)))
    }

    @Test func aOneListFlushOntoAKeyOfAnotherTypeIsRefusedInTheScriptsWordsAndWritesNothing() async throws {
        let fixture = try await ExecutorFixture.make("one-wrongtype")
        let badKey = fixture.keys.ready("q")
        try await fixture.command("SET", badKey, "x")
        let scope = try Scope(policy: AllowAll(), executor: fixture.executor, behavior: DefaultScopeBehavior())
        let failure = await Kit.dispatchFailure { try await Airlock.scope(scope) { _ = try Shape.back.enqueue() } }
        if let (error, underlying) = failure {
            #expect(error.dispatched.isEmpty)
            #expect(error.notDispatched.map(\.id) == scope.intents.map(\.id))
            #expect(underlying.kind == .notWritten, "\(underlying)")
            #expect(underlying.redisError?.serverErrorCode == "WRONGTYPE", "\(underlying)")
            #expect(underlying.description.contains(badKey) && underlying.description.contains("nothing was enqueued"), "\(underlying)")
        }
        #expect(try await fixture.allKeys() == [badKey], "only the poisoned key may exist")
        #expect(try await fixture.command("GET", badKey) == .bulk(Array("x".utf8)))
    }

    @Test func aOneListFlushRefusedForWantOfMemoryWritesNothingAndTheNextGoesThrough() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("one-oom", server: server)
        try await fixture.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        try await fixture.command("CONFIG", "SET", "maxmemory", "1")
        let failure = await Kit.dispatchFailure { try await fixture.flush { _ = try Shape.back.enqueue() } }
        if let (error, underlying) = failure {
            #expect(error.notDispatched.count == 5 && error.dispatched.isEmpty)
            #expect(underlying.kind == .notWritten, "\(underlying)")
            #expect(underlying.redisError?.serverErrorCode == "OOM", "\(underlying)")
        }
        #expect(try await fixture.command("DBSIZE") == .integer(0))
        try await fixture.command("CONFIG", "SET", "maxmemory", "0")
        try await fixture.flush { _ = try Shape.back.enqueue() }
        #expect(try await fixture.readyEnvelopes("q").map(\.task) == ["back.4", "back.3", "back.2", "back.1", "back.0"])
    }

    /// `WAIT 1` with no replica attached: written to the primary, reported dispatched but not
    /// replicated, whichever path wrote it.
    @Test(arguments: Shape.allCases)
    func aFlushNoReplicaAcknowledgedIsDispatchedButNotReplicated(_ shape: Shape) async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("one-norepl-\(shape)", server: server)
        let executor = RedisExecutor(client: fixture.executor.client, namespace: fixture.namespace,
                                     replication: RedisReplication(replicas: 1, timeout: .milliseconds(20)), logger: Kit.quiet)
        let scope = try Scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior())
        let failure = await Kit.dispatchFailure { try await Airlock.scope(scope) { _ = try shape.enqueue() } }
        if let (error, underlying) = failure {
            #expect(error.dispatched.map(\.id) == scope.intents.map(\.id) && error.notDispatched.isEmpty)
            #expect(underlying.kind == .notReplicated, "\(underlying)")
            #expect(underlying.replicasAcknowledged == 0, "\(underlying)")
        }
        let ready = try await fixture.readyEnvelopes("q").count
        let delayed = try await fixture.delayed("q").count
        #expect(ready + delayed == 5, "every job is on the primary")
    }
}
