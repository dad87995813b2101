import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Testing

/// Issue 4 (3): reliable fetch — atomic take into the worker's in-flight list, acknowledgement
/// after the task, blocking when idle, prompt start, several queues in priority order.
@Suite("Worker: reliable fetch", .timeLimit(.minutes(5)))
struct WorkerFetchTests {
    /// A registry with `gate` (waits at `latch`) and `mark` (records kwargs.token in `probe`).
    static func registry(latch: WorkerLatch = WorkerLatch(), probe: WorkerProbe = WorkerProbe(), markTakes: Duration = .zero) -> TaskRegistry {
        var registry = TaskRegistry()
        registry.register("gate") { arguments, _ in
            try await probe.running {
                probe.record("start \(arguments.kwargs["token"]?.stringValue ?? "")")
                try await latch.wait()
            }
        }
        registry.register("mark") { arguments, _ in
            probe.record(arguments.kwargs["token"]?.stringValue ?? "?")
            if markTakes > .zero { try await Task.sleep(for: markTakes) }
        }
        return registry
    }

    static func enqueue(_ harness: WorkerHarness, _ task: String, _ tokens: [String], queue: String = "default") async throws {
        try await harness.enqueue {
            for token in tokens {
                try Airlock.enqueue(name: task, kwargs: ["token": .string(token)], options: DispatchOptions(queue: queue))
            }
        }
    }

    @Test func jobIsHeldInTheWorkersInFlightListWhileItRunsAndAcknowledgedAfter() async throws {
        let harness = try await WorkerHarness.make("fetch-inflight")
        let latch = WorkerLatch()
        let intent = try await harness.enqueue { try Airlock.enqueue(name: "gate", kwargs: ["token": "only"]) }
        try await harness.withWorker(try harness.configuration(concurrency: 2), registry: Self.registry(latch: latch)) { worker in
            try await WorkerKit.eventually("the task started") { latch.waiting == 1 }
            let held = try await harness.list(harness.keys.inflight("default", worker: worker.id))
            try #require(held.count == 1, "the running job sits in <ns>:{default}:inflight:<worker.id>")
            #expect(try WorkerKit.object(held[0])["id"] == .string(intent.id.uuidString.lowercased()))
            #expect(try await harness.readyCount() == 0)
            #expect(try await harness.stats()["processed"] == nil, "not acknowledged while running")

            latch.open()
            try await WorkerKit.eventually("acknowledged") { try await harness.stats()["processed"] == 1 }
            #expect(try await harness.inflightCount(worker: worker.id) == 0, "acknowledging removed it from the in-flight list")
            #expect(try await harness.readyCount() == 0)
        }
    }

    /// The take is atomic: at every instant each job is in exactly one of ready, in flight, done.
    @Test func everyJobIsAlwaysEitherReadyInFlightOrDone() async throws {
        let harness = try await WorkerHarness.make("fetch-conserve")
        let total = 300
        var registry = TaskRegistry()
        registry.register("work") { _, _ in try await Task.sleep(for: .milliseconds(2)) }
        try await harness.enqueue { for _ in 0..<total { try Airlock.enqueue(name: "work") } }
        let snapshot = RedisScript("""
            return {redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), tonumber(redis.call('HGET', KEYS[3], 'processed') or '0')}
            """)
        var samples = 0
        var mostHeld = 0
        try await harness.withWorker(try harness.configuration(concurrency: 4, prefetch: 8), registry: registry) { worker in
            let keys = [harness.keys.ready("default"), harness.keys.inflight("default", worker: worker.id), harness.keys.stats("default")].map { Array($0.utf8) }
            try await WorkerKit.eventually("all jobs processed", timeout: .seconds(30), poll: .milliseconds(1)) {
                let counts = (try await harness.redis.evalScript(snapshot, keys: keys, args: []).array ?? []).compactMap(\.int)
                try #require(counts.count == 3)
                samples += 1
                #expect(counts[0] + counts[1] + counts[2] == total, "ready \(counts[0]) + in flight \(counts[1]) + done \(counts[2])")
                mostHeld = max(mostHeld, counts[1])
                return counts[2] == total
            }
        }
        // Finished jobs stay in the in-flight list until their (batched) settlement lands, so
        // Redis may briefly show more than concurrency + prefetch held.
        print("conservation: \(samples) atomic snapshots, at most \(mostHeld) jobs in flight (concurrency 4 + prefetch 8)")
        #expect(samples > 5)
    }

