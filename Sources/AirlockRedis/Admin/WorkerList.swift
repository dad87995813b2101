import Airlock
import AirlockRedisClient

/// A registered worker as its registration hash (`<ns>:worker:<id>:info`) and heartbeat describe it.
public struct WorkerStatus: Sendable, Hashable {
    /// The worker id (`<name>-<pid>-<suffix>`).
    public var id: String
    /// Whether its heartbeat key exists. A registered worker without one is dead: a live worker's
    /// reaper will move its in-flight jobs back to their queues and deregister it.
    public var alive: Bool
    /// Host name it runs on.
    public var host: String?
    /// Process id on that host.
    public var pid: Int?
    /// The queues it consumes, in priority order.
    public var queues: [String]
    /// Task slots.
    public var concurrency: Int?
    /// Jobs in its in-flight lists (running, prefetched or, for a dead worker, awaiting recovery).
    public var inFlight: Int
    /// Its last heartbeat, in milliseconds since the epoch.
    public var heartbeatAtMilliseconds: Int64?
    /// How long ago that was, when the list was taken.
    public var heartbeatAgeMilliseconds: Int64?
    /// When it started, in milliseconds since the epoch.
    public var startedAtMilliseconds: Int64?
    /// The Airlock version it runs.
    public var version: String?

    /// A worker entry with the given values.
    public init(id: String, alive: Bool, host: String? = nil, pid: Int? = nil, queues: [String] = [], concurrency: Int? = nil,
                inFlight: Int = 0, heartbeatAtMilliseconds: Int64? = nil, heartbeatAgeMilliseconds: Int64? = nil,
                startedAtMilliseconds: Int64? = nil, version: String? = nil) {
        self.id = id
        self.alive = alive
        self.host = host
        self.pid = pid
        self.queues = queues
        self.concurrency = concurrency
        self.inFlight = inFlight
        self.heartbeatAtMilliseconds = heartbeatAtMilliseconds
        self.heartbeatAgeMilliseconds = heartbeatAgeMilliseconds
        self.startedAtMilliseconds = startedAtMilliseconds
        self.version = version
    }
}

/// What `airlock-workerd workers` shows.
public struct WorkerReport: Sendable, Hashable {
    /// The namespace listed.
    public var namespace: String
    /// When the list was taken, in milliseconds since the epoch.
    public var sampledAtMilliseconds: Int64
    /// Registered workers, sorted by id.
    public var workers: [WorkerStatus]
}

extension RedisAdmin {
    /// Every registered worker, alive or dead. Two round trips: the worker and queue sets, then one
    /// pipeline of `EXISTS` heartbeat, `HGETALL` info and `LLEN` of its in-flight list per queue.
    public func workers() async throws -> WorkerReport {
        let sets = try await pipeline([RedisCommand("SMEMBERS", keys.workers), RedisCommand("SMEMBERS", keys.queues)])
        let ids = try sets[0].strings().sorted()
        let queues = try sets[1].strings().sorted()
        let perWorker = 2 + queues.count
        var commands: [RedisCommand] = []
        commands.reserveCapacity(ids.count * perWorker)
        for id in ids {
            commands.append(RedisCommand("EXISTS", keys.heartbeat(id)))
            commands.append(RedisCommand("HGETALL", keys.workerInfo(id)))
            for queue in queues { commands.append(RedisCommand("LLEN", keys.inflight(queue, worker: id))) }
        }
        let replies = try await pipeline(commands)
        let now = epochMilliseconds()
        var workers: [WorkerStatus] = []
        for (index, id) in ids.enumerated() {
            let base = index * perWorker
            let info = try replies[base + 1].fields()
            let heartbeat = info["heartbeat_at"].flatMap { Int64($0) }
            var inFlight = 0
            for queue in 0..<queues.count { inFlight += try replies[base + 2 + queue].integer() }
            workers.append(WorkerStatus(
                id: id,
                alive: try replies[base].integer() > 0,
                host: info["host"],
                pid: info["pid"].flatMap { Int($0) },
                queues: info["queues"].map { $0.split(separator: ",").map(String.init) } ?? [],
                concurrency: info["concurrency"].flatMap { Int($0) },
                inFlight: inFlight,
                heartbeatAtMilliseconds: heartbeat,
                heartbeatAgeMilliseconds: heartbeat.map { max(0, now.subtractingSaturated($0)) },
                startedAtMilliseconds: info["started_at"].flatMap { Int64($0) },
                version: info["version"]))
        }
        return WorkerReport(namespace: namespace, sampledAtMilliseconds: now, workers: workers)
    }
}
