import Airlock
import AirlockRedisClient
public import AirlockWorker
import Logging

extension RedisJobSource {
    /// One script moves up to `maximum` jobs from the lane's key into the worker's in-flight list
    /// (nothing while the queue is paused), in one round trip on the lane's own connection.
    public func take(_ maximum: Int, from lane: FetchLane) async throws -> TakeResult {
        let current = try current()
        let reply = try await client(for: lane, in: current).evalScript(
            Self.fetchScript, keys: [Array(lane.name.utf8), inflightKey(lane.queue, current), Array(keys.paused(lane.queue).utf8)],
            args: [Array(String(maximum).utf8)])
        guard let jobs = try reply.optionalElements() else { return .paused }
        var fetched: [FetchedJob] = []
        fetched.reserveCapacity(jobs.count)
        for job in jobs { fetched.append(FetchedJob(queue: lane.queue, raw: try job.bulk())) }
        return .jobs(fetched)
    }

    /// `BLMOVE` on the lane's own connection: into the in-flight list with `claimOne`, else the
    /// list onto itself (it moves nothing, only waits). A Redis at `maxmemory` refuses `BLMOVE`
    /// (it may grow memory) but still runs the allow-oom fetch script, so until it takes `BLMOVE`
    /// again an idle lane polls every 100 ms instead of blocking — said once, not as an outage.
    public func waitForJobs(on lane: FetchLane, timeout: Duration, claimOne: Bool) async throws -> [FetchedJob] {
        let current = try current()
        if let refused = blockingRefused.withLock({ $0[lane.name] }), ContinuousClock.now < refused.until {
            try? await Task.sleep(for: Self.refusedPollInterval)
            return []
        }
        let key = Array(lane.name.utf8)
        let command: RedisCommand = claimOne
            ? .blmove(key, inflightKey(lane.queue, current), from: .right, to: .left, timeout: timeout)
            : .blmove(key, key, from: .right, to: .right, timeout: timeout)
        let reply: RedisReply
        do {
            reply = try await client(for: lane, in: current).send(command)
        } catch {
            guard error.isOutOfMemory else { throw error }
            let refusals = blockingRefused.withLock { state -> Int in
                let refusals = (state[lane.name]?.refusals ?? 0) + 1
                state[lane.name] = (.now + configuration.redis.reconnectBackoff.delay(attempt: refusals + 4), refusals)
                return refusals
            }
            if refusals == 1 {
                logger.warning("Redis is at maxmemory and refuses BLMOVE; polling the queue instead of blocking until it accepts writes again",
                               metadata: ["queue": "\(SafeText.escape(lane.queue))", "error": "\(SafeText.escape(error.description))"])
            }
            return []
        }
        leaveRefusedState(lane)
        guard claimOne, let raw = try reply.optionalBulk() else { return [] }
        return [FetchedJob(queue: lane.queue, raw: raw)]
    }

    /// How often an idle lane looks at its queue while Redis refuses `BLMOVE`.
    static let refusedPollInterval: Duration = .milliseconds(100)

    private func leaveRefusedState(_ lane: FetchLane) {
        guard blockingRefused.withLock({ $0.removeValue(forKey: lane.name) }) != nil else { return }
        logger.notice("Redis accepts BLMOVE again; idle fetching blocks again", metadata: ["queue": "\(SafeText.escape(lane.queue))"])
    }

    func client(for lane: FetchLane, in run: Run) -> RedisClient { run.fetch[lane.name] ?? run.control }

    func inflightKey(_ queue: String, _ run: Run) -> [UInt8] { Array(keys.inflight(queue, worker: run.worker.id).utf8) }

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
