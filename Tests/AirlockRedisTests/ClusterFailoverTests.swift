import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Synchronization
import Testing

/// The issue's measurement on Redis Cluster: a steady producer and two workers through
/// `redis+cluster://`, `kill -9` of the primary owning the queue's slot. Counts enqueues that were
/// acknowledged and never ran, and jobs that ran twice, without and with replicated
/// acknowledgement (WAIT 1), and checks that producers and workers carry on without a restart.
@Suite("Redis Cluster: killing a primary under load", .serialized, .timeLimit(.minutes(5)))
struct ClusterFailoverTests {
    @Test func killingThePrimaryOfTheQueuesSlot() async throws {
        for lagging in [false, true] {
            for replication in [RedisReplication.none, RedisReplication(replicas: 1, timeout: .milliseconds(250))] {
                let figures = try await Self.measure(replication: replication, laggingReplica: lagging)
                print("cluster failover (\(lagging ? "replica cut off 300 ms before" : "replica in sync"), "
                      + "\(replication.isRequired ? "with WAIT 1" : "without WAIT")): \(figures)")
                #expect(figures.acknowledgedAfter > 0, "the producer followed the promoted replica")
                #expect(figures.executedAfter > 0, "the workers followed the promoted replica")
                // What WAIT 1 promises: nothing it acknowledged is lost, even from a primary whose
                // replica was cut off (those writes are reported written-not-replicated instead).
                if replication.isRequired { #expect(figures.lost == 0, "\(figures)") }
            }
        }
    }

    struct Figures: CustomStringConvertible {
        var acknowledged = 0, lost = 0, unreplicated = 0, failed = 0, duplicates = 0, acknowledgedAfter = 0, executedAfter = 0
        var acknowledgedWhileCutOff = 0
        var failover: Duration = .zero
        var description: String {
            "acknowledged \(acknowledged), acknowledged-but-lost \(lost), duplicates \(duplicates), written-not-replicated \(unreplicated), "
                + "acknowledged while the replica was cut off \(acknowledgedWhileCutOff), "
                + "failed enqueues \(failed), acknowledged after the failover \(acknowledgedAfter), executed after \(executedAfter), "
                + "replica promoted and followed after \(failover)"
        }
    }

    private struct Ledger {
        var acknowledged = Set<Int>()
        var unreplicated = 0
        var failed = 0
        var executions: [Int: Int] = [:]
    }

    /// What the producer task, the workers' task and the test share.
    private final class Shared: Sendable {
        let ledger = Mutex(Ledger())
        let stop = Atomic<Bool>(false)
    }

    static func measure(replication: RedisReplication, laggingReplica: Bool) async throws -> Figures {
        let cluster = try await RedisClusterNodes.start()
        let namespace = "{\(RedisServer.uniqueNamespace("cluster-failover"))}"
        let harness = try await WorkerHarness.make("cluster-failover", url: cluster.url, namespace: namespace)
        let shared = Shared()
        var registry = TaskRegistry()
        registry.register("failover.job", maxRetries: 3) { arguments, _ in
            try await Task.sleep(for: .milliseconds(5))   // some work, so jobs are in flight at the kill
            if let id = arguments.kwargs["id"]?.intValue { shared.ledger.withLock { $0.executions[id, default: 0] += 1 } }
        }
        var setup = try harness.configuration(concurrency: 2, prefetch: 2)
        setup.source.replication = replication
        setup.heartbeatTTL = .seconds(15)   // outlives the outage, so no worker reaps the other mid-failover
        setup.orphanSweepInterval = .milliseconds(500)
        setup.redis.reconnectBackoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(250))
        var producerConfiguration = try RedisConfiguration(url: cluster.url)
        producerConfiguration.reconnectBackoff = setup.redis.reconnectBackoff
        let executor = RedisExecutor(
            client: RedisClient(configuration: producerConfiguration, name: "cluster-failover-producer", logger: WorkerKit.quiet),
            namespace: namespace, replication: replication, logger: WorkerKit.quiet)
        var first = setup, second = setup
        first.name = "cf-1"
        second.name = "cf-2"
        let workers = [WorkerRun(Worker(configuration: first, registry: registry, logger: WorkerKit.quiet)),
                       WorkerRun(Worker(configuration: second, registry: registry, logger: WorkerKit.quiet))]
        let producer = Task {
            var next = 0
            while !shared.stop.load(ordering: .relaxed) {
                let id = next
                next += 1
                do {
                    try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                        try Airlock.enqueue(name: "failover.job", kwargs: ["id": .int(id)])
                    }
                    shared.ledger.withLock { _ = $0.acknowledged.insert(id) }
                } catch let error as DispatchError where (error.underlying as? RedisExecutorError)?.kind == .notReplicated {
                    shared.ledger.withLock { $0.unreplicated += 1 }
                } catch {
                    shared.ledger.withLock { $0.failed += 1 }
                }
                try? await Task.sleep(for: .milliseconds(1))   // a steady stream, not a flood
            }
        }
        func finish() async {
            shared.stop.store(true, ordering: .relaxed)
            _ = await producer.value
            for run in workers { _ = try? await run.stop(within: .seconds(20)) }
            await executor.client.close()
        }
        var added: RedisServer?
        do {
            try await WorkerKit.eventually("a steady state before the kill", timeout: .seconds(60)) {
                shared.ledger.withLock { $0.acknowledged.count >= 300 && $0.executions.count >= 200 }
            }
            let slot = RedisHashSlot.of(namespace)
            let doomed = try await cluster.primary(ofSlot: slot)
            var acknowledgedWhileCutOff = 0
            if laggingReplica {
                // The replica sleeps (so it cannot reconnect) while the primary drops its link; what
                // the primary acknowledges from then on exists nowhere else.
                let nodesText = try await cluster.cli(doomed.port, "cluster", "nodes")
                let replicaLine = try #require(nodesText.split(separator: "\n").first { $0.contains("slave") && $0.contains(doomed.id) })
                let replicaPort = try #require(Int(replicaLine.split(separator: " ")[1].split(separator: ":")[1].split(separator: "@")[0]))
                let sleeper = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: replicaPort), logger: WorkerKit.quiet)
                try await sleeper.connect()
                let asleep = Task { try await sleeper.send(RedisCommand("DEBUG", "SLEEP", "0.8"), timeout: .seconds(10)) }
                try await cluster.cli(doomed.port, "client", "kill", "type", "replica")
                let atCutOff = shared.ledger.withLock { $0.acknowledged.count }
                // The fault's shape, not a condition: the primary dies 300 ms after its replica was cut off.
                try await Task.sleep(for: .milliseconds(300))
                acknowledgedWhileCutOff = shared.ledger.withLock { $0.acknowledged.count } - atCutOff
                cluster.nodes.first { $0.port == doomed.port }?.kill9()
                _ = try? await asleep.value
                await sleeper.close()
            } else {
                cluster.nodes.first { $0.port == doomed.port }?.kill9()
            }
            let (acknowledgedAtKill, executedAtKill) = shared.ledger.withLock { ($0.acknowledged.count, $0.executions.count) }
            let killedAt = ContinuousClock.now
            var promoted = doomed
            try await WorkerKit.eventually("a replica promoted for the slot", timeout: .seconds(60)) {
                let asking = cluster.nodes.first { $0.port != doomed.port && $0.isRunning }?.port
                promoted = (try? await cluster.primary(ofSlot: slot, askingPort: asking)) ?? doomed
                return promoted.port != doomed.port
            }
            // A replica for the promoted primary, so WAIT 1 can be met again.
            if replication.isRequired { added = try await cluster.addReplica(of: promoted) }
            try await WorkerKit.eventually("the producer and workers carry on", timeout: .seconds(60)) {
                shared.ledger.withLock { $0.acknowledged.count >= acknowledgedAtKill + 200 && $0.executions.count >= executedAtKill + 200 }
            }
            let failover = killedAt.duration(to: .now)
            shared.stop.store(true, ordering: .relaxed)
            _ = await producer.value
            // Drained: nothing ready, delayed or in flight — what has not run now never will.
            try await WorkerKit.eventually("the queue drained on the promoted primary", timeout: .seconds(60)) {
                var held = try await harness.redis.send("LLEN", harness.keys.ready("default")).integer()
                held += try await harness.redis.send("ZCARD", harness.keys.delayed("default")).integer()
                for run in workers { held += try await harness.redis.send("LLEN", harness.keys.inflight("default", worker: run.worker.id)).integer() }
                return held == 0
            }
            await finish()
            _ = added
            return shared.ledger.withLock { state in
                Figures(acknowledged: state.acknowledged.count, lost: state.acknowledged.filter { state.executions[$0] == nil }.count,
                        unreplicated: state.unreplicated, failed: state.failed,
                        duplicates: state.executions.values.reduce(0) { $0 + max(0, $1 - 1) },
                        acknowledgedAfter: state.acknowledged.count - acknowledgedAtKill, executedAfter: state.executions.count - executedAtKill,
                        acknowledgedWhileCutOff: acknowledgedWhileCutOff, failover: failover)
            }
        } catch {
            await finish()
            throw error
        }
    }
}
