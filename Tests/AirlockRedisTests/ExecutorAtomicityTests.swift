import Airlock
@testable import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// One flush is one script: applied entirely, or not at all, whatever goes wrong.
@Suite("RedisExecutor all-or-nothing flushes", .timeLimit(.minutes(5)))
struct ExecutorAtomicityTests {
    typealias Kit = ExecutorTestKit

    /// 3 queues × (ready, priority, delayed) intents, enqueued in one scope.
    static func enqueueMixedBatch() throws -> [Intent] {
        var intents: [Intent] = []
        for (index, queue) in ["q1", "q2", "q3"].enumerated() {
            intents.append(try Airlock.enqueue(name: "ready.\(queue)", args: [.int(index)], options: DispatchOptions(queue: queue)))
            intents.append(try Airlock.enqueue(name: "ready2.\(queue)", options: DispatchOptions(queue: queue)))
            intents.append(try Airlock.enqueue(name: "prio.\(queue)", options: DispatchOptions(queue: queue, priority: 5)))
            intents.append(try Airlock.enqueue(name: "delayed.\(queue)", options: DispatchOptions(queue: queue, countdown: .seconds(60 + index))))
            intents.append(try Airlock.enqueue(name: "idem.\(queue)", options: DispatchOptions(queue: queue, idempotencyKey: "k-\(queue)")))
        }
        return intents
    }

