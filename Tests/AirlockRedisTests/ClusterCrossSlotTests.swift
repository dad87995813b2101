import Airlock
@_spi(Testing) import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// A flush to queues in different hash slots of a real Redis Cluster (three primaries, three
/// replicas): the commit-record protocol of docs/PROTOCOL.md ("A flush across slots"). Each scope
/// must end up with all of its jobs queued, exactly once, or none — checked by job token after a
/// producer crash injected between every pair of steps, a worker crash while completing, and a
/// primary killed mid-flush.
@Suite("Redis Cluster: flushes across hash slots stay all-or-nothing", .serialized, .timeLimit(.minutes(5)))
struct ClusterCrossSlotTests {
    /// Queue names whose slots are owned by `count` different primaries, with the owners' ports.
    static func queuesOnDistinctPrimaries(_ cluster: RedisClusterNodes, keys: RedisKeys, count: Int) async throws -> [(queue: String, port: Int)] {
        var chosen: [(queue: String, port: Int)] = []
        for index in 0..<200 where chosen.count < count {
            let queue = "x\(index)"
            let owner = try await cluster.primary(ofSlot: RedisHashSlot.of(keys.ready(queue))).port
            if !chosen.contains(where: { $0.port == owner }) { chosen.append((queue, owner)) }
        }
        try #require(chosen.count == count, "queues on \(count) primaries: \(chosen)")
        return chosen
    }

    /// One scope's intents: two per queue, one of them with an idempotency key, a priority or a
    /// short countdown, so every placement and field travels through the record.
    static func record(_ token: String, _ options: DispatchOptions) -> Intent {
        Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": .string(token)])), options: options)
    }

    static func intents(scope: String, queues: [String]) -> [Intent] {
        var intents: [Intent] = []
        for (index, queue) in queues.enumerated() {
            let special: DispatchOptions = switch index % 3 {
            case 0: DispatchOptions(queue: queue, idempotencyKey: "idem-\(scope)")
            case 1: DispatchOptions(queue: queue, priority: 5)
            default: DispatchOptions(queue: queue, countdown: .milliseconds(300))
            }
            intents.append(record("\(scope)-\(queue)-a", DispatchOptions(queue: queue)))
            intents.append(record("\(scope)-\(queue)-b", special))
        }
        return intents
    }

    /// Jobs waiting on `queue` (ready and delayed).
    static func waiting(_ harness: WorkerHarness, _ queue: String) async throws -> Int {
        try await harness.readyCount(queue) + (harness.redis.send("ZCARD", harness.keys.delayed(queue)).int ?? -1)
    }

    /// Cross-slot keys left on any primary (records, the index, delivery markers).
    static func leftovers(_ cluster: RedisClusterNodes, namespace: String) async throws -> [String] {
        var found: [String] = []
        for primary in try await cluster.primaries() {
            for pattern in ["\(namespace):*flushed:*", "\(namespace):*:flush:*", "\(namespace):*:flushes"] {
                let text = try await cluster.cli(primary.port, "--scan", "--pattern", pattern)
                found += text.split(separator: "\n").map(String.init)
            }
        }
        return found
    }