    @Test func concurrencyAndPrefetchBoundWhatAWorkerRunsAndHolds() async throws {
        let harness = try await WorkerHarness.make("fetch-bounds")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        try await Self.enqueue(harness, "gate", (0..<12).map { "g\($0)" })
        try await harness.withWorker(try harness.configuration(concurrency: 3, prefetch: 2), registry: Self.registry(latch: latch, probe: probe)) { worker in
            try await WorkerKit.eventually("three tasks running") { latch.waiting == 3 }
            try await WorkerKit.eventually("five jobs held") { try await harness.inflightCount(worker: worker.id) == 5 }
            #expect(try await harness.readyCount() == 7, "only concurrency + prefetch jobs are taken")
            let info = try await harness.command("HGET", harness.keys.workerInfo(worker.id), "concurrency").string
            #expect(info == "3")
            latch.open()
            try await WorkerKit.eventually("all processed") { try await harness.stats()["processed"] == 12 }
        }
        #expect(probe.maxRunning == 3, "at most `concurrency` tasks at once (saw \(probe.maxRunning))")
    }

    /// Idle workers block in Redis instead of polling: a couple of seconds of idleness costs a
    /// bounded handful of commands, and a job pushed afterwards starts at once.
    @Test func idleWorkerBlocksAndStartsANewJobPromptly() async throws {
        let server = try await RedisServer.start()   // commandstats are per server
        let harness = try await WorkerHarness.make("fetch-idle", server: server)
        let probe = WorkerProbe()
        try await harness.withWorker(try harness.configuration(concurrency: 2), registry: Self.registry(probe: probe)) { worker in
            try await harness.waitUntilRegistered(worker)
            let before = try await WorkerServerStats.commandCalls(harness.redis)
            let measuredFrom = ContinuousClock.now
            try await Task.sleep(for: .seconds(2))   // the measured interval, not a synchronisation
            let after = try await WorkerServerStats.commandCalls(harness.redis)
            let seconds = (ContinuousClock.now - measuredFrom).timeInterval
            func delta(_ command: String) -> Int { (after[command] ?? 0) - (before[command] ?? 0) }
            let total = after.keys.reduce(0) { $0 + delta($1) }
            print("idle worker deltas: \(after.keys.sorted().map { "\($0)=\(delta($0))" }.filter { !$0.hasSuffix("=0") })")
            print("idle worker, \(seconds) s: evalsha \(delta("evalsha")), blmove \(delta("blmove")), blpop \(delta("blpop")), all commands \(total)")
            // Scaled by the time that really passed, so a loaded machine cannot fail it. An idle
            // fetcher issues one BLMOVE per 0.5 s block timeout; a polling one would issue hundreds.
            #expect(Double(delta("blmove")) <= seconds / 0.5 + 2, "fetching while idle must block, not poll")
            // Commands inside scripts count too. Heartbeat script (5/s × 5 commands), reaper
            // (≈3.3/s), wake listener and fetcher (2/s each, a few commands each), the promoter's
            // 5 s wait and our own INFO: under 60 a second. A polling worker sends thousands.
            #expect(Double(total) <= seconds * 60 + 5, "an idle worker sends a bounded handful of commands (\(after))")

            let pushed = ContinuousClock.now
            try await Self.enqueue(harness, "mark", ["wake-up"])
            try await WorkerKit.eventually("the new job ran") { probe.count("wake-up") == 1 }
            let latency = try #require(probe.time(of: "wake-up")) - pushed
            print("idle worker: a newly pushed job started after \(latency) (reported; make bench measures latency)")
        }
    }

    @Test func pausedQueueIsLeftAloneUntilResumed() async throws {
        let harness = try await WorkerHarness.make("fetch-paused")
        let probe = WorkerProbe()
        try await harness.command("SET", harness.keys.paused("default"), "1")
        try await Self.enqueue(harness, "mark", ["p1", "p2"])
        try await harness.withWorker(try harness.configuration(), registry: Self.registry(probe: probe)) { worker in
            try await harness.waitUntilRegistered(worker)
            try await Task.sleep(for: .milliseconds(600))   // give a (wrong) worker time to take them
            #expect(try await harness.readyCount() == 2, "nothing taken from a paused queue")
            #expect(probe.events.isEmpty)
            try await harness.command("DEL", harness.keys.paused("default"))
            try await WorkerKit.eventually("both ran after resuming") { probe.events.count == 2 }
        }
    }

