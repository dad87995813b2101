import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 4 (4): crash recovery — a worker whose heartbeat expired gets its in-flight jobs
/// returned to the front (right end) of their ready lists by any live worker.
@Suite("Worker: crash recovery", .timeLimit(.minutes(5)))
struct WorkerRecoveryTests {
    static func markRegistry(_ probe: WorkerProbe) -> TaskRegistry {
        var registry = TaskRegistry()
        registry.register("mark") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        return registry
    }

    static func mark(_ token: String) -> [UInt8] {
        WorkerKit.envelope(task: "mark", queue: "default", id: "id-\(token)", kwargs: ["token": .string(token)])
    }

    /// Seeds a worker that registered, took `tokens` (in that order) and died: no heartbeat key.
    static func seedDeadWorker(_ harness: WorkerHarness, id: String, tokens: [String]) async throws {
        try await harness.command("SADD", harness.keys.workers, id)
        try await harness.command("SADD", harness.keys.queues, "default")
        try await harness.command("HSET", harness.keys.workerInfo(id), "id", id)
        for token in tokens {
            // Exactly what a fetch does: the oldest taken ends at the right of the in-flight list.
            _ = try await harness.redis.send([Array("LPUSH".utf8), Array(harness.keys.inflight("default", worker: id).utf8), mark(token)])
        }
    }

    @Test func deadWorkersJobsGoBackToTheFrontOldestFirstAndLiveWorkersAreLeftAlone() async throws {
        let harness = try await WorkerHarness.make("reap-ghost")
        let probe = WorkerProbe()
        try await Self.seedDeadWorker(harness, id: "ghost-1", tokens: ["g1", "g2", "g3"])
        // A live worker (heartbeat present) holding a job: not to be touched.
        try await harness.command("SADD", harness.keys.workers, "alive-1")
        try await harness.command("SET", harness.keys.heartbeat("alive-1"), "1", "PX", "60000")
        _ = try await harness.redis.send([Array("LPUSH".utf8), Array(harness.keys.inflight("default", worker: "alive-1").utf8), Self.mark("l1")])
        // A backlog that was waiting all along.
        try await harness.pushRaw(Self.mark("b1"))
        try await harness.pushRaw(Self.mark("b2"))
        // Paused, so the recovered order can be read before anything runs.
        try await harness.command("SET", harness.keys.paused("default"), "1")

        let configuration = try harness.configuration(concurrency: 1, prefetch: 0)
        try await harness.withWorker(configuration, registry: Self.markRegistry(probe)) { worker in
            try await WorkerKit.eventually("the ghost's jobs recovered and the ghost unregistered") {
                guard try await harness.inflightCount(worker: "ghost-1") == 0 else { return false }
                return try await !harness.workers().contains("ghost-1")
            }
            let order = try await harness.readyInConsumptionOrder().map { $0["kwargs"]?["token"]?.stringValue ?? "?" }
            #expect(order == ["g1", "g2", "g3", "b1", "b2"], "recovered jobs go to the consuming end, oldest taken first")
            let workers = Set(try await harness.workers())
            #expect(!workers.contains("ghost-1"), "the dead worker is unregistered")
            #expect(workers.contains("alive-1") && workers.contains(worker.id))
            #expect(try await harness.command("EXISTS", harness.keys.workerInfo("ghost-1")).int == 0, "its info hash is deleted")
            #expect(try await harness.inflightCount(worker: "alive-1") == 1, "a live worker's jobs are never taken")

            try await harness.command("DEL", harness.keys.paused("default"))
            try await WorkerKit.eventually("all five ran") { probe.events.count == 5 }
        }
        #expect(probe.events == ["g1", "g2", "g3", "b1", "b2"])
    }

    @Test func runningWorkersReapAWorkerWhoseHeartbeatExpires() async throws {
        let harness = try await WorkerHarness.make("reap-later")
        let probe = WorkerProbe()
        try await harness.withWorker(try harness.configuration(), registry: Self.markRegistry(probe)) { worker in
            try await harness.waitUntilRegistered(worker)
            // Alive (heartbeat first, so no reaper pass sees it without one), then silent: the
            // heartbeat gets its expiry only once the jobs are seeded and checked, so a slow machine
            // cannot let it lapse early.
            try await harness.command("SET", harness.keys.heartbeat("fading-1"), "1")
            try await Self.seedDeadWorker(harness, id: "fading-1", tokens: ["f1", "f2"])
            #expect(try await harness.inflightCount(worker: "fading-1") == 2, "not reaped while its heartbeat lives")
            // Taken before the PEXPIRE is sent, so the key cannot expire before `expiresAt`.
            let expiresAt = ContinuousClock.now + .milliseconds(800)
            try await harness.command("PEXPIRE", harness.keys.heartbeat("fading-1"), "800")
            try await WorkerKit.eventually("the expired worker's jobs ran") { probe.events.count == 2 }
            let recovery = ContinuousClock.now - expiresAt
            print("in-process reaper: jobs of a worker whose heartbeat expired ran \(recovery) after expiry (reaper interval 300 ms)")
            #expect(recovery > .zero, "not before the heartbeat expired")
            #expect(Set(probe.events) == ["f1", "f2"])
            #expect(try await !harness.workers().contains("fading-1"))
        }
    }

