import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Issue 4 (9): Redis outages and wrong credentials, on dedicated servers.
@Suite("Worker: Redis outages and credentials", .timeLimit(.minutes(5)))
struct WorkerOutageTests {
    @Test func workerKeepsRunningAcrossARedisRestartAndResumes() async throws {
        let server = try await RedisServer.start(.init(appendOnly: true))
        let harness = try await WorkerHarness.make("restart", server: server)
        let latch = WorkerLatch()
        var registry = TaskRegistry()
        registry.register("gate") { _, _ in try await latch.wait() }
        try await harness.enqueue { try Airlock.enqueue(name: "gate") }
        let run = WorkerRun(Worker(configuration: try harness.configuration(concurrency: 2), registry: registry, logger: WorkerKit.quiet))
        do {
            try await WorkerKit.eventually("the gate task runs") { latch.waiting == 1 }
            try await harness.record(["before"])
            try await WorkerKit.eventually("a job ran before the restart") { try await harness.recorded() == ["before"] }

            let restartedAt = ContinuousClock.now
            try await RedisServer.offPool { try server.restart() }
            // The task that was running across the restart finishes now; its acknowledgement must land.
            latch.open()
            // The producer's connection broke with the restart; its next call reconnects.
            try await WorkerKit.eventually("enqueued after the restart") {
                (try? await harness.record(["after-1", "after-2"])) != nil
            }
            try await WorkerKit.eventually("jobs run after the restart", timeout: .seconds(20)) {
                let recorded = (try? await harness.recorded()) ?? []
                return recorded.contains("after-1") && recorded.contains("after-2")
            }
            print("Redis restart: the worker processed new jobs \(ContinuousClock.now - restartedAt) after the restart began")
            try await WorkerKit.eventually("the job running during the restart is acknowledged", timeout: .seconds(20)) {
                (try? await harness.stats()["processed"]) == 4
            }
            #expect(run.result == nil, "run() kept running through the outage")
            #expect(try await harness.inflightCount(worker: run.worker.id) == 0)
            try await run.stop(within: .seconds(10)).get()
        } catch {
            latch.open()
            _ = try? await run.stop()
            throw error
        }
        let recorded = try await harness.recorded()
        #expect(recorded.sorted() == ["after-1", "after-2", "before"], "each job ran once: \(recorded)")
    }

