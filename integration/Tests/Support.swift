import AirlockTestKit
import Airlock
import AirlockRedis
import AirlockTestSupport
import Foundation
import Logging
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Helpers for the multi-process scenarios: worker processes, a per-scenario Redis with cleanup,
// polling with deadlines, producers and the checks every scenario shares.

// MARK: - Locating the daemon

enum Integration {
    /// The package root, from this file's location (`<root>/integration/Tests/Support.swift`).
    static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `AIRLOCK_WORKERD` (set by integration/run.sh), else `<root>/.build/debug/airlock-workerd`.
    static func workerdPath() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let path = environment["AIRLOCK_WORKERD"].flatMap { $0.isEmpty ? nil : $0 } ?? packageRoot + "/.build/debug/airlock-workerd"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw IntegrationError("the daemon binary \(path) does not exist or is not executable; build it first (swift build --build-tests) or set AIRLOCK_WORKERD")
        }
        return path
    }

    /// The test side's own connections log nothing; the workers' logs are what matter.
    static let quiet = Logger(label: "integration", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Prints one figure line for the report, e.g. `integration: fleet jobs=20000 …`.
    static func report(_ line: String) {
        print("integration: \(line)")
    }
}

struct IntegrationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var ms: Int { Int(Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15) }
    var msDouble: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

/// Polls `condition` every `every` until it holds (true) or the deadline passes (false): `timeout`,
/// but never less than a minute (``Eventually/floor``), since a wait is a hang guard, not a bound
/// on speed. Never sleeps on the cooperative pool longer than `every`.
@discardableResult
func eventually(
    timeout: Duration, every: Duration = .milliseconds(25), _ condition: () async throws -> Bool
) async throws -> Bool {
    try await Eventually.holds(within: timeout, poll: every, condition)
}

/// `text` with control characters escaped, for report lines (a hostile message's reason may quote raw bytes).
func printable(_ text: some StringProtocol) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Percentile (nearest rank) of already sorted values.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

// MARK: - Worker processes

/// Kills worker processes the suite started when it exits, and lets integration/run.sh kill
/// them if the test process crashed (pid files in `AIRLOCK_INTEGRATION_PIDDIR`).
enum ProcessJanitor {
    private static let live = Mutex<Set<Int32>>([])
    private static let installed = Atomic<Bool>(false)
    private static let pidDirectory = ProcessInfo.processInfo.environment["AIRLOCK_INTEGRATION_PIDDIR"].flatMap { $0.isEmpty ? nil : $0 }

    static func register(_ pid: Int32) {
        if !installed.exchange(true, ordering: .relaxed) {
            atexit {
                for pid in ProcessJanitor.snapshot() { kill(pid, SIGKILL) }
            }
        }
        live.withLock { _ = $0.insert(pid) }
        if let pidDirectory {
            _ = FileManager.default.createFile(atPath: "\(pidDirectory)/\(pid)", contents: Data("airlock-workerd\n".utf8))
        }
    }

    static func exited(_ pid: Int32) {
        live.withLock { _ = $0.remove(pid) }
        if let pidDirectory { try? FileManager.default.removeItem(atPath: "\(pidDirectory)/\(pid)") }
    }

    static func snapshot() -> [Int32] { live.withLock { Array($0) } }
}

