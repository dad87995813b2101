public import Airlock
public import AirlockRedisClient
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
        self.keys = RedisKeys(namespace: namespace, for: client.configuration)
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

    /// Counts a round trip made through another object on this admin's client (an executor).
    func countRoundTrip() { trips.add(1, ordering: .relaxed) }

    /// One command; an error reply is thrown.
    func send(_ command: RedisCommand) async throws(RedisError) -> RedisReply {
        trips.add(1, ordering: .relaxed)
        return try await client.send(command)
    }

    /// One round trip; an error reply anywhere is thrown as ``RedisError/server(_:)``.
    func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        trips.add(1, ordering: .relaxed)
        let replies = try await client.pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies
    }

    /// Script calls in one round trip (the client reloads scripts the server forgot); an error
    /// reply anywhere is thrown.
    func evaluate(_ calls: [RedisScript.Call]) async throws(RedisError) -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        trips.add(1, ordering: .relaxed)
        let replies = try await client.evaluate(calls)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError.server(message) }
        return replies
    }

    func members(_ key: String) async throws(RedisError) -> [String] {
        try await send(RedisCommand("SMEMBERS", key)).strings().sorted()
    }
}

/// A request the namespace cannot satisfy: it names a queue or dead letter that does not exist,
/// or carries input that cannot be used. The description is one line meant for an operator.
public struct AdminError: AirlockError, Equatable {
    /// The category of an ``AdminError``.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case unknownQueue, unknownDeadLetter, invalidInput }
        fileprivate let code: Code
        /// A queue name is not in `<ns>:queues`.
        public static let unknownQueue = Kind(code: .unknownQueue)
        /// No dead letter has the given id.
        public static let unknownDeadLetter = Kind(code: .unknownDeadLetter)
        /// The input cannot be used (bad JSON, a dead letter with nothing to push back, ...).
        public static let invalidInput = Kind(code: .invalidInput)
        /// The kind's name.
        public var description: String { code.rawValue }
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
        let quoted = names.map { "'\(SafeText.escape($0))'" }.joined(separator: ", ")
        let knownText = known.isEmpty ? "none" : known.map(SafeText.escape).joined(separator: ", ")
        let noun = names.count == 1 ? "queue" : "queues"
        return AdminError(.unknownQueue, "unknown \(noun) \(quoted) in namespace '\(namespace)' (known queues: \(knownText))")
    }
}
