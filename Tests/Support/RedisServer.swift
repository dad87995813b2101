import AirlockRedis
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` process for tests, on a free loopback port with its own
/// data directory, so suites can restart, kill and reconfigure Redis without
/// touching anyone else's server.
///
/// Tests must fail (never skip) when Redis is unavailable, so every failure to find
/// or start the binary throws a ``RedisServerError`` that says what to fix.
/// Starting, stopping and restarting block the calling thread for a short, bounded
/// time; from async code prefer ``start(_:)`` and ``offPool(_:)``.
public final class RedisServer: Sendable {
    /// How to configure the server; the defaults give a fast, non-persistent instance.
    public struct Options: Sendable {
        /// `appendonly yes` with `appendfsync always`, for persistence tests.
        public var appendOnly: Bool
        /// Sets `requirepass`, so clients must AUTH as the default user.
        public var password: String?
        /// Raw redis.conf lines appended last (e.g. `user alice on >pw ~* &* +@all`).
        public var extraConfig: [String]
        /// Allows DEBUG (e.g. `DEBUG SLEEP`) from loopback, which timeout tests need.
        public var enableDebugCommand: Bool

        /// Every option has a default so tests spell out only what they care about.
        public init(appendOnly: Bool = false, password: String? = nil, extraConfig: [String] = [], enableDebugCommand: Bool = true) {
            self.appendOnly = appendOnly
            self.password = password
            self.extraConfig = extraConfig
            self.enableDebugCommand = enableDebugCommand
        }
    }

    /// The TCP port the server listens on (kept across ``restart()``).
    public let port: Int
    /// The server's data directory (RDB/AOF files, logs); nil for an external server.
    public let directory: String?
    /// A unix socket the server also listens on; nil for an external server.
    public let unixSocketPath: String?
    /// The options the server was started with.
    public let options: Options
    private let externalURL: String?
    private let launcher: Launcher?
    private let running: Mutex<RunningServer?>

    /// Starts a server and waits until it answers PING. Blocks for up to ~10 s.
    public init(_ options: Options = Options()) throws {
        let binary = try Launcher.findRedisServer()
        OrphanReaper.reapOnce()
        let directory = try Launcher.makeDirectory()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let launcher: Launcher
            let server: RunningServer
            do {
                launcher = Launcher(binary: binary, directory: directory, port: try Self.serverPort(), options: options)
                try launcher.writeConfig()
                server = try launcher.launch()
            } catch let error as RedisServerError where error.portInUse {
                lastError = error // another process took the port between probe and bind
                continue
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
            self.port = launcher.port
            self.directory = directory
            self.unixSocketPath = launcher.unixSocketPath
            self.options = options
            self.externalURL = nil
            self.launcher = launcher
            self.running = Mutex(server)
            return
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? RedisServerError("could not start redis-server")
    }

    /// A handle onto a server someone else runs (AIRLOCK_TEST_REDIS_URL); stop/kill do nothing.
    private init(externalURL: String) throws {
        let configuration = try RedisConfiguration(url: externalURL)
        self.port = configuration.port
        self.directory = nil
        self.unixSocketPath = configuration.unixSocketPath
        self.options = Options()
        self.externalURL = externalURL
        self.launcher = nil
        self.running = Mutex(nil)
    }

    deinit {
        // The last reference often goes away on a cooperative-pool thread; stopping waits for
        // the process to exit, so it happens on a thread of its own.
        let server = running.withLock { $0.take() }
        let directory = self.directory
        guard server != nil || directory != nil else { return }
        Thread {
            server?.terminate()
            if let directory { try? FileManager.default.removeItem(atPath: directory) }
        }.start()
    }

    /// Starts a server from async code without blocking a cooperative-pool thread.
    public static func start(_ options: Options = Options()) async throws -> RedisServer {
        try await offPool { try RedisServer(options) }
    }

    /// `redis://127.0.0.1:PORT/0` (or the external URL), without credentials.
    public var url: String {
        externalURL ?? "redis://127.0.0.1:\(port)/0"
    }

    /// A URL for this server with credentials and database, percent-encoding as needed.
    public func url(username: String? = nil, password: String? = nil, database: Int = 0) -> String {
        var userInfo = username.map(Self.percentEncode) ?? ""
        if let password { userInfo += ":" + Self.percentEncode(password) }
        if !userInfo.isEmpty { userInfo += "@" }
        return "redis://\(userInfo)127.0.0.1:\(port)/\(database)"
    }

    /// Whether the server process is alive (always true for an external server).
    public var isRunning: Bool {
        guard externalURL == nil else { return true }
        return running.withLock { $0?.exit.hasExited == false }
    }

    /// SIGTERM, then waits; SIGKILL if it has not exited after 5 s. Idempotent.
    public func stop() {
        guard let server = running.withLock({ $0.take() }) else { return }
        server.terminate()
    }

    /// Kills the server without letting it save or flush anything, like a crash.
    public func kill9() {
        guard let server = running.withLock({ $0.take() }) else { return }
        server.kill9()
    }

    /// Stops (if running) and starts again on the same port with the same directory,
    /// so persisted data survives; waits until it answers PING.
    public func restart() throws {
        guard let launcher else {
            throw RedisServerError("cannot restart the external Redis server at \(url)")
        }
        stop()
        let server = try launcher.launch()
        running.withLock { $0 = server }
    }

    // MARK: - Shared server

    private static let sharedServer = Mutex<Task<RedisServer, any Error>?>(nil)

    /// One server per test process for suites that only need *a* Redis; isolate
    /// keys with ``uniqueNamespace(_:)``. Honours `AIRLOCK_TEST_REDIS_URL`.
    /// A failed start is remembered, so every test reports the same clear error.
    public static func shared() async throws -> RedisServer {
        let task = sharedServer.withLock { slot in
            if let slot { return slot }
            let task = Task<RedisServer, any Error> {
                if let url = ProcessInfo.processInfo.environment["AIRLOCK_TEST_REDIS_URL"], !url.isEmpty {
                    return try RedisServer(externalURL: url)
                }
                let server = try await start()
                SharedCleanup.register(server)
                return server
            }
            slot = task
            return task
        }
        return try await task.value
    }

    /// A key prefix no other test uses, e.g. `t-retry-3fa1c29b04d6e8a7`.
    public static func uniqueNamespace(_ label: String) -> String {
        let random = UInt64.random(in: .min ... .max)
        let hex = String(random, radix: 16)
        return "t-\(label)-\(String(repeating: "0", count: 16 - hex.count))\(hex)"
    }

    // MARK: - Helpers

    /// A loopback port with nothing listening right now (bind to port 0, read it, close).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = Probe.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw RedisServerError("bind() to a free port failed: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw RedisServerError("getsockname() failed: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A loopback port where nothing listens, and nothing will for the rest of the process: the
    /// port stays bound (never listening) so the kernel cannot hand it to a server another test starts
    /// meanwhile. A connect there is refused at once. (`freePort()` alone is racy for this: between its
    /// close and the connect, a parallel test's redis-server may take the port.) The socket is held
    /// until the test process exits; a test process asks for a handful.
    public static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed: \(String(cString: strerror(errno)))") }
        var address = Probe.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw RedisServerError("bind() to a free port failed: \(reason)")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A free port that also leaves room for cluster mode, whose bus listens on
    /// port + 10000 (so the port must be at most 55535 and that one free too).
    static func serverPort() throws -> Int {
        for _ in 0..<100 {
            let port = try freePort()
            if port <= 55535, isFree(port + 10000) { return port }
        }
        throw RedisServerError("found no free loopback port at or below 55535 with port+10000 free")
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = Probe.loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Runs blocking work (process start/stop, restart) on a fresh thread so async
    /// tests do not tie up the cooperative pool while waiting.
    public static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.start()
        }
    }

    private static func percentEncode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

/// Why a test server could not be started or controlled, in words that say what to fix.
public struct RedisServerError: Error, CustomStringConvertible, Sendable {
    /// The full explanation.
    public let description: String
    let portInUse: Bool

    init(_ description: String, portInUse: Bool = false) {
        self.description = description
        self.portInUse = portInUse
    }
}

/// Stops the shared server when the test process exits, so no redis-server outlives it.
private enum SharedCleanup {
    static let pid = Atomic<Int32>(0)
    static let directory = Mutex<String?>(nil)

    static func register(_ server: RedisServer) {
        guard let pid = server.processIdentifier else { return }
        Self.pid.store(pid, ordering: .relaxed)
        directory.withLock { $0 = server.directory }
        atexit {
            let pid = SharedCleanup.pid.load(ordering: .relaxed)
            if pid > 0 { kill(pid, SIGTERM) }
            if let directory = SharedCleanup.directory.withLock({ $0 }) {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }
}

extension RedisServer {
    var processIdentifier: Int32? {
        running.withLock { $0?.pid }
    }
}
