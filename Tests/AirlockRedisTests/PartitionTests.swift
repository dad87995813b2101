import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// The issue: after a connection times out, a request the kernel was still retransmitting can
/// execute on Redis later — after the client reconnected and moved on. A late fetch strands jobs in
/// a live worker's in-flight list. Two defences are proven here against a real redis-server behind
/// a test-controlled ``TCPProxy`` (a silent partition: no RST, no FIN): the reconnect handshake's
/// `CLIENT KILL ID` of the connection that failed mid-request, and the worker's orphan sweep for
/// when that kill is not allowed.
@Suite("Partitions: late requests and stranded jobs", .timeLimit(.minutes(5)))
struct PartitionTests {
    typealias Kit = ConnectionTestKit

    // MARK: - Connection level

    /// The RPUSH sent into the partition times out; the same client's next command reconnects (a new
    /// connection flows) and its handshake kills the old one, so the RPUSH, delivered late, never runs.
    @Test func lateRequestOnAKilledConnectionNeverRuns() async throws {
        let server = try await RedisServer.shared()
        let proxy = try TCPProxy(targetPort: server.port)
        defer { proxy.close() }
        let key = RedisServer.uniqueNamespace("late-killed")
        let direct = try Kit.client(server.url)
        let client = try Kit.client("redis://127.0.0.1:\(proxy.port)/0") { $0.commandTimeout = .milliseconds(300) }
        let oldID = try #require(try await client.send("CLIENT", "ID").int)

        proxy.stall(.existingConnections)
        let error = await #expect(throws: RedisError.self) { try await client.send("RPUSH", key, "late") }
        #expect(error?.kind == .timedOut)
        #expect(error?.mayHaveBeenApplied == true)
        let held = try #require(proxy.stalledConnections.first).heldBytes
        #expect(held > 0, "the RPUSH is in transit")
        #expect(try await Self.isConnected(oldID, on: direct), "the client's close is held too: Redis still sees the old connection")

        #expect(try await client.send("PING") == .status("PONG"))
        let newID = try #require(try await client.send("CLIENT", "ID").int)
        #expect(newID != oldID)
        #expect(try await !Self.isConnected(oldID, on: direct), "the reconnect's handshake killed the old connection")
        try await WorkerKit.eventually("the proxy sees Redis close the old connection") {
            proxy.stalledConnections.first?.serverClosed == true
        }

        let release = proxy.release()
        #expect(release.delivered == 0)
        #expect(release.dropped == held, "the late RPUSH had nowhere to go")
        try await WorkerKit.eventually("the proxy retires the old connection") { proxy.connectionCount == 1 }
        #expect(try await direct.send("LLEN", key).int == 0, "the late RPUSH never ran")
        #expect(try await client.send("LLEN", key).int == 0)
        for client in [client, direct] { await client.close() }
    }

    /// The control: the same partition, but the client never reconnects, so nothing kills its old
    /// connection. The RPUSH the client reported as timed out runs when the partition lifts.
    @Test func lateRequestOnAConnectionNobodyKillsRunsLate() async throws {
        let server = try await RedisServer.shared()
        let proxy = try TCPProxy(targetPort: server.port)
        defer { proxy.close() }
        let key = RedisServer.uniqueNamespace("late-unkilled")
        let direct = try Kit.client(server.url)
        let client = try Kit.client("redis://127.0.0.1:\(proxy.port)/0") { $0.commandTimeout = .milliseconds(300) }
        let oldID = try #require(try await client.send("CLIENT", "ID").int)

        proxy.stall(.existingConnections)
        let error = await #expect(throws: RedisError.self) { try await client.send("RPUSH", key, "late") }
        #expect(error?.kind == .timedOut)
        #expect(error?.mayHaveBeenApplied == true)
        #expect(try await direct.send("LLEN", key).int == 0, "held, not run yet")

        let release = proxy.release()
        #expect(release.delivered > 0)
        #expect(release.dropped == 0)
        try await WorkerKit.eventually("the late RPUSH runs") { try await direct.send("LLEN", key).int == 1 }
        try await WorkerKit.eventually("the held close follows it") { try await !Self.isConnected(oldID, on: direct) }
        for client in [client, direct] { await client.close() }
    }

