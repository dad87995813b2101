import Airlock

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
    /// Version of the JSON document ``json`` renders.
    public static let schema = "airlock.workers/1"
    /// The namespace listed.
    public var namespace: String
    /// When the list was taken, in milliseconds since the epoch.
    public var sampledAtMilliseconds: Int64
    /// Registered workers, sorted by id.
    public var workers: [WorkerStatus]

    /// The report as one line of JSON (schema in `docs/OPERATIONS.md`).
    public var json: String {
        AdminJSON.object([
            ("schema", .string(Self.schema)),
            ("namespace", .string(namespace)),
            ("sampled_at_ms", .int(sampledAtMilliseconds)),
            ("workers", .array(workers.map { w in
                .object([
                    ("id", .string(w.id)), ("status", .string(w.alive ? "alive" : "dead")), ("alive", .bool(w.alive)),
                    ("host", .string(w.host)), ("pid", .int(w.pid)), ("queues", .value(.array(w.queues.map(JSONValue.string)))),
                    ("concurrency", .int(w.concurrency)), ("in_flight", .int(w.inFlight)),
                    ("heartbeat_at_ms", .int(w.heartbeatAtMilliseconds)), ("heartbeat_age_ms", .int(w.heartbeatAgeMilliseconds)),
                    ("started_at_ms", .int(w.startedAtMilliseconds)), ("started_at", .isoDate(milliseconds: w.startedAtMilliseconds)),
                    ("version", .string(w.version)),
                ])
            })),
        ]).text
    }
}

extension RedisAdmin {
    /// Every registered worker, alive or dead. Two round trips: the worker and queue sets, then one
    /// pipeline of `EXISTS` heartbeat, `HGETALL` info and `LLEN` of its in-flight list per queue.
    public func workers() async throws -> WorkerReport {
        let sets = try await pipeline([
            [Array("SMEMBERS".utf8), Array(keys.workers.utf8)],
            [Array("SMEMBERS".utf8), Array(keys.queues.utf8)],
        ])
        let ids = (sets[0].array ?? []).compactMap(\.string).sorted()
        let queues = (sets[1].array ?? []).compactMap(\.string).sorted()
        let perWorker = 2 + queues.count
        var commands: [[[UInt8]]] = []
        commands.reserveCapacity(ids.count * perWorker)
        for id in ids {
            commands.append([Array("EXISTS".utf8), Array(keys.heartbeat(id).utf8)])
            commands.append([Array("HGETALL".utf8), Array(keys.workerInfo(id).utf8)])
            for queue in queues { commands.append([Array("LLEN".utf8), Array(keys.inflight(queue, worker: id).utf8)]) }
        }
        let replies = try await pipeline(commands)
        let now = epochMilliseconds()
        let workers = ids.enumerated().map { index, id -> WorkerStatus in
            let base = index * perWorker
            var info: [String: String] = [:]
            let items = replies[base + 1].array ?? []
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                if let field = items[pair].string, let value = items[pair + 1].string { info[field] = value }
            }
            let heartbeat = info["heartbeat_at"].flatMap { Int64($0) }
            return WorkerStatus(
                id: id,
                alive: (replies[base].int ?? 0) > 0,
                host: info["host"],
                pid: info["pid"].flatMap { Int($0) },
                queues: info["queues"].map { $0.split(separator: ",").map(String.init) } ?? [],
                concurrency: info["concurrency"].flatMap { Int($0) },
                inFlight: (0..<queues.count).reduce(0) { $0 + (replies[base + 2 + $1].int ?? 0) },
                heartbeatAtMilliseconds: heartbeat,
                heartbeatAgeMilliseconds: heartbeat.map { max(0, now.subtractingSaturated($0)) },
                startedAtMilliseconds: info["started_at"].flatMap { Int64($0) },
                version: info["version"])
        }
        return WorkerReport(namespace: namespace, sampledAtMilliseconds: now, workers: workers)
    }
}
