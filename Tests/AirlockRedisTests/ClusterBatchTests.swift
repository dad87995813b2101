import Airlock
@_spi(Testing) import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Batches on a real Redis Cluster (three primaries, three replicas) whose record and callbacks
/// live in one slot and whose jobs live in others (docs/PROTOCOL.md, "A batch across slots"): the
/// flush opens the batch through the commit record, with a crash injected after every step, and
/// each job's final outcome crosses to the record through its queue's tallies — also when the
/// worker that settled it died before counting it.
@Suite("Redis Cluster: batches across hash slots", .serialized, .timeLimit(.minutes(5)))
struct ClusterBatchTests {
    typealias Batches = WorkerBatchTests

    static func work(_ queue: String, fail: Bool = false, idempotencyKey: String? = nil) -> Intent {
        Intent(taskName: "batch.work", payload: .dynamic(TaskArguments(kwargs: ["fail": .bool(fail)])),
               options: DispatchOptions(queue: queue, idempotencyKey: idempotencyKey))
    }

    static func record(_ token: String, queue: String, idempotencyKey: String? = nil) -> Intent {
        Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": .string(token)])),
               options: DispatchOptions(queue: queue, idempotencyKey: idempotencyKey))
    }

    static func progress(_ harness: WorkerHarness, _ batch: Batch) async throws -> BatchProgress? {
        try await Batches.admin(harness).batch(id: batch.id, queue: batch.queue)
    }

    /// Tallies waiting on any of `queues`.
    static func tallies(_ harness: WorkerHarness, _ queues: [String]) async throws -> Int {
        var count = 0
        for queue in queues { count += try await harness.redis.send("SCARD", harness.keys.batchTallies(queue)).int ?? -1 }
        return count
    }

    /// Until the batch completed and every one of `queues` is drained (nothing ready or held).
    static func waitForCompletion(_ harness: WorkerHarness, _ batch: Batch, queues: [String]) async throws -> BatchProgress {
        try await WorkerKit.eventually("batch \(batch.id) complete, its queues drained", timeout: .seconds(90)) {
            guard try await progress(harness, batch)?.isComplete == true else { return false }
            for queue in queues where try await ClusterCrossSlotTests.waiting(harness, queue) != 0 { return false }
            return true
        }
        return try #require(try await progress(harness, batch))
    }

    @Test func aBatchWhoseJobsAndCallbacksSpanThreePrimariesCountsEveryJobOnce() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cluster-batch", url: cluster.url)
        let queues = try await ClusterCrossSlotTests.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3).map(\.queue)
        let batch = Batch(queue: queues[0], onSuccess: Batches.record("success"), onComplete: Batches.record("complete"), description: "three primaries")
        // 40 jobs on the two other primaries, two failing for good; the same idempotency key twice,
        // so one intent is no job and the seal takes it back from the count.
        var intents = (0..<40).map { Self.work(queues[1 + $0 % 2], fail: $0 % 20 == 3) }
        intents += [Self.work(queues[1], idempotencyKey: "once"), Self.work(queues[1], idempotencyKey: "once")]
        let outcomes = try await harness.executor.enqueue(intents, in: batch)
        #expect(outcomes.filter { $0 == .queued }.count == 41)
        #expect(outcomes.last.map { if case .duplicate = $0 { true } else { false } } == true, "\(String(describing: outcomes.last))")
        let written = try #require(try await Self.progress(harness, batch))
        #expect(written.total == 41 && written.pending == 41 && !written.isComplete, "\(written)")
        #expect(try await ClusterCrossSlotTests.waiting(harness, queues[0]) == 0, "no callback before the jobs")

        try await harness.withWorker(try harness.configuration(queues: queues, concurrency: 8, prefetch: 8), registry: Batches.registry) { _ in
            let done = try await Self.waitForCompletion(harness, batch, queues: queues)
            #expect(done.total == 41 && done.succeeded == 39 && done.dead == 2 && done.cancelled == 0 && done.pending == 0, "\(done)")
            try await WorkerKit.eventually("onComplete ran", timeout: .seconds(60)) { try await harness.recorded().contains("complete") }
            _ = try await Self.waitForCompletion(harness, batch, queues: queues)
        }
        #expect(try await harness.recorded() == ["complete"], "onComplete once, onSuccess never (two jobs died)")
        #expect(try await Self.tallies(harness, queues) == 0, "every tally folded")
        #expect(try await ClusterCrossSlotTests.leftovers(cluster, namespace: harness.namespace) == [], "record, index and markers removed")
    }

    /// A batch on a partitioned queue: its jobs spread over the partitions (other slots than the
    /// record, which stays with the callbacks on the queue itself), and it completes once.
    @Test func aBatchOnAPartitionedQueueSpreadsItsJobsAndCompletesOnce() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cluster-batch-parts", url: cluster.url)
        try await Batches.admin(harness).setPartitions(3, of: "wide")
        let batch = Batch(queue: "wide", onSuccess: Batches.record("success"), onComplete: Batches.record("complete"))
        _ = try await harness.executor.enqueue((0..<30).map { _ in Self.work("wide") }, in: batch)
        for partition in QueuePartitions.names("wide", count: 3) {
            #expect(try await harness.readyCount(partition) > 0, "jobs on \(partition)")
        }
        try await harness.withWorker(try harness.configuration(queues: ["wide"], concurrency: 4), registry: Batches.registry) { _ in
            try await WorkerKit.eventually("both callbacks ran", timeout: .seconds(60)) {
                Set(try await harness.recorded()).isSuperset(of: ["success", "complete"])
            }
            let done = try await Self.waitForCompletion(harness, batch, queues: QueuePartitions.names("wide", count: 3))
            #expect(done.total == 30 && done.succeeded == 30 && done.pending == 0, "\(done)")
        }
        #expect(try await harness.recorded().sorted() == ["complete", "success"])
    }

    /// A batch's jobs on one slot enqueue follow-ups onto a third, and an operator cancels a
    /// queued member on that third slot: both count in the record on the first.
    @Test func followUpsAndCancellationsOnOtherSlotsCountInTheBatch() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cluster-batch-join", url: cluster.url)
        let queues = try await ClusterCrossSlotTests.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3).map(\.queue)
        let (home, parents, children) = (queues[0], queues[1], queues[2])
        let batch = Batch(queue: home, onSuccess: Batches.record("success"), onComplete: Batches.record("complete"))
        var intents = (0..<10).map { index in
            Intent(taskName: "batch.parent", payload: .dynamic(TaskArguments(kwargs: ["child": .string("child-\(index)")])), options: DispatchOptions(queue: parents))
        }
        intents.append(Self.work(children))
        _ = try await harness.executor.enqueue(intents, in: batch)
        let doomed = try #require(try await harness.list(harness.keys.ready(children)).compactMap { try? WorkerKit.object($0) }.first?["id"]?.stringValue)
        let report = try await Batches.admin(harness).cancel(jobID: doomed)
        #expect(report.steps.map(\.action) == [.removedFromReady])
        let afterCancel = try #require(try await Self.progress(harness, batch))
        #expect(afterCancel.cancelled == 1 && afterCancel.pending == 10, "\(afterCancel)")
        #expect(try await Self.tallies(harness, queues) == 0)

        // Follow-ups go to the worker's first queue: `children`, a slot of neither the record nor the parents.
        try await harness.withWorker(try harness.configuration(queues: [children, home, parents], concurrency: 4, prefetch: 4), registry: Batches.registry) { _ in
            try await WorkerKit.eventually("onComplete ran", timeout: .seconds(90)) { try await harness.recorded().contains("complete") }
            let done = try await Self.waitForCompletion(harness, batch, queues: queues)
            #expect(done.total == 21 && done.succeeded == 20 && done.cancelled == 1 && done.pending == 0, "\(done)")
        }
        let recorded = try await harness.recorded()
        #expect(Set(recorded.prefix(10)) == Set((0..<10).map { "child-\($0)" }), "the callback ran before a follow-up: \(recorded)")
        #expect(recorded.count == 11 && recorded.last == "complete", "onComplete once, onSuccess never: \(recorded)")
        #expect(try await Self.tallies(harness, queues) == 0)
    }

    /// Steps of a batch flush over two job slots with the record on a third: 1 the commit record,
    /// 2 the batch's step, 3–4 each slot's jobs, 5 the seal, 6 the record's removal. A producer
    /// stopped after each of 0…5, then a worker stopped after one delivery, then a worker: the
    /// scope stopped before the record has no batch and ran nothing; every other one completed
    /// with four jobs (the duplicate idempotency key taken back), each run once, its callback once.
    @Test func aProducerStoppedAtEachStepOfABatchFlushLeavesTheBatchWholeOrAbsent() async throws {
        let cluster = try await RedisClusterNodes.start()
        var harness = try await WorkerHarness.make("cluster-batch-crash", url: cluster.url)
        harness.executor.abandonedFlushDelay = .zero
        let queues = try await ClusterCrossSlotTests.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 3).map(\.queue)
        var batches: [Batch] = []
        for step in 0...5 {
            let batch = Batch(queue: queues[0], onSuccess: Batches.record("success-\(step)"), onComplete: Batches.record("complete-\(step)"))
            batches.append(batch)
            let intents = [
                Self.record("s\(step)-a", queue: queues[1], idempotencyKey: "idem-\(step)"),
                Self.record("s\(step)-b", queue: queues[1]),
                Self.record("s\(step)-c", queue: queues[2]),
                Self.record("s\(step)-d", queue: queues[2]),
                Self.record("s\(step)-duplicate", queue: queues[1], idempotencyKey: "idem-\(step)"),
            ]
            let deliveries = try await harness.executor.enqueueAcrossSlots(intents, in: batch, stoppingAfterStep: step)
            #expect(deliveries == 4)
            // The record counts the flush's five jobs from the batch's step on, four from the seal on.
            let written = try await Self.progress(harness, batch)
            switch step {
            case 0, 1: #expect(written == nil, "no batch before its step (\(step))")
            case 2...4: #expect(written?.total == 5 && written?.pending == 5, "after step \(step): \(String(describing: written))")
            default: #expect(written?.total == 4 && written?.pending == 4, "after step \(step): \(String(describing: written))")
            }
        }
        // A worker dies while completing them: it did one delivery of the first record.
        #expect(try await harness.executor.completeAbandonedFlushes(stoppingAfterGroups: 1) == 0)
        for id in try await harness.redis.send("ZRANGE", harness.keys.flushes, "0", "-1").strings() {
            _ = try await harness.redis.send("ZADD", harness.keys.flushes, "0", id)   // its lease ran out
        }

        try await harness.withWorker(try harness.configuration(queues: queues), registry: Batches.registry) { _ in
            try await WorkerKit.eventually("every committed batch completed", timeout: .seconds(90)) {
                guard try await harness.redis.send("ZCARD", harness.keys.flushes).int == 0 else { return false }
                for batch in batches.dropFirst() where try await Self.progress(harness, batch)?.isComplete != true { return false }
                for queue in queues where try await ClusterCrossSlotTests.waiting(harness, queue) != 0 { return false }
                return try await harness.recorded().count >= 5 * 6
            }
        }
        let recorded = try await harness.recorded()
        #expect(try await Self.progress(harness, batches[0]) == nil)
        #expect(!recorded.contains { $0.hasPrefix("s0-") || $0.hasSuffix("-0") }, "the scope stopped before its record ran nothing: \(recorded)")
        for step in 1...5 {
            let done = try #require(try await Self.progress(harness, batches[step]))
            #expect(done.total == 4 && done.succeeded == 4 && done.pending == 0, "scope stopped after step \(step): \(done)")
            let expected = ["s\(step)-a", "s\(step)-b", "s\(step)-c", "s\(step)-d", "success-\(step)", "complete-\(step)"]
            #expect(recorded.filter { $0.hasPrefix("s\(step)-") || $0.hasSuffix("-\(step)") }.sorted() == expected.sorted(), "scope \(step): \(recorded)")
        }
        #expect(recorded.count == 30, "each job and callback once: \(recorded)")
        #expect(try await Self.tallies(harness, queues) == 0)
    }

    /// A worker that settled a job and died before counting it in its batch leaves the tally; the
    /// reaper of any worker counts it, once — also when it had been counted but not yet removed.
    /// A tally that is not one of ours is logged and set aside.
    @Test func aTallyLeftByADeadWorkerIsCountedOnceByTheReaper() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cluster-batch-tally", url: cluster.url)
        let queues = try await ClusterCrossSlotTests.queuesOnDistinctPrimaries(cluster, keys: harness.keys, count: 2).map(\.queue)
        let (home, jobs) = (queues[0], queues[1])
        let batch = Batch(queue: home, onSuccess: Batches.record("success"))
        _ = try await harness.executor.enqueue([Self.record("first", queue: jobs), Self.record("second", queue: jobs)], in: batch)
        let waiting = try await harness.list(harness.keys.ready(jobs))
        let first = try #require(waiting.first { (try? WorkerKit.object($0))?["kwargs"]?.objectValue?["token"]?.stringValue == "first" })
        let firstID = try #require(try WorkerKit.object(first)["id"]?.stringValue)
        // What the settle script leaves when the worker dies right after it: the job gone, its tally there.
        let tally = Array(#"["succeeded",""#.utf8) + Array(home.utf8) + Array(#"",""#.utf8) + Array(batch.id.utf8) + Array(#"",""#.utf8) + Array(firstID.utf8) + Array(#""]"#.utf8)
        _ = try await harness.redis.send([Array("LREM".utf8), Array(harness.keys.ready(jobs).utf8), Array("1".utf8), first])
        _ = try await harness.redis.send([Array("SADD".utf8), Array(harness.keys.batchTallies(jobs).utf8), tally])
        let hostile = "not a tally \u{1b}[2J"
        _ = try await harness.redis.send("SADD", harness.keys.batchTallies(jobs), hostile)

        // A worker of the home queue only: its reaper folds every registered queue's tallies.
        let tallyKey = Array(harness.keys.batchTallies(jobs).utf8)
        try await harness.withWorker(try harness.configuration(queues: [home]), registry: Batches.registry) { _ in
            try await WorkerKit.eventually("the reaper counted the tally", timeout: .seconds(60)) {
                try await Self.progress(harness, batch)?.succeeded == 1
            }
            try await WorkerKit.eventually("and removed it", timeout: .seconds(60)) {
                try await harness.redis.send([Array("SISMEMBER".utf8), tallyKey, tally]).int == 0
            }
            // Counted but not removed (a worker dying between the two): counted once all the same.
            _ = try await harness.redis.send([Array("SADD".utf8), tallyKey, tally])
            try await WorkerKit.eventually("the reaper removed it again", timeout: .seconds(60)) {
                try await harness.redis.send([Array("SISMEMBER".utf8), tallyKey, tally]).int == 0
            }
        }
        let counted = try #require(try await Self.progress(harness, batch))
        #expect(counted.succeeded == 1 && counted.pending == 1, "\(counted)")
        #expect(try await harness.redis.send("SMEMBERS", harness.keys.unreadableBatchTallies(jobs)).strings() == [hostile], "an unreadable tally is set aside")
        #expect(try await harness.redis.send("SCARD", harness.keys.batchTallies(jobs)).int == 0)

        try await harness.withWorker(try harness.configuration(queues: [jobs, home]), registry: Batches.registry) { _ in
            let done = try await Self.waitForCompletion(harness, batch, queues: queues)
            #expect(done.succeeded == 2 && done.pending == 0 && done.total == 2, "\(done)")
            try await WorkerKit.eventually("onSuccess ran", timeout: .seconds(60)) { try await harness.recorded().contains("success") }
        }
        #expect(try await harness.recorded().sorted() == ["second", "success"], "the job taken by the dead worker is not run again")
    }
}