    @Test func oneWorkerServesSeveralQueuesEarlierQueueFirst() async throws {
        let harness = try await WorkerHarness.make("fetch-priority")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        try await Self.enqueue(harness, "gate", ["blocker"], queue: "high")
        let configuration = try harness.configuration(queues: ["high", "low"], concurrency: 1, prefetch: 0)
        // Tasks take a moment, so each fetcher is back waiting for a slot before the slot frees.
        let registry = Self.registry(latch: latch, probe: probe, markTakes: .milliseconds(20))
        try await harness.withWorker(configuration, registry: registry) { _ in
            try await WorkerKit.eventually("the blocker is running") { latch.waiting == 1 }
            // Both queues get work while the only slot is busy; low is filled first on purpose.
            try await Self.enqueue(harness, "mark", ["low-1", "low-2", "low-3"], queue: "low")
            try await Self.enqueue(harness, "mark", ["high-1", "high-2", "high-3"], queue: "high")
            latch.open()
            try await WorkerKit.eventually("all six ran") { probe.events.count == 7 }
        }
        #expect(probe.events == ["start blocker", "high-1", "high-2", "high-3", "low-1", "low-2", "low-3"])
        #expect(try await harness.stats("high")["processed"] == 4)
        #expect(try await harness.stats("low")["processed"] == 3)
    }

    @Test func priorityJobsJumpTheLine() async throws {
        let harness = try await WorkerHarness.make("fetch-jump")
        let probe = WorkerProbe()
        try await Self.enqueue(harness, "mark", ["a", "b", "c"])
        try await harness.enqueue {
            try Airlock.enqueue(name: "mark", kwargs: ["token": "urgent"], options: DispatchOptions(priority: 5))
        }
        try await harness.withWorker(try harness.configuration(concurrency: 1), registry: Self.registry(probe: probe)) { _ in
            try await WorkerKit.eventually("all four ran") { probe.events.count == 4 }
        }
        #expect(probe.events == ["urgent", "a", "b", "c"])
    }

    @Test func workerDescribesItselfInItsInfoHash() async throws {
        let harness = try await WorkerHarness.make("fetch-info")
        var configuration = try harness.configuration(queues: ["one", "two"], concurrency: 3)
        configuration.name = "describer"
        try await harness.withWorker(configuration) { worker in
            try await harness.waitUntilRegistered(worker)
            #expect(worker.id.hasPrefix("describer-\(getpid())-"))
            let flat = try await harness.command("HGETALL", harness.keys.workerInfo(worker.id)).array ?? []
            var info: [String: String] = [:]
            for index in stride(from: 0, to: flat.count - 1, by: 2) { info[flat[index].string ?? ""] = flat[index + 1].string }
            #expect(info["id"] == worker.id)
            #expect(info["pid"] == String(getpid()))
            #expect(info["queues"] == "one,two")
            #expect(info["concurrency"] == "3")
            #expect(info["in_flight"] == "0")
            #expect(info["host"]?.isEmpty == false)
            #expect(info["version"]?.isEmpty == false)
            #expect(info["started_at"].flatMap { Int64($0) }.map { abs($0 - WorkerKit.nowMS()) < 60_000 } == true)
            #expect(info["heartbeat_at"].flatMap { Int64($0) } != nil)
            let ttl = try await harness.command("PTTL", harness.keys.heartbeat(worker.id)).int ?? -1
            #expect((1...5_000).contains(ttl), "heartbeat key carries the configured TTL (5 s): \(ttl) ms")
            let queues = Set((try await harness.command("SMEMBERS", harness.keys.queues).array ?? []).compactMap(\.string))
            #expect(queues == ["one", "two"], "a worker adds the queues it serves")
        }
    }

