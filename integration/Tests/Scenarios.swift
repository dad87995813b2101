import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Synchronization
import Testing

/// The multi-process scenarios: real `redis-server` processes, real `airlock-workerd` processes.
///
/// One serialized suite (the scenarios are spread over extensions in this folder) so scenarios never
/// compete for the machine's cores; each starts its own Redis and stops everything it started.
@Suite("Airlock fleet and failure scenarios", .serialized)
struct IntegrationScenarios {
    /// The load of the fleet scenarios.
    static let jobs = 20_000

    static func tokens(_ prefix: String, _ count: Int = jobs) -> [String] {
        (0..<count).map { "\(prefix)\($0)" }
    }

    // MARK: 1. Fleet, no faults

    @Test("1. fleet of 3 workers, 20,000 jobs, no faults: every token recorded exactly once", .timeLimit(.minutes(5)))
    func fleetWithoutFaults() async throws {
        try await Scenario.run("fleet") { s in
            let fleet = try await s.startFleet("fleet", count: 3, concurrency: 8)
            let tokens = Self.tokens("f")
            let producer = try s.executor()

            let start = ContinuousClock.now
            try await s.produceRecords(tokens, using: producer)
            let enqueued = ContinuousClock.now - start
            let drained = try await s.waitForRecords(Self.jobs, timeout: .seconds(150))
            let elapsed = ContinuousClock.now - start
            let recordedCount = try await s.llen(s.keys.diagRecord)
            #expect(drained, "the fleet did not drain 20,000 jobs within 150 s (recorded \(recordedCount))")

            let check = RecordCheck(expected: Set(tokens), recorded: try await s.strings(s.keys.diagRecord))
            #expect(check.missing.isEmpty, "lost jobs: \(check)")
            #expect(check.unexpected.isEmpty, "\(check)")
            #expect(check.duplicates == 0, "no fault, yet duplicates: \(check)")
            #expect(check.recorded == Self.jobs, "\(check)")
            let stats = try await s.stats()
            #expect(stats["processed"] == Self.jobs, "stats \(stats)")
            #expect((stats["failed"] ?? 0) == 0 && (stats["dead"] ?? 0) == 0, "stats \(stats)")
            for (worker, _) in fleet {
                #expect(worker.isRunning, "\(worker.label) exited:\n\(worker.stderrTail())")
            }
            Integration.report(
                "fleet jobs=\(Self.jobs) workers=3 concurrency=8 enqueue_ms=\(enqueued.ms) drain_ms=\(elapsed.ms) "
                    + "throughput_per_s=\(Int(Double(Self.jobs) / max(elapsed.msDouble / 1000, 0.001))) duplicates=\(check.duplicates) missing=\(check.missing.count)")

            // A clean stop is part of a healthy fleet: exit 0, nothing left registered.
            for (worker, _) in fleet { worker.terminate() }
            for (worker, _) in fleet {
                let status = await worker.waitForExit(timeout: .seconds(15))
                #expect(status == 0 && !worker.diedOfSignal, "\(worker.label) exit \(String(describing: status)):\n\(worker.stderrTail())")
            }
            #expect(try await s.members(s.keys.workers).isEmpty, "workers still registered after a clean stop")
        }
    }

    // MARK: 2. A worker killed with jobs in hand

