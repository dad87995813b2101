import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// An idempotency key already used on a queue makes a second intent with it a no-op.
@Suite("RedisExecutor idempotency keys", .timeLimit(.minutes(5)))
struct ExecutorIdempotencyTests {
    typealias Kit = ExecutorTestKit

    static func intent(_ task: String, key: String?, queue: String? = nil, countdown: Duration? = nil) -> Intent {
        Intent(taskName: task, payload: .dynamic(TaskArguments(args: [.string(task)])),
               options: DispatchOptions(queue: queue, countdown: countdown, idempotencyKey: key))
    }

    @Test func sameKeyTwiceInOneBatchQueuesOnlyTheFirst() async throws {
        let fixture = try await ExecutorFixture.make("idem-batch")
        let first = Self.intent("first", key: "order-1")
        let second = Self.intent("second", key: "order-1")
        let other = Self.intent("other", key: "order-2")
        let plain = Self.intent("plain", key: nil)
        let outcomes = try await fixture.executor.enqueue([first, second, other, plain])
        #expect(outcomes == [.queued, .duplicate(existingJobID: Kit.wireID(first)), .queued, .queued])
        #expect(try await fixture.readyEnvelopes("default").map(\.task).reversed() == ["first", "other", "plain"])
        #expect(try await fixture.command("GET", fixture.keys.idempotency("default", key: "order-1")).string == Kit.wireID(first))
        #expect(try await fixture.command("GET", fixture.keys.idempotency("default", key: "order-2")).string == Kit.wireID(other))
    }

    @Test func sameKeyTwiceInOneScopeQueuesOnlyTheFirst() async throws {
        let fixture = try await ExecutorFixture.make("idem-scope")
        let options = DispatchOptions(idempotencyKey: "charge-9")
        let first = try await fixture.flush {
            let first = try Airlock.enqueue(name: "charge", args: [1], options: options)
            try Airlock.enqueue(name: "charge", args: [2], options: options)
            return first
        }
        let stored = try await fixture.readyEnvelopes("default")
        #expect(stored.map(\.id) == [Kit.wireID(first)])
        #expect(stored.first?.args == [1])
        #expect(stored.first?.idempotencyKey == "charge-9")
    }

    @Test func sameKeyAcrossBatchesReportsTheFirstJob() async throws {
        let fixture = try await ExecutorFixture.make("idem-across")
        let first = try await fixture.flush {
            try Airlock.enqueue(name: "send.receipt", args: [1], options: DispatchOptions(idempotencyKey: "receipt-1"))
        }
        // A second scope (say, a retried HTTP request) enqueues the same logical job.
        try await fixture.flush {
            try Airlock.enqueue(name: "send.receipt", args: [1], options: DispatchOptions(idempotencyKey: "receipt-1"))
        }
        let third = Self.intent("send.receipt", key: "receipt-1")
        #expect(try await fixture.executor.enqueue([third]) == [.duplicate(existingJobID: Kit.wireID(first))])
        #expect(try await fixture.readyEnvelopes("default").map(\.id) == [Kit.wireID(first)])
    }

    @Test func duplicateOfADelayedJobIsNotQueuedEither() async throws {
        let fixture = try await ExecutorFixture.make("idem-delayed")
        let delayed = Self.intent("reminder", key: "remind-1", countdown: .seconds(300))
        let now = Self.intent("reminder", key: "remind-1")
        #expect(try await fixture.executor.enqueue([delayed]) == [.queued])
        #expect(try await fixture.executor.enqueue([now]) == [.duplicate(existingJobID: Kit.wireID(delayed))])
        #expect(try await fixture.ready("default").isEmpty)
        #expect(try await fixture.delayed("default").count == 1)
    }

    @Test func keysArePerQueue() async throws {
        let fixture = try await ExecutorFixture.make("idem-queues")
        let onA = Self.intent("a", key: "shared", queue: "qa")
        let onB = Self.intent("b", key: "shared", queue: "qb")
        let onDefault = Self.intent("c", key: "shared")
        #expect(try await fixture.executor.enqueue([onA, onB, onDefault]) == [.queued, .queued, .queued])
        #expect(try await fixture.readyEnvelopes("qa").map(\.task) == ["a"])
        #expect(try await fixture.readyEnvelopes("qb").map(\.task) == ["b"])
        #expect(try await fixture.readyEnvelopes("default").map(\.task) == ["c"])
        #expect(try await fixture.command("GET", fixture.keys.idempotency("qa", key: "shared")).string == Kit.wireID(onA))
        #expect(try await fixture.command("GET", fixture.keys.idempotency("qb", key: "shared")).string == Kit.wireID(onB))
        // …and on one queue, the key still blocks.
        #expect(try await fixture.executor.enqueue([Self.intent("a2", key: "shared", queue: "qa")]) == [.duplicate(existingJobID: Kit.wireID(onA))])
    }

    @Test func keyExpiresAfterTheDefaultDay() async throws {
        let fixture = try await ExecutorFixture.make("idem-ttl-default")
        _ = try await fixture.executor.enqueue([Self.intent("x", key: "day")])
        let ttl = try #require(try await fixture.command("PTTL", fixture.keys.idempotency("default", key: "day")).int)
        #expect(ttl > 24 * 3_600_000 - 60_000 && ttl <= 24 * 3_600_000, "PTTL \(ttl)")
    }

    @Test func afterTheTTLTheSameKeyQueuesAgain() async throws {
        let fixture = try await ExecutorFixture.make("idem-ttl", idempotencyTTL: .milliseconds(200))
        let first = Self.intent("once", key: "short")
        // In one batch the second intent is certainly within the TTL, however slow the machine.
        #expect(try await fixture.executor.enqueue([first, Self.intent("blocked", key: "short")])
            == [.queued, .duplicate(existingJobID: Kit.wireID(first))])
        let key = fixture.keys.idempotency("default", key: "short")
        let ttl = try #require(try await fixture.command("PTTL", key).int)
        // ≤ 200 ms left (or already gone, -2, on a very slow run); never -1 (no expiry).
        #expect(ttl <= 200 && ttl != -1 && ttl != 0, "PTTL \(ttl)")

        let expired = try await Kit.eventually(within: .seconds(5)) {
            try await fixture.command("EXISTS", key) == .integer(0)
        }
        try #require(expired, "the idempotency key did not expire within 5 s")
        let again = Self.intent("again", key: "short")
        #expect(try await fixture.executor.enqueue([again]) == [.queued])
        #expect(try await fixture.readyEnvelopes("default").map(\.task) == ["again", "once"])
        // The new job owns the key now (unless its 200 ms are already over on a slow run).
        let owner = try await fixture.command("GET", key)
        #expect(owner.isNull || owner.string == Kit.wireID(again), "\(owner)")
    }

    @Test func dispatchTreatsDuplicatesAsSuccess() async throws {
        let fixture = try await ExecutorFixture.make("idem-dispatch")
        let first = Self.intent("a", key: "k")
        try await fixture.executor.dispatch([first])
        try await fixture.executor.dispatch([Self.intent("b", key: "k")])   // no throw: a duplicate is not a failure
        #expect(try await fixture.readyEnvelopes("default").map(\.id) == [Kit.wireID(first)])
    }
}
