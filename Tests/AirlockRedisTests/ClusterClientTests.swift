import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// `RedisClient` against a real Redis Cluster on loopback (three primaries, three replicas,
/// Tests/Support/RedisClusterNodes.swift): routing by slot, `MOVED` after a slot moves, `ASK`
/// while it moves, and a primary killed with SIGKILL. Serialized: each test runs six servers.
@Suite("Redis Cluster: the slot-aware client", .serialized, .timeLimit(.minutes(5)))
struct ClusterClientTests {
    static func client(_ url: String) throws -> RedisClient {
        RedisClient(configuration: try RedisConfiguration(url: url), name: "cluster-test", logger: WorkerKit.quiet)
    }

    /// Keys whose slots the three primaries share; each primary ends up holding some of them.
    @Test func commandsPipelinesAndScriptsGoToTheNodeOwningTheirSlot() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try Self.client(cluster.url)
        let keys = (0..<60).map { "{q\($0)}:ready" }
        let written = try await client.pipeline(keys.map { RedisCommand("SET", $0, "v-\($0)") })
        #expect(written.allSatisfy { $0 == .status("OK") }, "\(written.filter { $0 != .status("OK") }.prefix(3))")
        for key in keys.prefix(10) {
            #expect(try await client.send("GET", key).string == "v-\(key)")
        }
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        let counted = try await client.evaluate(keys.prefix(30).map { script.call(keys: [Array("\($0):count".utf8)], arguments: [Array("2".utf8)]) })
        #expect(counted.allSatisfy { $0 == .integer(2) }, "\(counted.prefix(3))")
        // What each primary holds, asked directly: the keys are spread, none is missing.
        var held: [Int] = []
        for primary in try await cluster.primaries() {
            held.append(Int(try await cluster.cli(primary.port, "dbsize")) ?? -1)
        }
        #expect(held.count == 3)
        #expect(held.reduce(0, +) == 90, "60 keys and 30 counters: \(held)")
        #expect(held.allSatisfy { $0 > 0 }, "every primary holds some: \(held)")
        await client.close()
    }

    @Test func aSlotMovedToAnotherPrimaryIsFollowedAfterMOVED() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try Self.client(cluster.url)
        let key = "{moving}:ready"
        _ = try await client.send("RPUSH", key, "a", "b")
        let slot = RedisHashSlot.of(key)
        let source = try await cluster.primary(ofSlot: slot)
        let target = try #require(try await cluster.primaries().first { $0.port != source.port })
        try await cluster.moveSlot(slot, to: target)
        // The client's map still names the source, which now answers MOVED: followed, not thrown.
        #expect(try await client.send("LLEN", key).int == 2)
        _ = try await client.send("RPUSH", key, "c")
        let script = RedisScript("return redis.call('LLEN', KEYS[1])")
        #expect(try await client.evalScript(script, keys: [Array(key.utf8)], args: []) == .integer(3))
        #expect(try await cluster.cli(target.port, "llen", key) == "3", "the writes landed on the new owner")
        await client.close()
    }

    @Test func aSlotMidMigrationIsFollowedAfterASK() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try Self.client(cluster.url)
        let key = "{asking}:ready"
        _ = try await client.send("RPUSH", key, "a")
        let slot = RedisHashSlot.of(key)
        let source = try await cluster.primary(ofSlot: slot)
        let target = try #require(try await cluster.primaries().first { $0.port != source.port })
        try await cluster.beginMigration(slot, from: source, to: target)
        // The key now lives on the target while the slot is still the source's: ASK, once.
        #expect(try await client.send("LLEN", key).int == 1)
        let script = RedisScript("return redis.call('RPUSH', KEYS[1], ARGV[1])")
        #expect(try await client.evalScript(script, keys: [Array(key.utf8)], args: [Array("b".utf8)]) == .integer(2))
        // A key the source never had goes to the importing target too.
        _ = try await client.send("SET", "{asking}:new", "1")
        try await cluster.finishMigration(slot, from: source, to: target)
        #expect(try await cluster.cli(target.port, "llen", key) == "2", "the writes landed on the importing node")
        #expect(try await client.send("GET", "{asking}:new").string == "1")
        await client.close()
    }

    @Test func aKilledPrimaryIsReplacedAndTheSameClientCarriesOn() async throws {
        let cluster = try await RedisClusterNodes.start()
        let client = try Self.client(cluster.url)
        let key = "{failover}:ready"
        _ = try await client.send("RPUSH", key, "before")
        let slot = RedisHashSlot.of(key)
        let doomed = try await cluster.primary(ofSlot: slot)
        // Wait until its replica holds the write before the kill, so this test is about routing.
        try await WorkerKit.eventually("the replica has the write", timeout: .seconds(60)) {
            for node in cluster.nodes where node.port != doomed.port {
                let role = try await cluster.cli(node.port, "role").split(separator: "\n").map(String.init)
                if role.count >= 4, role[0] == "slave", role[2] == String(doomed.port), role[3] == "connected",
                   try await cluster.cli(node.port, "cluster", "countkeysinslot", String(slot)) == "1" {
                    return true
                }
            }
            return false
        }
        cluster.nodes.first { $0.port == doomed.port }?.kill9()
        // Calls fail while the cluster elects the replica; the same client then finds it.
        try await WorkerKit.eventually("a write to the killed primary's slot succeeds", timeout: .seconds(60)) {
            (try? await client.send("RPUSH", key, "after")) != nil
        }
        let promoted = try await cluster.primary(ofSlot: slot)
        #expect(promoted.port != doomed.port)
        let items = try await client.send("LRANGE", key, "0", "-1").strings()
        #expect(items.first == "before", "\(items)")
        #expect(items.contains("after"), "\(items)")
        await client.close()
    }

    @Test func aServerThatIsNotAClusterNodeIsAClearError() async throws {
        let server = try await RedisServer.shared()
        let client = try Self.client("redis+cluster://127.0.0.1:\(server.port)")
        let error = await #expect(throws: RedisError.self) { _ = try await client.send("PING") }
        #expect(error?.description.contains("not a Redis Cluster node") == true, "\(String(describing: error))")
        await client.close()
    }
}

