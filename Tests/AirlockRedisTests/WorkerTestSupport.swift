import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import Synchronization
import AirlockTestKit
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Helpers shared by the Worker* suites. Every name starts with `Worker` so nothing collides with
// the other suites of this test module.

// MARK: - Waiting

/// A bounded wait that ran out: what was awaited and for how long.
struct WorkerWaitTimeout: Error, CustomStringConvertible {
    let description: String
}

enum WorkerKit {
    /// A logger that stays silent, so expected failures (dead letters, outages) do not flood the output.
    static var quiet: Logger {
        var logger = Logger(label: "airlock.worker-tests")
        logger.logLevel = .critical
        return logger
    }

    /// Polls `condition` every `poll` until it holds; fails the test with `what` when `timeout`
    /// (a hang guard of at least a minute, ``Eventually/floor``) passes first.
    static func eventually(
        _ what: @autoclosure () -> String,
        timeout: Duration = .seconds(10),
        poll: Duration = .milliseconds(20),
        _ condition: () async throws -> Bool
    ) async throws {
        try await Eventually.until(what(), within: timeout, poll: poll, condition)
    }

    /// Milliseconds since the epoch, now.
    static func nowMS() -> Int64 { epochMilliseconds() }

    /// The JSON object stored in `bytes`.
    static func object(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        let value = try JSONParser.parse(bytes)
        return try #require(value.objectValue, "not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
    }

    /// The bytes of a JSON object.
    static func encode(_ fields: [String: JSONValue]) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.write(.object(fields), into: &out)
        return out
    }

    /// A well-formed wire envelope for `task`, as a foreign producer would LPUSH it.
    static func envelope(
        task: String, queue: String, id: String = UUID().uuidString.lowercased(), args: [JSONValue] = [],
        kwargs: [String: JSONValue] = [:], expires: Int64? = nil, attempt: Int = 0, maxRetries: Int? = nil
    ) -> [UInt8] {
        Envelope(
            id: id, task: task, args: args, kwargs: kwargs, queue: queue, enqueuedAt: epochMilliseconds(),
            expires: expires, attempt: attempt, maxRetries: maxRetries
        ).encoded()
    }
}

// MARK: - A worker's settings: the engine's and the Redis source's

/// Everything a Redis-backed worker is configured with, in one value, so tests read as the daemon
/// is configured: engine settings (``WorkerConfiguration``) through dynamic member lookup, the
/// Redis source's (`redis`, `namespace`, `deadLetterCap`, `wireProtocol`) by name.
@dynamicMemberLookup
struct WorkerSetup: Sendable {
    var engine: WorkerConfiguration
    var source: RedisJobSource.Configuration

    init(redis: RedisConfiguration) {
        engine = WorkerConfiguration()
        source = RedisJobSource.Configuration(redis: redis)
    }

    subscript<T>(dynamicMember path: WritableKeyPath<WorkerConfiguration, T>) -> T {
        get { engine[keyPath: path] }
        set { engine[keyPath: path] = newValue }
    }

    var redis: RedisConfiguration {
        get { source.redis }
        set { source.redis = newValue }
    }
    var namespace: String {
        get { source.namespace }
        set { source.namespace = newValue }
    }
    var deadLetterCap: Int {
        get { source.deadLetterCap }
        set { source.deadLetterCap = newValue }
    }
    var wireProtocol: WireProtocol {
        get { source.wireProtocol }
        set { source.wireProtocol = newValue }
    }
    var keys: RedisKeys { source.keys }

    func validate() throws { try engine.validate() }
}

extension Worker {
    /// A worker over a `RedisJobSource` configured by `setup`, as `airlock-workerd run` builds one.
    convenience init(configuration setup: WorkerSetup, registry: TaskRegistry, logger: Logger = Logger(label: "airlock.worker")) {
        var engine = setup.engine
        engine.sourceBackoff = setup.redis.reconnectBackoff
        self.init(source: RedisJobSource(configuration: setup.source, logger: logger), configuration: engine, registry: registry, logger: logger)
    }
}

// MARK: - A namespace on a real server

