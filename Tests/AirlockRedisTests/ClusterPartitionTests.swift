import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Naming and routing of partitioned queues, without a server.
@Suite("Partitioned queues: names and routing")
struct QueuePartitionNamingTests {
    @Test func partitionNamesRoundTripAndOtherNamesAreTheirOwnQueue() {
        #expect(QueuePartitions.names("orders", count: 3) == ["orders", "orders@p1", "orders@p2"])
        #expect(QueuePartitions.names("orders", count: 1) == ["orders"])
        for name in QueuePartitions.names("a@b", count: 12) {
            let (queue, index) = QueuePartitions.logical(name)
            #expect(queue == "a@b")
            #expect(QueuePartitions.name(queue, partition: index) == name)
        }
        for plain in ["orders", "orders@p0", "orders@p01", "@p1", "orders@px", "orders@p-1"] {
            #expect(QueuePartitions.logical(plain) == (plain, 0), "\(plain)")
        }
    }

    @Test func aKeyAlwaysPicksTheSamePartitionAndKeysSpread() {
        var counts = [0, 0, 0]
        for index in 0..<3000 {
            let key = "customer-\(index)"
            let partition = QueuePartitions.partition(forKey: key, count: 3)
            #expect(partition == QueuePartitions.partition(forKey: key, count: 3))
            counts[partition] += 1
        }
        #expect(counts.allSatisfy { $0 > 800 }, "\(counts)")
        #expect(QueuePartitions.partition(forKey: "anything", count: 1) == 0)
    }
}

/// A queue spread over three hash slots owned by three primaries of a real Redis Cluster: declared
/// once, routed to by producers, consumed whole by a worker configured with the queue's name,
/// reported as one queue.
@Suite("Redis Cluster: partitioned queues", .serialized, .timeLimit(.minutes(5)))
struct ClusterPartitionTests {
    /// A queue name whose first `count` partitions are owned by `count` different primaries.
    static func spreadQueue(_ cluster: RedisClusterNodes, keys: RedisKeys, count: Int, prefix: String) async throws -> String {
        for index in 0..<300 {
            let queue = "\(prefix)\(index)"
            var owners = Set<Int>()
            for name in QueuePartitions.names(queue, count: count) {
                owners.insert(try await cluster.primary(ofSlot: RedisHashSlot.of(keys.ready(name))).port)
            }
            if owners.count == count { return queue }
        }
        Issue.record("no queue name found whose \(count) partitions are on \(count) primaries")
        return "\(prefix)0"
    }

    static func token(_ bytes: [UInt8]) throws -> String {
        try WorkerKit.object(bytes)["kwargs"]?["token"]?.stringValue ?? ""
    }

    @Test func aPartitionedQueueIsRoutedByKeyConsumedWholeAndReportedAsOne() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("partitioned", url: cluster.url)
        let queue = try await Self.spreadQueue(cluster, keys: harness.keys, count: 3, prefix: "orders")
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
        let declared = try await CLI.run(["partitions", queue, "3", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(declared.status == 0, "\(declared)")
        #expect(declared.stdout.contains("3 partitions (was 1)"), "\(declared)")
        #expect(try await admin.partitions() == [queue: 3])
        #expect(try await admin.setPartitions(3, of: queue) == 3, "declaring the same count again changes nothing")
        // Fewer partitions would strand jobs; a partition's own name is not a queue to partition.
        await #expect(throws: AdminError.self) { try await admin.setPartitions(2, of: queue) }
        await #expect(throws: AdminError.self) { try await admin.setPartitions(4, of: "\(queue)@p1") }
        #expect(try await admin.partitions() == [queue: 3])

        // 30 scopes of 10: six keys of ordered jobs, the rest spread by id.
        for scope in 0..<30 {
            try await harness.enqueue {
                for index in 0..<10 {
                    let sequence = scope * 10 + index
                    let key = sequence % 5 == 0 ? "k\(sequence % 6)" : nil
                    let token = key.map { "\($0)-\(String(format: "%03d", sequence))" } ?? "free-\(sequence)"
                    try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(token)], options: DispatchOptions(queue: queue, partitionKey: key))
                }
            }
        }
        var partitionOf: [String: Set<Int>] = [:]
        var initial: [Int] = []
        for (index, name) in QueuePartitions.names(queue, count: 3).enumerated() {
            let tokens = try await harness.list(harness.keys.ready(name)).map(Self.token)
            initial.append(tokens.count)
            for token in tokens where token.hasPrefix("k") { partitionOf[String(token.prefix(2)), default: []].insert(index) }
        }
        #expect(initial.reduce(0, +) == 300)
        #expect(initial.allSatisfy { $0 > 50 }, "every partition got a share: \(initial)")
        #expect(partitionOf.count == 6 && partitionOf.values.allSatisfy { $0.count == 1 }, "each key on one partition: \(partitionOf)")

        // `cancel` finds a job on whichever partition (and node) it is: one spread job goes.
        let partition1 = try await harness.list(harness.keys.ready(QueuePartitions.name(queue, partition: 1))).map(WorkerKit.object)
        let victim = try #require(partition1.first { $0["kwargs"]?["token"]?.stringValue?.hasPrefix("free-") == true })
        let victimID = try #require(victim["id"]?.stringValue)
        let cancelled = try await CLI.run(["cancel", victimID, "--redis", harness.url, "--namespace", harness.namespace])
        #expect(cancelled.status == 0 && cancelled.stdout.contains("\(queue)@p1"), "\(cancelled)")
        let cancelledToken = try #require(victim["kwargs"]?["token"]?.stringValue)
        initial[1] -= 1

