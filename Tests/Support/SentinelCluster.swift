import AirlockTestKit
import AirlockRedis
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `redis-server --sentinel` process on a free loopback port, with a directory of its own
/// (sentinels rewrite their configuration file). Stopped with this object or by ``stop()``.
public final class SentinelProcess: Sendable {
    /// The sentinel's port.
    public let port: Int
    /// Its directory (config, log).
    public let directory: String
    private let running: Mutex<RunningServer?>

    init(binary: String, masterName: String, masterPort: Int, quorum: Int, password: String?, downAfter: Duration, failoverTimeout: Duration) throws {
        let directory = try Launcher.makeDirectory()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try RedisServer.freePort()
            var lines = [
                "port \(port)",
                "bind 127.0.0.1",
                "daemonize no",
                "dir \"\(directory)\"",
                "logfile \"\(directory)/sentinel.log\"",
                "pidfile \"\(directory)/\(OrphanReaper.serverPIDFile)\"",
                "sentinel resolve-hostnames no",
                "sentinel monitor \(masterName) 127.0.0.1 \(masterPort) \(quorum)",
                "sentinel down-after-milliseconds \(masterName) \(downAfter.components.seconds * 1000 + downAfter.components.attoseconds / 1_000_000_000_000_000)",
                "sentinel failover-timeout \(masterName) \(failoverTimeout.components.seconds * 1000)",
                "sentinel parallel-syncs \(masterName) 1",
            ]
            if let password { lines.append("requirepass \"\(password)\"") }
            let config = directory + "/sentinel.conf"
            try (lines.joined(separator: "\n") + "\n").write(toFile: config, atomically: true, encoding: .utf8)
            do {
                let server = try Self.launch(binary: binary, config: config, port: port, directory: directory)
                self.port = port
                self.directory = directory
                self.running = Mutex(server)
                return
            } catch let error as RedisServerError where error.portInUse {
                lastError = error
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? RedisServerError("could not start a sentinel")
    }

    deinit {
        let server = running.withLock { $0.take() }
        let directory = self.directory
        Thread {
            server?.terminate()
            try? FileManager.default.removeItem(atPath: directory)
        }.start()
    }

    /// SIGTERM, then SIGKILL after 5 s. Idempotent.
    public func stop() {
        running.withLock { $0.take() }?.terminate()
    }

    private static func launch(binary: String, config: String, port: Int, directory: String) throws -> RunningServer {
        let outputPath = directory + "/stdout.log"
        let logPath = directory + "/sentinel.log"
        let logStart = Launcher.size(of: logPath) // an earlier attempt's lines are not this one's
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        guard let output = FileHandle(forWritingAtPath: outputPath) else { throw RedisServerError("could not open \(outputPath)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [config, "--sentinel"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        let exit = ExitSignal()
        process.terminationHandler = { _ in exit.markExited() }
        try Launcher.spawnWithCleanSignalMask { try process.run() }
        try? output.close()
        let server = RunningServer(process: process, pid: process.processIdentifier, exit: exit)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if exit.hasExited {
                let log = [outputPath, logPath].compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.joined(separator: " | ")
                throw RedisServerError("sentinel exited during startup on port \(port): \(log.suffix(600))", portInUse: log.contains("Address already in use"))
            }
            // As for redis-server: a PING from another process on a just-taken port is not ours.
            if Launcher.log(logPath, after: logStart, contains: "Sentinel ID is"), Probe.isReady(port: port) { return server }
            usleep(10_000)
        }
        server.kill9()
        throw RedisServerError("sentinel on port \(port) did not answer PING within 10 s")
    }
}

/// A primary, its replica and three sentinels (quorum 2) on loopback, as machine-notes-2 §3
/// runs them: `down-after-milliseconds 1000`, `failover-timeout 5000`. ``start(masterName:sentinelPassword:)``
/// returns once the replica is in sync and every sentinel sees the replica and the other two —
/// the point before which a kill would find no one to promote. Every process is stopped when the
/// cluster is released or ``stop()`` is called, on every path.
public final class SentinelCluster: Sendable {
    /// The name the sentinels monitor the master under.
    public let masterName: String
    /// The sentinels' password (`requirepass`), if any.
    public let sentinelPassword: String?
    /// The sentinels.
    public let sentinels: [SentinelProcess]
    private let nodes: Mutex<[RedisServer]>
    private let logger: Logger

    private init(masterName: String, sentinelPassword: String?, sentinels: [SentinelProcess], nodes: [RedisServer]) {
        self.masterName = masterName
        self.sentinelPassword = sentinelPassword
        self.sentinels = sentinels
        self.nodes = Mutex(nodes)
        var logger = Logger(label: "airlock.test.sentinel")
        logger.logLevel = .critical
        self.logger = logger
    }

    /// Starts the five processes and waits until the cluster can fail over. `dataOptions` configure
    /// the primary and the replica (an ACL user, say; the sentinels and replication use the default user).
    public static func start(
        masterName: String = "mymaster", sentinelPassword: String? = nil, downAfter: Duration = .seconds(1), dataOptions: RedisServer.Options = .init()
    ) async throws -> SentinelCluster {
        let binary = try Launcher.findRedisServer()
        let primary = try await RedisServer.start(dataOptions)
        var replicaOptions = dataOptions
        replicaOptions.extraConfig.append("replicaof 127.0.0.1 \(primary.port)")
        let replica = try await RedisServer.start(replicaOptions)
        var sentinels: [SentinelProcess] = []
        do {
            for _ in 0..<3 {
                sentinels.append(try await RedisServer.offPool {
                    try SentinelProcess(binary: binary, masterName: masterName, masterPort: primary.port, quorum: 2, password: sentinelPassword,
                                        downAfter: downAfter, failoverTimeout: .seconds(5))
                })
            }
        } catch {
            for sentinel in sentinels { sentinel.stop() }
            primary.stop()
            replica.stop()
            throw error
        }
        let cluster = SentinelCluster(masterName: masterName, sentinelPassword: sentinelPassword, sentinels: sentinels, nodes: [primary, replica])
        do {
            try await cluster.awaitReplicaInSync(replica)
            try await cluster.awaitSentinelsSee(replicas: 1)
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    deinit {
        stop()
    }

    /// Stops every process the cluster started. Idempotent.
    public func stop() {
        for sentinel in sentinels { sentinel.stop() }
        for node in nodes.withLock({ $0 }) { node.stop() }
    }

    /// `redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<master>/<db>` plus `query`.
    public func url(database: Int = 0, query: String = "") -> String {
        var parameters: [String] = []
        if let sentinelPassword { parameters.append("sentinel_password=\(sentinelPassword)") }
        if !query.isEmpty { parameters.append(query) }
        let hosts = sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        return "redis+sentinel://\(hosts)/\(masterName)/\(database)" + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
    }

    /// The data node on `port` (started by this cluster).
    public func node(port: Int) -> RedisServer? {
        nodes.withLock { $0.first { $0.port == port } }
    }

    /// The master's port as the first sentinel that answers says.
    public func masterPort() async throws -> Int {
        var lastError: (any Error)?
        for sentinel in sentinels {
            do {
                if let port = try await masterPort(askedOf: sentinel) { return port }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisServerError("no sentinel knows master \(masterName)")
    }

    /// Waits until every sentinel names a master other than `oldPort`, and that node says it is
    /// the master; returns its port. Prints how long it took, as information.
    public func awaitFailover(awayFrom oldPort: Int, timeout: Duration = .seconds(60)) async throws -> Int {
        let started = ContinuousClock.now
        var newPort = 0
        try await eventually("the sentinels to promote a new master (away from \(oldPort))", timeout: timeout) {
            var ports = Set<Int>()
            for sentinel in sentinels {
                guard let port = try? await masterPort(askedOf: sentinel) else { return false }
                ports.insert(port)
            }
            guard ports.count == 1, let port = ports.first, port != oldPort else { return false }
            guard try await role(port: port) == "master" else { return false }
            newPort = port
            return true
        }
        print("sentinel: failover from \(oldPort) to \(newPort) seen by all sentinels \(started.duration(to: .now)) after the wait began")
        return newPort
    }

    /// Starts one more replica of the master on `masterPort` and waits until it is in sync.
    @discardableResult
    public func addReplica(of masterPort: Int) async throws -> RedisServer {
        let replica = try await RedisServer.start(.init(extraConfig: ["replicaof 127.0.0.1 \(masterPort)"]))
        nodes.withLock { $0.append(replica) }
        try await awaitReplicaInSync(replica)
        return replica
    }

    /// The ports of the nodes this cluster started that replicate from `masterPort` (as they say).
    public func replicaPorts(of masterPort: Int) async throws -> [Int] {
        var ports: [Int] = []
        for node in nodes.withLock({ $0 }) where node.port != masterPort && node.isRunning {
            let client = RedisClient(configuration: Self.direct(port: node.port), logger: logger)
            let info = (try? await client.send("INFO", "replication").string) ?? ""
            await client.close()
            if info.contains("master_port:\(masterPort)") { ports.append(node.port) }
        }
        return ports
    }

    /// `ROLE`'s first element on the node at `port` ("master", "slave").
    public func role(port: Int) async throws -> String? {
        let client = RedisClient(configuration: Self.direct(port: port), logger: logger)
        defer { Task { await client.close() } }
        return try await client.send("ROLE").array?.first?.string
    }

    // MARK: Readiness

    private func awaitReplicaInSync(_ replica: RedisServer) async throws {
        let client = RedisClient(configuration: Self.direct(port: replica.port), logger: logger)
        defer { Task { await client.close() } }
        try await eventually("the replica on \(replica.port) to sync with its master") {
            let info = (try? await client.send("INFO", "replication").string) ?? ""
            return info.contains("master_link_status:up")
        }
    }

    private func awaitSentinelsSee(replicas: Int) async throws {
        for sentinel in sentinels {
            let client = RedisClient(configuration: sentinelConfiguration(sentinel), logger: logger)
            defer { Task { await client.close() } }
            try await eventually("sentinel \(sentinel.port) to see \(replicas) replica(s) and the other sentinels") {
                guard let fields = try? await client.send("SENTINEL", "MASTER", masterName).array else { return false }
                var values: [String: String] = [:]
                for index in stride(from: 0, to: fields.count - 1, by: 2) {
                    if let key = fields[index].string { values[key] = fields[index + 1].string }
                }
                return values["num-other-sentinels"].flatMap(Int.init) == sentinels.count - 1
                    && values["num-slaves"].flatMap(Int.init).map { $0 >= replicas } == true
            }
        }
    }

    private func masterPort(askedOf sentinel: SentinelProcess) async throws -> Int? {
        let client = RedisClient(configuration: sentinelConfiguration(sentinel), logger: logger)
        defer { Task { await client.close() } }
        guard let reply = try await client.send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName).array, reply.count == 2 else { return nil }
        return reply[1].int
    }

    private func sentinelConfiguration(_ sentinel: SentinelProcess) -> RedisConfiguration {
        var configuration = Self.direct(port: sentinel.port)
        configuration.password = sentinelPassword
        return configuration
    }

    private static func direct(port: Int) -> RedisConfiguration {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.connectTimeout = .seconds(1)
        configuration.commandTimeout = .seconds(2)
        return configuration
    }

    private func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        guard try await Eventually.holds(within: timeout, poll: .milliseconds(50), condition) else {
            throw RedisServerError("timed out after \(max(timeout, Eventually.floor)) waiting for \(what)")
        }
    }
}
