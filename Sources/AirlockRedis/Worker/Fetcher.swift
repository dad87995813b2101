import Airlock
import Foundation
import Logging

/// Takes jobs from one queue's ready list into this worker's in-flight list, atomically.
///
/// Under load a script moves up to a batch of jobs in one round trip. When the queue is empty
/// the fetcher blocks in `BLMOVE` on its own connection (its own thread), so an idle worker costs
/// nothing and a new job starts as soon as it is pushed. A paused queue is not touched.
struct Fetcher: Sendable {
    let queueIndex: Int
    let route: QueueRoute
    /// The key this fetcher takes from (one of the route's fetch keys).
    let readyKey: String
    let worker: String
    let keys: RedisKeys
    let configuration: WorkerConfiguration
    let buffer: WorkBuffer
    let connectionState: ConnectionState
    let reconciler: Reconciler
    let logger: Logger

    func run() async {
        let client = RedisClient(configuration: configuration.redis, name: "airlock-fetch", logger: logger)
        await fetch(using: client)
        await client.close()
    }

    private func fetch(using client: RedisClient) async {
        let queue = route.queue
        let ready = Array(readyKey.utf8)
        let inflight = Array(keys.inflight(queue, worker: worker).utf8)
        let paused = Array(keys.paused(queue).utf8)
        let block = Array(String(format: "%.3f", configuration.blockTimeout.timeInterval).utf8)
        // With one source, an idle fetcher blocks taking the job (BLMOVE into the in-flight list);
        // with several, it only waits for work (BLMOVE of the list onto itself moves nothing) and
        // then competes for a slot, so the earlier queue keeps its priority.
        let onlySource = configuration.routes.flatMap(\.fetchKeys).count == 1
        var failures = 0
        var uncertain = false
        // Redis at maxmemory refuses BLMOVE (it may grow memory) but still runs the allow-oom
        // fetch script: until it takes BLMOVE again, an idle fetcher polls instead of blocking.
        var blockingRefusedUntil: ContinuousClock.Instant?
        var blockingRefusals = 0
        var reserved = await buffer.reserve(queueIndex: queueIndex, maximum: configuration.fetchBatch)
        while reserved > 0 {
            var blocking = false
            do {
                if uncertain {
                    // The last fetch failed after it may have run: take back what it may have moved.
                    try await reconciler.reconcile(route, using: client)
                    uncertain = false
                }
                let reply = try await client.evalScript(Self.fetchScript, keys: [ready, inflight, paused], args: [Array(String(reserved).utf8)])
                connectionState.recovered("fetch \(queue)")
                failures = 0
                let jobs = (reply.array ?? []).compactMap(\.bytes).map { Job(queueIndex: queueIndex, queue: queue, home: route.homeKey, raw: $0) }
                if reply.isNull {
                    // Paused: hold nothing, look again shortly.
                    buffer.deliver([], queueIndex: queueIndex, reserved: reserved)
                    reserved = 0
                    try? await Task.sleep(for: .milliseconds(250))
                } else if !jobs.isEmpty {
                    reserved = await buffer.deliverAndReserve(jobs, queueIndex: queueIndex, reserved: reserved, maximum: configuration.fetchBatch)
                    continue
                } else if let until = blockingRefusedUntil, ContinuousClock.now < until {
                    buffer.deliver([], queueIndex: queueIndex, reserved: reserved)
                    reserved = 0
                    try? await Task.sleep(for: Self.refusedPollInterval)
                } else if onlySource {
                    buffer.deliver([], queueIndex: queueIndex, reserved: reserved - 1)
                    reserved = 1
                    blocking = true
                    let taken = try await client.send([Array("BLMOVE".utf8), ready, inflight, Array("RIGHT".utf8), Array("LEFT".utf8), block])
                    leaveRefusedState(&blockingRefusedUntil, &blockingRefusals)
                    let jobs = taken.bytes.map { [Job(queueIndex: queueIndex, queue: queue, home: route.homeKey, raw: $0)] } ?? []
                    reserved = await buffer.deliverAndReserve(jobs, queueIndex: queueIndex, reserved: 1, maximum: configuration.fetchBatch)
                    continue
                } else {
                    buffer.deliver([], queueIndex: queueIndex, reserved: reserved)
                    reserved = 0
                    blocking = true
                    _ = try await client.send([Array("BLMOVE".utf8), ready, ready, Array("RIGHT".utf8), Array("RIGHT".utf8), block])
                    leaveRefusedState(&blockingRefusedUntil, &blockingRefusals)
                }
            } catch {
                buffer.deliver([], queueIndex: queueIndex, reserved: reserved)
                reserved = 0
                if error.mayHaveBeenApplied { uncertain = true }
                if blocking && error.isOutOfMemory {
                    // Not an outage: Redis answers, and the fetch script still drains the queue.
                    blockingRefusals += 1
                    if blockingRefusedUntil == nil {
                        logger.warning("Redis is at maxmemory and refuses BLMOVE; polling the queue instead of blocking until it accepts writes again",
                                       metadata: ["queue": "\(SafeText.escape(queue))", "error": "\(SafeText.escape(error.description))"])
                    }
                    blockingRefusedUntil = .now + configuration.redis.reconnectBackoff.delay(attempt: blockingRefusals + 4)
                } else {
                    if connectionState.failed("fetch \(queue)", error) { return }
                    failures += 1
                    await connectionState.backoff(attempt: failures)
                }
            }
            reserved = await buffer.reserve(queueIndex: queueIndex, maximum: configuration.fetchBatch)
        }
    }

    /// How often an idle fetcher looks at its queue while Redis refuses BLMOVE.
    static let refusedPollInterval: Duration = .milliseconds(100)

    private func leaveRefusedState(_ until: inout ContinuousClock.Instant?, _ refusals: inout Int) {
        guard until != nil else { return }
        until = nil
        refusals = 0
        logger.notice("Redis accepts BLMOVE again; idle fetching blocks again", metadata: ["queue": "\(SafeText.escape(route.queue))"])
    }

    /// KEYS: ready, in-flight, paused flag. ARGV: most jobs to move. Returns nil when paused.
    static let fetchScript = RedisScript("""
        #!lua flags=allow-oom
        if redis.call('EXISTS', KEYS[3]) == 1 then return false end
        local jobs = {}
        for i = 1, tonumber(ARGV[1]) do
          local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
          if not job then break end
          jobs[i] = job
        end
        return jobs
        """)
}