    /// `heal()` ends a partition without the late delivery; `.allConnections` partitions the
    /// reconnect too (its handshake times out before anything was sent).
    @Test func healDiscardsWhatThePartitionHeld() async throws {
        let server = try await RedisServer.shared()
        let proxy = try TCPProxy(targetPort: server.port)
        defer { proxy.close() }
        let key = RedisServer.uniqueNamespace("late-healed")
        let direct = try Kit.client(server.url)
        let client = try Kit.client("redis://127.0.0.1:\(proxy.port)/0") { $0.commandTimeout = .milliseconds(300) }
        let oldID = try #require(try await client.send("CLIENT", "ID").int)

        proxy.stall(.allConnections)
        let error = await #expect(throws: RedisError.self) { try await client.send("RPUSH", key, "late") }
        #expect(error?.kind == .timedOut)
        let reconnect = await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(reconnect?.mayHaveBeenApplied == false, "the new connection is partitioned too: \(String(describing: reconnect))")
        #expect(proxy.acceptedCount == 2)

        proxy.heal()
        try await WorkerKit.eventually("both partitioned connections are closed") { proxy.connectionCount == 0 }
        try await WorkerKit.eventually("Redis sees the old connection go") { try await !Self.isConnected(oldID, on: direct) }
        #expect(try await direct.send("LLEN", key).int == 0, "what was held was discarded")
        #expect(try await client.send("PING") == .status("PONG"), "new connections flow after heal()")
        for client in [client, direct] { await client.close() }
    }

    private static func isConnected(_ id: Int, on client: RedisClient) async throws -> Bool {
        let list = try await client.send("CLIENT", "LIST", "ID", String(id)).string ?? ""
        return list.contains("id=\(id) ")
    }

    // MARK: - Worker level

    /// A worker behind the proxy; its fetcher writes a fetch into a partition of its existing
    /// connections. With `CLIENT KILL` allowed the late fetch never runs; with an ACL that forbids it
    /// the late fetch runs after the worker reconnected and reconciled, strands jobs, and the orphan
    /// sweep returns them. Either way every job runs and the in-flight list empties while the worker lives.
    @Test(arguments: [true, false])
    func everyJobRunsAfterALateFetch(killAllowed: Bool) async throws {
        let acl = "user worker on >worker-pw ~* &* +@all" + (killAllowed ? "" : " -client|kill")
        let server = try await RedisServer.start(.init(extraConfig: [acl]))
        let harness = try await WorkerHarness.make("partition", server: server)
        let proxy = try TCPProxy(targetPort: server.port)
        defer { proxy.close() }

        // held-*: occupy both slots, so the fetcher sits idle on its connection when the partition
        // starts; job-*: wait at a second gate, so jobs are still ready when the late fetch arrives.
        let first = WorkerLatch()
        let second = WorkerLatch()
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("partition.job") { arguments, _ in
            let token = arguments.kwargs["token"]?.stringValue ?? "?"
            probe.record(token)
            try await (token.hasPrefix("held") ? first : second).wait()
        }
        let tokens = ["held-0", "held-1"] + (0..<20).map { "job-\($0)" }
        try await harness.enqueue {
            for token in tokens { try Airlock.enqueue(name: "partition.job", kwargs: ["token": .string(token)]) }
        }

        var configuration = try harness.configuration(concurrency: 2, prefetch: 0)
        configuration.redis = try RedisConfiguration(url: "redis://worker:worker-pw@127.0.0.1:\(proxy.port)/0")
        configuration.redis.commandTimeout = .milliseconds(300)
        configuration.blockTimeout = .milliseconds(200)
        configuration.orphanSweepInterval = .seconds(1)
        configuration.heartbeatTTL = .seconds(5)
        let sink = WorkerLogSink()
        let run = WorkerRun(Worker(configuration: configuration, registry: registry, logger: sink.logger))
        let worker = run.worker
        do {
            try await WorkerKit.eventually("both held jobs run") { first.waiting == 2 }
            proxy.stall(.existingConnections)
            // The held jobs settle on a fresh connection; the freed slots make the fetcher write its
            // next fetch into the partition. It times out, reconnects, reconciles and fetches again.
            first.open()
            try await WorkerKit.eventually("the worker fetches again after reconnecting", timeout: .seconds(20)) { second.waiting == 2 }
            #expect(proxy.stalledConnections.contains { $0.heldBytes > 0 }, "a request is in transit")
            if killAllowed {
                try await WorkerKit.eventually("every connection that failed mid-request is killed", timeout: .seconds(20)) {
                    proxy.stalledConnections.allSatisfy { $0.heldBytes == 0 || $0.serverClosed }
                }
            }
            let release = proxy.release()
            print("partition (CLIENT KILL \(killAllowed ? "allowed" : "forbidden")): released \(release.delivered) bytes late, dropped \(release.dropped)")
            if killAllowed {
                #expect(release.delivered == 0, "nothing reached a live connection")
                #expect(release.dropped > 0)
            } else {
                #expect(release.delivered > 0, "the late fetch reached Redis")
            }
            second.open()

            try await WorkerKit.eventually("every job ran and nothing is left in flight", timeout: .seconds(30)) {
                let ran = Set(probe.events)
                let ready = try await harness.readyCount()
                let inFlight = try await harness.inflightCount(worker: worker.id)
                return tokens.allSatisfy(ran.contains) && ready == 0 && inFlight == 0
            }
            #expect(run.result == nil, "the worker is still running")
            if killAllowed {
                #expect(sink.contains("Killed the connection that failed mid-request"))
                #expect(!sink.contains("returned stranded in-flight jobs"), "\(sink.messages)")
            } else {
                #expect(sink.contains("Could not kill the connection that failed mid-request"))
                #expect(sink.contains("returned stranded in-flight jobs"), "the late fetch stranded jobs the sweep returned")
            }
            try await run.stop().get()
        } catch {
            first.open()
            second.open()
            _ = try? await run.stop()
            throw error
        }
        let runs = probe.events
        let duplicates = runs.count - Set(runs).count
        print("partition (CLIENT KILL \(killAllowed ? "allowed" : "forbidden")): \(tokens.count) jobs, \(runs.count) runs, \(duplicates) duplicates")
        #expect(Set(runs) == Set(tokens), "no job lost, none invented")
        #expect(try await harness.dead().isEmpty)
        #expect(try await harness.inflightCount(worker: worker.id) == 0)
    }