/// One `airlock-workerd` process (a worker or a one-shot operator command), its stdout and
/// stderr captured in files.
final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `process` is only read (isRunning, status) after launch; Foundation updates it
    // from its own monitoring thread.
    let label: String
    let arguments: [String]
    let pid: Int32
    let stdoutPath: String
    let stderrPath: String
    private let process: Process
    private let exitNoted = Atomic<Bool>(false)

    private init(label: String, arguments: [String], process: Process, stdoutPath: String, stderrPath: String) {
        self.label = label
        self.arguments = arguments
        self.process = process
        self.pid = process.processIdentifier
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL) }
    }

    /// Starts the daemon with `arguments`; output goes to files in `logDirectory`.
    /// `binary` runs another program instead (Prometheus), under the same supervision.
    static func start(_ arguments: [String], label: String, logDirectory: String, binary: String? = nil) async throws -> WorkerProcess {
        let binary = try binary ?? Integration.workerdPath()
        let stdoutPath = "\(logDirectory)/\(label).out"
        let stderrPath = "\(logDirectory)/\(label).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: stdoutPath), let err = FileHandle(forWritingAtPath: stderrPath) else {
            throw IntegrationError("cannot open log files in \(logDirectory)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // Every scenario passes --redis and --namespace; nothing may leak in from the environment.
        environment["AIRLOCK_REDIS_URL"] = nil
        environment["AIRLOCK_NAMESPACE"] = nil
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try await spawnWithCleanSignalMask(process)
        try? out.close()
        try? err.close()
        let worker = WorkerProcess(label: label, arguments: arguments, process: process, stdoutPath: stdoutPath, stderrPath: stderrPath)
        ProcessJanitor.register(worker.pid)
        return worker
    }

    /// Spawns from a fresh thread whose signal mask is empty, so the child does not inherit
    /// signals the test runner blocked (SIGTERM must reach the daemon's handler).
    private static func spawnWithCleanSignalMask(_ process: Process) async throws {
        let box = UncheckedBox(process)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread {
                var empty = sigset_t()
                sigemptyset(&empty)
                pthread_sigmask(SIG_SETMASK, &empty, nil)
                do {
                    try box.value.run()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: IntegrationError("could not start airlock-workerd: \(error)"))
                }
            }
            thread.start()
        }
    }

    var isRunning: Bool {
        let running = process.isRunning
        if !running, !exitNoted.exchange(true, ordering: .relaxed) { ProcessJanitor.exited(pid) }
        return running
    }

    /// SIGTERM (graceful shutdown).
    func terminate() { send(SIGTERM) }
    /// SIGKILL, like a crash.
    func kill9() { send(SIGKILL) }

    func send(_ signal: Int32) {
        guard isRunning else { return }
        kill(pid, signal)
    }

    /// The exit status (or the signal number when killed by one) once exited; nil on timeout.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// True when the process ended because of a signal (crash, kill), not by exiting.
    var diedOfSignal: Bool { !isRunning && process.terminationReason == .uncaughtSignal }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// The last `lines` lines of stderr, for failure messages.
    func stderrTail(_ lines: Int = 12) -> String {
        stderr.split(separator: "\n").suffix(lines).map { String($0.prefix(400)) }.joined(separator: "\n")
    }

    /// Kills the process if it is still running and waits (bounded) for it to be gone.
    func stopNow() async {
        kill9()
        _ = await waitForExit(timeout: .seconds(10))
    }
}

/// Moves a non-Sendable value to the spawning thread, which is its only user while it runs.
private final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// What a one-shot operator command produced.
struct CommandResult: Sendable, CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String
    var description: String { "exit \(status); stdout: \(stdout.prefix(2000)); stderr: \(stderr.prefix(2000))" }
}

// MARK: - Scenario

/// One scenario's world: its own redis-server (own port, own directory), the worker processes it
/// starts, an observer connection, and cleanup of all of it however the scenario ends.
final class Scenario: @unchecked Sendable {
    // @unchecked: mutable state is behind Mutexes; the rest is immutable after init.
    let name: String
    let server: RedisServer
    let namespace: String
    let keys: RedisKeys
    let url: String
    let logDirectory: String
    /// The test's own reads and writes; see ``ObserverClient``.
    let redis: ObserverClient
    let started = ContinuousClock.now
    private let processes = Mutex<[WorkerProcess]>([])
    private let clients = Mutex<[RedisClient]>([])
    private let counter = Atomic<Int>(0)

    private init(name: String, server: RedisServer, namespace: String, url: String, logDirectory: String) throws {
        self.name = name
        self.server = server
        self.namespace = namespace
        self.keys = RedisKeys(namespace: namespace)
        self.url = url
        self.logDirectory = logDirectory
        self.redis = ObserverClient(RedisClient(configuration: try RedisConfiguration(url: url), name: "integration-observer", logger: Integration.quiet))
    }

    /// Runs `body` with a fresh Redis and cleans up everything afterwards, even when it throws.
    /// `url` builds the client URL from the server (credentials for auth scenarios).
    static func run(
        _ name: String,
        options: RedisServer.Options = RedisServer.Options(),
        namespace: String = "it",
        url: (RedisServer) -> String = { $0.url },
        _ body: (Scenario) async throws -> Void
    ) async throws {
        let server = try await RedisServer.start(options)
        let logDirectory = try makeLogDirectory(name)
        let scenario: Scenario
        do {
            scenario = try Scenario(name: name, server: server, namespace: namespace, url: url(server), logDirectory: logDirectory)
        } catch {
            try? await RedisServer.offPool { server.stop() }
            throw error
        }
        do {
            try await body(scenario)
        } catch {
            print("integration: \(name) FAILED with \(error)")
            scenario.printLogTails()
            // An unstructured task: cleanup must run in full even when the test was cancelled (time limit).
            await Task { await scenario.cleanup(keepLogs: true) }.value
            throw error
        }
        let keepLogs = ProcessInfo.processInfo.environment["AIRLOCK_INTEGRATION_KEEP_LOGS"] == "1"
        await Task { await scenario.cleanup(keepLogs: keepLogs) }.value
        Integration.report("\(name) total_ms=\((ContinuousClock.now - scenario.started).ms)")
    }