    @Test func aFlushAcrossThreePrimariesIsQueuedWholeAndLeavesNoRecord() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cross-slot", url: cluster.url)
        let queues = try await Self.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3).map(\.queue)
        let outcomes = try await harness.executor.enqueue(Self.intents(scope: "s", queues: queues))
        #expect(outcomes == Array(repeating: .queued, count: 6))
        for queue in queues { #expect(try await Self.waiting(harness, queue) == 2, "\(queue)") }
        #expect(try await Self.leftovers(cluster, namespace: harness.namespace) == [], "record, index and markers removed")

        // Outcomes per job across slots: the reused idempotency key is reported with the first job's id.
        let first = try #require(try await harness.list(harness.keys.ready(queues[0])).compactMap { try? WorkerKit.object($0) }
            .first { $0["idempotency_key"]?.stringValue == "idem-s" }?["id"]?.stringValue)
        let again = try await harness.executor.enqueue([
            Self.record("again-0", DispatchOptions(queue: queues[0], idempotencyKey: "idem-s")),
            Self.record("again-1", DispatchOptions(queue: queues[1])),
        ])
        #expect(again == [.duplicate(existingJobID: first), .queued])

        try await harness.withWorker(try harness.configuration(queues: queues)) { _ in
            try await WorkerKit.eventually("seven jobs ran", timeout: .seconds(60)) { try await harness.recorded().count >= 7 }
        }
        let expected = queues.flatMap { ["s-\($0)-a", "s-\($0)-b"] } + ["again-1"]
        #expect(try await harness.recorded().sorted() == expected.sorted())
    }

    /// Steps of a flush over three slots: 1 the record, 2–4 each slot's jobs, 5 the record's
    /// removal. A scope stopped after step s for s in 0…4, then a worker: scope 0 (nothing
    /// written) runs none of its jobs, every other scope all of them, once.
    @Test func aProducerCrashBetweenAnyTwoStepsEndsWithAllOrNoneOfTheScope() async throws {
        let cluster = try await RedisClusterNodes.start()
        var harness = try await WorkerHarness.make("cross-slot-crash", url: cluster.url)
        harness.executor.abandonedFlushDelay = .zero
        let queues = try await Self.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3).map(\.queue)
        var expectedWaiting = [String: Int]()
        for step in 0...4 {
            let slots = try await harness.executor.enqueueAcrossSlots(Self.intents(scope: "crash\(step)", queues: queues), stoppingAfterStep: step)
            #expect(slots == 3)
            // Up to the crash, exactly the slots delivered so far hold the scope's jobs.
            for (index, queue) in queues.enumerated() where step >= 2 + index { expectedWaiting[queue, default: 0] += 2 }
            for queue in queues {
                #expect(try await Self.waiting(harness, queue) == expectedWaiting[queue, default: 0], "after step \(step), \(queue)")
            }
            #expect(try await harness.redis.send("ZCARD", harness.keys.flushes).int == (step == 0 ? 0 : step), "records left after step \(step)")
        }

        // A worker dies while completing them: it delivered one slot of the first record.
        let recoverer = harness.executor
        #expect(try await recoverer.completeAbandonedFlushes(stoppingAfterGroups: 1) == 0)
        // Its lease has run out (the due scores set back to now, as 30 s later).
        for id in try await harness.redis.send("ZRANGE", harness.keys.flushes, "0", "-1").strings() {
            _ = try await harness.redis.send("ZADD", harness.keys.flushes, "0", id)
        }
        // A record that is not one (hostile text in it) is left for an operator and does not stop the rest.
        let hostile = "bad\u{1b}[31m"
        _ = try await harness.redis.send("RPUSH", harness.keys.flushRecord(hostile), "not a record\u{1b}[2J")
        _ = try await harness.redis.send("ZADD", harness.keys.flushes, "0", hostile)

        try await harness.withWorker(try harness.configuration(queues: queues)) { _ in
            // Every record but the unreadable one finished (so every delivery is done), nothing
            // left waiting: a job delivered twice would have been run or be waiting by then.
            try await WorkerKit.eventually("every committed scope ran", timeout: .seconds(60)) {
                guard try await harness.recorded().count >= 4 * 6, try await harness.redis.send("ZCARD", harness.keys.flushes).int == 1 else { return false }
                for queue in queues where try await Self.waiting(harness, queue) != 0 { return false }
                return true
            }
        }
        let recorded = try await harness.recorded()
        for step in 0...4 {
            let scope = recorded.filter { $0.hasPrefix("crash\(step)-") }
            let expected = step == 0 ? [] : queues.flatMap { ["crash\(step)-\($0)-a", "crash\(step)-\($0)-b"] }
            #expect(scope.sorted() == expected.sorted(), "scope stopped after step \(step): \(scope)")
        }
        #expect(recorded.count == 24, "each job once: \(recorded.count)")
        // Only the unreadable record is left, untouched.
        #expect(try await harness.redis.send("ZRANGE", harness.keys.flushes, "0", "-1").strings() == [hostile])
        #expect(try await harness.redis.send("LLEN", harness.keys.flushRecord(hostile)).int == 1)
        let left = try await Self.leftovers(cluster, namespace: harness.namespace)
        #expect(left.allSatisfy { !$0.contains(":flush:") || $0.hasSuffix(hostile) }, "\(left)")
    }

    /// The primary of one of the flush's slots is killed just before the flush: the record is
    /// written (the commit point), that slot's jobs cannot be; the flush is reported dispatched
    /// with `.deliveryPending`, and once the replica has taken over a worker delivers the rest.
    @Test func aPrimaryKilledMidFlushLeavesACommittedFlushThatAWorkerCompletes() async throws {
        let cluster = try await RedisClusterNodes.start()
        var harness = try await WorkerHarness.make("cross-slot-kill", url: cluster.url)
        harness.executor.abandonedFlushDelay = .zero
        let fleetOwner = try await cluster.primary(ofSlot: RedisHashSlot.of(harness.keys.flushes)).port
        let chosen = try await Self.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3)
        let victim = try #require(chosen.first { $0.port != fleetOwner })
        let queues = chosen.map(\.queue)
        _ = try await harness.executor.enqueue([Self.record("warm", DispatchOptions(queue: victim.queue))])
        // The replica has it before the kill, so the failover loses nothing this test counts.
        #expect(try await cluster.cli(victim.port, "wait", "1", "10000") == "1")
        try #require(cluster.nodes.first { $0.port == victim.port }).kill9()

        let failure = await #expect(throws: DispatchError.self) {
            try await harness.executor.dispatch(Self.intents(scope: "kill", queues: queues))
        }
        let underlying = try #require(failure?.underlying as? RedisExecutorError, "\(String(describing: failure))")
        #expect(underlying.kind == .deliveryPending, "\(underlying)")
        #expect(failure?.dispatched.count == 6, "committed: every intent counts as dispatched")
        #expect(failure?.notDispatched.isEmpty == true)

        try await harness.withWorker(try harness.configuration(queues: queues)) { _ in
            try await WorkerKit.eventually("the replica took over and the flush was completed", timeout: .seconds(90)) {
                try await harness.recorded().count >= 7
            }
        }
        let expected = ["warm"] + queues.flatMap { ["kill-\($0)-a", "kill-\($0)-b"] }
        #expect(try await harness.recorded().sorted() == expected.sorted())
        #expect(try await harness.redis.send("ZCARD", harness.keys.flushes).int == 0)
    }
}
