import Airlock
import AirlockRedisClient
import AirlockWorker
import Synchronization

/// A logical queue spread over several hash slots of a Redis Cluster, so one hot queue can use
/// more than one primary (docs/OPERATIONS.md, "Partitioned queues").
///
/// Partition 0 is the queue itself (`orders`); partition `i` ≥ 1 is the queue `orders@p<i>`, whose
/// keys carry its own hash tag `{orders@p<i>}`. The number of partitions is declared in Redis
/// (`<fleet>:partitions`, field the queue, value the count) by ``RedisAdmin/setPartitions(_:of:)``
/// or `airlock-workerd partitions set`; producers (on a Cluster) route each job to one partition,
/// by its ``DispatchOptions/partitionKey`` when it has one, else by its id; workers configured
/// for `orders` consume every partition, each as a queue of its own.
public enum QueuePartitions {
    /// The most partitions a queue may have.
    public static let maximum = 1024

    /// The queue of partition `index` of `queue`: `queue` itself for 0, else `<queue>@p<index>`.
    public static func name(_ queue: String, partition index: Int) -> String {
        index == 0 ? queue : "\(queue)@p\(index)"
    }

    /// Every partition's queue, partition 0 (the queue itself) first.
    public static func names(_ queue: String, count: Int) -> [String] {
        (0..<max(1, count)).map { name(queue, partition: $0) }
    }

    /// The logical queue a partition's queue belongs to, and its index; `(name, 0)` for a name
    /// that is not a partition's.
    public static func logical(_ name: String) -> (queue: String, partition: Int) {
        guard let marker = name.ranges(of: "@p").last,
              let index = Int(name[marker.upperBound...]), index > 0, String(index) == name[marker.upperBound...],
              marker.lowerBound > name.startIndex else { return (name, 0) }
        return (String(name[..<marker.lowerBound]), index)
    }

    /// Which of `count` partitions a job with `key` goes to: the same key, the same partition,
    /// on every producer (FNV-1a over the key's UTF-8, not Swift's per-process seeded hash).
    public static func partition(forKey key: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// Reads the declared partition counts (`HGETALL <fleet>:partitions`).
    static func declared(_ client: RedisClient, keys: RedisKeys) async throws(RedisError) -> [String: Int] {
        counts(try await client.send(RedisCommand("HGETALL", keys.partitions)).throwingServerError().fields())
    }

    /// The counts in the fields of `<fleet>:partitions`; a field that is not a count from 2 to
    /// ``maximum`` is ignored, as if its queue were not partitioned.
    static func counts(_ fields: [String: String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for (queue, value) in fields {
            if let count = Int(value), (2...maximum).contains(count) { counts[queue] = count }
        }
        return counts
    }
}

/// The partition counts a producer routes by, read from Redis at most every ``refreshInterval``
/// and shared by the copies of one executor.
final class PartitionTable: Sendable {
    /// How stale a producer's view may get: a queue declared partitioned is spread that much later
    /// (its jobs meanwhile go to partition 0, which is consumed like the others).
    static let refreshInterval: Duration = .seconds(10)

    private struct State {
        var counts: [String: Int] = [:]
        var loadedAt: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    /// The current counts, reloaded when stale; on a failed reload the last ones (the flush
    /// itself reports the outage).
    func counts(_ client: RedisClient, keys: RedisKeys) async -> [String: Int] {
        let now = ContinuousClock.now
        let cached = state.withLock { state -> [String: Int]? in
            guard let loadedAt = state.loadedAt, now - loadedAt < Self.refreshInterval else { return nil }
            return state.counts
        }
        if let cached { return cached }
        guard let loaded = try? await QueuePartitions.declared(client, keys: keys) else {
            return state.withLock { $0.counts }
        }
        state.withLock { $0 = State(counts: loaded, loadedAt: now) }
        return loaded
    }

    /// The counts last read, without asking Redis (nil before the first read).
    var cached: [String: Int]? { state.withLock { $0.loadedAt == nil ? nil : $0.counts } }
}