    /// Heartbeats go on while tasks run: a job running longer than the heartbeat TTL is never
    /// taken away by another worker's reaper (which would run it twice).
    @Test func aBusyWorkerKeepsItsHeartbeatAndItsJobs() async throws {
        let harness = try await WorkerHarness.make("reap-busy")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("long") { _, _ in
            probe.record("run")
            try await latch.wait()
        }
        try await harness.enqueue { try Airlock.enqueue(name: "long") }
        // A short TTL (2 s, twenty heartbeats) so the test spans several of them.
        var busyConfiguration = try harness.configuration()
        busyConfiguration.heartbeatInterval = .milliseconds(100)
        busyConfiguration.heartbeatTTL = .seconds(2)
        try await harness.withWorker(busyConfiguration, registry: registry) { busy in
            try await WorkerKit.eventually("the long task runs") { latch.waiting == 1 }
            try await harness.withWorker(try harness.configuration(), registry: registry) { other in
                try await harness.waitUntilRegistered(other)
                // Three heartbeat TTLs and twenty reaper passes of the other worker.
                let until = ContinuousClock.now + .seconds(6)
                while ContinuousClock.now < until {
                    #expect(try await harness.command("EXISTS", harness.keys.heartbeat(busy.id)).int == 1, "heartbeat lapsed while busy")
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await harness.inflightCount(worker: busy.id) == 1, "the busy worker still holds its job")
                #expect(try await harness.readyCount() == 0)
                let inFlight = try await harness.command("HGET", harness.keys.workerInfo(busy.id), "in_flight").string
                #expect(inFlight == "1", "the info hash reports the job in flight")
            }
            latch.open()
            try await WorkerKit.eventually("processed") { try await harness.stats()["processed"] == 1 }
        }
        #expect(probe.count("run") == 1, "the job ran once")
    }

    /// A real `airlock-workerd` holding jobs is killed with SIGKILL; an in-process worker
    /// recovers every job it held once its heartbeat expires, and each runs exactly once.
    @Test func jobsOfAKilledDaemonAreRecoveredAndRun() async throws {
        let harness = try await WorkerHarness.make("crash")
        let tokens = (0..<8).map { "crash-\($0)" }
        try await harness.enqueue {
            for token in tokens {
                try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 60, "token": .string(token)])
            }
        }
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--concurrency", "4", "--name", "crashy", "--log-level", "warning",
        ])
        let killedAt: ContinuousClock.Instant
        let daemonID: String
        do {
            try await WorkerKit.eventually("the daemon holds all 8 jobs (4 running + 4 prefetched)", timeout: .seconds(20)) {
                guard let id = try await harness.workers().first(where: { $0.hasPrefix("crashy-") }) else { return false }
                return try await harness.inflightCount(worker: id) == 8
            }
            daemonID = try #require(try await harness.workers().first { $0.hasPrefix("crashy-") })
            daemon.send(SIGKILL)
            killedAt = .now
            let exit = try await daemon.waitForExit(within: .seconds(5))
            #expect(!exit.exited && exit.status == SIGKILL)
        } catch {
            await daemon.killIfRunning()
            throw error
        }
        #expect(try await harness.inflightCount(worker: daemonID) == 8, "a crash leaves the jobs in the in-flight list")

        // This worker's airlock.sleep records the token instead of sleeping a minute.
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("airlock.sleep") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        try await harness.withWorker(try harness.configuration(concurrency: 4), registry: registry) { _ in
            try await WorkerKit.eventually("all 8 recovered jobs ran", timeout: .seconds(20), poll: .milliseconds(10)) {
                probe.events.count >= 8
            }
            let recovery = ContinuousClock.now - killedAt
            print("crash recovery: SIGKILL to all 8 held jobs run elsewhere in \(recovery) (the daemon's heartbeat TTL is the default 5 s)")
            try await WorkerKit.eventually("all acknowledged") { try await harness.stats()["processed"] == 8 }
        }
        #expect(probe.events.sorted() == tokens.sorted(), "each recovered job ran exactly once")
        #expect(try await harness.inflightCount(worker: daemonID) == 0)
        #expect(try await !harness.workers().contains(daemonID), "the dead daemon is unregistered")
        #expect(try await harness.readyCount() == 0)
    }
}
