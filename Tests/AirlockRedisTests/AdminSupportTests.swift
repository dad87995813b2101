import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import AirlockTestKit
import Testing

// Helpers shared by the Admin* and CLI* suites. Everything is prefixed `Admin…` because other
// suites share this test module.

/// A namespace on a real redis-server, a `RedisAdmin` over it, and a separate client that seeds
/// and reads raw keys.
struct AdminFixture: Sendable {
    let server: RedisServer
    let namespace: String
    let keys: RedisKeys
    /// The API under test.
    let admin: RedisAdmin
    /// An independent connection for seeding state and reading it back.
    let raw: RedisClient

    /// A fixture on the shared server (or on `server`), in a namespace no other test uses.
    static func make(_ label: String, server: RedisServer? = nil) async throws -> AdminFixture {
        let server = if let server { server } else { try await RedisServer.shared() }
        let namespace = RedisServer.uniqueNamespace(label)
        let configuration = try RedisConfiguration(url: server.url)
        let admin = RedisAdmin(client: RedisClient(configuration: configuration, logger: AdminTestKit.quiet), namespace: namespace, logger: AdminTestKit.quiet)
        let raw = RedisClient(configuration: configuration, logger: AdminTestKit.quiet)
        return AdminFixture(server: server, namespace: namespace, keys: RedisKeys(namespace: namespace), admin: admin, raw: raw)
    }

    var url: String { server.url }

    @discardableResult
    func command(_ args: String...) async throws -> RedisReply {
        try await raw.send(args.map { Array($0.utf8) })
    }

    func command(bytes args: [[UInt8]]) async throws -> RedisReply {
        try await raw.send(args)
    }

    /// Every entry of a list, left (newest) to right (consumed next).
    func list(_ key: String) async throws -> [[UInt8]] {
        (try await command("LRANGE", key, "0", "-1").array ?? []).compactMap(\.bytes)
    }

    func exists(_ key: String) async throws -> Bool {
        try await command("EXISTS", key).int == 1
    }

    /// Registers queue names as producers and workers do.
    func addQueues(_ names: String...) async throws {
        for name in names { try await command("SADD", keys.queues, name) }
    }

    /// LPUSHes envelopes onto a ready list (and registers the queue).
    func pushReady(_ queue: String, _ messages: [[UInt8]]) async throws {
        try await addQueues(queue)
        guard !messages.isEmpty else { return }
        _ = try await command(bytes: [Array("LPUSH".utf8), Array(keys.ready(queue).utf8)] + messages)
    }

    /// LPUSHes dead-letter entries (the last one given ends up newest, at the left).
    func pushDead(_ queue: String, _ entries: [[UInt8]]) async throws {
        try await addQueues(queue)
        guard !entries.isEmpty else { return }
        _ = try await command(bytes: [Array("LPUSH".utf8), Array(keys.dead(queue).utf8)] + entries)
    }

    /// Registers a worker: info hash, set membership and (when `alive`) a heartbeat key.
    func registerWorker(_ id: String, alive: Bool, queues: [String], heartbeatAt: Int64 = epochMilliseconds(), startedAt: Int64 = epochMilliseconds() - 60_000) async throws {
        try await command("SADD", keys.workers, id)
        try await command("HSET", keys.workerInfo(id), "id", id, "host", "host-\(id)", "pid", "4242", "queues", queues.joined(separator: ","),
                          "concurrency", "8", "started_at", String(startedAt), "version", "0.1.0", "in_flight", "0",
                          "heartbeat_at", String(heartbeatAt))
        if alive { try await command("SET", keys.heartbeat(id), "1", "PX", "60000") }
    }
}

