import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Batches on a real Redis: the record written with the jobs, each job's final outcome counted
/// once, callbacks queued exactly once when the last job settles (also when a worker is killed
/// mid-batch), follow-ups joining their batch, cancellation and hostile input.
@Suite("Worker: batches", .timeLimit(.minutes(5)))
struct WorkerBatchTests {
    /// A callback that appends `token` to the diagnostic record list.
    static func record(_ token: String) -> Intent {
        Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": .string(token)])))
    }

    /// `batch.work` fails for good when asked to; `batch.parent` enqueues one `batch.child`,
    /// which records its token.
    static var registry: TaskRegistry {
        var tasks = TaskRegistry()
        tasks.register("batch.work") { arguments, _ in
            if arguments.kwargs["fail"] == .bool(true) { throw PermanentFailure("asked to fail") }
        }
        tasks.register("batch.parent") { arguments, _ in
            try Airlock.enqueue(name: "airlock.record", kwargs: ["token": arguments.kwargs["child"] ?? "child"])
        }
        return tasks
    }

    static func admin(_ harness: WorkerHarness) -> RedisAdmin { RedisAdmin(client: harness.redis, namespace: harness.namespace) }

    /// Waits until the batch's record says it completed and no job of `queue` is ready or held.
    static func waitForCompletion(_ harness: WorkerHarness, _ id: String, queue: String = "default") async throws -> BatchProgress {
        try await WorkerKit.eventually("batch \(id) complete and its queue drained") {
            guard let batch = try await admin(harness).batch(id: id), batch.isComplete, try await harness.readyCount(queue) == 0 else { return false }
            return try await held(harness, queue: queue, workers: "*") == 0
        }
        return try #require(try await admin(harness).batch(id: id))
    }

    /// Jobs of `queue` held in flight by the workers whose ids match the glob `workers`.
    static func held(_ harness: WorkerHarness, queue: String = "default", workers: String) async throws -> Int {
        let reply = try await harness.command(
            "EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('LLEN', k) end return n", "0",
            "\(harness.namespace):{\(queue)}:inflight:\(workers)")
        return try #require(reply.int, "the in-flight count is not an integer: \(reply)")
    }

    @Test func aThousandJobsWithTenFailingQueueOnCompleteOnceAndOnSuccessNever() async throws {
        let harness = try await WorkerHarness.make("batch-1000")
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"), description: "a thousand")
        try await harness.executor.batch(batch, policy: AllowAll()) {
            for index in 0..<1000 { try Airlock.enqueue(name: "batch.work", kwargs: ["fail": .bool(index % 100 == 7)]) }
        }
        let written = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(written.total == 1000 && written.pending == 1000 && !written.isComplete)
        try await harness.withWorker(try harness.configuration(concurrency: 10, prefetch: 10), registry: Self.registry) { _ in
            try await harness.withWorker(try harness.configuration(concurrency: 10, prefetch: 10), registry: Self.registry) { _ in
                let done = try await Self.waitForCompletion(harness, batch.id)
                #expect(done.succeeded == 990 && done.dead == 10 && done.cancelled == 0 && done.pending == 0 && done.total == 1000)
                try await WorkerKit.eventually("the onComplete callback ran") { try await harness.recorded().contains("complete") }
            }
        }
        // onSuccess would have been queued in the same script as onComplete: it never was.
        #expect(try await harness.recorded() == ["complete"])
        #expect(try await harness.length(harness.keys.dead("default")) == 10)
        // The completed record expires (after its 24 h retention), the counted ids with it.
        let ttl = try await harness.command("TTL", harness.keys.batch("default", id: batch.id)).int ?? -1
        #expect(ttl > 0 && ttl <= 86_400)
        #expect(try await harness.command("TTL", harness.keys.batchCounted("default", id: batch.id)).int ?? -1 > 0)
    }

