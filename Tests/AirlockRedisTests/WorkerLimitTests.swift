import Airlock
import AirlockRedis
import AirlockRedisClient
import AirlockTestSupport
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 19 (2): fleet-wide per-queue limits on a real Redis — a rate over three workers, a
/// concurrency over three workers and over `airlock-workerd` processes one of which is killed
/// with SIGKILL, over-limit jobs keeping their place, and a waiting worker woken by a settlement.
@Suite("Worker: queue limits", .timeLimit(.minutes(5)))
struct WorkerLimitTests {
    /// Three workers of one namespace, each with its own source and connections.
    static func fleet(_ harness: WorkerHarness, _ configuration: WorkerSetup, registry: TaskRegistry) -> [WorkerRun] {
        (0..<3).map { _ in WorkerRun(Worker(configuration: configuration, registry: registry, logger: WorkerKit.quiet)) }
    }

    static func enqueue(_ harness: WorkerHarness, _ task: String, count: Int, kwargs: (Int) -> [String: JSONValue] = { _ in [:] }) async throws {
        try await harness.enqueue {
            for index in 0..<count { try Airlock.enqueue(name: task, kwargs: kwargs(index)) }
        }
    }

    /// Three `airlock-workerd` processes (each its own scheduler, so the test process's load does
    /// not decide how fast they wake) drain 400 jobs under a limit of 100/s. The rate is read from
    /// Redis: the ready list's length sampled together with Redis's `TIME` in one pipeline, so when
    /// the test process samples does not matter — each count has its exact server time — and what
    /// is measured is what the limit governs, jobs taken (a prefetch of 40 lets a host's stall in
    /// running them not hold the fetchers back).
    @Test func aRateLimitHoldsThreeWorkersToItsRate() async throws {
        let harness = try await WorkerHarness.make("limit-rate")
        let total = 400
        try await Self.enqueue(harness, "airlock.ping", count: total)
        try await harness.command("SET", harness.keys.paused("default"), "1")
        // A burst of 20 (200 ms worth) keeps the tokens a loaded host's late wake-ups would otherwise
        // forfeit (the default, 2, covers 20 ms): the rate is what is measured, not the host's latency.
        // Every daemon declares the limit (the record is written once: the same limit is left alone).
        let arguments = [
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--queues", "default", "--concurrency", "10",
            "--prefetch", "40", "--limit", "default=rate:100/1s,burst:20", "--log-level", "warning",
        ]
        var daemons: [WorkerDaemon] = []
        for _ in 0..<3 { daemons.append(try await WorkerDaemon.launch(arguments)) }
        defer { for daemon in daemons { Task { await daemon.killIfRunning() } } }
        try await Self.releaseOnceAllRegistered(harness, daemons)

        var samples: [(milliseconds: Double, processed: Int)] = []
        while samples.last.map({ $0.processed < total }) ?? true {
            let replies = try await harness.redis.pipeline([RedisCommand("TIME"), RedisCommand("LLEN", harness.keys.ready("default"))])
            let time = try replies[0].strings()
            samples.append(((Double(time[0]) ?? 0) * 1000 + (Double(time[1]) ?? 0) / 1000, total - (replies[1].int ?? total)))
            if samples.count > 1, samples[samples.count - 1].milliseconds - samples[0].milliseconds > 300_000 {
                Issue.record("no drain after 5 minutes: \(samples.last!.processed) of \(total) taken; stderr: \(daemons[0].stderr.suffix(1000))")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await WorkerKit.eventually("all \(total) processed") { try await harness.stats()["processed"] == total }
        for daemon in daemons { daemon.send(SIGTERM) }
        for daemon in daemons { _ = try await daemon.waitForExit(within: .seconds(30)) }

        // From the first sample at 10% to the first at 90%: leaves out the initial burst (up to 20
        // at once) and the tail. A rate, not a bound on the machine's speed: what the issue
        // promises, within 10% (a catch-up after a stall can add at most the burst: 20 jobs over
        // ~3.2 s, 6%).
        let from = try #require(samples.first { $0.processed >= total / 10 })
        let to = try #require(samples.first { $0.processed >= total - total / 10 })
        let rate = Double(to.processed - from.processed) / ((to.milliseconds - from.milliseconds) / 1000)
        print("rate limit 100/s over 3 daemons: \(to.processed - from.processed) jobs taken in \(Int(to.milliseconds - from.milliseconds)) ms of Redis time = \(rate) jobs/s")
        #expect((90.0...110.0).contains(rate), "measured \(rate) jobs/s for a limit of 100/s")
        #expect(try await harness.dead().isEmpty)
    }

    /// The queue stays paused while the daemons start (launching three on a loaded host takes a
    /// while), and is resumed once all three are registered and the limit is declared, so the jobs
    /// wait for the whole fleet.
    static func releaseOnceAllRegistered(_ harness: WorkerHarness, _ daemons: [WorkerDaemon]) async throws {
        try await WorkerKit.eventually("three daemons registered and the limit declared") {
            guard try await harness.command("EXISTS", harness.keys.limit("default")).int == 1 else { return false }
            return try await harness.workers().count == daemons.count
        }
        try await harness.command("DEL", harness.keys.paused("default"))
    }

    @Test func aConcurrencyLimitHoldsThreeWorkersOfTenSlotsToFive() async throws {
        let harness = try await WorkerHarness.make("limit-concurrency")
        let total = 120
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("work") { _, _ in try await probe.running { try await Task.sleep(for: .milliseconds(15)) } }
        try await Self.enqueue(harness, "work", count: total)
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        try await admin.setLimit(try QueueLimit(concurrency: 5), on: "default")
        let runs = Self.fleet(harness, try harness.configuration(concurrency: 10, prefetch: 10), registry: registry)
        try await WorkerKit.eventually("\(total) jobs processed") { try await harness.stats()["processed"] == total }
        for run in runs { try await run.stop().get() }

        // The probe is shared by the three workers of this process: the fleet's running count.
        #expect(probe.maxRunning <= 5, "at most 5 ran at once across the fleet; saw \(probe.maxRunning)")
        #expect(probe.maxRunning >= 1)
        #expect(try await harness.dead().isEmpty)
        // Clean shutdowns returned every lease.
        #expect(try await harness.command("HLEN", harness.keys.limitHeld("default")).int == 0)
    }

    /// Three daemons of ten slots under a limit of five; one is killed with SIGKILL while it holds
    /// jobs. Every job completes once its lease and jobs are recovered, and the jobs running across
    /// the processes — from `airlock.sleep`'s start/end records, each interval containing the real
    /// run — never exceed five.
    @Test func aKilledDaemonsShareReturnsAndTheLimitHoldsAcrossProcesses() async throws {
        let harness = try await WorkerHarness.make("limit-kill")
        let total = 40
        // 3 s jobs: long beside the moment between reading a daemon's lease and killing it, so the
        // daemon chosen still holds its jobs when the signal lands, however loaded the machine.
        try await Self.enqueue(harness, "airlock.sleep", count: total) { ["seconds": 3.0, "record": .string("j\($0)")] }
        try await harness.command("SET", harness.keys.paused("default"), "1")
        let arguments = [
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--queues", "default", "--concurrency", "10",
            "--limit", "default=concurrency:5", "--log-level", "warning",
        ]
        var daemons: [WorkerDaemon] = []
        for _ in 0..<3 { daemons.append(try await WorkerDaemon.launch(arguments)) }
        defer { for daemon in daemons { Task { await daemon.killIfRunning() } } }
        try await Self.releaseOnceAllRegistered(harness, daemons)

        // A daemon holding jobs: its lease is above zero.
        var holder: (id: String, daemon: WorkerDaemon)?
        try await WorkerKit.eventually("a daemon holds jobs") {
            let leases = try await harness.redis.send("HGETALL", harness.keys.limitHeld("default")).fields()
            for (worker, held) in leases where (Int(held) ?? 0) > 0 {
                let pid = try await harness.redis.send("HGET", harness.keys.workerInfo(worker), "pid").string.flatMap(Int32.init)
                if let daemon = daemons.first(where: { $0.pid == pid }) {
                    holder = (worker, daemon)
                    return true
                }
            }
            return false
        }
        let killed = try #require(holder)
        // Read before the kill: once the dead daemon's heartbeat (5 s TTL) lapses, a live daemon's
        // reaper returns its jobs, and on a loaded machine that can come before any read after it.
        let stranded = try await harness.inflightCount(worker: killed.id)
        #expect(stranded > 0, "the daemon about to be killed holds jobs")
        killed.daemon.send(SIGKILL)
        // Marks the kill in the record at once (the process is gone once the signal is delivered):
        // the killed daemon's open runs end here at the latest, and its lease holds until its
        // heartbeat TTL (5 s) has passed, so nothing of its share has been given away yet.
        try await harness.command("RPUSH", harness.keys.diagRecord, "killed")
        _ = try await killed.daemon.waitForExit(within: .seconds(30))

        try await WorkerKit.eventually("all \(total) jobs completed", timeout: .seconds(120)) { try await harness.stats()["processed"] == total }
        #expect(try await harness.command("HEXISTS", harness.keys.limitHeld("default"), killed.id).int == 0, "the dead daemon's lease was returned")

        let events = try await harness.recorded()
        var running = Set<String>()
        var most = 0
        for (index, event) in events.enumerated() {
            if event == "killed" {
                // A run open here that starts again later was the killed daemon's.
                let rest = events[(index + 1)...]
                for token in running where rest.first(where: { $0.hasPrefix(token + " ") }) == token + " start" { running.remove(token) }
                continue
            }
            let parts = event.split(separator: " ").map(String.init)
            guard parts.count == 2 else { continue }
            if parts[1] == "start" {
                running.insert(parts[0])
                most = max(most, running.count)
            } else {
                running.remove(parts[0])
            }
        }
        // The killed daemon's jobs ran again: a token started before the kill starts again after it.
        let kill = try #require(events.firstIndex(of: "killed"))
        let startedBefore = Set(events[..<kill].filter { $0.hasSuffix(" start") })
        let rerun = events[(kill + 1)...].filter { $0.hasSuffix(" start") && startedBefore.contains($0) }
        #expect(!rerun.isEmpty, "a job the killed daemon held started again on a live daemon")
        #expect(most <= 5, "at most 5 ran at once across the live daemons; saw \(most)")
        let ended = Set(events.filter { $0.hasSuffix(" end") }.map { String($0.dropLast(4)) })
        #expect(ended.count == total, "every job ran to its end")
        #expect(try await harness.dead().isEmpty)
    }

    @Test func jobsOverTheLimitStayReadyInOrderAndAreNotDeadLettered() async throws {
        let harness = try await WorkerHarness.make("limit-order")
        let latch = WorkerLatch()
        var registry = TaskRegistry()
        registry.register("gate") { _, _ in try await latch.wait() }
        try await Self.enqueue(harness, "gate", count: 6) { ["token": .string("t\($0)")] }
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        try await admin.setLimit(try QueueLimit(concurrency: 2), on: "default")
        try await harness.withWorker(try harness.configuration(concurrency: 4, prefetch: 4), registry: registry) { worker in
            try await WorkerKit.eventually("two jobs running") { latch.waiting == 2 }
            let ready = try await harness.readyInConsumptionOrder().map { $0["kwargs"]?["token"]?.stringValue ?? "?" }
            #expect(ready == ["t2", "t3", "t4", "t5"], "the jobs over the limit keep their place")
            #expect(try await harness.inflightCount(worker: worker.id) == 2, "the worker holds no more than the limit, prefetch included")
            let status = try await admin.limit(of: "default")
            #expect(status.leases == [worker.id: 2])
            #expect(try await harness.dead().isEmpty)
            latch.open()
            try await WorkerKit.eventually("all six processed") { try await harness.stats()["processed"] == 6 }
        }
        #expect(try await harness.dead().isEmpty)
    }

    /// The second worker waits on the limit in `BLPOP` (its idle timeout longer than the wait
    /// below, so only a wake token can let it through in time) and takes the job once the first
    /// worker's settlement frees the lease.
    @Test func aWorkerWaitingOnTheLimitIsWokenByASettlement() async throws {
        let harness = try await WorkerHarness.make("limit-wake")
        let latch = WorkerLatch()
        let ranBy = Mutex<[String]>([])
        var registry = TaskRegistry()
        registry.register("gate") { arguments, _ in
            ranBy.withLock { $0.append(arguments.kwargs["token"]?.stringValue ?? "?") }
            try await latch.wait()
        }
        try await Self.enqueue(harness, "gate", count: 2) { ["token": .string("t\($0)")] }
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        try await admin.setLimit(try QueueLimit(concurrency: 1), on: "default")

        let first = WorkerRun(Worker(configuration: try harness.configuration(concurrency: 1), registry: registry, logger: WorkerKit.quiet))
        try await WorkerKit.eventually("the first worker runs a job") { latch.waiting == 1 }
        var patient = try harness.configuration(concurrency: 1)
        patient.blockTimeout = .seconds(600)
        let second = WorkerRun(Worker(configuration: patient, registry: registry, logger: WorkerKit.quiet))
        try await harness.waitUntilRegistered(second.worker)
        try await WorkerKit.eventually("the second worker blocks on the limit's wake list") {
            let clients = try await harness.command("CLIENT", "LIST").string ?? ""
            return clients.split(separator: "\n").contains { $0.contains("cmd=blpop") && $0.contains("name=airlock-fetch") }
        }
        #expect(try await harness.readyCount() == 1)

        // The first worker stops fetching, so only the second can take the job its settlement frees.
        first.worker.shutdown()
        latch.open()
        try await first.waitForExit(within: .seconds(30)).get()
        try await WorkerKit.eventually("the second worker took and ran the job") { try await harness.stats()["processed"] == 2 }
        #expect(ranBy.withLock { $0.count } == 2)

        // Its fetcher now waits for work for up to 600 s; a message on the lane ends the wait.
        second.worker.shutdown()
        try await harness.pushRaw(Array("wake the idle fetcher".utf8))
        try await second.waitForExit(within: .seconds(30)).get()
    }

    @Test func queueLimitsParseAndRefuseWhatCannotBeEnforced() throws {
        let both = try QueueLimit(parsing: "concurrency:5,rate:100/1s")
        #expect(both.concurrency == 5)
        #expect(both.rate?.count == 100)
        #expect(both.rate?.intervalMilliseconds == 1000)
        #expect(both.rate?.burst == 2, "20 ms worth of 100/s")
        #expect(both.description == "concurrency:5,rate:100/1s,burst:2")
        #expect(try QueueLimit(parsing: both.description) == both)
        #expect(try QueueLimit(parsing: "rate:5/500ms").rate?.intervalMilliseconds == 500)
        #expect(try QueueLimit(parsing: "rate:1/s").rate == (try QueueLimit.Rate(1, per: .seconds(1))))
        #expect(try QueueLimit(parsing: "rate:30/2m, burst:10").rate?.burst == 10)
        #expect(try QueueLimit(parsing: "rate:1/1h").rate?.burst == 1, "never below one")

        func kind(_ text: String) -> QueueLimitError.Kind? {
            do { _ = try QueueLimit(parsing: text); return nil } catch { return error.kind }
        }
        #expect(kind("") == .invalidSyntax)
        #expect(kind("concurrency") == .invalidSyntax)
        #expect(kind("concurrency:five") == .invalidSyntax)
        #expect(kind("speed:5") == .invalidSyntax)
        #expect(kind("burst:3") == .invalidSyntax)
        #expect(kind("rate:100") == .invalidSyntax)
        #expect(kind("rate:100/1d") == .invalidSyntax)
        #expect(kind("concurrency:0") == .outOfRange)
        #expect(kind("concurrency:-1") == .outOfRange)
        #expect(kind("rate:0/1s") == .outOfRange)
        #expect(kind("rate:10/0ms") == .outOfRange)
        #expect(kind("rate:10/25h") == .outOfRange)
        #expect(kind("rate:10/1s,burst:0") == .outOfRange)
        #expect(throws: QueueLimitError.self) { try QueueLimit.Rate(1, per: .microseconds(500)) }
        #expect(throws: QueueLimitError.self) { try QueueLimit() }
        do {
            _ = try QueueLimit(parsing: "speed:\u{1B}[31m")
        } catch {
            #expect(!error.description.contains("\u{1B}"), "the message escapes what it quotes")
            #expect(error.description.contains("concurrency:N"), "and says what is expected")
        }
    }

    @Test func aLimitRecordRoundTripsThroughRedisAndClearingRemovesItsKeys() async throws {
        let harness = try await WorkerHarness.make("limit-admin")
        let admin = RedisAdmin(client: harness.redis, namespace: harness.namespace)
        #expect(try await admin.limit(of: "orders").limit == nil)
        let limit = try QueueLimit(parsing: "concurrency:3,rate:10/1s,burst:4")
        #expect(try await admin.setLimit(limit, on: "orders") == nil)
        #expect(try await admin.limit(of: "orders").limit == limit)
        let fields = try await harness.redis.send("HGETALL", harness.keys.limit("orders")).fields()
        #expect(fields == ["concurrency": "3", "rate": "10", "interval_ms": "1000", "burst": "4"])
        let smaller = try QueueLimit(concurrency: 1)
        #expect(try await admin.setLimit(smaller, on: "orders") == limit, "returns what it replaced")
        #expect(try await admin.limit(of: "orders").limit == smaller, "replaced whole, not merged")
        try await harness.command("HSET", harness.keys.limitHeld("orders"), "w1", "1")
        #expect(try await admin.limit(of: "orders").held == 1)
        #expect(try await admin.clearLimit("orders"))
        #expect(try await admin.clearLimit("orders") == false)
        for key in [harness.keys.limit("orders"), harness.keys.limitHeld("orders"), harness.keys.limitRate("orders"), harness.keys.limitWake("orders")] {
            #expect(try await harness.command("EXISTS", key).int == 0, "\(key)")
        }
        await #expect(throws: AdminError.self) { try await admin.setLimit(smaller, on: "bad queue") }
    }
}
