import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Knows how to (re)start one configured redis-server: same binary, port, directory.
struct Launcher: Sendable {
    let binary: String
    let directory: String
    let port: Int
    let options: RedisServer.Options

    var configPath: String { directory + "/redis.conf" }
    var outputPath: String { directory + "/stdout.log" }
    var logPath: String { directory + "/redis.log" }
    /// Unix sockets paths are limited to 107 bytes; skip the socket rather than fail.
    var unixSocketPath: String? {
        let path = directory + "/redis.sock"
        return path.utf8.count < 100 ? path : nil
    }

    /// PATH first, then the usual install locations; `AIRLOCK_REDIS_SERVER` overrides.
    static func findRedisServer() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["AIRLOCK_REDIS_SERVER"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw RedisServerError("AIRLOCK_REDIS_SERVER=\(explicit) is not an executable file")
            }
            return explicit
        }
        let path = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in path + ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/opt/homebrew/bin"] {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RedisServerError("redis-server was not found in PATH or /usr/bin; the Redis tests need a real server (install it: apt-get install redis-server)")
    }

    /// Where server directories go: the temp dir, unless too long for a unix socket path.
    static var baseDirectory: String {
        var base = FileManager.default.temporaryDirectory.path
        if base.hasSuffix("/") { base.removeLast() }
        return base.utf8.count > 40 ? "/tmp" : base
    }

    static func makeDirectory() throws -> String {
        let base = baseDirectory
        var template = Array((base + "/airlock-redis-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else {
            throw RedisServerError("could not create a temporary directory under \(base): \(String(cString: strerror(errno)))")
        }
        let directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Lets a later test process clean up after this one if it crashes (OrphanReaper).
        try? String(getpid()).write(toFile: directory + "/" + OrphanReaper.ownerFile, atomically: true, encoding: .utf8)
        return directory
    }

    func writeConfig() throws {
        var lines = [
            "port \(port)",
            "bind 127.0.0.1",
            "daemonize no",
            "dir \(quote(directory))",
            "logfile \(quote(logPath))",
            "pidfile \(quote(directory + "/" + OrphanReaper.serverPIDFile))",
            "save \"\"",
            "dbfilename dump.rdb",
        ]
        if let unixSocketPath {
            lines += ["unixsocket \(quote(unixSocketPath))", "unixsocketperm 700"]
        }
        lines += options.appendOnly ? ["appendonly yes", "appendfsync always"] : ["appendonly no"]
        if options.enableDebugCommand { lines.append("enable-debug-command local") }
        if let password = options.password { lines.append("requirepass \(quote(password))") }
        lines += options.extraConfig
        let text = lines.joined(separator: "\n") + "\n"
        do {
            try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        } catch {
            throw RedisServerError("could not write \(configPath): \(error)")
        }
    }

    /// Starts the process and waits (bounded) until it answers PING over TCP.
    func launch() throws -> RunningServer {
        // A restart appends to the same log; only what this process writes counts.
        let logStart = Self.size(of: logPath)
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        guard let output = FileHandle(forWritingAtPath: outputPath) else {
            throw RedisServerError("could not open \(outputPath) for the server's output")
        }
        output.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [configPath]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        let exit = ExitSignal()
        process.terminationHandler = { _ in exit.markExited() }
        do {
            try Self.spawnWithCleanSignalMask { try process.run() }
        } catch {
            throw RedisServerError("could not run \(binary): \(error)")
        }
        try? output.close()
        let server = RunningServer(process: process, pid: process.processIdentifier, exit: exit)

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if exit.hasExited {
                let log = tail()
                throw RedisServerError("redis-server exited during startup on port \(port): \(log)", portInUse: log.contains("Address already in use"))
            }
            // A PING alone is not proof: if a parallel test's server took the port between probe and
            // bind, *it* answers while ours is about to exit with "Address already in use" (and a TLS
            // port ours never opened is then refused). Our own log saying every listener is up is.
            if Self.log(logPath, after: logStart, contains: "Ready to accept connections"), Probe.isReady(port: port) { return server }
            usleep(10_000)
        }
        server.kill9()
        throw RedisServerError("redis-server on port \(port) did not answer PING within 10 s: \(tail())")
    }

    /// posix_spawn passes the calling thread's signal mask to the child, and Swift's
    /// cooperative-pool threads (and threads they create) block SIGTERM: a server
    /// spawned from them would ignore stop(). So spawn from a fresh thread that
    /// first unblocks every signal, and wait for it.
    static func spawnWithCleanSignalMask(_ spawn: @escaping @Sendable () throws -> Void) throws {
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            let result = Result { try spawn() }
            outcome.withLock { $0 = result }
            done.signal()
        }
        thread.start()
        done.wait()
        try outcome.withLock { $0 }?.get()
    }

    /// Whether the log at `path`, past `offset`, contains `marker`. Used as proof that the process
    /// we started, not another one on a just-taken port, is the one answering: redis-server logs
    /// "Ready to accept connections" once every listener (plain, TLS, unix socket) is bound and its
    /// data is loaded, a sentinel "Sentinel ID is" once it is running.
    static func log(_ path: String, after offset: Int, contains marker: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: UInt64(offset))) != nil, let data = try? handle.readToEnd() else { return false }
        return String(decoding: data, as: UTF8.self).contains(marker)
    }

    /// The size of the file at `path` (0 if there is none): where a restarted process's log begins.
    static func size(of path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    /// The last lines of the server's output and log, for error messages.
    private func tail() -> String {
        let texts = [outputPath, logPath].compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        let lines = texts.joined(separator: "\n").split(separator: "\n").suffix(8)
        return lines.isEmpty ? "(no output; see \(directory))" : lines.joined(separator: " | ")
    }

    private func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// Set from Foundation's termination handler; lets stop() wait with a deadline.
final class ExitSignal: Sendable {
    private let exited = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    var hasExited: Bool { exited.load(ordering: .acquiring) }

    func markExited() {
        exited.store(true, ordering: .releasing)
        semaphore.signal()
    }

    /// True if the process exited within `timeout`.
    func wait(_ timeout: Duration) -> Bool {
        if hasExited { return true }
        let nanos = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        return semaphore.wait(timeout: .now() + .nanoseconds(nanos)) == .success || hasExited
    }
}

/// One live redis-server process. `@unchecked Sendable`: `process` is only kept so
/// Foundation keeps monitoring the child; it is never touched after launch.
final class RunningServer: @unchecked Sendable {
    private let process: Process
    let pid: Int32
    let exit: ExitSignal

    init(process: Process, pid: Int32, exit: ExitSignal) {
        self.process = process
        self.pid = pid
        self.exit = exit
    }

    func terminate() {
        guard !exit.hasExited else { return }
        kill(pid, SIGTERM)
        if !exit.wait(.seconds(5)) {
            kill(pid, SIGKILL)
            _ = exit.wait(.seconds(5))
        }
    }

    func kill9() {
        guard !exit.hasExited else { return }
        kill(pid, SIGKILL)
        _ = exit.wait(.seconds(5))
    }
}

/// A raw-socket PING, independent of the code under test.
enum Probe {
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        return address
    }

    /// True when the server answers PING with PONG, or with NOAUTH (it is up but wants
    /// a password). LOADING (still reading the AOF) counts as not ready yet.
    static func isReady(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        let ping: [UInt8] = Array("PING\r\n".utf8)
        guard send(fd, ping, ping.count, Int32(MSG_NOSIGNAL)) == ping.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return false }
        let reply = String(decoding: buffer[..<count], as: UTF8.self)
        return reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH")
    }
}
