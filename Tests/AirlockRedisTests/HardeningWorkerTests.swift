import Airlock
import AirlockTestSupport
import Foundation
import Logging
import Testing

@testable import AirlockRedis

/// Regression tests for the defects an independent fault-injection and fuzzing run found (issue
/// "Harden against hostile input and faults"), each against a real redis-server.
@Suite("Hardening: hostile numbers, oversized messages, refusals, zombies, logs")
struct HardeningWorkerTests {
    /// A raw message, as a hostile or buggy producer would LPUSH it.
    static func raw(_ fields: [String: JSONValue]) -> [UInt8] { WorkerKit.encode(fields) }

    static func message(id: String, task: String, extra: [String: JSONValue] = [:]) -> [UInt8] {
        var fields: [String: JSONValue] = ["v": 1, "id": .string(id), "task": .string(task), "queue": "default", "enqueued_at": .int(Int(epochMilliseconds()))]
        fields.merge(extra) { _, new in new }
        return raw(fields)
    }

    /// Dead letters by id.
    static func deadByID(_ harness: WorkerHarness, _ queue: String = "default") async throws -> [String: [String: JSONValue]] {
        Dictionary(try await harness.dead(queue).map { ($0["id"]?.stringValue ?? "", $0) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: 1. Numbers from the wire

    @Test func absurdNumbersInAMessageDeadLetterItWithAReasonAndTheWorkerKeepsRunning() async throws {
        let harness = try await WorkerHarness.make("hostile-numbers")
        let cases: [(id: String, task: String, extra: [String: JSONValue], reason: String)] = [
            ("attempt-max", "airlock.fail", ["attempt": .int(Int.max)], "'attempt' is out of range"),
            ("retries-max", "airlock.fail", ["max_retries": .int(Int.max)], "'max_retries' is out of range"),
            ("eta-max", "airlock.ping", ["eta": .int(Int.max)], "'eta' is out of range"),
            ("enqueued-min", "airlock.ping", ["enqueued_at": .int(Int.min)], "'enqueued_at' is out of range"),
            ("expires-huge", "airlock.ping", ["expires": .double(1e300)], "'expires' must be an integer"),
            ("priority-min", "airlock.ping", ["priority": .int(Int.min)], "'priority' is out of range"),
            ("attempt-negative", "airlock.fail", ["attempt": -1], "'attempt' is out of range"),
            ("sleep-forever", "airlock.sleep", ["kwargs": ["seconds": .double(1e300)]], "airlock.sleep needs"),
            ("sleep-nan", "airlock.sleep", ["kwargs": ["seconds": "NaN"]], "airlock.sleep needs"),
        ]
        for item in cases { try await harness.pushRaw(Self.message(id: item.id, task: item.task, extra: item.extra)) }
        try await harness.record(["after"])
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: WorkerKit.quiet))
        do {
            try await WorkerKit.eventually("every hostile message dead-lettered and the good job run") {
                let dead = try await harness.dead().count
                let recorded = try await harness.recorded()
                return dead == cases.count && recorded == ["after"]
            }
            #expect(run.result == nil, "the worker is still running")
        } catch {
            _ = try? await run.stop()
            throw error
        }
        try await run.stop(within: .seconds(20)).get()
        let dead = try await Self.deadByID(harness)
        for item in cases {
            let reason = dead[item.id]?["error"]?.stringValue ?? "(not dead-lettered)"
            #expect(reason.contains(item.reason), "\(item.id): \(reason)")
        }
    }

    @Test func absurdDelayedScoresArePromotedAndResolvedInsteadOfTrappingThePromoter() async throws {
        let harness = try await WorkerHarness.make("hostile-scores")
        let soon = epochMilliseconds() + 300
        let entries: [(score: String, message: [UInt8])] = [
            // Never due by its score, and its eta is out of range: promoted, then dead-lettered.
            ("+inf", Self.message(id: "inf-bad-eta", task: "airlock.record", extra: ["eta": .int(Int.max), "kwargs": ["token": "never"]])),
            // Scored at Int64.max (stored as a double above it), nothing wrong with the message: runs.
            ("9223372036854775807", Self.message(id: "max-score", task: "airlock.record", extra: ["kwargs": ["token": "max-score"]])),
            // Scored far beyond year 9999 but carrying a near eta: back to the delayed set at its eta, then runs.
            ("1e300", Self.message(id: "far-score", task: "airlock.record", extra: ["eta": .int(Int(soon)), "kwargs": ["token": "far-score"]])),
            ("-inf", Self.message(id: "minus-inf", task: "airlock.record", extra: ["kwargs": ["token": "minus-inf"]])),
        ]
        for entry in entries {
            _ = try await harness.redis.send([Array("ZADD".utf8), Array(harness.keys.delayed("default").utf8), Array(entry.score.utf8), entry.message])
        }
        // The crash-loop case was on every start: start twice over the same state.
        for round in 1...2 {
            try await harness.withWorker(try harness.configuration()) { _ in
                try await WorkerKit.eventually("round \(round): the delayed set resolved", timeout: .seconds(20)) {
                    let delayed = try await harness.delayed()
                    let recorded = try await harness.recorded()
                    return delayed.isEmpty && Set(recorded) == ["max-score", "far-score", "minus-inf"]
                }
            }
        }
        let dead = try await Self.deadByID(harness)
        #expect(dead.keys.sorted() == ["inf-bad-eta"])
        #expect(dead["inf-bad-eta"]?["error"]?.stringValue?.contains("'eta' is out of range") == true)
        #expect(try await harness.recorded().count == 3, "each ran once")
    }

    /// A strategy that answers an absurd delay.
    struct CenturiesRetry: RetryStrategy {
        func delay(afterFailures failures: Int) -> Duration { .seconds(Int64.max) }
    }

    @Test func retriesNearTheLimitsNeverOverflow() async throws {
        let harness = try await WorkerHarness.make("hostile-retries")
        var registry = TaskRegistry()
        registry.register("always.fails") { _, _ in throw WorkerTaskError(message: "nope") }
        registry.register("fails.with.a.huge.delay", maxRetries: 1, retry: CenturiesRetry()) { _, _ in throw WorkerTaskError(message: "later") }
        let limit = Envelope.Limits.attempts.upperBound
        try await harness.pushRaw(Self.message(id: "at-the-limit", task: "always.fails", extra: ["attempt": .int(limit - 1), "max_retries": .int(limit)]))
        try await harness.pushRaw(Self.message(id: "huge-delay", task: "fails.with.a.huge.delay"))
        try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
            try await WorkerKit.eventually("the job at the limit is dead and the other waits in the delayed set") {
                let dead = try await Self.deadByID(harness)
                let delayed = try await harness.delayed()
                return dead["at-the-limit"] != nil && !delayed.isEmpty
            }
        }
        let dead = try await Self.deadByID(harness)
        #expect(dead["at-the-limit"]?["attempts"] == .int(limit + 1), "one retry at attempt \(limit), then dead")
        let delayed = try #require(try await harness.delayed().first)
        #expect(delayed.envelope["id"] == "huge-delay")
        #expect(delayed.score == acceptedEpochMilliseconds.upperBound, "an absurd delay is clamped to the end of year 9999")
        #expect(delayed.envelope["eta"] == .int(Int(acceptedEpochMilliseconds.upperBound)))
    }