    @Test func oneFlushSpanningThreeQueuesAndDelaysIsAppliedEntirely() async throws {
        let fixture = try await ExecutorFixture.make("atom-all")
        let intents = try await fixture.flush { try Self.enqueueMixedBatch() }
        #expect(intents.count == 15)
        for queue in ["q1", "q2", "q3"] {
            let ready = try await fixture.readyEnvelopes(queue)
            #expect(ready.map(\.task) == ["idem.\(queue)", "ready2.\(queue)", "ready.\(queue)", "prio.\(queue)"])
            #expect(try await fixture.delayed(queue).map { try Envelope.decode($0.bytes).task } == ["delayed.\(queue)"])
            #expect(try await fixture.command("GET", fixture.keys.idempotency(queue, key: "k-\(queue)")).string
                == Kit.wireID(intents.first { $0.taskName == "idem.\(queue)" }!))
        }
        #expect(try await fixture.queueNames() == ["q1", "q2", "q3"])
        var ids = Set<String>()
        for queue in ["q1", "q2", "q3"] {
            ids.formUnion(try await fixture.readyEnvelopes(queue).map(\.id))
            ids.formUnion(try await fixture.delayed(queue).map { try Envelope.decode($0.bytes).id })
        }
        #expect(ids == Set(intents.map(Kit.wireID)))
    }

    @Test func flushIsOneScriptCall() async throws {
        // A dedicated server, so nobody else's commands show up in the statistics.
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("atom-one", server: server)
        // The first flush on a fresh server loads the script (EVALSHA → NOSCRIPT, SCRIPT LOAD, EVALSHA) …
        try await fixture.flush { _ = try Self.enqueueMixedBatch() }
        let first = Self.commandCalls(try #require(try await fixture.command("INFO", "commandstats").string))
        #expect(first["evalsha"] == 2 && first["script|load"] == 1 && first["eval"] == nil, "\(first)")
        // … every later flush is exactly one EVALSHA, however many intents, queues and delays.
        try await fixture.command("CONFIG", "RESETSTAT")
        try await fixture.flush { _ = try Self.enqueueMixedBatch() }
        let calls = Self.commandCalls(try #require(try await fixture.command("INFO", "commandstats").string))
        #expect(calls["evalsha"] == 1, "\(calls)")
        #expect(calls["eval"] == nil, "\(calls)")
        #expect(calls["multi"] == nil && calls["exec"] == nil, "\(calls)")
    }

    static func commandCalls(_ info: String) -> [String: Int] {
        var calls: [String: Int] = [:]
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let name = line.dropFirst("cmdstat_".count).prefix { $0 != ":" }
            guard let range = line.range(of: "calls=") else { continue }
            calls[String(name)] = Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        return calls
    }

    // MARK: Wrong key types

    /// Pre-creates `badKey` as a string, flushes the mixed batch, and checks that it failed as a
    /// whole and that nothing but `badKey` exists afterwards.
    func expectNothingWritten(label: String, poison: (RedisKeys) -> String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let fixture = try await ExecutorFixture.make(label)
        let badKey = poison(fixture.keys)
        try await fixture.command("SET", badKey, "x")
        let scope = try Scope(policy: AllowAll(), executor: fixture.executor, behavior: DefaultScopeBehavior())
        let failure = await Kit.dispatchFailure(sourceLocation: sourceLocation) {
            try await Airlock.scope(scope) { _ = try Self.enqueueMixedBatch() }
        }
        if let (error, underlying) = failure {
            #expect(error.dispatched.isEmpty, sourceLocation: sourceLocation)
            #expect(error.notDispatched.map(\.id) == scope.intents.map(\.id), sourceLocation: sourceLocation)
            #expect(error.notDispatched.count == 15, sourceLocation: sourceLocation)
            #expect(underlying.kind == .notWritten, "\(underlying)", sourceLocation: sourceLocation)
            #expect(underlying.redisError?.serverErrorCode == "WRONGTYPE", "\(underlying)", sourceLocation: sourceLocation)
            #expect(underlying.description.contains(badKey), "the error names the key: \(underlying)", sourceLocation: sourceLocation)
        }
        #expect(try await fixture.allKeys() == [badKey], "only the poisoned key may exist", sourceLocation: sourceLocation)
        #expect(try await fixture.command("GET", badKey) == .bulk(Array("x".utf8)), sourceLocation: sourceLocation)
    }

    @Test func wrongTypeReadyListFailsTheWholeBatch() async throws {
        try await expectNothingWritten(label: "atom-ready") { $0.ready("q2") }
    }

    @Test func wrongTypeDelayedSetFailsTheWholeBatch() async throws {
        try await expectNothingWritten(label: "atom-delayed") { $0.delayed("q3") }
    }

    @Test func wrongTypeQueuesSetDoesNotBlockTheBatchNorGetClobbered() async throws {
        // `<ns>:queues` is an index for operators, registered outside the atomic script (so a
        // one-queue flush stays in one Cluster slot): a broken index must not stop dispatch, and
        // the executor must not overwrite what is there.
        let fixture = try await ExecutorFixture.make("atom-queues")
        try await fixture.command("SET", fixture.keys.queues, "x")
        let scope = try Scope(policy: AllowAll(), executor: fixture.executor, behavior: DefaultScopeBehavior())
        try await Airlock.scope(scope) { _ = try Self.enqueueMixedBatch() }
        #expect(scope.isFlushed)
        #expect(try await fixture.command("GET", fixture.keys.queues) == .bulk(Array("x".utf8)))
        #expect(try await fixture.allKeys().count > 1, "the batch was written")
    }

    @Test func wrongTypeIdempotencyKeyFailsTheWholeBatch() async throws {
        // The idempotency key of the 3rd queue's intent is a list: SET … GET on it fails inside
        // the script after earlier intents were written, unless its type is checked up front.
        let fixture = try await ExecutorFixture.make("atom-idem")
        let badKey = fixture.keys.idempotency("q3", key: "k-q3")
        try await fixture.command("RPUSH", badKey, "not-a-string")
        let failure = await Kit.dispatchFailure { try await fixture.flush { _ = try Self.enqueueMixedBatch() } }
        if let (error, underlying) = failure {
            #expect(error.notDispatched.count == 15)
            #expect(underlying.kind == .notWritten, "\(underlying)")
        }
        #expect(try await fixture.allKeys() == [badKey], "nothing of the batch may be written")
    }

    @Test func wrongTypeWakeListFailsTheWholeBatch() async throws {
        let fixture = try await ExecutorFixture.make("atom-wake")
        let badKey = fixture.keys.wake("q3")
        try await fixture.command("SET", badKey, "x")
        let failure = await Kit.dispatchFailure { try await fixture.flush { _ = try Self.enqueueMixedBatch() } }
        if let (error, underlying) = failure {
            #expect(error.notDispatched.count == 15)
            #expect(underlying.kind == .notWritten, "\(underlying)")
        }
        #expect(try await fixture.allKeys() == [badKey], "nothing of the batch may be written")
    }

    @Test func aFailedFlushLeavesTheExecutorUsable() async throws {
        let fixture = try await ExecutorFixture.make("atom-after")
        try await fixture.command("SET", fixture.keys.ready("q2"), "x")
        _ = await Kit.dispatchFailure { try await fixture.flush { _ = try Self.enqueueMixedBatch() } }
        try await fixture.command("DEL", fixture.keys.ready("q2"))
        let intents = try await fixture.flush { try Self.enqueueMixedBatch() }
        #expect(try await fixture.readyEnvelopes("q2").count == 4)
        #expect(intents.count == 15)
    }

    // MARK: Redis refusing writes

    @Test func outOfMemoryRefusesTheBatchAndRecovers() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("atom-oom", server: server)
        try await fixture.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        try await fixture.command("CONFIG", "SET", "maxmemory", "1")

        let failure = await Kit.dispatchFailure { try await fixture.flush { _ = try Self.enqueueMixedBatch() } }
        if let (error, underlying) = failure {
            #expect(error.notDispatched.count == 15)
            #expect(error.dispatched.isEmpty)
            #expect(underlying.kind == .notWritten, "\(underlying)")
            #expect(underlying.redisError?.serverErrorCode == "OOM", "\(underlying)")
        }
        #expect(try await fixture.command("DBSIZE") == .integer(0))

        try await fixture.command("CONFIG", "SET", "maxmemory", "0")
        let intents = try await fixture.flush { try Self.enqueueMixedBatch() }
        #expect(try await fixture.readyEnvelopes("q1").count == 4)
        #expect(intents.count == 15)
    }

    @Test func missingReplicasRefuseTheBatchAndRecover() async throws {
        let server = try await RedisServer.start()
        let fixture = try await ExecutorFixture.make("atom-norepl", server: server)
        try await fixture.command("CONFIG", "SET", "min-replicas-to-write", "1")

        let failure = await Kit.dispatchFailure { try await fixture.flush { _ = try Self.enqueueMixedBatch() } }
        if let (error, underlying) = failure {
            #expect(error.notDispatched.count == 15)
            #expect(underlying.kind == .notWritten, "\(underlying)")
            #expect(underlying.redisError?.serverErrorCode == "NOREPLICAS", "\(underlying)")
        }
        #expect(try await fixture.command("DBSIZE") == .integer(0))

        try await fixture.command("CONFIG", "SET", "min-replicas-to-write", "0")
        try await fixture.flush { _ = try Self.enqueueMixedBatch() }
        #expect(try await fixture.readyEnvelopes("q3").count == 4)
    }

    // MARK: Redis unreachable

    @Test func unreachableRedisIsATypedNotWrittenError() async throws {
        let port = try Kit.deadPort()
        var configuration = RedisConfiguration(port: port)
        configuration.connectTimeout = .seconds(1)
        let executor = RedisExecutor(client: RedisClient(configuration: configuration, logger: Kit.quiet), namespace: "t-unreachable", logger: Kit.quiet)
        let scope = try Scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior())
        let failure = await Kit.dispatchFailure {
            try await Airlock.scope(scope) {
                try Airlock.enqueue(name: "mail.send", args: ["ada@example.com"])
                try Airlock.enqueue(ExecutorOrderPlaced(orderID: 7, customer: "c", total: 1, tags: [], gift: true), options: DispatchOptions(countdown: .seconds(5)))
            }
        }
        let (error, underlying) = try #require(failure)
        #expect(scope.isFlushed)
        #expect(error.dispatched.isEmpty)
        #expect(error.notDispatched.map(\.id) == scope.intents.map(\.id))
        #expect(underlying.kind == .notWritten, "\(underlying)")
        #expect(underlying.redisError?.kind == .connectionRefused, "\(underlying)")
        #expect(error.description.contains("mail.send"), "\(error)")
        #expect(error.description.contains("orders.placed"), "\(error)")
        #expect(error.description.contains("\(port)"), "the description says where Redis was expected: \(error)")
    }

    @Test func unreachableRedisThroughEnqueueThrowsToo() async throws {
        let executor = try Kit.executor(url: "redis://127.0.0.1:\(try Kit.deadPort())/0", namespace: "t-unreachable2")
        let intent = Intent(taskName: "x", payload: .dynamic(TaskArguments()))
        do {
            _ = try await executor.enqueue([intent])
            Issue.record("enqueue succeeded against a dead port")
        } catch let error as DispatchError {
            #expect(error.notDispatched.map(\.id) == [intent.id])
            #expect((error.underlying as? RedisExecutorError)?.kind == .notWritten)
        }
    }

    // MARK: Encoding failures

    @Test func unencodableTypedTaskFailsTheWholeBatchBeforeSending() async throws {
        let fixture = try await ExecutorFixture.make("atom-encode")
        let failure = await Kit.dispatchFailure {
            try await fixture.flush {
                try Airlock.enqueue(name: "fine")
                try Airlock.enqueue(ExecutorUnencodableTask.nan)
            }
        }
        if let (error, underlying) = failure {
            #expect(underlying.kind == .encodingFailed, "\(underlying)")
            #expect(underlying.description.contains("unencodable.task"), "\(underlying)")
            #expect(error.notDispatched.count == 2)
        }
        #expect(try await fixture.allKeys() == [])
    }

    @Test func typedTaskThatIsNotAnObjectIsRejectedNotSentAsBrokenKwargs() async throws {
        // A task encoding as a bare value would put `"kwargs":5` on the wire: an envelope every
        // worker rejects. It must fail at flush, like TaskArguments(encoding:) does.
        let fixture = try await ExecutorFixture.make("atom-scalar")
        let failure = await Kit.dispatchFailure {
            try await fixture.flush { try Airlock.enqueue(ExecutorScalarTask(value: 5)) }
        }
        if let (error, underlying) = failure {
            #expect(underlying.kind == .encodingFailed, "\(underlying)")
            #expect(error.notDispatched.count == 1)
        }
        let stored = try await fixture.ready("default").map { String(decoding: $0, as: UTF8.self) }
        #expect(stored.isEmpty, "an envelope no worker can decode was queued: \(stored)")
    }
}