/// One test's namespace on a real redis-server: a client for reading and writing raw keys, a
/// `RedisExecutor` for producing jobs, and worker configurations tuned for fast tests.
struct WorkerHarness: Sendable {
    let server: RedisServer
    let namespace: String
    let keys: RedisKeys
    let url: String
    /// An independent connection for inspecting and seeding keys.
    let redis: RedisClient
    /// Produces jobs the way applications do (a test may tune it, e.g. its abandoned-flush delay).
    var executor: RedisExecutor

    /// A harness on the shared server (or on `server`), in a namespace no other test uses.
    /// `namespace` overrides the unique one (a Redis Cluster test passes a hash-tagged one).
    static func make(_ label: String, server: RedisServer? = nil, url: String? = nil, namespace: String? = nil) async throws -> WorkerHarness {
        let server = if let server { server } else { try await RedisServer.shared() }
        let url = url ?? server.url
        let namespace = namespace ?? RedisServer.uniqueNamespace(label)
        let configuration = try RedisConfiguration(url: url)
        let executor = RedisExecutor(
            client: RedisClient(configuration: configuration, name: "worker-test-producer", logger: WorkerKit.quiet),
            namespace: namespace, logger: WorkerKit.quiet)
        return WorkerHarness(
            server: server, namespace: namespace, keys: RedisKeys(namespace: namespace, for: configuration), url: url,
            redis: RedisClient(configuration: configuration, name: "worker-test-reader", logger: WorkerKit.quiet),
            executor: executor)
    }

    /// A worker configuration for this namespace with test-friendly timings: quick heartbeats,
    /// reaping and retries, so nothing waits for production defaults.
    func configuration(queues: [String] = ["default"], concurrency: Int = 4, prefetch: Int = 0) throws -> WorkerSetup {
        var configuration = WorkerSetup(redis: try RedisConfiguration(url: url))
        configuration.namespace = namespace
        configuration.queues = queues
        configuration.concurrency = concurrency
        configuration.prefetch = prefetch
        configuration.heartbeatInterval = .milliseconds(200)
        // Long enough that a loaded machine (tests in parallel, busy loops beside) never lets a live
        // worker's heartbeat lapse; tests of reaping make a worker look dead explicitly.
        configuration.heartbeatTTL = .seconds(5)
        configuration.reaperInterval = .milliseconds(300)
        configuration.retryStrategy = .fixed(.milliseconds(50))
        configuration.shutdownTimeout = .seconds(5)
        configuration.name = "wt"
        return configuration
    }

    // MARK: Producing

    /// Runs `body` in an airlock scope that flushes to this namespace (explicit policy and
    /// behaviour, so global configuration changed by other suites cannot interfere).
    @discardableResult
    func enqueue<R>(_ body: () throws -> R) async throws -> R {
        try await Airlock.scope(policy: AllowAll(), executor: executor, behavior: DefaultScopeBehavior()) { try body() }
    }

    /// Enqueues one `airlock.record` job per token, in order.
    func record(_ tokens: [String], queue: String = "default", options: DispatchOptions = DispatchOptions()) async throws {
        var options = options
        options.queue = queue
        try await enqueue {
            for token in tokens {
                try Airlock.enqueue(name: "airlock.record", kwargs: ["token": .string(token)], options: options)
            }
        }
    }

    /// LPUSHes raw bytes onto a ready list, like a producer written in another language.
    func pushRaw(_ bytes: [UInt8], queue: String = "default") async throws {
        _ = try await redis.send([Array("LPUSH".utf8), Array(keys.ready(queue).utf8), bytes])
    }

    /// Sends an ad-hoc command.
    @discardableResult
    func command(_ args: String...) async throws -> RedisReply {
        try await redis.send(args.map { Array($0.utf8) })
    }

    // MARK: Reading

    /// What `airlock.record` appended, oldest first.
    func recorded() async throws -> [String] {
        try await list(keys.diagRecord).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every entry of a list, left to right.
    func list(_ key: String) async throws -> [[UInt8]] {
        let reply = try await redis.send("LRANGE", key, "0", "-1")
        return try #require(reply.array, "LRANGE \(key) replied \(reply)").map { $0.bytes ?? [] }
    }

    func length(_ key: String) async throws -> Int {
        try await redis.send("LLEN", key).int ?? -1
    }

    func readyCount(_ queue: String = "default") async throws -> Int { try await length(keys.ready(queue)) }

    func inflightCount(_ queue: String = "default", worker: String) async throws -> Int {
        try await length(keys.inflight(queue, worker: worker))
    }

    /// The ready list's envelopes in consumption order (the right end, taken next, first).
    func readyInConsumptionOrder(_ queue: String = "default") async throws -> [[String: JSONValue]] {
        try await list(keys.ready(queue)).reversed().map(WorkerKit.object)
    }

    /// The stats hash of `queue` as integers.
    func stats(_ queue: String = "default") async throws -> [String: Int] {
        let flat = try await redis.send("HGETALL", keys.stats(queue)).array ?? []
        var result: [String: Int] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let field = flat[index].string { result[field] = flat[index + 1].int }
        }
        return result
    }