    @Test func followUpsJoinTheBatchAndBothCallbacksRunOnceAfterThem() async throws {
        let harness = try await WorkerHarness.make("batch-nested")
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"))
        try await harness.executor.batch(batch, policy: AllowAll()) {
            for index in 0..<50 { try Airlock.enqueue(name: "batch.parent", kwargs: ["child": .string("child-\(index)")]) }
        }
        try await harness.withWorker(try harness.configuration(concurrency: 8, prefetch: 4), registry: Self.registry) { _ in
            try await WorkerKit.eventually("both callbacks ran") { try await Set(harness.recorded()).isSuperset(of: ["success", "complete"]) }
            _ = try await Self.waitForCompletion(harness, batch.id)
        }
        let recorded = try await harness.recorded()
        let done = try #require(try await Self.admin(harness).batch(id: batch.id))
        // 50 parents and their 50 children, every one succeeded.
        #expect(done.total == 100 && done.succeeded == 100 && done.pending == 0, "\(done)")
        #expect(recorded.filter { $0 == "success" }.count == 1 && recorded.filter { $0 == "complete" }.count == 1)
        #expect(Set(recorded.prefix(50)) == Set((0..<50).map { "child-\($0)" }), "callbacks ran before a child: \(recorded)")
    }

    @Test func aDaemonKilledMidBatchLeavesTheCallbacksExactlyOnce() async throws {
        let harness = try await WorkerHarness.make("batch-kill")
        let arguments = ["run", "--redis", harness.url, "--namespace", harness.namespace, "--queues", "default", "--log-level", "warning", "--concurrency", "8"]
        var daemons: [WorkerDaemon] = []
        for _ in 0..<2 { daemons.append(try await WorkerDaemon.launch(arguments)) }
        defer { for daemon in daemons { Task { await daemon.killIfRunning() } } }
        // Both daemons up before the batch is written, so both take part in it.
        try await WorkerKit.eventually("both daemons registered") { try await harness.workers().count == 2 }
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"))
        try await harness.executor.batch(batch, policy: AllowAll()) {
            for _ in 0..<200 { try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": .double(0.2)]) }
        }
        // Killed while it holds jobs of the batch (worker ids are `<name>-<pid>-<random>`): whichever
        // daemon is seen holding some first, since under the full suite's load one may take every
        // job before the other wakes. 200 jobs of 0.2 s over 2 × 8 slots: a window of seconds.
        let killed: Int, done: BatchProgress
        do {
            var victim: Int?
            try await WorkerKit.eventually("a daemon holds jobs of the batch") {
                for (index, daemon) in daemons.enumerated() where !daemon.isRunning {
                    throw WorkerWaitTimeout(description: "daemon \(index) exited before the kill")
                }
                guard let progress = try await Self.admin(harness).batch(id: batch.id), progress.pending > 0 else { return false }
                for (index, daemon) in daemons.enumerated() {
                    if try await Self.held(harness, workers: "*-\(daemon.pid)-*") > 0 { victim = index; return true }
                }
                return false
            }
            killed = try #require(victim)
            daemons[killed].send(SIGKILL)
            _ = try await daemons[killed].waitForExit(within: .seconds(30))
            done = try await Self.waitForCompletion(harness, batch.id)
            try await WorkerKit.eventually("both callbacks ran") { try await Set(harness.recorded()).isSuperset(of: ["success", "complete"]) }
        } catch {
            // What each daemon logged is what tells a stuck fetch from a slow machine.
            let progress = try? await Self.admin(harness).batch(id: batch.id)
            Issue.record("\(error); batch: \(progress.map { "\($0)" } ?? "none"); daemons' stderr: \(daemons.map(\.stderr))")
            return
        }
        let survivor = daemons[1 - killed]
        #expect(done.total == 200 && done.succeeded == 200 && done.pending == 0)
        survivor.send(SIGTERM)
        let exit = try await survivor.waitForExit(within: .seconds(60))
        #expect(exit.exited && exit.status == 0, "\(survivor.stderr)")
        #expect(try await harness.recorded().sorted() == ["complete", "success"])
    }

    @Test func aCancelledQueuedJobCountsCancelledAndOnSuccessNeverRuns() async throws {
        let harness = try await WorkerHarness.make("batch-cancel")
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"))
        let ids = try await harness.executor.batch(batch, policy: AllowAll()) {
            try (0..<3).map { _ in try Airlock.enqueue(name: "batch.work").id.uuidString.lowercased() }
        }
        let report = try await Self.admin(harness).cancel(jobID: ids[1])
        #expect(report.steps.map(\.action) == [.removedFromReady])
        let afterCancel = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(afterCancel.cancelled == 1 && afterCancel.pending == 2)
        try await harness.withWorker(try harness.configuration(), registry: Self.registry) { _ in
            try await WorkerKit.eventually("onComplete ran") { try await harness.recorded().contains("complete") }
            _ = try await Self.waitForCompletion(harness, batch.id)
        }
        #expect(try await harness.recorded() == ["complete"])
        let done = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(done.succeeded == 2 && done.cancelled == 1 && done.pending == 0)
    }

    @Test func runningAndPrefetchedJobsCancelledByAnOperatorCountCancelled() async throws {
        let harness = try await WorkerHarness.make("batch-cancel-held")
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"))
        let ids = try await harness.executor.batch(batch, policy: AllowAll()) {
            try (0..<2).map { _ in try Airlock.enqueue(name: "airlock.sleep", kwargs: ["seconds": 600]).id.uuidString.lowercased() }
        }
        try await harness.withWorker(try harness.configuration(concurrency: 1, prefetch: 1)) { worker in
            // One running, the other prefetched: both held by the worker.
            try await WorkerKit.eventually("both jobs held") { try await harness.inflightCount(worker: worker.id) == 2 }
            for id in ids {
                #expect(try await Self.admin(harness).cancel(jobID: id).steps.map(\.action) == [.requestedFromWorker])
            }
            try await WorkerKit.eventually("onComplete ran") { try await harness.recorded().contains("complete") }
        }
        let done = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(done.cancelled == 2 && done.pending == 0 && done.isComplete)
        #expect(try await harness.recorded() == ["complete"])
    }

    @Test func enqueueingInAnExplicitBatchTwiceAddsToIt() async throws {
        let harness = try await WorkerHarness.make("batch-explicit")
        let batch = Batch(onComplete: Self.record("complete"))
        let work = Intent(taskName: "batch.work", payload: .dynamic(TaskArguments()))
        _ = try await harness.executor.enqueue([work], in: batch)
        _ = try await harness.executor.enqueue([Intent(taskName: "batch.work", payload: .dynamic(TaskArguments()))], in: batch)
        #expect(try await Self.admin(harness).batch(id: batch.id)?.total == 2)
        try await harness.withWorker(try harness.configuration(), registry: Self.registry) { _ in
            try await WorkerKit.eventually("onComplete ran") { try await harness.recorded().contains("complete") }
        }
        let done = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(done.succeeded == 2 && done.total == 2)
    }

    @Test func anEmptyBatchCompletesAtOnceWithBothCallbacks() async throws {
        let harness = try await WorkerHarness.make("batch-empty")
        let batch = Batch(onSuccess: Self.record("success"), onComplete: Self.record("complete"))
        try await harness.executor.batch(batch, policy: AllowAll()) {}
        let progress = try #require(try await Self.admin(harness).batch(id: batch.id))
        #expect(progress.total == 0 && progress.isComplete)
        let queued = try await harness.readyInConsumptionOrder().compactMap { $0["kwargs"]?.objectValue?["token"]?.stringValue }
        #expect(queued.sorted() == ["complete", "success"])
    }

    @Test func aFailedScopeWritesNoBatchAndACallbackOnAnotherQueueIsRefused() async throws {
        let harness = try await WorkerHarness.make("batch-refused")
        struct Boom: Error {}
        let failed = Batch(onComplete: Self.record("complete"))
        await #expect(throws: Boom.self) {
            try await harness.executor.batch(failed, policy: AllowAll()) {
                try Airlock.enqueue(name: "batch.work")
                throw Boom()
            }
        }
        #expect(try await Self.admin(harness).batch(id: failed.id) == nil)

        var elsewhere = Self.record("complete")
        elsewhere = Intent(taskName: elsewhere.taskName, payload: elsewhere.payload, options: DispatchOptions(queue: "other"))
        let refused = Batch(queue: "default", onComplete: elsewhere)
        let error = await #expect(throws: DispatchError.self) {
            try await harness.executor.batch(refused, policy: AllowAll()) { try Airlock.enqueue(name: "batch.work") }
        }
        #expect(error.map { "\($0)" }?.contains("run on the batch's queue") == true, "\(String(describing: error))")
        let (ready, other) = (try await harness.readyCount(), try await harness.readyCount("other"))
        #expect(ready == 0 && other == 0)
        #expect(try await Self.admin(harness).batch(id: refused.id) == nil)

