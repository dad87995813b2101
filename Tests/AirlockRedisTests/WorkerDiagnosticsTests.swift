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

/// Issue 4 (2): the built-in diagnostic tasks and the `airlock-workerd run` flags.
@Suite("Worker: diagnostic tasks and daemon flags", .timeLimit(.minutes(5)))
struct WorkerDiagnosticsTests {
    @Test func diagnosticTasksRunInProcess() async throws {
        let harness = try await WorkerHarness.make("diag")
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("mark") { arguments, _ in probe.record(arguments.kwargs["token"]?.stringValue ?? "?") }
        var configuration = try harness.configuration(concurrency: 1)
        configuration.defaultMaxRetries = 5
        let noRetry = DispatchOptions(maxRetries: 0)
        try await harness.enqueue {
            try Airlock.enqueue(name: "airlock.ping")
            try Airlock.enqueue(name: "airlock.echo", args: [1, "two"], kwargs: ["x": 3])
            try Airlock.enqueue(name: "mark", kwargs: ["token": "before-sleep"])
            try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 0.3])
            try Airlock.enqueue(name: "mark", kwargs: ["token": "after-sleep"])
            for token in ["a", "b", "c"] { try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(token)]) }
            try Airlock.enqueue(name: "airlock.fail", kwargs: ["message": "boom 42"], options: noRetry)
            // Bad kwargs are permanent failures: dead at once despite a budget of 5 retries.
            try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": "soon"])
            try Airlock.enqueue(name: "airlock.record", kwargs: ["token": 5])
        }
        try await harness.withWorker(configuration, registry: registry) { _ in
            try await WorkerKit.eventually("8 jobs processed and 3 dead") {
                let stats = try await harness.stats()
                return stats["processed"] == 8 && stats["dead"] == 3
            }
        }
        #expect(try await harness.recorded() == ["a", "b", "c"], "airlock.record RPUSHes kwargs.token to <ns>:diag:record, in order")
        let before = try #require(probe.time(of: "before-sleep"))
        let after = try #require(probe.time(of: "after-sleep"))
        #expect(after - before >= .milliseconds(300), "airlock.sleep slept its seconds (took \(after - before))")

        let stats = try await harness.stats()
        #expect(stats["failed"] == 3)
        #expect(stats["retried"] == nil, "nothing was retried")
        let dead = try await harness.dead()
        let byTask = Dictionary(grouping: dead, by: { $0["task"]?.stringValue ?? "" })
        #expect(byTask["airlock.fail"]?.first?["error"] == "boom 42")
        #expect(byTask["airlock.fail"]?.first?["attempts"] == 1)
        let sleepError = byTask["airlock.sleep"]?.first?["error"]?.stringValue ?? ""
        #expect(sleepError.contains("airlock.sleep needs"), "\(sleepError)")
        let recordError = byTask["airlock.record"]?.first?["error"]?.stringValue ?? ""
        #expect(recordError.contains("airlock.record needs"), "\(recordError)")
        #expect(dead.allSatisfy { $0["attempts"] == 1 })
    }

    @Test func registeredTasksTakePrecedenceOverDiagnostics() async throws {
        let harness = try await WorkerHarness.make("diag-override")
        let probe = WorkerProbe()
        var registry = TaskRegistry()
        registry.register("airlock.record") { arguments, _ in probe.record("mine:\(arguments.kwargs["token"]?.stringValue ?? "")") }
        try await harness.record(["t1"])
        try await harness.enqueue { try Airlock.enqueue(name: "airlock.ping") }
        try await harness.withWorker(try harness.configuration(), registry: registry) { _ in
            try await WorkerKit.eventually("both jobs processed") { try await harness.stats()["processed"] == 2 }
        }
        #expect(probe.events == ["mine:t1"], "the application's own airlock.record ran")
        #expect(try await harness.recorded().isEmpty, "the built-in airlock.record did not run")
    }

    // MARK: The daemon

    @Test func daemonHonoursItsFlags() async throws {
        let harness = try await WorkerHarness.make("daemon-flags")
        // Ten 5-second sleeps on alpha: --task-timeout 1 cuts each attempt off, --max-retries 1
        // allows one retry, so all ten die after two attempts, and --dead-letter-cap 2 keeps two.
        try await harness.enqueue {
            for _ in 0..<10 {
                try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 5], options: DispatchOptions(queue: "alpha"))
            }
        }
        try await harness.record(["beta-1"], queue: "beta")
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--queues", "alpha, beta",
            "--concurrency", "3", "--prefetch", "2", "--name", "flagcheck", "--max-retries", "1", "--task-timeout", "1",
            "--dead-letter-cap", "2", "--shutdown-timeout", "5", "--log-level", "warning",
        ])
        do {
            try await WorkerKit.eventually("the daemon registered as flagcheck-…") {
                try await harness.workers().contains { $0.hasPrefix("flagcheck-") }
            }
            let id = try #require(try await harness.workers().first { $0.hasPrefix("flagcheck-") })
            #expect(id.contains("-\(daemon.pid)-"), "worker id = name-pid-suffix")
            let info = try await harness.command("HGET", harness.keys.workerInfo(id), "queues").string
            #expect(info == "alpha,beta")
            #expect(try await harness.command("HGET", harness.keys.workerInfo(id), "concurrency").string == "3")

            var mostHeld = 0
            try await WorkerKit.eventually("all ten alpha jobs dead after two timed-out attempts", timeout: .seconds(90), poll: .milliseconds(10)) {
                mostHeld = max(mostHeld, try await harness.inflightCount("alpha", worker: id))
                return try await harness.stats("alpha")["dead"] == 10
            }
            // 3 running + up to 2 prefetched (plus, briefly, finished jobs whose settlement is on its way).
            // Each attempt holds its slot for the whole 1 s timeout, so a poll sees the prefetched ones
            // even on a machine whose load delays it.
            #expect(mostHeld >= 4, "--prefetch 2 holds jobs beyond the 3 running (saw \(mostHeld))")
            #expect(mostHeld <= 8, "saw \(mostHeld)")
            #expect(try await harness.recorded() == ["beta-1"], "the second queue is served too")

            let stats = try await harness.stats("alpha")
            #expect(stats["failed"] == 20)
            #expect(stats["retried"] == 10)
            #expect(stats["processed"] == nil)
            let dead = try await harness.dead("alpha")
            #expect(dead.count == 2, "--dead-letter-cap 2")
            for entry in dead {
                #expect(entry["attempts"] == 2, "--max-retries 1: two attempts")
                #expect(entry["error"]?.stringValue?.contains("timed out") == true, "\(entry["error"] ?? nil)")
            }

            daemon.send(SIGTERM)
            let exit = try await daemon.waitForExit(within: .seconds(10))
            #expect(exit.exited && exit.status == 0, "clean exit after SIGTERM; stderr: \(daemon.stderr)")
            #expect(try await !harness.workers().contains(id), "deregistered on a clean shutdown")
        } catch {
            await daemon.killIfRunning()
            throw error
        }
    }

    @Test(arguments: [
        ["--concurrency", "0"], ["--prefetch=-1"], ["--log-level", "loud"], ["--queues", " , "], ["--shutdown-timeout=-1"],
    ])
    func daemonRejectsBadFlags(_ flags: [String]) async throws {
        let daemon = try await WorkerDaemon.launch(["run", "--redis", "redis://127.0.0.1:1/0"] + flags)
        let exit = try await daemon.waitForExit(within: .seconds(15))
        #expect(exit.exited && exit.status != 0, "exit \(exit)")
        let option = flags[0].split(separator: "=")[0]
        #expect(daemon.stderr.contains(option), "the error names \(option): \(daemon.stderr)")
    }
}