    private static func makeLogDirectory(_ name: String) throws -> String {
        var template = Array("/tmp/airlock-integ-\(name)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw IntegrationError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Kills every process still running, closes connections, stops Redis.
    func cleanup(keepLogs: Bool) async {
        let all = processes.withLock { $0 }
        for process in all where process.isRunning { process.kill9() }
        for process in all { _ = await process.waitForExit(timeout: .seconds(10)) }
        for client in clients.withLock({ $0 }) { await client.close() }
        await redis.close()
        let server = self.server
        _ = try? await RedisServer.offPool { server.stop() }
        if keepLogs {
            print("integration: \(name) logs kept in \(logDirectory)")
        } else {
            try? FileManager.default.removeItem(atPath: logDirectory)
        }
    }

    /// Kills `process` at cleanup with the workers.
    func track(_ process: WorkerProcess) {
        processes.withLock { $0.append(process) }
    }

    func printLogTails() {
        for process in processes.withLock({ $0 }) {
            print("integration: --- \(process.label) (pid \(process.pid), running: \(process.isRunning)) stderr tail:\n\(process.stderrTail())")
        }
    }

    /// A new client to this scenario's Redis, closed at cleanup.
    func client(_ label: String) throws -> RedisClient {
        let client = RedisClient(configuration: try RedisConfiguration(url: url), name: label, logger: Integration.quiet)
        clients.withLock { $0.append(client) }
        return client
    }

    /// A producer over its own connection.
    func executor(queue: String = "default", namespace: String? = nil) throws -> RedisExecutor {
        RedisExecutor(client: try client("integration-producer"), namespace: namespace ?? self.namespace, defaultQueue: queue)
    }

    // MARK: Workers

    /// Starts `airlock-workerd run` against this scenario's Redis.
    func startWorker(
        _ label: String,
        queues: String = "default",
        concurrency: Int = 8,
        prefetch: Int? = nil,
        shutdownTimeout: Double = 10,
        namespace: String? = nil,
        redisURL: String? = nil,
        extra: [String] = []
    ) async throws -> WorkerProcess {
        var arguments = [
            "run", "--redis", redisURL ?? url, "--namespace", namespace ?? self.namespace, "--queues", queues,
            "--concurrency", String(concurrency), "--shutdown-timeout", String(shutdownTimeout),
            "--log-level", "notice", "--name", label,
        ]
        if let prefetch { arguments += ["--prefetch", String(prefetch)] }
        arguments += extra
        let worker = try await WorkerProcess.start(arguments, label: label, logDirectory: logDirectory)
        processes.withLock { $0.append(worker) }
        return worker
    }

    /// Starts `count` workers named `<prefix>-1…` and waits until each has registered.
    func startFleet(
        _ prefix: String, count: Int, concurrency: Int = 8, prefetch: Int? = nil, shutdownTimeout: Double = 10,
        namespace: String? = nil, extra: [String] = []
    ) async throws -> [(process: WorkerProcess, id: String)] {
        var started: [WorkerProcess] = []
        for index in 1...count {
            started.append(try await startWorker(
                "\(prefix)-\(index)", concurrency: concurrency, prefetch: prefetch, shutdownTimeout: shutdownTimeout,
                namespace: namespace, extra: extra))
        }
        var fleet: [(process: WorkerProcess, id: String)] = []
        for worker in started {
            fleet.append((process: worker, id: try await registeredID(of: worker, namespace: namespace)))
        }
        return fleet
    }

    /// The worker id a process registered under (`<name>-<pid>-<suffix>`), waiting up to 20 s.
    func registeredID(of worker: WorkerProcess, namespace: String? = nil) async throws -> String {
        let keys = RedisKeys(namespace: namespace ?? self.namespace)
        let prefix = "\(worker.label)-\(worker.pid)-"
        var found: String?
        let ok = try await eventually(timeout: .seconds(20), every: .milliseconds(50)) {
            guard worker.isRunning else { return true }
            found = try await members(keys.workers).first { $0.hasPrefix(prefix) }
            return found != nil
        }
        guard ok, let found else {
            throw IntegrationError("worker \(worker.label) did not register within 20 s (running: \(worker.isRunning)); stderr:\n\(worker.stderrTail())")
        }
        return found
    }

    /// Runs a one-shot operator command (`airlock-workerd <arguments> --redis … --namespace …`).
    func cli(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        let label = "cli-\(counter.add(1, ordering: .relaxed).newValue)-\(arguments.prefix(2).joined(separator: "-"))"
        let process = try await WorkerProcess.start(
            arguments + ["--redis", url, "--namespace", namespace], label: label, logDirectory: logDirectory)
        processes.withLock { $0.append(process) }
        guard let status = await process.waitForExit(timeout: timeout) else {
            process.kill9()
            throw IntegrationError("`airlock-workerd \(arguments.joined(separator: " "))` did not exit within \(timeout); stderr:\n\(process.stderrTail())")
        }
        return CommandResult(status: status, stdout: process.stdout, stderr: process.stderr)
    }

    // MARK: Redis reads

    func command(_ args: String...) async throws -> RedisReply {
        try await redis.send(args.map { Array($0.utf8) })
    }

    func llen(_ key: String) async throws -> Int {
        try await redis.send("LLEN", key).int ?? 0
    }

    func strings(_ key: String) async throws -> [String] {
        (try await redis.send("LRANGE", key, "0", "-1").array ?? []).compactMap(\.string)
    }

    func members(_ key: String) async throws -> [String] {
        (try await redis.send("SMEMBERS", key).array ?? []).compactMap(\.string)
    }

    func keysMatching(_ pattern: String) async throws -> [String] {
        (try await redis.send("KEYS", pattern).array ?? []).compactMap(\.string)
    }

    /// The queue's stats hash as integers.
    func stats(_ queue: String = "default", namespace: String? = nil) async throws -> [String: Int] {
        let keys = RedisKeys(namespace: namespace ?? self.namespace)
        let flat = try await redis.send("HGETALL", keys.stats(queue)).array ?? []
        var result: [String: Int] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let key = flat[index].string { result[key] = flat[index + 1].int ?? 0 }
            index += 2
        }
        return result
    }

    /// Jobs the whole fleet holds for `queue` (sum of every in-flight list).
    func inflightTotal(_ queue: String = "default", namespace: String? = nil) async throws -> Int {
        let keys = RedisKeys(namespace: namespace ?? self.namespace)
        var total = 0
        for key in try await keysMatching(globEscape(keys.inflight(queue, worker: "")) + "*") {
            total += try await llen(key)
        }
        return total
    }

    /// True when nothing is ready, delayed or in flight on `queue`.
    func isDrained(_ queue: String = "default", namespace: String? = nil) async throws -> Bool {
        let keys = RedisKeys(namespace: namespace ?? self.namespace)
        guard try await llen(keys.ready(queue)) == 0 else { return false }
        guard (try await redis.send("ZCARD", keys.delayed(queue)).int ?? 0) == 0 else { return false }
        return try await inflightTotal(queue, namespace: namespace) == 0
    }

    /// Waits until `<ns>:diag:record` holds at least `count` tokens and the queue is drained.
    func waitForRecords(_ count: Int, queue: String = "default", namespace: String? = nil, timeout: Duration) async throws -> Bool {
        let keys = RedisKeys(namespace: namespace ?? self.namespace)
        return try await eventually(timeout: timeout, every: .milliseconds(100)) {
            guard try await llen(keys.diagRecord) >= count else { return false }
            return try await isDrained(queue, namespace: namespace)
        }
    }

    /// Where the `airlock.record` jobs carrying `tokens` sit now (ready, delayed, dead, or in whose
    /// in-flight list): for failure messages that must say what happened to a job.
    func locate(_ tokens: Set<String>, queue: String = "default") async throws -> [String: [String]] {
        var found: [String: [String]] = [:]
        func scan(_ entries: [[UInt8]], _ place: String) {
            for raw in entries {
                guard let envelope = try? JSONParser.parse(raw).objectValue,
                      let token = envelope["kwargs"]?.objectValue?["token"]?.stringValue, tokens.contains(token) else { continue }
                let attempt = envelope["attempt"]?.intValue ?? 0
                let error = envelope["error"]?.stringValue ?? envelope["last_error"]?.stringValue
                found[token, default: []].append(place + " attempt=\(attempt)" + (error.map { " error=\($0.prefix(160))" } ?? ""))
            }
        }
        func list(_ key: String) async throws -> [[UInt8]] {
            (try await redis.send("LRANGE", key, "0", "-1").array ?? []).compactMap(\.bytes)
        }
        scan(try await list(keys.ready(queue)), "ready")
        scan(try await list(keys.dead(queue)), "dead")
        scan((try await redis.send("ZRANGE", keys.delayed(queue), "0", "-1").array ?? []).compactMap(\.bytes), "delayed")
        for key in try await keysMatching(globEscape(keys.inflight(queue, worker: "")) + "*") {
            let worker = String(key.dropFirst(keys.inflight(queue, worker: "").count))
            let alive = (try await redis.send("EXISTS", keys.heartbeat(worker)).int ?? 0) == 1
            scan(try await list(key), "in-flight of \(worker) (\(alive ? "alive" : "dead"))")
        }
        for token in tokens where found[token] == nil { found[token] = ["nowhere"] }
        return found
    }

    // MARK: Producing

    /// Enqueues one `airlock.record` job per token through the Redis executor, `batch` intents
    /// per atomic flush (a scope of 100).
    func produceRecords(_ tokens: [String], queue: String = "default", batch: Int = 100, using executor: RedisExecutor) async throws {
        var start = 0
        while start < tokens.count {
            try Task.checkCancellation()
            let end = min(start + batch, tokens.count)
            let intents = tokens[start..<end].map { recordIntent($0, queue: queue) }
            let outcomes = try await executor.enqueue(intents)
            guard outcomes.allSatisfy({ $0 == .queued }) else {
                throw IntegrationError("unexpected enqueue outcomes \(outcomes.filter { $0 != .queued })")
            }
            start = end
        }
    }
}

/// An `airlock.record` intent; `options` adds an idempotency key, a due time…
func recordIntent(_ token: String, queue: String = "default", options: DispatchOptions = DispatchOptions()) -> Intent {
    var options = options
    options.queue = queue
    return Intent(taskName: "airlock.record", payload: .dynamic(TaskArguments(kwargs: ["token": .string(token)])), options: options)
}

/// Escapes Redis glob specials in a literal key prefix.
func globEscape(_ text: String) -> String {
    var out = ""
    for character in text {
        if "*?[]\\".contains(character) { out.append("\\") }
        out.append(character)
    }
    return out
}

// MARK: - Checking what was recorded

/// The recorded tokens compared with the expected ones.
struct RecordCheck: CustomStringConvertible {
    let recorded: Int
    let distinct: Int
    let missing: [String]
    let unexpected: [String]
    /// Recorded entries beyond the first of each token.
    let duplicates: Int
    let duplicatedTokens: Int

