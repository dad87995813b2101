import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Real failovers: one primary, one replica and three sentinels on loopback
/// (Tests/Support/SentinelCluster.swift), producers and workers connected through the sentinels.
/// Serialized: each test runs a cluster of five processes, and kills or fails over its master.
@Suite("Sentinel: real failovers", .serialized, .timeLimit(.minutes(5)))
struct SentinelFailoverTests {
    @Test func producersWorkersAndTheCLIFollowAForcedFailover() async throws {
        let cluster = try await SentinelCluster.start(sentinelPassword: "sentinel-pw")
        let url = cluster.url()
        let oldMaster = try await cluster.masterPort()
        let harness = try await WorkerHarness.make("sentinel-switch", server: cluster.node(port: oldMaster), url: url)
        try await harness.record((0..<20).map { "before-\($0)" })
        try await harness.withWorker(try harness.configuration()) { worker in
            try await WorkerKit.eventually("20 jobs done through the sentinels") { try await harness.recorded().count == 20 }
            try await expectCLIWorks(url: url, namespace: harness.namespace, worker: worker.id, processed: 20)

            // The replica holds everything so far (a forced failover does not wait for it; what an
            // unreplicated write costs is killingThePrimaryUnderLoad's to measure, not this test's).
            let old = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: oldMaster), logger: WorkerKit.quiet)
            #expect(try await old.send("WAIT", "1", "30000").int == 1, "the replica caught up before the failover")
            await old.close()

            // SENTINEL FAILOVER: the replica is promoted, the old master demoted (its clients killed).
            let sentinel = RedisClient(configuration: try Self.sentinelConfiguration(cluster), logger: WorkerKit.quiet)
            _ = try await sentinel.send("SENTINEL", "FAILOVER", cluster.masterName)
            await sentinel.close()
            let newMaster = try await cluster.awaitFailover(awayFrom: oldMaster)
            #expect(newMaster != oldMaster)
            // Until the sentinels reconfigure the old master as a replica it still accepts writes,
            // which its resync then drops (Sentinel's failover window, measured by
            // killingThePrimaryUnderLoad); under load that can take a while. Once it is a replica,
            // the producer's next command finds the new master.
            // Its demotion closes every client connection it has, this poll's included: a poll
            // cut off that way asks again.
            try await WorkerKit.eventually("the old master demoted", timeout: .seconds(60)) { (try? await cluster.role(port: oldMaster)) == "slave" }
            try await WorkerKit.eventually("the producer on the new master", timeout: .seconds(60)) {
                (try? await harness.executor.client.send("ROLE"))?.array?.first?.string == "master"
            }