    /// The same rule when tasks finish at once: no job of a later queue may slip in while the
    /// earlier queue still has ready jobs (nothing of the later queue may be held in advance).
    @Test func earlierQueueIsPreferredEvenWhenTasksFinishAtOnce() async throws {
        let harness = try await WorkerHarness.make("fetch-priority-fast")
        let latch = WorkerLatch()
        let probe = WorkerProbe()
        try await Self.enqueue(harness, "gate", ["blocker"], queue: "high")
        let configuration = try harness.configuration(queues: ["high", "low"], concurrency: 1, prefetch: 0)
        try await harness.withWorker(configuration, registry: Self.registry(latch: latch, probe: probe)) { _ in
            try await WorkerKit.eventually("the blocker is running") { latch.waiting == 1 }
            try await Self.enqueue(harness, "mark", (1...5).map { "low-\($0)" }, queue: "low")
            try await Self.enqueue(harness, "mark", (1...5).map { "high-\($0)" }, queue: "high")
            latch.open()
            try await WorkerKit.eventually("all ran") { probe.events.count == 11 }
        }
        #expect(probe.events == ["start blocker"] + (1...5).map { "high-\($0)" } + (1...5).map { "low-\($0)" })
    }

    /// However many queues a worker serves, it holds at most concurrency + prefetch jobs: more
    /// would be delayed behind running work, and stranded for a heartbeat TTL if it crashed.
    @Test func servingSeveralQueuesDoesNotRaiseWhatAWorkerHolds() async throws {
        let harness = try await WorkerHarness.make("fetch-hold")
        let latch = WorkerLatch()
        try await Self.enqueue(harness, "gate", ["g"], queue: "a")
        try await Self.enqueue(harness, "mark", (1...5).map { "a\($0)" }, queue: "a")
        try await Self.enqueue(harness, "mark", (1...5).map { "b\($0)" }, queue: "b")
        let configuration = try harness.configuration(queues: ["a", "b"], concurrency: 1, prefetch: 0)
        try await harness.withWorker(configuration, registry: Self.registry(latch: latch)) { worker in
            try await WorkerKit.eventually("the gate task runs") { latch.waiting == 1 }
            var mostHeld = 0
            for _ in 0..<20 {   // a short while of sampling (the gate keeps the only slot busy)
                let held = try await harness.inflightCount("a", worker: worker.id) + harness.inflightCount("b", worker: worker.id)
                mostHeld = max(mostHeld, held)
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(mostHeld == 1, "concurrency 1 + prefetch 0 = 1 job held across both queues, saw \(mostHeld)")
            latch.open()
            try await WorkerKit.eventually("all ran") {
                let a = try await harness.stats("a")["processed"] ?? 0
                let b = try await harness.stats("b")["processed"] ?? 0
                return a + b == 11
            }
        }
    }

    /// With one slot and an idle first queue, jobs on the second queue must still flow: the
    /// fetcher blocked on the empty first queue must not sit on the only free slot.
    @Test func laterQueueIsNotStarvedByAnIdleEarlierQueue() async throws {
        let server = try await RedisServer.start()   // BLMOVE calls are counted per server
        let harness = try await WorkerHarness.make("fetch-starve", server: server)
        let probe = WorkerProbe()
        let configuration = try harness.configuration(queues: ["high", "low"], concurrency: 1, prefetch: 0)
        try await harness.withWorker(configuration, registry: Self.registry(probe: probe)) { worker in
            try await harness.waitUntilRegistered(worker)
            let before = try await WorkerServerStats.commandCalls(harness.redis)
            try await Self.enqueue(harness, "mark", (1...10).map { "low-\($0)" }, queue: "low")
            try await WorkerKit.eventually("ten low jobs ran", timeout: .seconds(60)) { probe.events.count == 10 }
            let after = try await WorkerServerStats.commandCalls(harness.redis)
            let blocks = (after["blmove"] ?? 0) - (before["blmove"] ?? 0)
            print("10 jobs on the second queue while the first is idle (concurrency 1, prefetch 0): \(blocks) BLMOVE calls")
            // Were the only slot held by the fetcher blocked on the idle first queue, every job
            // would wait out one of its BLMOVE timeouts: at least ten BLMOVE calls. Counted, not timed.
            #expect(blocks < 10, "each job waited for the idle queue's BLMOVE to time out (\(blocks) BLMOVE calls for 10 jobs)")
            #expect(Set(probe.events) == Set((1...10).map { "low-\($0)" }))
        }
    }
}