    /// Dead letters of `queue`, newest first.
    func dead(_ queue: String = "default") async throws -> [[String: JSONValue]] {
        try await list(keys.dead(queue)).map(WorkerKit.object)
    }

    /// The delayed set as (envelope, score) pairs, earliest first.
    func delayed(_ queue: String = "default") async throws -> [(envelope: [String: JSONValue], score: Int64)] {
        let flat = try await redis.send("ZRANGE", keys.delayed(queue), "0", "-1", "WITHSCORES").array ?? []
        return try stride(from: 0, to: flat.count - 1, by: 2).map { index in
            (try WorkerKit.object(flat[index].bytes ?? []), Double(flat[index + 1].string ?? "").flatMap(Int64.init(saturating:)) ?? -1)
        }
    }

    /// Registered worker ids.
    func workers() async throws -> [String] {
        (try await redis.send("SMEMBERS", keys.workers).array ?? []).compactMap(\.string)
    }

    // MARK: Workers

    /// Runs a worker for the duration of `body`, then shuts it down and waits for `run()` to
    /// return — also when `body` throws. A `run()` that throws, or does not return within
    /// `stopWithin`, fails the test.
    @discardableResult
    func withWorker<R>(
        _ configuration: WorkerSetup,
        registry: TaskRegistry = TaskRegistry(),
        logger: Logger = WorkerKit.quiet,
        stopWithin: Duration = .seconds(20),
        _ body: (Worker) async throws -> R
    ) async throws -> R {
        let run = WorkerRun(Worker(configuration: configuration, registry: registry, logger: logger))
        let result: R
        do {
            result = try await body(run.worker)
        } catch {
            _ = try? await run.stop(within: stopWithin)
            throw error
        }
        try await run.stop(within: stopWithin).get()
        return result
    }

    /// Waits until `worker` has registered itself (its first heartbeat is in Redis).
    func waitUntilRegistered(_ worker: Worker, timeout: Duration = .seconds(10)) async throws {
        try await WorkerKit.eventually("worker \(worker.id) registered", timeout: timeout) {
            try await redis.send("EXISTS", keys.heartbeat(worker.id)).int == 1
        }
    }
}

/// A worker's `run()` in a task of its own, with its outcome kept for the test.
final class WorkerRun: Sendable {
    private final class Outcome: Sendable {
        let value = Mutex<Result<Void, any Error>?>(nil)
    }
    let worker: Worker
    private let outcome = Outcome()

    init(_ worker: Worker) {
        self.worker = worker
        let outcome = self.outcome
        Task {
            do {
                try await worker.run()
                outcome.value.withLock { $0 = .success(()) }
            } catch {
                outcome.value.withLock { $0 = .failure(error) }
            }
        }
    }

    /// What `run()` returned or threw, once it has.
    var result: Result<Void, any Error>? { outcome.value.withLock { $0 } }

    /// Waits until `run()` has returned, without asking it to.
    func waitForExit(within timeout: Duration) async throws -> Result<Void, any Error> {
        try await WorkerKit.eventually("Worker.run() of \(worker.id) to return", timeout: timeout, poll: .milliseconds(10)) {
            result != nil
        }
        return result!
    }

    /// Asks the worker to shut down and waits until `run()` has returned.
    func stop(within timeout: Duration = .seconds(20)) async throws -> Result<Void, any Error> {
        worker.shutdown()
        return try await waitForExit(within: timeout)
    }
}

// MARK: - Instruments for tasks

/// A gate tasks wait at until the test opens it; counts arrivals and honours cancellation.
final class WorkerLatch: Sendable {
    private struct State {
        var open = false
        var arrived = 0
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    }
    private let state = Mutex(State())

