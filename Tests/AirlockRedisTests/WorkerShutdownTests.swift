import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 4 (8): graceful shutdown, in process and of the daemon on SIGTERM.
@Suite("Worker: graceful shutdown", .timeLimit(.minutes(5)))
struct WorkerShutdownTests {
    static func gateRegistry(_ latch: WorkerLatch, _ probe: WorkerProbe) -> TaskRegistry {
        var registry = TaskRegistry()
        registry.register("work") { arguments, _ in
            let token = arguments.kwargs["token"]?.stringValue ?? "?"
            probe.record("start \(token)")
            do {
                try await latch.wait()
            } catch {
                probe.record("cancelled \(token)")
                throw error
            }
            probe.record("done \(token)")
        }
        return registry
    }

    static func enqueueWork(_ harness: WorkerHarness, _ tokens: [String]) async throws {
        try await harness.enqueue {
            for token in tokens { try Airlock.enqueue(name: "work", kwargs: ["token": .string(token)]) }
        }
    }

    /// Starts a worker holding w0, w1 (running) and w2…w4 (prefetched) out of w0…w9.
    static func startLoaded(_ harness: WorkerHarness, _ latch: WorkerLatch, _ probe: WorkerProbe) async throws -> WorkerRun {
        try await enqueueWork(harness, (0..<10).map { "w\($0)" })
        var configuration = try harness.configuration(concurrency: 2, prefetch: 3)
        configuration.shutdownTimeout = .seconds(10)
        let run = WorkerRun(Worker(configuration: configuration, registry: gateRegistry(latch, probe), logger: WorkerKit.quiet))
        do {
            try await WorkerKit.eventually("two running, five held") {
                guard latch.waiting == 2 else { return false }
                return try await harness.inflightCount(worker: run.worker.id) == 5
            }
        } catch {
            _ = try? await run.stop()
            throw error
        }
        return run
    }

    @Test func shutdownLetsRunningTasksFinishAndReturnsPrefetchedJobs() async throws {
        let harness = try await WorkerHarness.make("shutdown-graceful")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        let run = try await Self.startLoaded(harness, latch, probe)
        let worker = run.worker
        do {
            worker.shutdown()
            try await WorkerKit.eventually("the prefetched jobs are back in the queue") { try await harness.readyCount() == 8 }
            #expect(try await harness.inflightCount(worker: worker.id) == 2, "the running jobs stay held")
            #expect(run.result == nil, "run() waits for the running tasks")
            latch.open()
            try await run.waitForExit(within: .seconds(10)).get()
        } catch {
            latch.open()
            _ = try? await run.stop()
            throw error
        }
        #expect(Set(probe.events) == ["start w0", "start w1", "done w0", "done w1"], "only the running tasks ran, and they finished")
        #expect(try await harness.stats()["processed"] == 2)
        #expect(try await harness.inflightCount(worker: worker.id) == 0)
        let order = try await harness.readyInConsumptionOrder().map { $0["kwargs"]?["token"]?.stringValue ?? "?" }
        #expect(Set(order.prefix(3)) == ["w2", "w3", "w4"], "unstarted jobs go back to the front of the queue: \(order)")
        #expect(Array(order.dropFirst(3)) == ["w5", "w6", "w7", "w8", "w9"])
        #expect(try await harness.readyInConsumptionOrder().allSatisfy { $0["attempt"] == 0 }, "returned unchanged")
        #expect(try await !harness.workers().contains(worker.id), "a clean shutdown deregisters")
        #expect(try await harness.command("EXISTS", harness.keys.heartbeat(worker.id)).int == 0)
    }

