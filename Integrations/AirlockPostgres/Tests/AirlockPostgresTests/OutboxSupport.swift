import Airlock
import AirlockPostgres
import AirlockRedis
import AirlockRedisClient
import AirlockWorker
import Foundation
import Logging
import PostgresNIO
import Synchronization
import ServiceLifecycle
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What the outbox tests share: the migrated table, the Redis `scripts/test.sh` started, a
/// namespace of their own (so suites run in parallel: a relay only claims its namespace's rows).
struct OutboxKit: Sendable {
    let database: TestDatabase
    let namespace: String
    let redisURL: String

    /// Fails (never skips) when `AIRLOCK_TEST_REDIS_URL` is not set.
    static func make(_ label: String) async throws -> OutboxKit {
        let database = try await TestDatabase.make()
        guard let url = ProcessInfo.processInfo.environment["AIRLOCK_TEST_REDIS_URL"], !url.isEmpty else {
            throw TestFailure("AIRLOCK_TEST_REDIS_URL is not set: run these tests with scripts/test.sh, which starts Redis")
        }
        let namespace = "ob-\(label)-\(UUID().uuidString.prefix(8).lowercased())"
        return OutboxKit(database: database, namespace: namespace, redisURL: url)
    }

    /// Runs `body` with the pool running and the outbox migrated.
    func run<R: Sendable>(_ body: @Sendable (PostgresClient) async throws -> R) async throws -> R {
        try await database.run { client in
            try await OutboxSchema.migrate(on: client, logger: quietLogger)
            return try await body(client)
        }
    }

    /// An executor for this kit's namespace on `url` (the shared Redis by default).
    func executor(url: String? = nil, ttl: Duration = .seconds(86_400)) throws -> RedisExecutor {
        let configuration = try RedisConfiguration(url: url ?? redisURL)
        return RedisExecutor(client: RedisClient(configuration: configuration, logger: quietLogger), namespace: namespace,
                             idempotencyTTL: ttl, logger: quietLogger)
    }

    /// A relay tuned for tests: short grace and poll, quick backoff.
    func relay(_ executor: RedisExecutor, _ client: PostgresClient, grace: Duration = .milliseconds(200),
               batchSize: Int = 500, margin: Duration = .seconds(60)) throws -> OutboxRelay {
        var configuration = OutboxRelay.Configuration()
        configuration.gracePeriod = grace
        configuration.pollInterval = .milliseconds(100)
        configuration.reportInterval = .milliseconds(300)
        configuration.batchSize = batchSize
        configuration.deduplicationMargin = margin
        configuration.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(500))
        return try OutboxRelay(executor: executor, postgres: client, configuration: configuration, logger: quietLogger)
    }

    /// Rows of this namespace in the table (parked or not).
    func rows(_ client: PostgresClient, parked: Bool? = nil) async throws -> Int {
        let filter = parked.map { $0 ? " AND parked_at IS NOT NULL" : " AND parked_at IS NULL" } ?? ""
        var bindings = PostgresBindings()
        bindings.append(namespace)
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT count(*) FROM airlock_outbox WHERE namespace = $1" + filter, binds: bindings), logger: quietLogger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    /// How many jobs `queue`'s ready list and delayed set hold.
    func queuedCount(_ queue: String = "default", redis: RedisClient) async throws -> Int {
        let keys = RedisKeys(namespace: namespace)
        let replies = try await redis.pipeline([RedisCommand("LLEN", keys.ready(queue)), RedisCommand("ZCARD", keys.delayed(queue))])
        return try replies.reduce(0) { $0 + (try $1.integer()) }
    }

    /// Every job id in `queue`'s ready list and delayed set, with repeats (a job queued twice appears twice).
    func queuedJobIDs(_ queue: String = "default", redis: RedisClient) async throws -> [String] {
        let keys = RedisKeys(namespace: namespace)
        let replies = try await redis.pipeline([
            RedisCommand("LRANGE", keys.ready(queue), "0", "-1"), RedisCommand("ZRANGE", keys.delayed(queue), "0", "-1"),
        ])
        var ids: [String] = []
        for reply in replies {
            for element in reply.array ?? [] {
                guard let bytes = element.bytes else { continue }
                ids.append(try Envelope.decode(bytes).id)
            }
        }
        return ids
    }
}

