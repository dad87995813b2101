import Airlock
import AirlockRedisClient
import AirlockWorker

/// What ``RedisAdmin/cancel(jobID:scanLimit:)`` did, place by place.
public struct CancelReport: Sendable, Hashable {
    /// One thing done (or found) for the job.
    public struct Step: Sendable, Hashable {
        /// What happened.
        public enum Action: String, Sendable, Hashable {
            /// Taken out of the queue's ready jobs, so it never runs.
            case removedFromReady = "removed_from_ready"
            /// Taken out of the queue's delayed jobs (a scheduled job or a retry), so it never runs.
            case removedFromDelayed = "removed_from_delayed"
            /// Taken out of the in-flight list of a dead worker, before a reaper returned it.
            case removedFromDeadWorker = "removed_from_dead_worker"
            /// Held by a live worker (running or prefetched): asked to cancel it, which it does after
            /// its next heartbeat — a running task cooperatively (its `Task` is cancelled).
            case requestedFromWorker = "requested_from_worker"
            /// A dead letter: it already failed for good, there is nothing to cancel.
            case deadLetter = "dead_letter"
        }
        /// What happened.
        public var action: Action
        /// The queue whose keys held the job.
        public var queue: String
        /// The worker that holds it, for the in-flight cases.
        public var worker: String?

        /// A step with the given values.
        public init(action: Action, queue: String, worker: String? = nil) {
            self.action = action
            self.queue = queue
            self.worker = worker
        }
    }

    /// The job id.
    public var id: String
    /// What was done, in order.
    public var steps: [Step]
    /// False when some list or set was longer than the scan limit (see ``JobSearch/complete``).
    public var complete: Bool

    /// Whether the job was removed or its cancellation requested.
    public var cancelled: Bool { steps.contains { $0.action != .deadLetter } }
}

extension RedisAdmin {
    /// Cancels the job with id `id` wherever it is (``locateJob(id:scanLimit:)``): a ready or
    /// delayed job is removed, and counted `cancelled` in its queue's stats; a job held by a live
    /// worker is requested from it (`<ns>:{Q}:cancel:<worker>`), and that worker drops it if it
    /// has not started or cancels its task, settling it as cancelled, never retried; a job held by
    /// a dead worker is removed from its in-flight list. Each removal is one script that removes
    /// the exact stored message; a job that moved meanwhile (a worker took it, the promoter moved
    /// it) is searched for again, up to three times.
    public func cancel(jobID id: String, scanLimit: Int = 200_000) async throws -> CancelReport {
        var report = CancelReport(id: id, steps: [], complete: true)
        for _ in 0..<3 {
            let search = try await locateJob(id: id, scanLimit: scanLimit)
            report.complete = search.complete
            var moved = false
            for location in search.locations {
                let queue = location.queue
                switch location.place {
                case .ready:
                    if try await remove(location.stored, from: keys.ready(queue), kind: "list", queue: queue) {
                        report.steps.append(.init(action: .removedFromReady, queue: queue))
                    } else {
                        moved = true
                    }
                case .delayed:
                    if try await remove(location.stored, from: keys.delayed(queue), kind: "zset", queue: queue) {
                        report.steps.append(.init(action: .removedFromDelayed, queue: queue))
                    } else {
                        moved = true
                    }
                case .inFlight(let worker):
                    let alive = try await pipeline([RedisCommand("EXISTS", keys.heartbeat(worker))])[0].integer() > 0
                    if alive {
                        _ = try await pipeline([
                            RedisCommand("SADD", keys.cancelRequests(queue, worker: worker), id),
                            RedisCommand("EXPIRE", keys.cancelRequests(queue, worker: worker), 3600),
                        ]).map { try $0.throwingServerError() }
                        report.steps.append(.init(action: .requestedFromWorker, queue: queue, worker: worker))
                    } else if try await remove(location.stored, from: keys.inflight(queue, worker: worker), kind: "list", queue: queue) {
                        report.steps.append(.init(action: .removedFromDeadWorker, queue: queue, worker: worker))
                    } else {
                        moved = true
                    }
                case .dead:
                    report.steps.append(.init(action: .deadLetter, queue: queue))
                }
            }
            if report.cancelled || !moved { break }
        }
        return report
    }

    /// Removes one copy of `stored` from a list or sorted set and counts it cancelled; false when
    /// it was no longer there.
    /// A job of a batch is counted cancelled in its batch in the same script.
    private func remove(_ stored: [UInt8], from key: String, kind: String, queue: String) async throws -> Bool {
        var scriptKeys = [Array(key.utf8), Array(keys.stats(queue).utf8)]
        var arguments = [Array(kind.utf8), stored]
        var tallied = false
        if let count = BatchCount(raw: stored) {
            if BatchCounting.crossesSlots(queue, count.batch, keys: keys, cluster: client.configuration.cluster != nil) {
                // Its batch is in another slot: tallied here, then folded into the record.
                scriptKeys.append(Array(keys.batchTallies(queue).utf8))
                arguments.append(BatchTallies.Entry(field: "cancelled", count: count).encoded)
                tallied = true
            } else {
                scriptKeys += BatchCounting.keys(count.batch, keys)
                arguments.append(Array(count.jobID.utf8))
                arguments.append(Array(String(epochMilliseconds()).utf8))
            }
        }
        let reply = try await evaluate([Self.cancelScript.call(keys: scriptKeys, arguments: arguments)])[0]
        let removed = try reply.throwingServerError().integer() > 0
        if removed, tallied {
            countRoundTrip()
            try await BatchTallies.fold(queues: [queue], client: client, keys: keys, logger: logger)
        }
        return removed
    }

    /// KEYS: the list or sorted set, the queue's stats, then for a batch's job its batch keys
    /// (record, counted set, the batch queue's ready list), or, for a batch in another Cluster
    /// slot, this queue's batch tallies. ARGV: `list` or `zset`, the stored message, and for a
    /// batch's job its id and now (ms), or the tally's entry. Returns how many were removed (0 or 1).
    static let cancelScript = RedisScript("""
        #!lua
        \(BatchCounting.function)
        local removed
        if ARGV[1] == 'zset' then
          removed = redis.call('ZREM', KEYS[1], ARGV[2])
        else
          removed = redis.call('LREM', KEYS[1], 1, ARGV[2])
        end
        if removed > 0 then
          redis.call('HINCRBY', KEYS[2], 'cancelled', removed)
          if #KEYS == 5 then countInBatch(KEYS[3], KEYS[4], KEYS[5], {ARGV[3]}, 'cancelled', ARGV[4]) end
          if #KEYS == 3 then redis.call('SADD', KEYS[3], ARGV[3]) end
        end
        return removed
        """)
}