        // An id the operators' index could not hold (`<id> <queue>`) is refused too.
        await #expect(throws: DispatchError.self) {
            try await harness.executor.batch(Batch(id: "two words"), policy: AllowAll()) { try Airlock.enqueue(name: "batch.work") }
        }
        #expect(try await harness.readyCount() == 0)
    }

    @Test func batchFieldsNamingNoBatchOfOursCountNothingAndTheJobStillSettles() async throws {
        let harness = try await WorkerHarness.make("batch-hostile")
        // A string where a batch record would be, and fields naming an invalid queue.
        try await harness.command("SET", harness.keys.batch("default", id: "victim"), "not a hash")
        for (id, queue) in [("victim", "default"), ("x", "bad\nqueue{"), (String(repeating: "y", count: 500), "default")] {
            let envelope = Envelope(
                id: UUID().uuidString.lowercased(), task: "batch.work", queue: "default", enqueuedAt: WorkerKit.nowMS(),
                extra: ["batch_id": .string(id), "batch_queue": .string(queue)])
            try await harness.pushRaw(envelope.encoded())
        }
        try await harness.withWorker(try harness.configuration(), registry: Self.registry) { _ in
            try await WorkerKit.eventually("the three jobs processed") { try await harness.stats()["processed"] == 3 }
        }
        #expect(try await harness.command("GET", harness.keys.batch("default", id: "victim")).string == "not a hash")
        #expect(try await harness.length(harness.keys.dead("default")) == 0)
    }

    @Test func theCLIListsBatchesWithProgressEscapingWhatTheProducerWrote() async throws {
        let harness = try await WorkerHarness.make("batch-cli")
        let batch = Batch(onComplete: Self.record("complete"), description: "nightly \u{1b}[2J export\n")
        try await harness.executor.batch(batch, policy: AllowAll()) {
            for _ in 0..<4 { try Airlock.enqueue(name: "batch.work") }
        }
        let connection = ["--redis", harness.url, "--namespace", harness.namespace]
        let table = try await CLI.run(["batches"] + connection)
        #expect(table.status == 0, "\(table)")
        #expect(!CLI.hasTerminalControls(table.stdout), "\(table.stdout)")
        #expect(table.stdout.contains(batch.id) && table.stdout.contains("running") && table.stdout.contains("nightly \\x1b[2J export"))
        let stats = try await CLI.run(["stats"] + connection)
        #expect(stats.status == 0 && stats.stdout.contains("RUNNING BATCH") && stats.stdout.contains("0/4"), "\(stats)")
        let json = try await CLI.run(["batches", batch.id, "--json"] + connection)
        #expect(json.status == 0, "\(json)")
        let document = try WorkerKit.object(Array(json.stdout.utf8))
        let listed = try #require(document["batches"]?.arrayValue?.first?.objectValue)
        #expect(document["schema"] == "airlock.batches/1" && listed["pending"] == 4 && listed["complete"] == false && listed["on_success"] == false)
        let missing = try await CLI.run(["batches", "no-such-batch"] + connection)
        #expect(missing.status == 1 && missing.stderr.contains("no batch"), "\(missing)")
    }
}
