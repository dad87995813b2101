import Airlock
import AirlockRedisClient
public import AirlockWorker
import Logging

extension RedisJobSource {
    /// One script moves up to `maximum` jobs from the lane's key into the worker's in-flight list
    /// (nothing while the queue is paused; no more than the queue's limit lets through), in one
    /// round trip on the lane's own connection.
    public func take(_ maximum: Int, from lane: FetchLane) async throws -> TakeResult {
        let current = try current()
        let queue = lane.queue
        let reply = try await client(for: lane, in: current).evalScript(
            Self.fetchScript,
            keys: [
                Array(lane.name.utf8), inflightKey(queue, current), Array(keys.paused(queue).utf8), Array(keys.limit(queue).utf8),
                Array(keys.limitHeld(queue).utf8), Array(keys.limitRate(queue).utf8),
            ],
            args: [Array(String(maximum).utf8), Array(current.worker.id.utf8)])
        guard let elements = try reply.optionalElements() else { return .paused }
        // A queue with a limit answers {jobs, wait}; jobs are bulk strings, so an array first says which.
        var jobs = elements
        var wait = 0
        let limited = elements.first?.array != nil
        if limited {
            jobs = try elements[0].elements()
            wait = elements.count > 1 ? try elements[1].integer() : 0
        }
        noteLimited(lane, limited)
        if jobs.isEmpty, wait != 0 { return .limited(retryAfter: wait > 0 ? .milliseconds(wait) : nil) }
        var fetched: [FetchedJob] = []
        fetched.reserveCapacity(jobs.count)
        for job in jobs { fetched.append(FetchedJob(queue: queue, raw: try job.bulk())) }
        return .jobs(fetched)
    }

    private func noteLimited(_ lane: FetchLane, _ limited: Bool) {
        limitedLanes.withLock { lanes in
            if limited { lanes.insert(lane.name) } else if !lanes.isEmpty { lanes.remove(lane.name) }
        }
    }

    /// Sleeps until the next rate token (plus up to 2 ms of jitter, so a fleet woken by the same
    /// token does not arrive in step), or blocks on `<ns>:{Q}:limit:wake` — where each freed lease
    /// leaves a token — on the lane's own connection; at most `timeout` either way.
    public func waitForLimit(on lane: FetchLane, retryAfter: Duration?, timeout: Duration) async throws {
        if let retryAfter {
            let jitter = Duration.microseconds(Int64.random(in: 0...2000))
            try? await Task.sleep(for: min(retryAfter + jitter, timeout))
            return
        }
        let current = try current()
        _ = try await client(for: lane, in: current).send(.blpop([Array(keys.limitWake(lane.queue).utf8)], timeout: timeout))
    }

    /// `BLMOVE` on the lane's own connection: into the in-flight list with `claimOne`, else the
    /// list onto itself (it moves nothing, only waits). A lane whose queue had a limit record at its
    /// last fetch never claims: the job is taken by the fetch script, which counts it against the
    /// limit. (A limit set while a lane waits here can let that one wait claim one job unleased.)
    /// A Redis at `maxmemory` refuses `BLMOVE` (it may grow memory) but still runs the allow-oom
    /// fetch script, so until it takes `BLMOVE` again an idle lane polls every 100 ms instead of
    /// blocking — said once, not as an outage.
    public func waitForJobs(on lane: FetchLane, timeout: Duration, claimOne: Bool) async throws -> [FetchedJob] {
        let current = try current()
        if let refused = blockingRefused.withLock({ $0[lane.name] }), ContinuousClock.now < refused.until {
            try? await Task.sleep(for: Self.refusedPollInterval)
            return []
        }
        let key = Array(lane.name.utf8)
        let claim = claimOne && !limitedLanes.withLock({ $0.contains(lane.name) })
        let command: RedisCommand = claim
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
        guard claim, let raw = try reply.optionalBulk() else { return [] }
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

    /// KEYS: ready (the lane), in-flight, paused flag, limit, limit leases (held), rate state.
    /// Jobs move with one `RPOP … count` and one variadic `LPUSH` (in chunks of 1000, under Lua's
    /// `unpack` limit): the same order as one `LMOVE … RIGHT LEFT` per job, at a fraction of
    /// Redis's CPU, and as atomic, since it is one script.
    /// ARGV: most jobs to move, worker id. Returns nil when paused. Without a limit record (one
    /// `HMGET` more than a plain move): the jobs moved. With one: `{jobs, wait}`, where `wait` is 0
    /// unless the limit let nothing through while jobs are ready: then -1 (every concurrency lease
    /// is held: wait for a freed one) or the milliseconds until the next rate token.
    ///
    /// Concurrency: the worker's lease is set to its in-flight list's length (which also mends a
    /// lease a return of jobs left too high), and at most the limit minus the sum of all leases
    /// is moved. Rate: GCRA on Redis's clock (`TIME`), one token per job; the theoretical arrival
    /// time is kept to the microsecond as a decimal string. Jobs over the limit stay in the ready
    /// list, in their place.
    static let fetchScript = RedisScript("""
        #!lua flags=allow-oom
        if redis.call('EXISTS', KEYS[3]) == 1 then return false end
        local limit = redis.call('HMGET', KEYS[4], 'concurrency', 'rate', 'interval_ms', 'burst')
        local concurrency, rate = tonumber(limit[1]) or 0, tonumber(limit[2]) or 0
        local function move(room)
          if room < 1 then return {} end
          local jobs = redis.call('RPOP', KEYS[1], room)
          if not jobs then return {} end
          for first = 1, #jobs, 1000 do
            redis.call('LPUSH', KEYS[2], unpack(jobs, first, math.min(first + 999, #jobs)))
          end
          return jobs
        end
        local room = tonumber(ARGV[1])
        if concurrency < 1 and rate < 1 then return move(room) end
        local wait = 0
        if concurrency >= 1 then
          redis.call('HSET', KEYS[5], ARGV[2], redis.call('LLEN', KEYS[2]))
          local used = 0
          for _, n in ipairs(redis.call('HVALS', KEYS[5])) do used = used + (tonumber(n) or 0) end
          if concurrency - used < room then room = concurrency - used end
          if room < 1 then wait = -1 end
        end
        local now, tat, step
        if rate >= 1 and room >= 1 then
          local time = redis.call('TIME')
          now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
          step = (tonumber(limit[3]) or 1000) / rate
          local burst = tonumber(limit[4]) or 1
          tat = math.max(tonumber(redis.call('GET', KEYS[6])) or 0, now)
          local tokens = math.floor((burst * step - (tat - now)) / step + 1e-9)
          if tokens < room then room = tokens end
          if room < 1 then wait = math.max(1, math.ceil(tat - now - (burst - 1) * step)) end
        end
        if room < 1 then
          if redis.call('LLEN', KEYS[1]) == 0 then wait = 0 end
          return {{}, wait}
        end
        local jobs = move(room)
        if #jobs > 0 then
          if concurrency >= 1 then redis.call('HINCRBY', KEYS[5], ARGV[2], #jobs) end
          if now then
            tat = tat + #jobs * step
            redis.call('SET', KEYS[6], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
          end
        end
        return {jobs, 0}
        """)
}