/// Producers and a worker on Redis Cluster with a hash-tagged namespace (every Airlock key in one
/// slot, the layout docs/OPERATIONS.md describes for Cluster today), through `redis+cluster://`:
/// the namespace's slot moves to another primary while jobs are being enqueued and drained.
@Suite("Redis Cluster: a fleet following a resharded slot", .serialized, .timeLimit(.minutes(5)))
struct ClusterFleetTests {
    @Test func aSlotMovedWhileFillingAndDrainingLosesNothing() async throws {
        let cluster = try await RedisClusterNodes.start()
        let namespace = "{\(RedisServer.uniqueNamespace("cluster-fleet"))}"
        let harness = try await WorkerHarness.make("cluster-fleet", url: cluster.url, namespace: namespace)
        let slot = RedisHashSlot.of(namespace)
        let source = try await cluster.primary(ofSlot: slot)
        let target = try #require(try await cluster.primaries().first { $0.port != source.port })
        try await harness.record((0..<300).map { "a-\($0)" })
        try await harness.withWorker(try harness.configuration(concurrency: 8, prefetch: 16)) { worker in
            try await harness.waitUntilRegistered(worker)
            try await WorkerKit.eventually("the worker started on the first primary", timeout: .seconds(60)) {
                try await harness.recorded().count >= 50
            }
            // Enqueue the second half, one scope per job, while the slot's keys migrate and its
            // owner changes: the move starts once the worker has run some of it.
            let producer = Task { for index in 0..<2000 { try await harness.record(["b-\(index)"]) } }
            try await WorkerKit.eventually("the second half is being drained", timeout: .seconds(60)) {
                try await harness.recorded().contains("b-0")
            }
            try await cluster.moveSlot(slot, to: target)
            try await producer.value
            try await WorkerKit.eventually("all 2,300 jobs ran after the move", timeout: .seconds(90)) {
                Set(try await harness.recorded()).count == 2300
            }
            let recorded = try await harness.recorded()
            #expect(Set(recorded) == Set((0..<300).map { "a-\($0)" } + (0..<2000).map { "b-\($0)" }))
            // At-least-once: a redelivery is bounded by what the worker held (concurrency + prefetch).
            #expect(recorded.count - 2300 <= 24, "duplicates: \(recorded.count - 2300)")
            #expect(try await cluster.primary(ofSlot: slot).port == target.port)
            #expect(Int(try await cluster.cli(source.port, "dbsize")) == 0, "nothing left on the old owner")
        }
    }

