import Airlock
import AirlockRedisClient
import AirlockWorker

extension RedisAdmin {
    /// Declares that `queue` is spread over `count` partitions (``QueuePartitions``): producers
    /// route to them within ``PartitionTable/refreshInterval``; running workers notice within ten
    /// heartbeats and restart in place (a graceful stop, then the source opened again) to consume them all.
    /// - Returns: the count it replaced (1 when the queue was not partitioned).
    /// - Throws: ``AdminError`` (`invalidInput`) when the Redis is not a Cluster (partitions exist
    ///   to spread a queue over nodes), for a name no worker could consume or that is itself a
    ///   partition's, for a count outside 1…``QueuePartitions/maximum``, or for fewer partitions
    ///   than declared (jobs waiting on the dropped ones would never run); ``RedisError``.
    @discardableResult
    public func setPartitions(_ count: Int, of queue: String) async throws -> Int {
        guard client.configuration.cluster != nil else {
            throw AdminError(.invalidInput, "partitioned queues spread a queue over the nodes of a Redis Cluster; \(client.configuration.redactedURL) is not a redis+cluster:// URL")
        }
        if let problem = QueueName.problem(with: queue) { throw AdminError(.invalidInput, problem) }
        let logical = QueuePartitions.logical(queue)
        if logical.partition != 0 {
            throw AdminError(.invalidInput, "'\(SafeText.escape(queue))' names a partition of '\(SafeText.escape(logical.queue))'; partition the queue itself")
        }
        guard (1...QueuePartitions.maximum).contains(count) else {
            throw AdminError(.invalidInput, "a queue has 1 to \(QueuePartitions.maximum) partitions, not \(count)")
        }
        // Partition names must be valid queue names too (the suffix makes a long name longer).
        if let problem = QueueName.problem(with: QueuePartitions.name(queue, partition: count - 1)) {
            throw AdminError(.invalidInput, "its partitions' names would be invalid: \(problem)")
        }
        let previous = try await partitions()[queue] ?? 1
        guard count >= previous else {
            throw AdminError(.invalidInput, "'\(SafeText.escape(queue))' has \(previous) partitions; lowering it would strand the jobs of the others (drain them, then delete \(keys.partitions) field \(SafeText.escape(queue)) by hand)")
        }
        if count > previous {
            _ = try await send(RedisCommand("HSET", keys.partitions, queue, String(count)))
        }
        return previous
    }

    /// Every partitioned queue and its number of partitions (`HGETALL <fleet>:partitions`).
    public func partitions() async throws -> [String: Int] {
        countRoundTrip()
        return try await QueuePartitions.declared(client, keys: keys)
    }
}

extension QueueStats {
    /// `rows` with the rows of each declared partitioned queue's partitions summed into one row
    /// named after the queue (``QueueStats/partitions`` its count); other rows unchanged, in order.
    static func merging(_ rows: [QueueStats], partitions: [String: Int]) -> [QueueStats] {
        guard !partitions.isEmpty else { return rows }
        var merged: [QueueStats] = []
        var index: [String: Int] = [:]
        for row in rows {
            let (queue, partition) = QueuePartitions.logical(row.name)
            guard let count = partitions[queue], partition < count else {
                merged.append(row)
                continue
            }
            guard let at = index[queue] else {
                var first = row
                first.name = queue
                first.partitions = count
                index[queue] = merged.count
                merged.append(first)
                continue
            }
            var sum = merged[at]
            sum.ready += row.ready
            sum.delayed += row.delayed
            sum.inFlight += row.inFlight
            sum.dead += row.dead
            sum.paused = sum.paused || row.paused
            sum.oldestReadyAgeMilliseconds = [sum.oldestReadyAgeMilliseconds, row.oldestReadyAgeMilliseconds].compactMap { $0 }.max()
            sum.counters = sum.counters + row.counters
            sum.limit = sum.limit ?? row.limit
            sum.limitHeld += row.limitHeld
            merged[at] = sum
        }
        return merged
    }
}