    // MARK: 11. Oversized messages

    @Test func aMessageOverTheWorkersLimitIsDeadLetteredUnreadWithItsBytesKept() async throws {
        let harness = try await WorkerHarness.make("oversized")
        let big = Self.message(id: "big", task: "airlock.record", extra: ["kwargs": ["token": .string(String(repeating: "x", count: 5000))]])
        try await harness.pushRaw(big)
        try await harness.record(["small"])
        var configuration = try harness.configuration()
        configuration.maxMessageBytes = 4096
        try await harness.withWorker(configuration) { _ in
            try await WorkerKit.eventually("the big message dead and the small job run") {
                let dead = try await harness.dead().count
                let recorded = try await harness.recorded()
                return dead == 1 && recorded == ["small"]
            }
        }
        let entry = try #require(try await harness.dead().first)
        let reason = entry["error"]?.stringValue ?? ""
        #expect(reason.contains("over this worker's limit of 4096"), "\(reason)")
        #expect(entry["raw"]?.stringValue.map { Array($0.utf8) } == big, "the message's bytes are kept, so `dead retry` can send it again")
    }

    // MARK: 4. Refusals

    @Test(arguments: [
        ("-blmove", "blmove"),
        ("-rpop", "can't run this command"),
    ])
    func aMissingPermissionStopsTheWorkerWithAClearError(_ denied: String, _ mentioned: String) async throws {
        let server = try await RedisServer.start(.init(extraConfig: ["user worker on >pw ~* &* +@all \(denied)"]))
        let harness = try await WorkerHarness.make("noperm", server: server, url: server.url(username: "worker", password: "pw"))
        let sink = WorkerLogSink()
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: sink.logger))
        let result = try await run.waitForExit(within: .seconds(30))
        guard case .failure(let error) = result else {
            Issue.record("run() returned normally although Redis refuses a command it needs")
            return
        }
        let redisError = try #require(error as? RedisError, "\(error)")
        #expect(redisError.isConfigurationProblem, "\(redisError)")
        #expect(redisError.description.lowercased().contains(mentioned.lowercased()), "\(redisError)")
        #expect(sink.messages.filter { $0.contains("Redis unavailable") }.isEmpty, "a refusal is not an outage: \(sink.messages)")
    }

    @Test func aMissingPermissionMakesTheDaemonExitWithStatus3AndOneClearLine() async throws {
        let server = try await RedisServer.start(.init(extraConfig: ["user worker on >pw ~* &* +@all -blmove"]))
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", server.url(username: "worker", password: "pw"), "--namespace", RedisServer.uniqueNamespace("noperm-daemon"),
            "--log-level", "warning",
        ])
        let exit: (status: Int32, exited: Bool)
        do {
            exit = try await daemon.waitForExit(within: .seconds(30))
        } catch {
            await daemon.killIfRunning()
            throw error
        }
        #expect(exit.exited && exit.status == 3, "exit \(exit); stderr: \(daemon.stderr)")
        let last = daemon.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains("NOPERM") && last.contains("blmove"), "the last line says what is missing: \(daemon.stderr)")
    }

    @Test func anIdleWorkerAtMaxmemoryPollsQuietlyInsteadOfReportingAnOutage() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("oom-idle", server: server)
        let sink = WorkerLogSink()
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: sink.logger))
        do {
            try await harness.waitUntilRegistered(run.worker)
            try await harness.command("CONFIG", "SET", "maxmemory", "1")
            try await WorkerKit.eventually("the fetcher noticed the refusal") { sink.contains("refuses BLMOVE") }
            try await Task.sleep(for: .seconds(2))   // the measured interval: a retry storm would log many lines
            #expect(sink.messages.filter { $0.contains("refuses BLMOVE") }.count == 1, "said once: \(sink.messages)")
            #expect(sink.messages.filter { $0.contains("Redis unavailable") }.isEmpty, "not an outage: \(sink.messages)")
            #expect(run.result == nil)
            try await harness.command("CONFIG", "SET", "maxmemory", "0")
            try await WorkerKit.eventually("blocking again once Redis accepts BLMOVE", timeout: .seconds(20)) { sink.contains("accepts BLMOVE again") }
            try await harness.record(["after"])
            try await WorkerKit.eventually("a job runs after the refusal") { try await harness.recorded() == ["after"] }
        } catch {
            _ = try? await harness.command("CONFIG", "SET", "maxmemory", "0")
            _ = try? await run.stop()
            throw error
        }
        try await run.stop(within: .seconds(20)).get()
    }

    // MARK: 8. A reaped zombie

    @Test func aWorkerReapedWhileStalledGivesUpItsUnstartedJobsInsteadOfRunningThemTwice() async throws {
        let harness = try await WorkerHarness.make("zombie")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("gate") { _, _ in
            probe.record("gate")
            try await latch.wait()
        }
        registry.register("mark") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        let tokens = (1...5).map { "m\($0)" }
        try await harness.enqueue {
            try Airlock.enqueue(name: "gate")
            for token in tokens { try Airlock.enqueue(name: "mark", kwargs: ["token": .string(token)]) }
        }
        // The zombie: one slot (held by the gate), five prefetched jobs, a heartbeat that would
        // live long — until the test deletes it, as a stall past the TTL would.
        var zombieConfiguration = try harness.configuration(concurrency: 1, prefetch: 5)
        zombieConfiguration.name = "zombie"
        zombieConfiguration.heartbeatInterval = .seconds(2)
        zombieConfiguration.heartbeatTTL = .seconds(60)
        let zombieLog = WorkerLogSink()
        let zombie = WorkerRun(Worker(configuration: zombieConfiguration, registry: registry, logger: zombieLog.logger))
        do {
            try await WorkerKit.eventually("the zombie holds all six") {
                try await harness.inflightCount(worker: zombie.worker.id) == 6 && latch.waiting == 1
            }
            // A live worker reaps it: the six go back to the queue, and it runs them (its own gate waits too).
            try await harness.withWorker(try harness.configuration(concurrency: 2), registry: registry) { _ in
                // The stall: its heartbeat key disappears (deleted again until a reaper has acted,
                // since the zombie's own next beat would otherwise bring it back first).
                try await WorkerKit.eventually("the zombie was reaped") {
                    try await harness.command("DEL", harness.keys.heartbeat(zombie.worker.id))
                    return try await !harness.workers().contains(zombie.worker.id)
                }
                try await WorkerKit.eventually("the reaper returned the zombie's jobs and they ran elsewhere") {
                    tokens.allSatisfy { probe.count($0) == 1 }
                }
                try await WorkerKit.eventually("the zombie's next heartbeat learnt it was reaped") { zombieLog.contains("gave up unstarted jobs") }
                latch.open()
                try await WorkerKit.eventually("both gates finished") { try await harness.stats()["processed"] ?? 0 >= 6 }
            }
            try await WorkerKit.eventually("the zombie re-registered and holds nothing") {
                let registered = try await harness.workers().contains(zombie.worker.id)
                let held = try await harness.inflightCount(worker: zombie.worker.id)
                return registered && held == 0
            }
            #expect(zombie.result == nil, "the zombie keeps running")
        } catch {
            latch.open()
            _ = try? await zombie.stop()
            throw error
        }
        try await zombie.stop(within: .seconds(20)).get()
        for token in tokens { #expect(probe.count(token) == 1, "\(token) ran \(probe.count(token)) times") }
        #expect(probe.count("gate") == 2, "only the job running at the reap runs twice (at least once, duplicates ≤ running)")
        #expect(zombieLog.messages.contains { $0.contains("stalled past its heartbeat TTL") })
    }

    // MARK: 7. Persistence

    @Test func appendOnlyDetectionReadsInfoPersistence() {
        #expect(RedisJobSource.appendOnlyDisabled(info: "# Persistence\r\nloading:0\r\naof_enabled:0\r\n"))
        #expect(!RedisJobSource.appendOnlyDisabled(info: "# Persistence\r\naof_enabled:1\r\n"))
        #expect(!RedisJobSource.appendOnlyDisabled(info: "ERR unknown section"))
    }

    @Test(arguments: [false, true])
    func aWorkerWarnsAtStartWhenRedisHasNoAppendOnlyFile(_ appendOnly: Bool) async throws {
        let server = try await RedisServer.start(.init(appendOnly: appendOnly))
        let harness = try await WorkerHarness.make("aof-warning", server: server)
        let sink = WorkerLogSink()
        try await harness.withWorker(try harness.configuration(), logger: sink.logger) { worker in
            try await harness.waitUntilRegistered(worker)
        }
        let warned = sink.messages.contains { $0.contains("no append-only file") }
        #expect(warned == !appendOnly, "\(sink.messages.filter { $0.contains("append") })")
    }

    // MARK: 3. Logs

    @Test func jobCarriedTextIsEscapedInLogMetadata() async throws {
        let harness = try await WorkerHarness.make("log-injection")
        let sink = WorkerLogSink()
        let hostile = "evil\n2026-12-01T00:00:00Z critical airlock.worker: FORGED\u{1B}[2J\u{9B}"
        try await harness.pushRaw(Self.message(id: "id\nforged", task: hostile))
        try await harness.withWorker(try harness.configuration(), logger: sink.logger) { _ in
            try await WorkerKit.eventually("dead-lettered") { try await harness.dead().count == 1 }
        }
        let line = try #require(sink.messages.first { $0.contains("unknown task") }, "\(sink.messages)")
        #expect(!line.contains("\n"), "one event, one line: \(line.debugDescription)")
        #expect(!CLI.hasTerminalControls(line), "\(line.debugDescription)")
        #expect(line.contains(#"task=evil\n2026-12-01T00:00:00Z critical airlock.worker: FORGED\x1b[2J\x9b"#), "\(line)")
        #expect(line.contains(#"job=id\nforged"#))
    }
}