    init(expected: Set<String>, recorded list: [String]) {
        var counts: [String: Int] = [:]
        for token in list { counts[token, default: 0] += 1 }
        recorded = list.count
        distinct = counts.count
        missing = expected.subtracting(counts.keys).sorted()
        unexpected = Set(counts.keys).subtracting(expected).sorted()
        duplicates = counts.values.reduce(0) { $0 + max($1 - 1, 0) }
        duplicatedTokens = counts.values.filter { $0 > 1 }.count
    }

    var description: String {
        "recorded=\(recorded) distinct=\(distinct) missing=\(missing.count) \(missing.prefix(5)) unexpected=\(unexpected.count) \(unexpected.prefix(5)) duplicates=\(duplicates)"
    }
}


/// The scenario's observing connection. Scenarios restart and kill Redis under it, so a command that
/// meets the restart (a reset on a connection that looked alive) is sent again once Redis is back:
/// reads always, writes only when Redis cannot have applied them. The system under test gets no such
/// help: only the test's own bookkeeping does.
struct ObserverClient: Sendable {
    let client: RedisClient

    init(_ client: RedisClient) { self.client = client }

    private static let reads: Set<String> = [
        "LLEN", "LRANGE", "LINDEX", "SMEMBERS", "SCARD", "SISMEMBER", "KEYS", "SCAN", "HGETALL", "HGET", "HLEN", "ZCARD",
        "ZRANGE", "ZSCORE", "EXISTS", "PTTL", "TTL", "GET", "TYPE", "INFO", "PING", "DBSIZE", "CONFIG",
    ]

    func send(_ arguments: String...) async throws -> RedisReply {
        try await send(arguments.map { Array($0.utf8) })
    }

    func send(_ arguments: [[UInt8]]) async throws -> RedisReply {
        let name = String(decoding: arguments.first ?? [], as: UTF8.self).uppercased()
        var attempt = 0
        while true {
            do {
                return try await client.send(arguments)
            } catch {
                let again = error.isConnectionProblem && attempt < 100 && (Self.reads.contains(name) || !error.mayHaveBeenApplied)
                guard again else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func close() async { await client.close() }
}