        // One row in stats, on the library and on the CLI.
        let report = try await admin.stats(interval: nil)
        #expect(report[queue: queue]?.ready == 299)
        #expect(report[queue: queue]?.counters.cancelled == 1)
        #expect(report[queue: queue]?.partitions == 3)
        #expect(!report.queues.contains { $0.name.hasPrefix("\(queue)@p") }, "\(report.queues.map(\.name))")
        let cli = try await CLI.run(["stats", "--json", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(cli.status == 0, "\(cli)")
        #expect(cli.stdout.contains("\"partitions\":3"), "\(cli.stdout)")
        let listed = try await CLI.run(["partitions", "--json", "--redis", harness.url, "--namespace", harness.namespace])
        #expect(listed.stdout.contains("\"\(queue)\":3"), "\(listed)")

        // One worker configured with the queue's name; one job at a time, so order is visible.
        let sink = WorkerLogSink()
        try await harness.withWorker(try harness.configuration(queues: [queue], concurrency: 1), logger: sink.logger) { worker in
            try await WorkerKit.eventually("half the jobs ran", timeout: .seconds(60)) { try await harness.recorded().count >= 150 }
            // Fair: by then every partition has been taken from.
            for (index, name) in QueuePartitions.names(queue, count: 3).enumerated() {
                #expect(try await harness.readyCount(name) < initial[index], "partition \(index) progressed")
            }
            try await WorkerKit.eventually("every job ran", timeout: .seconds(60)) { try await harness.recorded().count >= 299 }
            let registered = try await harness.redis.send("SMEMBERS", harness.keys.queues).strings()
            #expect(Set(registered).isSuperset(of: QueuePartitions.names(queue, count: 3)), "\(registered)")
            // A fourth partition while it runs, and ten jobs whose key puts them on it: the worker
            // restarts in place and consumes it too.
            try await admin.setPartitions(4, of: queue)
            let keysOnP3 = (0..<200).map { "late\($0)" }.filter { QueuePartitions.partition(forKey: $0, count: 4) == 3 }.prefix(10)
            try #require(keysOnP3.count == 10)
            let fresh = RedisExecutor(client: harness.redis, namespace: harness.namespace)   // reads the count at its first flush
            try await Airlock.scope(policy: AllowAll(), executor: fresh, behavior: DefaultScopeBehavior()) {
                for key in keysOnP3 {
                    try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string("late-\(key)")], options: DispatchOptions(queue: queue, partitionKey: key))
                }
            }
            #expect(try await harness.readyCount(QueuePartitions.name(queue, partition: 3)) + (harness.recorded().count - 299) == 10)
            try await WorkerKit.eventually("the running worker consumed the new partition", timeout: .seconds(60)) {
                try await harness.recorded().count >= 309
            }
            #expect(sink.messages.filter { $0.contains("more partitions than it opened with") }.count == 1, "said once")
            #expect(sink.contains("restarting in place"))
            let afterGrowth = try await harness.redis.send("SMEMBERS", harness.keys.queues).strings()
            #expect(afterGrowth.contains(QueuePartitions.name(queue, partition: 3)), "\(afterGrowth)")
            #expect(try await harness.redis.send("EXISTS", harness.keys.heartbeat(worker.id)).int == 1, "the same worker, still registered")
        }
        let recorded = try await harness.recorded()
        #expect(recorded.count == 309)
        #expect(Set(recorded).count == 309)
        #expect(!recorded.contains(cancelledToken))
        for key in (0..<6).map({ "k\($0)-" }) {
            let ran = recorded.filter { $0.hasPrefix(key) }
            #expect(ran == ran.sorted() && !ran.isEmpty, "jobs of \(key) ran in the order enqueued: \(ran)")
        }
        #expect(try await admin.stats(interval: nil)[queue: queue]?.counters.processed == 309)
    }

    /// A partitions key someone overwrote with a string does not stop workers or `stats`: queues
    /// are then consumed and reported unpartitioned.
    @Test func aPartitionsKeyOfTheWrongTypeLeavesQueuesUnpartitioned() async throws {
        let harness = try await WorkerHarness.make("partitions-wrongtype")
        _ = try await harness.command("SET", harness.keys.partitions, "not a hash")
        try await harness.record(["still-runs"])
        try await harness.withWorker(try harness.configuration()) { _ in
            try await WorkerKit.eventually("the job ran", timeout: .seconds(60)) { try await harness.recorded() == ["still-runs"] }
        }
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
        #expect(try await admin.stats(interval: nil)[queue: "default"]?.counters.processed == 1)
    }

    /// A single Redis has one node to spread over: declaring partitions there is refused.
    @Test func partitionsAreRefusedOutsideACluster() async throws {
        let harness = try await WorkerHarness.make("partitions-single")
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
        let error = await #expect(throws: AdminError.self) { try await admin.setPartitions(3, of: "orders") }
        #expect(error?.description.contains("redis+cluster://") == true, "\(String(describing: error))")
        #expect(try await admin.partitions().isEmpty)
    }
}
