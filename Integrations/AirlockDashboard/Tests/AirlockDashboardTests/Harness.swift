import Airlock
import AirlockDashboard
import AirlockRedis
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The Redis the tests use, started by `scripts/test.sh`. Missing, the test fails: it never skips.
enum TestRedis {
    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["AIRLOCK_TEST_REDIS_URL"], !url.isEmpty else {
            throw HarnessError("AIRLOCK_TEST_REDIS_URL is not set: run these tests with scripts/test.sh, which starts a private redis-server")
        }
        return url
    }

    /// The private Redis Cluster (three primaries, three replicas) `scripts/test.sh` starts with
    /// `scripts/with-redis-cluster.sh`. Missing, the test fails.
    static func clusterURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["AIRLOCK_TEST_CLUSTER_URL"], !url.isEmpty else {
            throw HarnessError("AIRLOCK_TEST_CLUSTER_URL is not set: run these tests with scripts/test.sh, which starts a private Redis Cluster")
        }
        return url
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Log lines a test can read back (the audit trail).
final class LogRecorder: Sendable {
    let lines = Mutex<[(message: String, metadata: [String: String])]>([])

    var logger: Logger {
        Logger(label: "test.audit", factory: { _ in Handler(recorder: self) })
    }

    var entries: [(message: String, metadata: [String: String])] { lines.withLock { $0 } }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = (event.metadata ?? [:]).mapValues { "\($0)" }
            recorder.lines.withLock { $0.append(("\(event.message)", all)) }
        }
    }
}

/// A namespace of its own on the test Redis, a dashboard over it on a free loopback port, and a
/// client for raw keys.
struct DashboardHarness: Sendable {
    let namespace: String
    let keys: RedisKeys
    let admin: RedisAdmin
    let raw: RedisClient
    let port: Int
    let audit: LogRecorder
    private let server: Task<Void, any Error>

    static let quiet = Logger(label: "test.quiet", factory: { _ in SwiftLogNoOpLogHandler() })

    /// `url`: the test Redis unless given (a Cluster's, for instance).
    static func start(_ label: String, url: String? = nil, mountedAt path: String = "/", configure: (inout DashboardConfiguration) throws -> Void = { _ in }) async throws -> DashboardHarness {
        let url = try url ?? TestRedis.url()
        let namespace = "t-dash-\(label)-\(UInt32.random(in: .min ... .max))"
        let configuration = try RedisConfiguration(url: url)
        let admin = RedisAdmin(client: RedisClient(configuration: configuration, logger: quiet), namespace: namespace, logger: quiet)
        let raw = RedisClient(configuration: configuration, logger: quiet)
        do { _ = try await raw.send("PING") } catch { throw HarnessError("Redis at \(url) does not answer (\(error)); run scripts/test.sh") }
        var settings = DashboardConfiguration(access: .open)
        settings.refreshSeconds = 0
        try configure(&settings)
        let audit = LogRecorder()
        let dashboard = Dashboard(admin: admin, configuration: settings, logger: quiet, auditLogger: audit.logger)
        let router = Router()
        dashboard.addRoutes(to: router, atPath: path)
        let bound = PortBox()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in bound.set(channel.localAddress?.port ?? -1) }, logger: quiet)
        let server = Task { try await app.run() }
        let port = try await bound.wait()
        return DashboardHarness(namespace: namespace, keys: RedisKeys(namespace: namespace, for: configuration), admin: admin, raw: raw, port: port, audit: audit, server: server)
    }

    func stop() { server.cancel() }

    @discardableResult
    func command(_ args: String...) async throws -> RedisReply { try await raw.send(args.map { Array($0.utf8) }) }

    func command(bytes args: [[UInt8]]) async throws -> RedisReply { try await raw.send(args) }

    func list(_ key: String) async throws -> [[UInt8]] { (try await command("LRANGE", key, "0", "-1").array ?? []).compactMap(\.bytes) }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> HTTPReply {
        try await HTTPClient.send(port: port, method: "GET", path: path, headers: headers)
    }

    func post(_ path: String, form: [(String, String)], headers: [String: String] = [:]) async throws -> HTTPReply {
        let body = form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        var headers = headers
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return try await HTTPClient.send(port: port, method: "POST", path: path, headers: headers, body: Array(body.utf8))
    }

    /// A browser session: the CSRF cookie the first page set, and the token its forms carry.
    func session(_ path: String = "/", headers: [String: String] = [:]) async throws -> (cookie: String, csrf: String) {
        let page = try await get(path, headers: headers)
        guard let setCookie = page.header("set-cookie"), let pair = setCookie.split(separator: ";").first else {
            throw HarnessError("the first page set no cookie")
        }
        // A read-only page has no forms: the cookie's value is the token a form would carry.
        guard let range = page.body.range(of: "name=\"_csrf\" value=\"") else { return (String(pair), String(pair.split(separator: "=").last ?? "")) }
        let csrf = String(page.body[range.upperBound...].prefix(64))
        return (String(pair), csrf)
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// The port the server bound, once it runs.
final class PortBox: Sendable {
    private let value = Mutex<Int?>(nil)
    func set(_ port: Int) { value.withLock { $0 = port } }
    func wait() async throws -> Int {
        for _ in 0..<1000 {
            if let port = value.withLock({ $0 }) { return port }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError("the dashboard did not start listening")
    }
}

/// One HTTP/1.1 response.
struct HTTPReply: Sendable {
    let status: Int
    let headers: [(String, String)]
    let body: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// A minimal HTTP/1.1 client over a blocking socket on a thread of its own (`Connection: close`),
/// so a test sees exactly the headers it sends: no cookie jar, no redirects followed.
enum HTTPClient {
    static func send(port: Int, method: String, path: String, headers: [String: String] = [:], body: [UInt8] = []) async throws -> HTTPReply {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try exchange(port: port, method: method, path: path, headers: headers, body: body) })
            }.start()
        }
    }

    private static func exchange(port: Int, method: String, path: String, headers: [String: String], body: [UInt8]) throws -> HTTPReply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw HarnessError("connect to 127.0.0.1:\(port) failed") }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw HarnessError("send failed") }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return try parse(response)
    }

    private static func parse(_ bytes: [UInt8]) throws -> HTTPReply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...(max(0, bytes.count - 4))).first(where: { Array(bytes[$0..<min($0 + 4, bytes.count)]) == separator }) else {
            throw HarnessError("no HTTP header in \(bytes.count) bytes")
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw HarnessError("bad status line")
        }
        let headers = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[(end + 4)...])
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            body = dechunk(body)
        }
        return HTTPReply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = (index..<(bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            out.append(contentsOf: bytes[start..<min(start + size, bytes.count)])
            index = start + size + 2
        }
        return out
    }
}