    /// Tasks that reached the gate so far (including those already let through).
    var arrived: Int { state.withLock { $0.arrived } }
    /// Tasks waiting at the gate now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Arrives and waits until ``open()``; throws `CancellationError` when the task is cancelled.
    func wait() async throws {
        let id = state.withLock { state -> Int in
            state.arrived += 1
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.open { return .success(()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Lets every waiting and future task through.
    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Collects what tasks saw, in the order they saw it, and how many ran at once.
final class WorkerProbe: Sendable {
    private struct State {
        var events: [String] = []
        var times: [String: ContinuousClock.Instant] = [:]
        var wallTimes: [String: Int64] = [:]
        var running = 0
        var maxRunning = 0
        var contexts: [TaskContext] = []
    }
    private let state = Mutex(State())

    func record(_ event: String) {
        let now = ContinuousClock.now
        let wall = epochMilliseconds()
        state.withLock {
            $0.events.append(event)
            $0.times[event] = now
            $0.wallTimes[event] = wall
        }
    }

    /// When `event` was last recorded, in ms since the epoch.
    func wallTime(of event: String) -> Int64? { state.withLock { $0.wallTimes[event] } }

    func record(_ context: TaskContext) { state.withLock { $0.contexts.append(context) } }

    var events: [String] { state.withLock { $0.events } }
    var contexts: [TaskContext] { state.withLock { $0.contexts } }
    func count(_ event: String) -> Int { state.withLock { $0.events.count { $0 == event } } }
    func time(of event: String) -> ContinuousClock.Instant? { state.withLock { $0.times[event] } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }
    var running: Int { state.withLock { $0.running } }

    /// Counts `body` as running while it runs.
    func running<R>(_ body: () async throws -> R) async rethrows -> R {
        state.withLock {
            $0.running += 1
            $0.maxRunning = max($0.maxRunning, $0.running)
        }
        defer { state.withLock { $0.running -= 1 } }
        return try await body()
    }

    // Typed tasks find their probe by name (they are decoded from the wire, so they cannot hold one).
    private static let registry = Mutex<[String: WorkerProbe]>([:])

    /// A fresh probe typed tasks can reach under `name`.
    static func named(_ name: String) -> WorkerProbe {
        let probe = WorkerProbe()
        registry.withLock { $0[name] = probe }
        return probe
    }

    static func lookup(_ name: String) -> WorkerProbe? { registry.withLock { $0[name] } }
}

/// Keeps every message logged through it, so a test can wait for a log line.
final class WorkerLogSink: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    /// A logger writing into this sink (all levels).
    var logger: Logger {
        Logger(label: "airlock.worker-tests.capture") { _ in WorkerCaptureHandler(sink: self) }
    }
}

struct WorkerCaptureHandler: LogHandler {
    let sink: WorkerLogSink
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The message, then the metadata as `key=value` exactly as the library handed it over (no
    /// escaping here: tests check that the library escaped what jobs carry).
    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }
        sink.append("[\(event.level)] \(event.message)" + (fields.isEmpty ? "" : " " + fields.joined(separator: " ")))
    }
}

// MARK: - Redis server statistics

enum WorkerServerStats {
    /// `calls` per command from `INFO commandstats` (lower-case command names).
    static func commandCalls(_ client: RedisClient) async throws -> [String: Int] {
        let text = try await client.send("INFO", "commandstats").string ?? ""
        var calls: [String: Int] = [:]
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            // cmdstat_evalsha:calls=12,usec=...
            let parts = line.dropFirst("cmdstat_".count).split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let fields = parts[1].split(separator: ",")
            if let callsField = fields.first(where: { $0.hasPrefix("calls=") }), let value = Int(callsField.dropFirst("calls=".count)) {
                calls[String(parts[0])] = value
            }
        }
        return calls
    }
}

// MARK: - The airlock-workerd child process

/// A real `airlock-workerd` process. `@unchecked Sendable`: the `Process` is only read through
/// its thread-safe accessors (`isRunning`, `terminationStatus`, `processIdentifier`).
final class WorkerDaemon: @unchecked Sendable {
    private let process: Process
    let stderrPath: String
    let arguments: [String]

    private init(process: Process, stderrPath: String, arguments: [String]) {
        self.process = process
        self.stderrPath = stderrPath
        self.arguments = arguments
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    /// The package root, found from this file's path (Tests/AirlockRedisTests/…).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private static let buildOnce = Mutex<Task<String, any Error>?>(nil)

    /// `.build/debug/airlock-workerd` (or `$AIRLOCK_WORKERD`); built with `swift build` when missing.
    static func binary() async throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["AIRLOCK_WORKERD"], FileManager.default.isExecutableFile(atPath: explicit) {
            return explicit
        }
        let path = packageRoot.appendingPathComponent(".build/debug/airlock-workerd").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        let task = buildOnce.withLock { slot -> Task<String, any Error> in
            if let slot { return slot }
            let task = Task<String, any Error> {
                let build = Process()
                build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                build.arguments = ["swift", "build", "--product", "airlock-workerd"]
                build.currentDirectoryURL = packageRoot
                try build.run()
                let deadline = ContinuousClock.now + .seconds(900)
                while build.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
                guard !build.isRunning, build.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
                    throw WorkerWaitTimeout(description: "`swift build --product airlock-workerd` failed; build the package first (make test does)")
                }
                return path
            }
            slot = task
            return task
        }
        return try await task.value
    }

    /// Starts `airlock-workerd` with `arguments`, stdout discarded and stderr kept in a file.
    ///
    /// Spawned from a fresh thread that unblocks every signal first: a child inherits the
    /// spawning thread's signal mask, and the cooperative pool's threads block SIGTERM.
    static func launch(_ arguments: [String]) async throws -> WorkerDaemon {
        let binary = try await binary()
        let stderrPath = NSTemporaryDirectory() + "airlock-workerd-\(UUID().uuidString).stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        var environment = ProcessInfo.processInfo.environment
        environment["AIRLOCK_REDIS_URL"] = nil
        environment["AIRLOCK_NAMESPACE"] = nil
        environment["REDIS_URL"] = nil
        process.environment = environment
        let daemon = WorkerDaemon(process: process, stderrPath: stderrPath, arguments: arguments)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                var empty = sigset_t()
                sigemptyset(&empty)
                pthread_sigmask(SIG_SETMASK, &empty, nil)
                continuation.resume(with: Result { try daemon.process.run() })
            }
            thread.start()
        }
        return daemon
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Everything the process wrote to stderr so far.
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func send(_ signal: Int32) { kill(pid, signal) }