    @Test func returnedPrefetchedJobsKeepTheirQueueOrder() async throws {
        let harness = try await WorkerHarness.make("shutdown-order")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        let run = try await Self.startLoaded(harness, latch, probe)
        do {
            run.worker.shutdown()
            try await WorkerKit.eventually("the prefetched jobs are back in the queue") { try await harness.readyCount() == 8 }
            latch.open()
            try await run.waitForExit(within: .seconds(10)).get()
        } catch {
            latch.open()
            _ = try? await run.stop()
            throw error
        }
        let order = try await harness.readyInConsumptionOrder().map { $0["kwargs"]?["token"]?.stringValue ?? "?" }
        #expect(order == ["w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"],
                "prefetched jobs returned on shutdown must be taken again in their original order (w2 first)")
    }

    @Test func taskOutlivingTheShutdownTimeoutIsCancelledAndItsJobReturned() async throws {
        let harness = try await WorkerHarness.make("shutdown-timeout")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        try await Self.enqueueWork(harness, ["stubborn", "next"])
        let original = try await harness.list(harness.keys.ready("default")).last
        var configuration = try harness.configuration(concurrency: 1, prefetch: 0)
        configuration.shutdownTimeout = .milliseconds(300)
        let run = WorkerRun(Worker(configuration: configuration, registry: Self.gateRegistry(latch, probe), logger: WorkerKit.quiet))
        let elapsed: Duration
        do {
            try await WorkerKit.eventually("the stubborn task is running") { latch.waiting == 1 }
            let asked = ContinuousClock.now
            try await run.stop(within: .seconds(10)).get()
            elapsed = ContinuousClock.now - asked
        } catch {
            latch.open()
            _ = try? await run.stop()
            throw error
        }
        print("shutdown with a task outliving the 300 ms shutdown timeout returned after \(elapsed)")
        #expect(probe.events == ["start stubborn", "cancelled stubborn"])
        let ready = try await harness.list(harness.keys.ready("default"))
        #expect(ready.count == 2)
        #expect(ready.last == original, "the cancelled job is back at the front, byte for byte (attempt unchanged)")
        let stats = try await harness.stats()
        #expect(stats["failed"] == nil && stats["retried"] == nil, "a shutdown cancellation is not a failure")
        #expect(try await harness.delayed().isEmpty)
        #expect(try await harness.dead().isEmpty)
        #expect(try await harness.inflightCount(worker: run.worker.id) == 0)
    }

    /// A fetcher blocked in BLMOVE when shutdown starts may still receive a job: it must not be
    /// stranded in the in-flight list of a worker that has stopped.
    @Test func jobTakenByABlockedFetcherDuringShutdownIsNotStranded() async throws {
        let server = try await RedisServer.start()   // commandstats tell whether BLMOVE took the job
        let harness = try await WorkerHarness.make("shutdown-late", server: server)
        let sink = WorkerLogSink()
        var configuration = try harness.configuration(concurrency: 1)
        configuration.blockTimeout = .seconds(2)
        let run = WorkerRun(Worker(configuration: configuration, registry: TaskRegistry(), logger: sink.logger))
        do {
            try await WorkerKit.eventually("the fetcher is blocked in BLMOVE") {
                let clients = try await harness.command("CLIENT", "LIST").string ?? ""
                return clients.split(separator: "\n").contains { $0.contains("cmd=blmove") && $0.contains("flags=b") }
            }
            run.worker.shutdown()
            try await WorkerKit.eventually("shutdown began") { sink.contains("shutting down") }
            try await harness.record(["late"])
            _ = try await run.waitForExit(within: .seconds(10)).get()
        } catch {
            _ = try? await run.stop()
            throw error
        }
        let held = try await harness.inflightCount(worker: run.worker.id)
        let ready = try await harness.readyCount()
        let ran = try await harness.recorded()
        let blmoveTook = try await WorkerServerStats.commandCalls(harness.redis)["rpush"] ?? 0   // only a settle "requeue" RPUSHes here
        print("job pushed during shutdown while the fetcher was blocked: in flight \(held), back in ready \(ready), ran \(ran.count), requeued by the worker \(blmoveTook)")
        #expect(held == 0, "the job must not stay in the stopped worker's in-flight list (ready \(ready), ran \(ran))")
        #expect(ready + ran.count == 1)
    }

    @Test func cancellingTheRunningTaskShutsTheWorkerDownGracefully() async throws {
        let harness = try await WorkerHarness.make("shutdown-cancel")
        let worker = Worker(configuration: try harness.configuration(), registry: TaskRegistry(), logger: WorkerKit.quiet)
        let finished = Mutex<Result<Void, any Error>?>(nil)
        let task = Task {
            do {
                try await worker.run()
                finished.withLock { $0 = .success(()) }
            } catch {
                finished.withLock { $0 = .failure(error) }
            }
        }
        try await harness.waitUntilRegistered(worker)
        task.cancel()
        try await WorkerKit.eventually("run() returned") { finished.withLock { $0 != nil } }
        try finished.withLock { $0 }?.get()
        #expect(try await !harness.workers().contains(worker.id))
    }

    // MARK: The daemon

    @Test func daemonStopsCleanlyOnSIGTERMUnderLoadAndLosesNothing() async throws {
        let harness = try await WorkerHarness.make("sigterm")
        let tokens = (0..<40).map { "r\($0)" }
        try await harness.enqueue {
            for token in tokens {
                // 40 one-second sleeps on 4 slots: ten seconds of work, so SIGTERM lands mid-way even on a loaded machine.
                try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 1.0, "token": .string("s-" + token)])
                try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(token)])
            }
        }
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--concurrency", "4", "--name", "termy",
            "--shutdown-timeout", "10", "--log-level", "info",
        ])
        let elapsed: Duration
        do {
            try await WorkerKit.eventually("the daemon is busy", timeout: .seconds(20)) {
                guard let id = try await harness.workers().first(where: { $0.hasPrefix("termy-") }) else { return false }
                guard try await harness.recorded().count >= 4 else { return false }
                return try await harness.inflightCount(worker: id) >= 4
            }
            let signalled = ContinuousClock.now
            daemon.send(SIGTERM)
            let exit = try await daemon.waitForExit(within: .seconds(15))
            elapsed = ContinuousClock.now - signalled
            #expect(exit.exited && exit.status == 0, "exit \(exit); stderr: \(daemon.stderr.suffix(2000))")
        } catch {
            await daemon.killIfRunning()
            throw error
        }
        print("SIGTERM under load: the daemon exited after \(elapsed) (shutdown timeout 10 s)")
        #expect(try await !harness.workers().contains { $0.hasPrefix("termy-") }, "it deregistered")
        #expect(try await harness.recorded().count < tokens.count, "the signal arrived mid-way")

        // A second worker finishes the rest; its airlock.sleep does not sleep.
        var registry = TaskRegistry()
        registry.register("airlock.sleep") { _, _ in }
        try await harness.withWorker(try harness.configuration(concurrency: 4), registry: registry) { _ in
            try await WorkerKit.eventually("all 80 jobs processed") { try await harness.stats()["processed"] == 80 }
        }
        let recorded = try await harness.recorded()
        #expect(recorded.sorted() == tokens.sorted(), "every token recorded exactly once")
        #expect(try await harness.readyCount() == 0)
        let stats = try await harness.stats()
        #expect(stats["failed"] == nil && stats["dead"] == nil)
    }

    @Test func idleDaemonExitsCleanlyOnSIGINT() async throws {
        let harness = try await WorkerHarness.make("sigint")
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--name", "inty", "--log-level", "warning",
        ])
        do {
            try await WorkerKit.eventually("registered", timeout: .seconds(20)) {
                try await harness.workers().contains { $0.hasPrefix("inty-") }
            }
            daemon.send(SIGINT)
            let exit = try await daemon.waitForExit(within: .seconds(5))
            #expect(exit.exited && exit.status == 0, "exit \(exit): \(daemon.stderr)")
            #expect(try await harness.workers().isEmpty, "deregistered")
        } catch {
            await daemon.killIfRunning()
            throw error
        }
    }

    @Test func secondSignalExitsAtOnce() async throws {
        let harness = try await WorkerHarness.make("sigterm-twice")
        try await harness.enqueue {
            for _ in 0..<2 { try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 30]) }
        }
        let daemon = try await WorkerDaemon.launch([
            "run", "--redis", harness.url, "--namespace", harness.namespace, "--concurrency", "2", "--name", "twice",
            "--shutdown-timeout", "30", "--log-level", "info",
        ])
        do {
            try await WorkerKit.eventually("both sleeps running", timeout: .seconds(20)) {
                guard let id = try await harness.workers().first(where: { $0.hasPrefix("twice-") }) else { return false }
                return try await harness.inflightCount(worker: id) == 2
            }
            daemon.send(SIGTERM)
            try await WorkerKit.eventually("graceful shutdown began") { daemon.stderr.contains("shutting down") }
            #expect(daemon.isRunning, "the first signal waits for the running 30-s tasks")
            let second = ContinuousClock.now
            daemon.send(SIGTERM)
            let exit = try await daemon.waitForExit(within: .seconds(5))
            print("second SIGTERM: exited after \(ContinuousClock.now - second)")
            #expect(exit.exited && exit.status != 0, "exit \(exit)")
            #expect(daemon.stderr.contains("second signal"), "\(daemon.stderr.suffix(1000))")
        } catch {
            await daemon.killIfRunning()
            throw error
        }
    }
}