    @Test("2. kill -9 a worker holding jobs: nothing lost, duplicates bounded by what it held", .timeLimit(.minutes(5)))
    func killedWorker() async throws {
        try await Scenario.run("killed") { s in
            let fleet = try await s.startFleet("kill", count: 3, concurrency: 8)
            let tokens = Self.tokens("k")
            let producer = try s.executor()
            let production = Task { try await s.produceRecords(tokens, using: producer) }
            defer { production.cancel() }

            let (victim, victimID) = fleet[1]
            let inflight = s.keys.inflight("default", worker: victimID)
            // Mid-run, and the victim holds jobs right now.
            let holding = try await eventually(timeout: .seconds(60), every: .milliseconds(2)) {
                let recorded = try await s.llen(s.keys.diagRecord)
                let held = try await s.llen(inflight)
                return recorded >= 2_000 && held > 0
            }
            try #require(holding, "the victim never held jobs mid-run:\n\(victim.stderrTail())")
            let heldBefore = try await s.llen(inflight)
            let killedAt = ContinuousClock.now
            victim.kill9()
            let status = await victim.waitForExit(timeout: .seconds(10))
            #expect(status != nil && victim.diedOfSignal, "kill -9 did not end the victim")
            // Frozen now: exactly the jobs the reaper will return.
            let heldAtDeath = try await s.llen(inflight)
            let recordedAtKill = try await s.llen(s.keys.diagRecord)

            let recovered = try await eventually(timeout: .seconds(30), every: .milliseconds(10)) {
                try await s.llen(inflight) == 0
            }
            let recovery = ContinuousClock.now - killedAt
            #expect(recovered, "the dead worker's \(heldAtDeath) jobs were not returned within 30 s")
            // Heartbeat TTL 5 s + reaper period 2 s (±20 %): reported, not asserted (load moves it).
            let deregistered = try await eventually(timeout: .seconds(10)) {
                let registered = try await s.members(s.keys.workers)
                return !registered.contains(victimID)
            }
            #expect(deregistered, "the dead worker is still registered")

            try await production.value
            let drained = try await s.waitForRecords(Self.jobs, timeout: .seconds(150))
            #expect(drained, "the surviving workers did not finish the load")
            let check = RecordCheck(expected: Set(tokens), recorded: try await s.strings(s.keys.diagRecord))
            #expect(check.missing.isEmpty, "lost jobs after kill -9: \(check)")
            #expect(check.unexpected.isEmpty, "\(check)")
            #expect(check.duplicates <= heldAtDeath, "duplicates exceed the jobs the killed worker held (\(heldAtDeath)): \(check)")
            for (worker, _) in fleet where worker !== victim {
                #expect(worker.isRunning, "\(worker.label) exited:\n\(worker.stderrTail())")
            }
            Integration.report(
                "killed-worker recovery_ms=\(recovery.ms) held_before_kill=\(heldBefore) held_at_death=\(heldAtDeath) "
                    + "duplicates=\(check.duplicates) recorded_at_kill=\(recordedAtKill) missing=\(check.missing.count) "
                    + "total_ms=\((ContinuousClock.now - s.started).ms)")
        }
    }

    // MARK: 3. Redis restarted mid-run