    // MARK: - The orphan sweep alone

    /// A job pushed straight into a running worker's in-flight list (what a late fetch does) is
    /// returned by the sweep and runs once; the jobs the worker holds, running or prefetched, stay
    /// in flight across many sweeps and run once each.
    @Test func sweepReturnsAStrandedJobAndLeavesHeldOnesAlone() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("orphan-sweep", server: server)
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("hold") { arguments, _ in
            probe.record(arguments.kwargs["token"]?.stringValue ?? "?")
            try await latch.wait()
        }
        registry.register("mark") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        let held = ["hold-0", "hold-1", "hold-2"]
        try await harness.enqueue {
            for token in held { try Airlock.enqueue(name: "hold", kwargs: ["token": .string(token)]) }
        }
        var configuration = try harness.configuration(concurrency: 2, prefetch: 1)
        configuration.orphanSweepInterval = .milliseconds(300)
        let run = WorkerRun(Worker(configuration: configuration, registry: registry, logger: WorkerKit.quiet))
        let worker = run.worker
        let inflight = harness.keys.inflight("default", worker: worker.id)
        do {
            try await WorkerKit.eventually("two held jobs run and a third waits in the worker") {
                let inFlight = try await harness.inflightCount(worker: worker.id)
                let ready = try await harness.readyCount()
                return latch.waiting == 2 && inFlight == 3 && ready == 0
            }
            let stranded = WorkerKit.envelope(task: "mark", queue: "default", kwargs: ["token": "stranded"])
            _ = try await harness.redis.send([Array("LPUSH".utf8), Array(inflight.utf8), stranded])

            // Every slot is taken, so the returned job waits in the ready list where the test can see it.
            try await WorkerKit.eventually("the sweep returns the stranded job") {
                let ready = try await harness.readyCount()
                let inFlight = try await harness.inflightCount(worker: worker.id)
                return ready == 1 && inFlight == 3
            }
            // Each sweep of the one queue is one LRANGE; this server serves only this test, and the
            // test itself polls with LLEN.
            let sweeps = try await WorkerServerStats.commandCalls(harness.redis)["lrange"] ?? 0
            try await WorkerKit.eventually("three more sweeps") {
                (try await WorkerServerStats.commandCalls(harness.redis)["lrange"] ?? 0) >= sweeps + 3
            }
            let stillInFlight = try await harness.list(inflight).map { try WorkerKit.object($0)["kwargs"]?.objectValue?["token"]?.stringValue ?? "?" }
            #expect(stillInFlight.sorted() == held, "the sweep never returns a job the worker holds")
            #expect(try await harness.list(harness.keys.ready("default")) == [stranded])
            #expect(latch.arrived == 2)

            latch.open()
            try await WorkerKit.eventually("everything ran and nothing is left in flight") {
                let inFlight = try await harness.inflightCount(worker: worker.id)
                let ready = try await harness.readyCount()
                return probe.events.count == 4 && inFlight == 0 && ready == 0
            }
            #expect(run.result == nil, "the worker is still running")
            try await run.stop().get()
        } catch {
            latch.open()
            _ = try? await run.stop()
            throw error
        }
        #expect(probe.events.sorted() == held + ["stranded"], "each job ran exactly once")
    }
}