    /// An untagged namespace: each queue's keys in its own slot, spread over the primaries, the
    /// fleet's keys in the slot of `{<ns>}`. Producers, a worker on six queues, `stats`, `workers`
    /// and the CLI all run through the same `redis+cluster://` URL.
    @Test func queuesSpreadOverThePrimariesRunThroughOneURL() async throws {
        let cluster = try await RedisClusterNodes.start()
        let harness = try await WorkerHarness.make("cluster-spread", url: cluster.url)
        let queues = (0..<6).map { "q\($0)" }
        var ownerOf: [String: Int] = [:]
        for queue in queues { ownerOf[queue] = try await cluster.primary(ofSlot: RedisHashSlot.of(harness.keys.ready(queue))).port }
        let owners = Set(ownerOf.values)
        #expect(owners.count >= 2, "the queues' slots are on several primaries: \(owners)")
        for queue in queues { try await harness.record((0..<50).map { "\(queue)-\($0)" }, queue: queue) }
        try await harness.withWorker(try harness.configuration(queues: queues, concurrency: 8)) { worker in
            try await harness.waitUntilRegistered(worker)
            try await WorkerKit.eventually("300 jobs from six queues ran", timeout: .seconds(60)) {
                Set(try await harness.recorded()).count == 300
            }
            let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
            let stats = try await admin.stats(interval: nil)
            #expect(Set(stats.queues.map(\.name)).isSuperset(of: queues), "\(stats.queues.map(\.name))")
            #expect(try await admin.workers().workers.map(\.id) == [worker.id])
            let cli = try await CLI.run(["stats", "--json", "--redis", harness.url, "--namespace", harness.namespace])
            #expect(cli.status == 0, "\(cli)")
            #expect(cli.stdout.contains("\"q5\""), "\(cli)")
        }
        // Pipelined transactions, one per queue on its own node (`MULTI LLEN DEL EXEC` each).
        let remote = try #require(queues.first { ownerOf[$0] != ownerOf["q0"] })
        _ = try await harness.redis.pipeline([RedisCommand("LPUSH", harness.keys.dead("q0"), "d1", "d2"), RedisCommand("LPUSH", harness.keys.dead(remote), "d3")])
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
        #expect(try await admin.purgeDeadLetters(queues: ["q0", remote]) == ["q0": 2, remote: 1])
        #expect(try await harness.redis.send("EXISTS", harness.keys.dead("q0")) == .integer(0))
        #expect(try await harness.redis.send("EXISTS", harness.keys.dead(remote)) == .integer(0))
        // A flush spanning two queues in different slots goes through the commit record
        // (ClusterCrossSlotTests): both queued, no record left.
        let spanning = try #require(queues.first { RedisHashSlot.of(harness.keys.ready($0)) != RedisHashSlot.of(harness.keys.ready("q0")) })
        try await harness.enqueue {
            try Airlock.enqueue(name: "airlock.record", args: ["x"], options: DispatchOptions(queue: "q0"))
            try Airlock.enqueue(name: "airlock.record", args: ["y"], options: DispatchOptions(queue: spanning))
        }
        #expect(try await harness.redis.send("LLEN", harness.keys.ready("q0")).int == 1)
        #expect(try await harness.redis.send("LLEN", harness.keys.ready(spanning)).int == 1)
        #expect(try await harness.redis.send("EXISTS", harness.keys.flushes).int == 0)
    }
}