    /// A daemon may start before Redis does: run() waits for it instead of failing.
    @Test func workerStartedBeforeRedisWaitsForIt() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("late-redis", server: server)
        try await RedisServer.offPool { server.stop() }
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: WorkerKit.quiet))
        do {
            try await Task.sleep(for: .milliseconds(500))   // the worker is retrying against a closed port
            #expect(run.result == nil, "no Redis yet: run() keeps waiting rather than failing")
            try await RedisServer.offPool { try server.restart() }
            try await WorkerKit.eventually("jobs run once Redis is up") {
                (try? await harness.record(["late"])) != nil
            }
            try await WorkerKit.eventually("the job ran") { ((try? await harness.recorded()) ?? []) == ["late"] }
            try await run.stop(within: .seconds(10)).get()
        } catch {
            _ = try? await run.stop()
            throw error
        }
    }

    @Test func shutdownWhileWaitingForRedisReturnsPromptly() async throws {
        let port = try RedisServer.closedPort()   // nothing listens there
        var configuration = WorkerSetup(redis: try RedisConfiguration(url: "redis://127.0.0.1:\(port)/0"))
        configuration.namespace = RedisServer.uniqueNamespace("no-redis")
        let run = WorkerRun(Worker(configuration: configuration, registry: TaskRegistry(), logger: WorkerKit.quiet))
        try await Task.sleep(for: .milliseconds(300))
        #expect(run.result == nil)
        try await run.stop(within: .seconds(30)).get()
    }

    /// Redis at its memory limit (noeviction) refuses writes; a running worker must ride it out
    /// like an outage and carry on once memory is available again.
    @Test func workerRidesOutARedisAtItsMemoryLimit() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("oom-ride", server: server)
        try await harness.command("SET", harness.keys.paused("default"), "1")
        try await harness.record((0..<5).map { "m\($0)" })
        // Attempts made while Redis refuses the tasks' writes fail; a generous budget carries them through.
        var configuration = try harness.configuration()
        configuration.defaultMaxRetries = 1_000
        configuration.retryStrategy = .fixed(.milliseconds(100))
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.heartbeatTTL = .seconds(2)
        let run = WorkerRun(Worker(configuration: configuration, registry: TaskRegistry(), logger: WorkerKit.quiet))
        do {
            try await harness.waitUntilRegistered(run.worker)
            try await harness.command("CONFIG", "SET", "maxmemory", "1")
            try await harness.command("DEL", harness.keys.paused("default"))
            // The tasks' own writes (RPUSH) are refused, so attempts fail and are retried; the
            // heartbeat (an allow-oom script) keeps the worker alive meanwhile, so no reaper takes its jobs.
            try await WorkerKit.eventually("attempts failed while Redis refused writes") {
                (try await harness.stats()["failed"] ?? 0) >= 1
            }
            try await Task.sleep(for: .milliseconds(2500))   // longer than the 2 s heartbeat TTL: the measured interval
            #expect(try await harness.command("EXISTS", harness.keys.heartbeat(run.worker.id)).int == 1,
                    "the heartbeat is renewed while Redis refuses ordinary writes")
            #expect(run.result == nil, "run() keeps going while Redis refuses writes")
            try await harness.command("CONFIG", "SET", "maxmemory", "0")
            try await WorkerKit.eventually("all five ran once memory was available") {
                try await harness.stats()["processed"] == 5
            }
            try await harness.waitUntilRegistered(run.worker)
            try await run.stop(within: .seconds(10)).get()
        } catch {
            _ = try? await harness.command("CONFIG", "SET", "maxmemory", "0")
            _ = try? await run.stop()
            throw error
        }
        #expect(try await harness.recorded().sorted() == (0..<5).map { "m\($0)" })
    }

    /// A full Redis is drained by its workers: taking a job moves it and acknowledging one frees
    /// memory, so neither may be refused at the memory limit, or a full Redis can never recover.
    @Test func workerDrainsAQueueWhileRedisIsAtItsMemoryLimit() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("oom-drain", server: server)
        var registry = TaskRegistry()
        registry.register("noop") { _, _ in }
        try await harness.command("SET", harness.keys.paused("default"), "1")
        try await harness.enqueue { for _ in 0..<5 { try Airlock.enqueue(name: "noop") } }
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: registry, logger: WorkerKit.quiet))
        do {
            try await harness.waitUntilRegistered(run.worker)
            try await harness.command("CONFIG", "SET", "maxmemory", "1")
            try await harness.command("DEL", harness.keys.paused("default"))
            try await WorkerKit.eventually("the queue drained although Redis is at its memory limit", timeout: .seconds(5)) {
                guard try await harness.readyCount() == 0 else { return false }
                return try await harness.inflightCount(worker: run.worker.id) == 0
            }
        } catch {
            _ = try? await harness.command("CONFIG", "SET", "maxmemory", "0")
            _ = try? await run.stop()
            throw error
        }
        try await harness.command("CONFIG", "SET", "maxmemory", "0")
        try await run.stop(within: .seconds(10)).get()
    }

    @Test(arguments: [Optional("wrong-password"), nil])
    func wrongCredentialsMakeRunThrowPromptly(_ password: String?) async throws {
        let server = try await RedisServer.start(.init(password: "s3cret"))
        let harness = try await WorkerHarness.make("auth", server: server, url: server.url(password: "s3cret"))
        var configuration = try harness.configuration()
        configuration.redis = try RedisConfiguration(url: password.map { server.url(password: $0) } ?? server.url)
        let refusedBefore = try await Self.handshakesRefused(harness)
        let run = WorkerRun(Worker(configuration: configuration, registry: TaskRegistry(), logger: WorkerKit.quiet))
        let result = try await run.waitForExit(within: .seconds(30))
        // Fatal at once, not retried: one handshake was refused. Counted by what Redis refused, not by
        // connections, which a connect timeout on a loaded machine may legitimately redo.
        let attempts = try await Self.handshakesRefused(harness) - refusedBefore
        #expect(attempts == 1, "an authentication error is fatal at once, not retried (\(attempts) handshakes refused)")
        switch result {
        case .success:
            Issue.record("run() returned normally with wrong credentials")
        case .failure(let error):
            let redisError = try #require(error as? RedisError, "\(error)")
            #expect(redisError.kind == .authenticationFailed, "\(redisError)")
        }
        #expect(try await harness.workers().isEmpty, "nothing was registered")
    }

    /// How many connection handshakes the harness's server refused for want of credentials: every
    /// handshake sends one `CLIENT ID`, which Redis rejects (`NOAUTH`) unless authenticated.
    static func handshakesRefused(_ harness: WorkerHarness) async throws -> Int {
        let client = RedisClient(configuration: try RedisConfiguration(url: harness.url), logger: WorkerKit.quiet)
        defer { Task { await client.close() } }
        let info = try #require(try await client.send("INFO", "commandstats").string)
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_client|id:") }) else { return 0 }
        let field = try #require(line.split(separator: ",").first { $0.hasPrefix("rejected_calls=") })
        return try #require(Int(field.dropFirst("rejected_calls=".count)))
    }

    @Test func credentialsRevokedWhileRunningStopTheWorkerWithAnAuthenticationError() async throws {
        let server = try await RedisServer.start()
        let harness = try await WorkerHarness.make("auth-revoked", server: server)
        let run = WorkerRun(Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: WorkerKit.quiet))
        do {
            try await harness.waitUntilRegistered(run.worker)
            try await harness.command("CONFIG", "SET", "requirepass", "changed")
            try await harness.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        } catch {
            _ = try? await run.stop()
            throw error
        }
        let result = try await run.waitForExit(within: .seconds(15))
        guard case .failure(let error) = result else {
            Issue.record("run() returned normally although Redis now refuses its credentials")
            return
        }
        #expect((error as? RedisError)?.kind == .authenticationFailed, "\(error)")
    }

    @Test func daemonWithAWrongPasswordExitsWithOneClearLine() async throws {
        let server = try await RedisServer.start(.init(password: "s3cret"))
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", server.url(password: "not-the-Pa55word"), "--namespace", RedisServer.uniqueNamespace("auth-daemon"), "--log-level", "warning",
        ])
        let exit: (status: Int32, exited: Bool)
        do {
            exit = try await daemon.waitForExit(within: .seconds(10))
        } catch {
            await daemon.killIfRunning()
            throw error
        }
        #expect(exit.exited && exit.status == 3, "exit \(exit): 3 is the documented status for refused credentials")
        let lines = daemon.stderr.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        print("daemon with a wrong password, stderr:\n\(daemon.stderr)")
        let mentions = lines.filter { $0.localizedCaseInsensitiveContains("authentication") }
        #expect(mentions.count == 1, "exactly one line explains the failure: \(lines)")
        #expect(lines.last?.localizedCaseInsensitiveContains("authentication failed") == true, "the last line says why: \(lines)")
        #expect(!daemon.stderr.contains("Pa55word"), "the password is not echoed")
    }
}