    /// Polls until the process has exited; returns its exit status (or signal number) and whether
    /// it exited normally. Throws ``WorkerWaitTimeout`` after `timeout`.
    func waitForExit(within timeout: Duration) async throws -> (status: Int32, exited: Bool) {
        try await WorkerKit.eventually("airlock-workerd \(arguments.joined(separator: " ")) to exit", timeout: timeout, poll: .milliseconds(10)) {
            !process.isRunning
        }
        return (process.terminationStatus, process.terminationReason == .exit)
    }

    /// SIGKILL if still running (cleanup), and wait for the exit to be reaped.
    func killIfRunning() async {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        _ = try? await waitForExit(within: .seconds(5))
    }
}

// MARK: - Typed tasks used by the suites

/// A typed task that reports to the probe named by `probe`.
struct WorkerOrderTask: AirlockTask, Equatable {
    static let name = "worker-tests.order"
    static let argumentNames = ["probe", "orderID", "customer"]
    let probe: String
    let orderID: Int
    let customer: String
    var gift: Bool?

    func run(_ context: TaskContext) async throws {
        let probe = WorkerProbe.lookup(probe)
        probe?.record("order \(orderID) \(customer) gift=\(gift.map(String.init) ?? "nil")")
        probe?.record(context)
    }
}

/// A typed task that always fails, optionally for good.
struct WorkerFailingTask: AirlockTask {
    static let name = "worker-tests.failing"
    let probe: String
    let permanent: Bool

    func run(_ context: TaskContext) async throws {
        WorkerProbe.lookup(probe)?.record("failing attempt \(context.attempt)")
        if permanent { throw PermanentFailure("card declined for good") }
        throw WorkerTaskError(message: "transient failure at attempt \(context.attempt)")
    }
}

/// The error the test tasks throw when asked to fail.
struct WorkerTaskError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