/// Dead letters, delayed jobs, workers and queues written as the worker writes them.
enum Seeds {
    static func deadEntry(id: String = UUID().uuidString.lowercased(), task: String, queue: String, error: String, failedAt: Int64 = epochMilliseconds()) -> [UInt8] {
        Envelope(id: id, task: task, args: [1, "<b>arg</b>"], kwargs: ["note": "<i>kw</i>"], queue: queue, enqueuedAt: failedAt - 5000, attempt: 3,
                 maxRetries: 3, extra: ["error": .string(error), "failed_at": .int(Int(failedAt)), "attempts": 4]).encoded()
    }

    static func envelope(id: String = UUID().uuidString.lowercased(), task: String = "t.task", queue: String, enqueuedAt: Int64 = epochMilliseconds(), attempt: Int = 0, extra: [String: JSONValue] = [:]) -> [UInt8] {
        Envelope(id: id, task: task, queue: queue, enqueuedAt: enqueuedAt, attempt: attempt, extra: extra).encoded()
    }
}

extension DashboardHarness {
    func pushDead(_ queue: String, _ entries: [[UInt8]]) async throws {
        try await command("SADD", keys.queues, queue)
        _ = try await command(bytes: [Array("LPUSH".utf8), Array(keys.dead(queue).utf8)] + entries)
    }

    func pushReady(_ queue: String, _ messages: [[UInt8]]) async throws {
        try await command("SADD", keys.queues, queue)
        _ = try await command(bytes: [Array("LPUSH".utf8), Array(keys.ready(queue).utf8)] + messages)
    }

    func registerWorker(_ id: String, host: String, queues: [String]) async throws {
        let now = epochMilliseconds()
        try await command("SADD", keys.workers, id)
        try await command("HSET", keys.workerInfo(id), "id", id, "host", host, "pid", "4242", "queues", queues.joined(separator: ","),
                          "concurrency", "8", "started_at", String(now - 60_000), "version", "0.1.0<script>v</script>", "in_flight", "0", "heartbeat_at", String(now))
        try await command("SET", keys.heartbeat(id), "1", "PX", "60000")
    }
}