    @Test("3. Redis restarted 5 times mid-run (AOF, fsync always): every successfully enqueued job runs", .timeLimit(.minutes(5)))
    func redisRestart() async throws {
        try await Scenario.run("restart", options: RedisServer.Options(appendOnly: true)) { s in
            let appendonly = try await s.command("CONFIG", "GET", "appendonly").array?.last?.string
            let fsync = try await s.command("CONFIG", "GET", "appendfsync").array?.last?.string
            try #require(appendonly == "yes" && fsync == "always", "the server is not persistent: \(String(describing: appendonly)) \(String(describing: fsync))")

            let fleet = try await s.startFleet("restart", count: 3, concurrency: 8)
            let tokens = Self.tokens("r", 6_000)
            let producer = ResilientProducer()
            let executor = try s.executor()
            let production = Task { await producer.run(tokens, using: executor, pace: .milliseconds(25)) }
            defer { production.cancel() }

            // Five restarts while the producer enqueues and the workers run, every 1,000 jobs enqueued.
            // Each is SIGTERM (Redis saves and exits) then a start on the same port and directory.
            let server = s.server
            var restarts: [String] = []
            var enqueuedAtFirst = 0
            for threshold in [1_000, 2_000, 3_000, 4_000, 5_000] {
                let midRun = try await eventually(timeout: .seconds(60)) {
                    let recorded = try await s.llen(s.keys.diagRecord)
                    return producer.succeededCount >= threshold && recorded >= threshold / 3
                }
                try #require(midRun, "the run never reached \(threshold) jobs enqueued")
                let enqueued = producer.succeededCount
                if enqueuedAtFirst == 0 { enqueuedAtFirst = enqueued }
                let recorded = try await s.llen(s.keys.diagRecord)
                let restartStart = ContinuousClock.now
                try await RedisServer.offPool { try server.restart() }
                restarts.append("outage_ms=\((ContinuousClock.now - restartStart).ms)@enqueued=\(enqueued),recorded=\(recorded)")
            }

            await production.value
            #expect(producer.succeededCount > enqueuedAtFirst, "the producer did not get through after a restart")
            #expect(enqueuedAtFirst < tokens.count, "the restarts did not happen mid-run")

            let succeeded = producer.succeeded
            // Failed attempts retry within ~10 s (3 retries, backoff from 1 s); 30 s is ample.
            let finished = try await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
                let recorded = Set(try await s.strings(s.keys.diagRecord))
                guard succeeded.isSubset(of: recorded) else { return false }
                return try await s.isDrained()
            }
            let check = RecordCheck(expected: Set(tokens), recorded: try await s.strings(s.keys.diagRecord))
            let lost = succeeded.subtracting(try await s.strings(s.keys.diagRecord))
            let whereabouts = lost.isEmpty ? [:] : try await s.locate(lost)
            #expect(finished && lost.isEmpty, "jobs whose enqueue succeeded never ran after the restart: \(lost.count): \(whereabouts.sorted { $0.key < $1.key }.prefix(10))")
            #expect(check.unexpected.isEmpty, "\(check)")
            for (worker, id) in fleet {
                let exitStatus = worker.isRunning ? nil : await worker.waitForExit(timeout: .zero)
                #expect(worker.isRunning, "\(worker.label) exited after the restart (status \(String(describing: exitStatus)), signal: \(worker.diedOfSignal)):\n\(worker.stderrTail(30))")
                // Reconnected by itself: it heartbeats against the restarted server.
                let beating = try await eventually(timeout: .seconds(10)) {
                    let ttl = try await s.command("PTTL", s.keys.heartbeat(id)).int ?? -2
                return ttl > 0
                }
                #expect(beating, "\(worker.label) does not heartbeat after the restart")
            }
            let failures = producer.failureCounts
            Integration.report(
                "redis-restart restarts=[\(restarts.joined(separator: " "))] enqueued_ok=\(succeeded.count)/\(tokens.count) "
                    + "failed_flushes=\(failures.values.reduce(0, +)) \(failures.sorted { $0.key < $1.key }) "
                    + "idempotent_duplicates=\(producer.duplicateCount) abandoned=\(producer.abandoned.count) lost=\(lost.count) "
                    + "duplicates=\(check.duplicates) total_ms=\((ContinuousClock.now - s.started).ms)")
        }
    }

    // MARK: 4. SIGTERM under load

    @Test("4. SIGTERM under load: workers exit 0 within the shutdown timeout, nothing lost", .timeLimit(.minutes(5)))
    func sigtermUnderLoad() async throws {
        try await Scenario.run("sigterm") { s in
            let shutdownTimeout = 3.0
            let fleet = try await s.startFleet("term", count: 3, concurrency: 8, shutdownTimeout: shutdownTimeout)
            let producer = try s.executor()
            // Tasks running at the signal that finish within the timeout.
            let shortSleeps = (0..<150).map { _ in
                Intent(taskName: "airlock.sleep", payload: .dynamic(TaskArguments(kwargs: ["seconds": 0.25])))
            }
            let tokens = Self.tokens("s")
            var chunks: [[Intent]] = stride(from: 0, to: tokens.count, by: 100).map { start in
                tokens[start..<min(start + 100, tokens.count)].map { recordIntent($0) }
            }
            for (index, sleep) in shortSleeps.enumerated() { chunks[(index * 7) % chunks.count].append(sleep) }
            for chunk in chunks {
                #expect(try await producer.enqueue(chunk).allSatisfy { $0 == .queued })
            }
            let longSleepCount = 3
            let totalJobs = tokens.count + shortSleeps.count + longSleepCount

            let underLoad = try await eventually(timeout: .seconds(60)) {
                try await s.llen(s.keys.diagRecord) >= Self.jobs / 4
            }
            try #require(underLoad, "the fleet never got going")
            // Tasks that outlive the shutdown timeout: pushed to the consuming end, in flight at the
            // signal, cancelled at the deadline and returned to the queue.
            let longSleeps = (0..<longSleepCount).map { _ in
                Intent(taskName: "airlock.sleep", payload: .dynamic(TaskArguments(kwargs: ["seconds": 6])), options: DispatchOptions(priority: 1))
            }
            #expect(try await producer.enqueue(longSleeps).allSatisfy { $0 == .queued })
            let longIDs = longSleeps.map { $0.id.uuidString.lowercased() }
            let taken = try await eventually(timeout: .seconds(20), every: .milliseconds(5)) {
                var held = ""
                for key in try await s.keysMatching(globEscape(s.keys.inflight("default", worker: "")) + "*") {
                    held += try await s.strings(key).joined(separator: "\n")
                }
                return longIDs.allSatisfy { held.contains($0) }
            }
            #expect(taken, "the long tasks were not taken")
            let heldAtSignal = try await s.inflightTotal()
            let signalled = ContinuousClock.now
            for (worker, _) in fleet { worker.terminate() }
            var exits: [String] = []
            for (worker, id) in fleet {
                let status = await worker.waitForExit(timeout: .seconds(shutdownTimeout + 10))
                let took = ContinuousClock.now - signalled
                exits.append("\(worker.label):\(status.map(String.init) ?? "hung")@\(took.ms)ms")
                #expect(status == 0 && !worker.diedOfSignal, "\(worker.label) exit \(String(describing: status)) after SIGTERM:\n\(worker.stderrTail())")
                #expect(try await s.llen(s.keys.inflight("default", worker: id)) == 0, "\(worker.label) left jobs in flight")
            }
            let recordedAtStop = try await s.llen(s.keys.diagRecord)
            #expect(recordedAtStop < Self.jobs, "the load was finished before the signal; nothing was tested")
            #expect(try await s.members(s.keys.workers).isEmpty, "stopped workers are still registered")
            // The shutdown timeout was honoured without a clock in the test: the 6-second sleeps were cut
            // off at the 3-second deadline and handed back to the queue, not run to the end.
            let readyAtStop = try await s.strings(s.keys.ready("default")).joined(separator: "\n")
            #expect(longIDs.allSatisfy { readyAtStop.contains($0) }, "the long tasks were not returned to the queue at the deadline")

            let fresh = try await s.startWorker("term-fresh", concurrency: 16)
            _ = try await s.registeredID(of: fresh)
            let drained = try await s.waitForRecords(Self.jobs, timeout: .seconds(150))
            #expect(drained, "the fresh worker did not finish the load")
            // The long sleeps run again in full on the fresh worker.
            let allSettled = try await eventually(timeout: .seconds(30)) {
                let processed = try await s.stats()["processed"] ?? 0
                guard processed >= totalJobs else { return false }
                return try await s.isDrained()
            }
            let check = RecordCheck(expected: Set(tokens), recorded: try await s.strings(s.keys.diagRecord))
            let stats = try await s.stats()
            #expect(allSettled, "not every job settled: stats \(stats)")
            #expect(check.missing.isEmpty, "jobs lost across a graceful shutdown: \(check)")
            #expect(check.duplicates == 0, "a graceful shutdown ran jobs twice: \(check)")
            #expect(stats["processed"] == totalJobs, "stats \(stats), expected processed=\(totalJobs)")
            #expect((stats["failed"] ?? 0) == 0 && (stats["dead"] ?? 0) == 0, "stats \(stats)")
            Integration.report(
                "sigterm shutdown_timeout_s=\(shutdownTimeout) exits=[\(exits.joined(separator: " "))] held_at_signal=\(heldAtSignal) "
                    + "recorded_at_stop=\(recordedAtStop) duplicates=\(check.duplicates) missing=\(check.missing.count) "
                    + "total_ms=\((ContinuousClock.now - s.started).ms)")
        }
    }
}