/// A cluster whose every node requires a password (`requirepass`, `masterauth`), and one whose
/// every node speaks TLS (clients, bus and replication): the URL's password and TLS settings reach
/// each node the client opens, for producers, workers and the CLI alike; a wrong password or CA is
/// a clear error that stops a worker instead of a reconnect loop.
@Suite("Redis Cluster: a password and TLS on every node", .serialized, .timeLimit(.minutes(5)))
struct ClusterAuthTests {
    /// Three queues whose slots are on the three primaries.
    static func queuesOnEveryPrimary(_ cluster: RedisClusterNodes, keys: RedisKeys) async throws -> [String] {
        var queues: [String] = []
        var owners = Set<Int>()
        for index in 0..<200 where owners.count < 3 {
            let owner = try await cluster.primary(ofSlot: RedisHashSlot.of(keys.ready("a\(index)"))).port
            if owners.insert(owner).inserted { queues.append("a\(index)") }
        }
        try #require(queues.count == 3)
        return queues
    }

    /// docs/OPERATIONS.md's ACL rule plus its Cluster line, on every node, for a producer (a
    /// cross-slot flush, a partitioned queue, a batch across slots), a worker and the CLI: nothing
    /// refused on any primary.
    @Test func theDocumentedACLRuleWithItsClusterWordsIsEnough() async throws {
        let document = try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/OPERATIONS.md"), encoding: .utf8)
        let clusterWords = try #require(document.split(separator: "\n").first { $0.hasPrefix("+cluster|slots") }, "no Cluster ACL line in docs/OPERATIONS.md")
        let rule = try ProductionACLTests.documentedRule() + " " + clusterWords
        let cluster = try await RedisClusterNodes.start(extraConfig: [rule])
        let url = cluster.url.replacingOccurrences(of: "redis+cluster://", with: "redis+cluster://airlock:\(ProductionACLTests.password)@")
        let harness = try await WorkerHarness.make("acl", url: url)
        #expect(harness.namespace.hasPrefix("t-acl-"))
        let queues = try await Self.queuesOnEveryPrimary(cluster, keys: harness.keys)
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace, logger: WorkerKit.quiet)
        try await admin.setPartitions(3, of: "wide")
        try await harness.enqueue {
            for queue in queues {
                try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(queue)], options: DispatchOptions(queue: queue))
            }
            for index in 0..<6 {
                try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string("wide-\(index)")], options: DispatchOptions(queue: "wide"))
            }
        }
        // A batch whose record and callback are on one primary and whose jobs are on the others.
        let batch = Batch(queue: queues[0], onComplete: WorkerBatchTests.record("batch-done"))
        _ = try await harness.executor.enqueue(queues.dropFirst().map { queue in
            Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": .string("batch-\(queue)")])), options: DispatchOptions(queue: queue))
        }, in: batch)
        try await harness.withWorker(try harness.configuration(queues: queues + ["wide"])) { _ in
            try await WorkerKit.eventually("twelve jobs ran under the ACL user", timeout: .seconds(60)) {
                Set(try await harness.recorded()).count == 12
            }
        }
        #expect(try await harness.recorded().contains("batch-done"), "the batch's callback ran last")
        let cli = try await CLI.run(["stats", "--json", "--redis", url, "--namespace", harness.namespace])
        #expect(cli.status == 0, "\(cli)")
        #expect(cli.stdout.contains("\"partitions\":3"), "\(cli)")
        // The same application code and CLI as through Sentinel (ProductionACLTests), only the URL
        // changed: replicated acknowledgement on, every feature, every operator command.
        let waiting = url + "?wait_replicas=1&wait_timeout=2000"
        let everything = try await WorkerHarness.make("acl", url: waiting)
        #expect(everything.executor.replication == RedisReplication(replicas: 1, timeout: .seconds(2)), "the URL's wait_replicas reached the producer")
        try await ProductionACLTests.everyFeature(everything, url: waiting)
        for primary in try await cluster.primaries() {
            let log = try await cluster.cli(primary.port, "acl", "log")
            #expect(log.isEmpty, "refused on \(primary.port) under the documented rule: \(log)")
        }
    }

    /// One job per primary in one scope (a cross-slot flush through every node), drained by a
    /// worker, then `stats --json` through the cluster's URL; returns the queues and the CLI's result.
    static func flushDrainAndStats(_ cluster: RedisClusterNodes, _ harness: WorkerHarness) async throws -> ([String], CLIResult) {
        let queues = try await queuesOnEveryPrimary(cluster, keys: harness.keys)
        try await harness.enqueue {
            for queue in queues {
                try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(queue)], options: DispatchOptions(queue: queue))
            }
        }
        try await harness.withWorker(try harness.configuration(queues: queues)) { _ in
            try await WorkerKit.eventually("three jobs ran on three primaries", timeout: .seconds(60)) {
                Set(try await harness.recorded()) == Set(queues)
            }
        }
        let cli = try await CLI.run(["stats", "--json", "--redis", cluster.url, "--namespace", harness.namespace])
        #expect(cli.status == 0, "\(cli)")
        return (queues, cli)
    }

    @Test func aTLSClusterIsReachedThroughRedissClusterAndAWrongCAIsATLSError() async throws {
        let cluster = try await RedisClusterNodes.start(tls: true)
        #expect(cluster.url.hasPrefix("rediss+cluster://"))
        let harness = try await WorkerHarness.make("cluster-tls", url: cluster.url)
        let (queues, cli) = try await Self.flushDrainAndStats(cluster, harness)
        #expect(cli.stdout.contains("\"\(queues[2])\""), "\(cli)")

        let tls = try #require(cluster.tls)
        let wrongCA = cluster.url.replacingOccurrences(of: tls.certificates.caFile, with: tls.certificates.otherCAFile)
        let wrong = RedisClient(configuration: try RedisConfiguration(url: wrongCA), name: "cluster-wrong-ca", logger: WorkerKit.quiet)
        let error = await #expect(throws: RedisError.self) { try await wrong.send("GET", "{a0}:x") }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(error?.description.contains("certificate verify failed") == true, "\(String(describing: error))")
        await wrong.close()
    }

    @Test func theURLsPasswordReachesEveryNodeAndAWrongOneIsRefusedClearly() async throws {
        let password = "cl-\(UInt32.random(in: .min ... .max))"
        let cluster = try await RedisClusterNodes.start(password: password)
        let harness = try await WorkerHarness.make("cluster-auth", url: cluster.url)
        let (queues, cli) = try await Self.flushDrainAndStats(cluster, harness)
        #expect(!cli.stdout.contains(password) && !cli.stderr.contains(password))

        let wrongURL = "redis+cluster://:not-it@" + cluster.nodes.prefix(3).map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        let wrong = RedisClient(configuration: try RedisConfiguration(url: wrongURL), name: "cluster-wrong", logger: WorkerKit.quiet)
        let error = await #expect(throws: RedisError.self) { try await wrong.send("GET", "{a0}:x") }
        #expect(error?.kind == .authenticationFailed, "\(String(describing: error))")
        #expect(error?.description.contains("not-it") == false, "the password is not repeated: \(String(describing: error))")
        await wrong.close()
        // A worker with it stops with that error rather than retrying forever.
        var setup = try harness.configuration(queues: queues)
        setup.redis = try RedisConfiguration(url: wrongURL)
        let run = WorkerRun(Worker(configuration: setup, registry: TaskRegistry(), logger: WorkerKit.quiet))
        let outcome = try await run.waitForExit(within: .seconds(30))
        let failure = try #require(outcome.failureValue as? RedisError, "\(outcome)")
        #expect(failure.kind == .authenticationFailed)
    }
}