enum AdminTestKit {
    static let quiet = Logger(label: "airlock.test.admin", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A version-1 envelope as producers write it.
    static func envelope(
        id: String = UUID().uuidString.lowercased(), task: String = "test.task", queue: String = "default",
        enqueuedAt: Int64 = epochMilliseconds(), eta: Int64? = nil, kwargs: [String: JSONValue] = [:], extra: [String: JSONValue] = [:]
    ) -> [UInt8] {
        Envelope(id: id, task: task, kwargs: kwargs, queue: queue, enqueuedAt: enqueuedAt, eta: eta, extra: extra).encoded()
    }

    /// A dead-letter entry as the worker writes it: the envelope plus error, failed_at, attempts.
    static func deadEntry(
        id: String = UUID().uuidString.lowercased(), task: String = "test.task", queue: String = "default", error: String = "boom",
        failedAt: Int64 = epochMilliseconds(), attempts: Int = 4, attempt: Int = 3, expires: Int64? = nil, extra: [String: JSONValue] = [:]
    ) -> [UInt8] {
        var fields = extra
        fields["error"] = .string(error)
        fields["failed_at"] = .int(Int(failedAt))
        fields["attempts"] = .int(attempts)
        return Envelope(id: id, task: task, args: [1, "two"], kwargs: ["k": true], queue: queue, enqueuedAt: failedAt - 5000,
                        expires: expires, attempt: attempt, maxRetries: 3, extra: fields).encoded()
    }

    /// A malformed message's dead-letter entry: `task` null, the message in `raw` or `raw_base64`.
    static func malformedEntry(id: String = UUID().uuidString.lowercased(), queue: String = "default", raw: [UInt8], failedAt: Int64 = epochMilliseconds()) -> [UInt8] {
        var fields: [String: JSONValue] = [
            "v": 1, "id": .string(id), "task": .null, "queue": .string(queue), "error": "malformed message: test",
            "failed_at": .int(Int(failedAt)), "attempts": 0,
        ]
        if let text = String(validating: raw, as: UTF8.self) {
            fields["raw"] = .string(text)
        } else {
            fields["raw_base64"] = .string(Data(raw).base64EncodedString())
        }
        var out: [UInt8] = []
        JSONWriter.write(.object(fields), into: &out)
        return out
    }

    static func object(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        guard case .object(let fields) = try JSONParser.parse(bytes) else { throw AdminTestError("not a JSON object: \(String(decoding: bytes, as: UTF8.self))") }
        return fields
    }

    static func object(_ text: String) throws -> [String: JSONValue] { try object(Array(text.utf8)) }

    /// Polls `condition` until it holds or `limit` passes.
    static func eventually(within limit: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
        try await Eventually.holds(within: limit, poll: .milliseconds(10), condition)
    }

    /// The `docs/OPERATIONS.md` text, for checking output against the documented schemas.
    static func operationsDoc() throws -> String {
        try String(contentsOf: CLI.packageRoot.appendingPathComponent("docs/OPERATIONS.md"), encoding: .utf8)
    }

    /// The JSON example that follows `<!-- schema: NAME -->` in `docs/OPERATIONS.md`.
    static func documentedExample(_ name: String) throws -> [String: JSONValue] {
        let doc = try operationsDoc()
        guard let marker = doc.range(of: "<!-- schema: \(name) -->"),
              let open = doc.range(of: "```json\n", range: marker.upperBound..<doc.endIndex),
              let close = doc.range(of: "\n```", range: open.upperBound..<doc.endIndex)
        else { throw AdminTestError("docs/OPERATIONS.md has no ```json example after <!-- schema: \(name) -->") }
        return try object(String(doc[open.upperBound..<close.lowerBound]))
    }

    /// Every key path in `value` (`queues[].name`, `totals.ready`, …), for comparing shapes.
    static func keyPaths(_ value: JSONValue, prefix: String = "") -> Set<String> {
        switch value {
        case .object(let fields):
            var paths = Set<String>()
            for (key, child) in fields {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                paths.insert(path)
                if key == "entry" { continue } // a dead letter's entry is the job's own free-form envelope
                paths.formUnion(keyPaths(child, prefix: path))
            }
            return paths
        case .array(let elements):
            return elements.reduce(into: Set<String>()) { $0.formUnion(keyPaths($1, prefix: prefix + "[]")) }
        default:
            return []
        }
    }
}

struct AdminTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