            // The same producer and worker, not restarted, carry on against the new master. Every
            // token must be there; at least once allows a repeat (a record whose reply the failover
            // cut off is run again), so the count is checked against the distinct tokens.
            try await harness.record((0..<20).map { "after-\($0)" })
            let expected = Set((0..<20).flatMap { ["before-\($0)", "after-\($0)"] })
            let seen = Mutex<[String]>([])
            try await WorkerKit.eventually("20 more jobs done after the failover (recorded: \(seen.withLock { $0 }))", timeout: .seconds(90)) {
                let recorded = try await harness.recorded()
                seen.withLock { $0 = recorded }
                return Set(recorded) == expected
            }
            let recorded = seen.withLock { $0 }
            #expect(recorded.count <= 40 + 2 * 4, "repeats bounded by twice what the worker holds (concurrency 4): \(recorded.count) records")
            try await expectCLIWorks(url: url, namespace: harness.namespace, worker: worker.id, processed: 40, atLeast: true)
            let direct = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: newMaster), logger: WorkerKit.quiet)
            #expect(try await direct.send("LLEN", harness.keys.diagRecord).int == recorded.count, "the new master holds everything")
            await direct.close()
        }
    }

    /// The measurement: a steady producer, two workers, `kill -9` of the primary. Counts the
    /// enqueues that were acknowledged and never ran, without and with replicated acknowledgement
    /// (WAIT 1), and the jobs that ran twice.
    ///
    /// Twice each: with the replica in sync at the kill, and with the replica cut off 300 ms before
    /// it (its link killed while it sleeps, so it cannot reconnect) — the replication lag a host
    /// failure or a network blip leaves, which a `kill -9` on loopback alone does not (the dying
    /// process's kernel still delivers what it had sent).
    @Test func killingThePrimaryUnderLoad() async throws {
        let wait = RedisReplication(replicas: 1, timeout: .milliseconds(250))
        var runs: [FailoverFigures] = []
        for lagging in [false, true] {
            runs.append(try await FailoverRun.measure(label: lagging ? "replica cut off 300 ms before, without WAIT" : "replica in sync, without WAIT", replication: nil, laggingReplica: lagging))
            runs.append(try await FailoverRun.measure(label: lagging ? "replica cut off 300 ms before, with WAIT 1" : "replica in sync, with WAIT 1", replication: wait, laggingReplica: lagging))
        }
        for figures in runs {
            print("failover (\(figures.label)): \(figures)")
            #expect(figures.acknowledgedAfterFailover > 0, "the producer followed the new master (\(figures.label))")
            #expect(figures.executedAfterFailover > 0, "the workers followed the new master (\(figures.label))")
            if figures.replicated {
                #expect(figures.lost == 0, "with replicated acknowledgement no acknowledged job is lost: \(figures)")
                // Settlements wait for the replica too, so a cut-off replica stalls the workers after
                // at most what they hold, once per WAIT timeout (250 ms) of the 300 ms cut-off.
                #expect(figures.duplicates <= 2 * figures.capacity, "duplicates bounded by what the workers hold (\(figures.label)): \(figures)")
            } else if figures.acknowledgedWhileCutOff == 0 {
                #expect(figures.duplicates <= figures.capacity, "duplicates bounded by what the workers hold (\(figures.label)): \(figures)")
            }
            // Without WAIT and with the replica cut off, the loss and the re-runs are the figures to report.

        }
    }

    /// `atLeast`: after a failover, a job may have been processed twice.
    private func expectCLIWorks(url: String, namespace: String, worker: String, processed: Int, atLeast: Bool = false) async throws {
        // A task's side effect is recorded before its settlement reaches Redis, so the count is
        // awaited: it must reach `processed` with nothing left in flight.
        try await WorkerKit.eventually("the CLI's stats count \(processed) processed, none in flight") {
            let stats = try await CLI.run(["stats", "--no-rate", "--json", "--redis", url, "--namespace", namespace])
            #expect(stats.status == 0, "\(stats)")
            let json = try AdminTestKit.object(stats.stdout)
            let counted = json["totals"]?["processed"]?.intValue ?? -1
            return json["totals"]?["in_flight"]?.intValue == 0 && (atLeast ? counted >= processed : counted == processed)
        }
        let workers = try await CLI.run(["workers", "--redis", url, "--namespace", namespace])
        #expect(workers.status == 0, "\(workers)")
        #expect(workers.stdout.contains(worker), "\(workers)")
        let dead = try await CLI.run(["dead", "list", "--redis", url, "--namespace", namespace])
        #expect(dead.status == 0, "\(dead)")
    }

    fileprivate static func sentinelConfiguration(_ cluster: SentinelCluster) throws -> RedisConfiguration {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: cluster.sentinels[0].port)
        configuration.password = cluster.sentinelPassword
        return configuration
    }
}

/// What one kill -9 under load cost.
private struct FailoverFigures: CustomStringConvertible {
    let label: String
    /// Whether the producer waited for a replica.
    let replicated: Bool
    /// Enqueues the producer was told succeeded (replicated, when WAIT was asked for).
    let acknowledged: Int
    /// Acknowledged, and never executed.
    let lost: Int
    /// Written to the primary but reported not replicated in time (``RedisExecutorError/Kind/notReplicated``).
    let unreplicated: Int
    /// Of those, never executed.
    let unreplicatedLost: Int
    /// Enqueues that failed outright (not written, or outcome unknown) while the master was down.
    let failed: Int
    /// Extra executions beyond the first, over all jobs.
    let duplicates: Int
    /// Jobs in the workers' in-flight lists on the primary just before the kill.
    let inFlightAtKill: Int
    /// Most jobs the two workers can hold at once (concurrency + prefetch, each).
    let capacity: Int
    /// Enqueues acknowledged between the replica's cut-off and the kill (0 when it stayed in sync).
    let acknowledgedWhileCutOff: Int
    let acknowledgedAfterFailover: Int
    let executedAfterFailover: Int
    let failover: Duration