/// Polls `condition` until it holds, for conditions nothing notifies (row counts in PostgreSQL,
/// list lengths in Redis). No deadline of its own: the suite's `.timeLimit` bounds a test that
/// hangs, and the cancellation it causes is reported with `what`.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    while true {
        if try await condition() { return }
        do {
            try await Task.sleep(for: .milliseconds(20))   // the poll's pace, not a wait for the condition
        } catch {
            throw TestFailure("cancelled (time limit?) while waiting for: \(what)")
        }
    }
}

/// Signals once a child process exits (its `terminationHandler`), so tests await the exit itself.
final class ExitSignal: Sendable {
    private struct State {
        var exited = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// Installs the handler on `process`; call before `run()`.
    init(_ process: Process) {
        process.terminationHandler = { [self] _ in fire() }
    }

    private func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.exited = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the process has exited.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.exited { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Runs `services` in the background while `body` runs, then stops them gracefully (cancellation).
func withServices<R: Sendable>(_ services: [any Service], _ body: () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for service in services { group.addTask { try await service.run() } }
        defer { group.cancelAll() }
        return try await body()
    }
}

/// The side effect outbox tests enqueue.
struct OutboxProbe: AirlockTask {
    static let name = "test.outbox_probe"
    let n: Int
}

/// A redis-server of the test's own, on a free port with a temporary directory, that the test
/// kills and starts again (same port, same data: append-only file, fsync always, so a restart
/// loses nothing it acknowledged).
final class OwnRedis: Sendable {
    let port: Int
    let directory: String
    private let process = Mutex<(Process, ExitSignal)?>(nil)

    var url: String { "redis://127.0.0.1:\(port)/0" }

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    static func start() async throws -> OwnRedis {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("airlock-outbox-redis-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let server = OwnRedis(port: try freePort(), directory: directory)
        try await server.start()
        return server
    }

    /// Starts the server (again) and waits until it answers PING.
    func start() async throws {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else { throw TestFailure("redis-server is not installed (apt-get install redis-server)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--logfile", directory + "/redis.log"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exit = ExitSignal(process)
        try process.run()
        self.process.withLock { $0 = (process, exit) }
        let probe = RedisClient(configuration: try RedisConfiguration(url: url), logger: quietLogger)
        defer { Task { await probe.close() } }
        try await eventually("redis-server on port \(port) answers PING") {
            guard process.isRunning else { throw TestFailure("redis-server exited at start; see \(directory)/redis.log") }
            return (try? await probe.send("PING")) != nil
        }
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to exit. With
    /// `appendfsync always` every write Redis acknowledged is on disk, so a restart loses none of
    /// them; a script whose reply was lost may have been applied — which is what the job-id
    /// deduplication is for. (Not SIGTERM: a child spawned from one of this process's threads
    /// inherits their blocked-signal mask, and redis-server then never sees a SIGTERM.)
    func stop() async throws {
        guard let (process, exit) = self.process.withLock({ process in defer { process = nil }; return process }) else { return }
        kill(process.processIdentifier, SIGKILL)
        await exit.wait()
    }

    /// Stops the server and removes its directory.
    func destroy() async {
        try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A loopback TCP port nobody listens on right now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Where the package's executables are: beside the test binary (scripts/test.sh builds them there).
func builtExecutable(_ name: String) throws -> String {
    let environment = ProcessInfo.processInfo.environment
    var directories: [String] = []
    if let explicit = environment["AIRLOCK_TEST_BIN_DIR"] { directories.append(explicit) }
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        var directory = (exe as NSString).deletingLastPathComponent
        // On Linux the test binary is `<bin>/<package>PackageTests.xctest`: a file in the bin directory.
        if directory.hasSuffix(".xctest") { directory = (directory as NSString).deletingLastPathComponent }
        directories.append(directory)
    }
    for directory in directories {
        let path = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestFailure("\(name) was not found in \(directories): run scripts/test.sh, which builds it (swift build --product \(name))")
}

/// What a child process printed, and how it ended.
struct ChildResult: Sendable {
    let stdout: String
    let stderr: String
    let status: Int32
    let signaled: Bool
}

/// Runs `path` with `arguments` and waits for it without blocking the cooperative pool.
func runChild(_ path: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ChildResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("airlock-child-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = outHandle
    process.standardError = errHandle
    let exit = ExitSignal(process)
    try process.run()
    await exit.wait()
    try outHandle.close()
    try errHandle.close()
    return ChildResult(
        stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self), stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self),
        status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal)
}
