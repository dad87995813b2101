public import Logging
import Synchronization

/// Read and repair a namespace's queues: the queries behind `airlock-workerd stats`, `workers`,
/// `dead`, `enqueue`, `pause` and `resume`, as an async API for tests, dashboards and tools.
///
/// ```swift
/// let admin = RedisAdmin(client: RedisClient(configuration: try RedisConfiguration(url: url)))
/// let report = try await admin.stats(interval: .seconds(1))
/// print(report.totals.ready, report.workers.alive)
/// ```
///
/// Every query costs a bounded number of round trips that does not grow with the number of
/// jobs (see each method); ``roundTrips`` counts them. Methods throw ``RedisError`` when Redis
/// cannot be reached or refuses a command, and ``AdminError`` for requests that name something
/// that does not exist.
public final class RedisAdmin: Sendable {
    /// The connection every query goes through.
    public let client: RedisClient
    /// Key layout of the namespace.
    public let keys: RedisKeys
    let logger: Logger
    private let trips = Atomic<Int>(0)

    /// An admin view of `namespace` over an existing client. `logger` is passed to the
    /// ``RedisExecutor`` that ``enqueue(task:arguments:options:origin:)`` uses.
    public init(client: RedisClient, namespace: String = "airlock", logger: Logger = Logger(label: "airlock.admin")) {
        self.client = client
        self.keys = RedisKeys(namespace: namespace)
        self.logger = logger
    }

    /// The namespace's key prefix.
    public var namespace: String { keys.namespace }

    /// Round trips to Redis made through this instance so far (a pipeline counts as one).
    public var roundTrips: Int { trips.load(ordering: .relaxed) }

    /// Known queue names (the `<ns>:queues` set), sorted. One round trip.
    public func queueNames() async throws -> [String] {
        try await members(keys.queues)
    }

    /// `requested` (or every known queue when it is `nil` or empty), checked against the known ones.
    /// - Throws: ``AdminError/Kind-swift.struct/unknownQueue`` naming the unknown ones.
    func resolveQueues(_ requested: [String]?, known: [String]) throws -> [String] {
        guard let requested, !requested.isEmpty else { return known }
        let knownSet = Set(known)
        var seen = Set<String>()
        let wanted = requested.filter { seen.insert($0).inserted }
        let unknown = wanted.filter { !knownSet.contains($0) }
        guard unknown.isEmpty else { throw AdminError.unknownQueues(unknown, known: known, namespace: namespace) }
        return wanted
    }

    // MARK: Counted I/O

    @discardableResult
    func incrementRoundTrips() -> Int { trips.add(1, ordering: .relaxed).newValue }

    func send(_ args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        trips.add(1, ordering: .relaxed)
        return try await client.send(args)
    }

    func send(_ args: String...) async throws(RedisError) -> RedisReply {
        try await send(args.map { Array($0.utf8) })
    }

    /// One round trip; an error reply anywhere is thrown as ``RedisError/server(_:)``.
    func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        trips.add(1, ordering: .relaxed)
        let replies = try await client.pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies
    }

    func evalScript(_ script: RedisScript, keys: [[UInt8]], args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        trips.add(1, ordering: .relaxed)
        return try await client.evalScript(script, keys: keys, args: args)
    }

    /// Runs `script` once per call in one pipelined round trip (EVALSHA), loading the script and
    /// resending the calls the server did not know it for (NOSCRIPT means the call did not run).
    func evalPipelined(_ script: RedisScript, _ calls: [(keys: [[UInt8]], args: [[UInt8]])]) async throws(RedisError) -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        let commands = calls.map { call -> [[UInt8]] in
            [Array("EVALSHA".utf8), Array(script.sha1.utf8), Array(String(call.keys.count).utf8)] + call.keys + call.args
        }
        trips.add(1, ordering: .relaxed)
        var replies = try await client.pipeline(commands)
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        if !missing.isEmpty {
            _ = try await send([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)])
            trips.add(1, ordering: .relaxed)
            let again = try await client.pipeline(missing.map { commands[$0] })
            for (index, reply) in zip(missing, again) { replies[index] = reply }
        }
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies
    }

    func members(_ key: String) async throws(RedisError) -> [String] {
        let reply = try await send("SMEMBERS", key)
        return (reply.array ?? []).compactMap(\.string).sorted()
    }
}

/// A request the namespace cannot satisfy: it names a queue or dead letter that does not exist,
/// or carries input that cannot be used. The description is one line meant for an operator.
public struct AdminError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category of an ``AdminError``.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        /// A queue name is not in `<ns>:queues`.
        public static let unknownQueue = Kind(name: "unknownQueue")
        /// No dead letter has the given id.
        public static let unknownDeadLetter = Kind(name: "unknownDeadLetter")
        /// The input cannot be used (bad JSON, a dead letter with nothing to push back, ...).
        public static let invalidInput = Kind(name: "invalidInput")
        /// The kind's name.
        public var description: String { name }
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The explanation, one line.
    public let description: String

    /// Creates an error of `kind`.
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    static func unknownQueues(_ names: [String], known: [String], namespace: String) -> AdminError {
        let quoted = names.map { "'\($0)'" }.joined(separator: ", ")
        let knownText = known.isEmpty ? "none" : known.joined(separator: ", ")
        let noun = names.count == 1 ? "queue" : "queues"
        return AdminError(.unknownQueue, "unknown \(noun) \(quoted) in namespace '\(namespace)' (known queues: \(knownText))")
    }
}