    var description: String {
        "acknowledged \(acknowledged), acknowledged-but-lost \(lost), duplicates \(duplicates), in flight at the kill \(inFlightAtKill) "
            + "(capacity \(capacity)), acknowledged while the replica was cut off \(acknowledgedWhileCutOff), written-not-replicated \(unreplicated) (of which lost \(unreplicatedLost)), failed enqueues \(failed), "
            + "acknowledged after the failover \(acknowledgedAfterFailover), failover seen after \(failover)"
    }
}

/// One measured failover: a fresh cluster, two workers and a producer through the sentinels.
private enum FailoverRun {
    /// Ids the producer was told about, and executions the workers recorded, shared with the tasks.
    final class Ledger: Sendable {
        private struct State {
            var acknowledged = Set<Int>()
            var unreplicated = Set<Int>()
            var failed = 0
            var executions: [Int: Int] = [:]
        }
        private let state = Mutex(State())

        /// A stop signal shared with the producer task.
        final class Flag: Sendable {
            private let value = Atomic<Bool>(false)
            var isSet: Bool { value.load(ordering: .relaxed) }
            func set() { value.store(true, ordering: .relaxed) }
        }

        func acknowledge(_ id: Int) { state.withLock { _ = $0.acknowledged.insert(id) } }
        func unreplicated(_ id: Int) { state.withLock { _ = $0.unreplicated.insert(id) } }
        func fail() { state.withLock { $0.failed += 1 } }
        func executed(_ id: Int) { state.withLock { $0.executions[id, default: 0] += 1 } }
        var acknowledgedCount: Int { state.withLock { $0.acknowledged.count } }
        var executedCount: Int { state.withLock { $0.executions.count } }
        func snapshot() -> (acknowledged: Set<Int>, unreplicated: Set<Int>, failed: Int, executions: [Int: Int]) {
            state.withLock { ($0.acknowledged, $0.unreplicated, $0.failed, $0.executions) }
        }
    }

    static func measure(label: String, replication: RedisReplication?, laggingReplica: Bool) async throws -> FailoverFigures {
        let cluster = try await SentinelCluster.start()
        defer { cluster.stop() }
        let url = cluster.url()
        let primary = try await cluster.masterPort()
        let ledger = Ledger()
        let harness = try await WorkerHarness.make("failover", server: cluster.node(port: primary), url: url)
        var registry = TaskRegistry()
        registry.register("failover.job", maxRetries: 3) { arguments, _ in
            // Some work, so the workers hold jobs in flight and a backlog builds (the producer is faster).
            try await Task.sleep(for: .milliseconds(10))
            if let id = arguments.kwargs["id"]?.intValue { ledger.executed(id) }
        }
        var setup = try harness.configuration(concurrency: 2, prefetch: 2)
        // With WAIT, the workers' settlements wait for the replica too.
        setup.source.replication = replication ?? RedisReplication.none
        // A worker's heartbeat must outlive the outage, or the other worker reaps it mid-failover.
        setup.heartbeatTTL = .seconds(15)
        setup.orphanSweepInterval = .milliseconds(500)
        setup.redis.reconnectBackoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(250))
        var producerConfiguration = try RedisConfiguration(url: url)
        producerConfiguration.reconnectBackoff = setup.redis.reconnectBackoff
        let executor = RedisExecutor(
            client: RedisClient(configuration: producerConfiguration, name: "failover-producer", logger: WorkerKit.quiet),
            namespace: harness.namespace, replication: replication ?? RedisReplication.none, logger: WorkerKit.quiet)