/// A producer that keeps going through a Redis outage: a failed flush is retried with the same
/// intents (same idempotency keys), so a flush whose outcome was unknown is never queued twice.
/// Only flushes that returned success count as enqueued.
final class ResilientProducer: Sendable {
    private struct State {
        var succeeded: Set<String> = []
        var abandoned: [String] = []
        var failures: [String: Int] = [:]
        var duplicates = 0
    }
    private let state = Mutex(State())

    var succeeded: Set<String> { state.withLock { $0.succeeded } }
    var succeededCount: Int { state.withLock { $0.succeeded.count } }
    var abandoned: [String] { state.withLock { $0.abandoned } }
    var failureCounts: [String: Int] { state.withLock { $0.failures } }
    var duplicateCount: Int { state.withLock { $0.duplicates } }

    func run(_ tokens: [String], using executor: RedisExecutor, pace: Duration) async {
        for start in stride(from: 0, to: tokens.count, by: 100) where !Task.isCancelled {
            let chunk = Array(tokens[start..<min(start + 100, tokens.count)])
            let intents = chunk.map { recordIntent($0, options: DispatchOptions(idempotencyKey: "idem-\($0)")) }
            let deadline = ContinuousClock.now + .seconds(30)
            while !Task.isCancelled {
                do {
                    let outcomes = try await executor.enqueue(intents)
                    let duplicates = outcomes.filter { $0 != .queued }.count
                    state.withLock {
                        $0.succeeded.formUnion(chunk)
                        $0.duplicates += duplicates
                    }
                    break
                } catch {
                    let kind = Self.classify(error)
                    state.withLock { $0.failures[kind, default: 0] += 1 }
                    if ContinuousClock.now >= deadline {
                        state.withLock { $0.abandoned += chunk }
                        break
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            try? await Task.sleep(for: pace)
        }
    }

    static func classify(_ error: any Error) -> String {
        guard let underlying = (error as? DispatchError)?.underlying as? RedisExecutorError else { return "other" }
        switch underlying.kind {
        case .outcomeUnknown: return "outcome_unknown"
        case .notWritten: return "not_written"
        default: return "other"
        }
    }
}