        let first = WorkerRun(Worker(configuration: rename(setup, "fo-1"), registry: registry, logger: WorkerKit.quiet))
        let second = WorkerRun(Worker(configuration: rename(setup, "fo-2"), registry: registry, logger: WorkerKit.quiet))
        let stopProducing = Ledger.Flag()
        let producer = Task {
            var next = 0
            while !stopProducing.isSet {
                let id = next
                next += 1
                do {
                    try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) {
                        try Airlock.enqueue(name: "failover.job", kwargs: ["id": .int(id)])
                    }
                    ledger.acknowledge(id)
                } catch let error as DispatchError {
                    if (error.underlying as? RedisExecutorError)?.kind == .notReplicated { ledger.unreplicated(id) } else { ledger.fail() }
                } catch {
                    ledger.fail()
                }
                // A steady stream, not a flood: the two cores also run the servers and workers.
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        func finish() async {
            stopProducing.set()
            _ = await producer.value
            _ = try? await first.stop(within: .seconds(20))
            _ = try? await second.stop(within: .seconds(20))
            await executor.client.close()
        }
        do {
            try await WorkerKit.eventually("a steady state before the kill", timeout: .seconds(60)) {
                ledger.acknowledgedCount >= 300 && ledger.executedCount >= 200
            }
            let inspector = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: primary), logger: WorkerKit.quiet)
            var inFlight = 0
            for worker in [first.worker.id, second.worker.id] {
                inFlight += (try? await inspector.send("LLEN", harness.keys.inflight("default", worker: worker)).int) ?? 0
            }
            await inspector.close()
            var acknowledgedWhileCutOff = 0
            if laggingReplica {
                // The replica sleeps (so it cannot reconnect) while the primary drops its link; what
                // the primary acknowledges from then on exists nowhere else.
                let replicaPort = try #require(try await cluster.replicaPorts(of: primary).first)
                let sleeper = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: replicaPort), logger: WorkerKit.quiet)
                try await sleeper.connect()
                let asleep = Task { try await sleeper.send(RedisCommand("DEBUG", "SLEEP", "0.8"), timeout: .seconds(10)) }
                let killer = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: primary), logger: WorkerKit.quiet)
                _ = try await killer.send("CLIENT", "KILL", "TYPE", "replica")
                await killer.close()
                let atCutOff = ledger.acknowledgedCount
                // The fault's shape, not a condition: the primary dies 300 ms after its replica was cut off.
                try await Task.sleep(for: .milliseconds(300))
                acknowledgedWhileCutOff = ledger.acknowledgedCount - atCutOff
                cluster.node(port: primary)?.kill9()
                _ = try? await asleep.value
                await sleeper.close()
            } else {
                cluster.node(port: primary)?.kill9()
            }
            let acknowledgedAtKill = ledger.acknowledgedCount
            let executedAtKill = ledger.executedCount
            let killedAt = ContinuousClock.now
            let newMaster = try await cluster.awaitFailover(awayFrom: primary)
            let failover = killedAt.duration(to: .now)
            // A new replica, so WAIT can be satisfied again (the old primary stays dead: restarted
            // without persistence it would come back empty).
            try await cluster.addReplica(of: newMaster)
            try await WorkerKit.eventually("the producer and workers to carry on with the new master", timeout: .seconds(60)) {
                ledger.acknowledgedCount >= acknowledgedAtKill + 200 && ledger.executedCount >= executedAtKill + 200
            }
            stopProducing.set()
            _ = await producer.value
            // Drained: nothing ready, nothing in flight, no retry pending — what is not executed now never will be.
            let reader = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: newMaster), logger: WorkerKit.quiet)
            try await WorkerKit.eventually("the queue to drain on the new master", timeout: .seconds(60)) {
                var held = try await reader.send("LLEN", harness.keys.ready("default")).integer()
                held += try await reader.send("ZCARD", harness.keys.delayed("default")).integer()
                for worker in [first.worker.id, second.worker.id] {
                    held += try await reader.send("LLEN", harness.keys.inflight("default", worker: worker)).integer()
                }
                return held == 0
            }
            await reader.close()
            await finish()
            let (acknowledged, unreplicated, failed, executions) = ledger.snapshot()
            return FailoverFigures(
                label: label, replicated: replication?.isRequired == true, acknowledged: acknowledged.count,
                lost: acknowledged.filter { executions[$0] == nil }.count,
                unreplicated: unreplicated.count, unreplicatedLost: unreplicated.filter { executions[$0] == nil }.count,
                failed: failed, duplicates: executions.values.reduce(0) { $0 + max(0, $1 - 1) },
                inFlightAtKill: inFlight, capacity: 2 * (setup.concurrency + setup.prefetch), acknowledgedWhileCutOff: acknowledgedWhileCutOff,
                acknowledgedAfterFailover: acknowledged.count - acknowledgedAtKill, executedAfterFailover: executions.count - executedAtKill,
                failover: failover)
        } catch {
            await finish()
            throw error
        }
    }

    private static func rename(_ setup: WorkerSetup, _ name: String) -> WorkerSetup {
        var setup = setup
        setup.name = name
        return setup
    }
}
