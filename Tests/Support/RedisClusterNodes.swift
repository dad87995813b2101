import AirlockRedis
import Foundation

/// A real Redis Cluster on loopback: three primaries and three replicas, each a `redis-server`
/// with a directory of its own, joined by `redis-cli --cluster create` and stopped with this object.
public final class RedisClusterNodes: Sendable {
    /// Every node, primaries first as `redis-cli` assigned them at creation.
    public let nodes: [RedisServer]
    /// The password every node requires (`requirepass`, and `masterauth` for its replication), if any.
    public let password: String?
    /// With TLS: the certificates, and each node's TLS port (in ``nodes`` order). The nodes keep a
    /// plaintext port too, for the harness's own inspection; clients are given the TLS ones.
    public let tls: (certificates: TestCertificates, ports: [Int])?

    private init(nodes: [RedisServer], password: String?, tls: (certificates: TestCertificates, ports: [Int])?) {
        self.nodes = nodes
        self.password = password
        self.tls = tls
    }

    /// `redis+cluster://` with the first three nodes as seeds (and the password, when there is one);
    /// `rediss+cluster://…?tls_ca_file=` to their TLS ports for a TLS cluster.
    public var url: String {
        let userInfo = password.map { ":\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)@" } ?? ""
        guard let tls else { return "redis+cluster://" + userInfo + nodes.prefix(3).map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }
        return "rediss+cluster://" + userInfo + tls.ports.prefix(3).map { "127.0.0.1:\($0)" }.joined(separator: ",")
            + "?tls_ca_file=\(tls.certificates.caFile)"
    }

    /// Starts six nodes and creates the cluster (one replica per primary); returns once every
    /// node says `cluster_state:ok` and knows all six. With `password`, every node requires it;
    /// with `tls`, every node also listens with TLS and the bus and replication use it.
    /// `extraConfig` lines go into every node's configuration (an ACL user, say).
    public static func start(password: String? = nil, tls: Bool = false, extraConfig: [String] = []) async throws -> RedisClusterNodes {
        let certificates = tls ? try await TestCertificates.shared() : nil
        var nodes: [RedisServer] = []
        var tlsPorts: [Int] = []
        for _ in 0..<6 {
            let (node, tlsPort) = try await startNode(password: password, certificates: certificates, extraConfig: extraConfig)
            nodes.append(node)
            if let tlsPort { tlsPorts.append(tlsPort) }
        }
        let cli = try Launcher.findRedisCLI()
        let seeds = certificates == nil ? nodes.map { "127.0.0.1:\($0.port)" } : tlsPorts.map { "127.0.0.1:\($0)" }
        let tlsArguments = certificates.map { ["--tls", "--cacert", $0.caFile] } ?? []
        let arguments = Self.auth(password) + tlsArguments + ["--cluster", "create"] + seeds + ["--cluster-replicas", "1", "--cluster-yes"]
        let (status, output) = try await RedisServer.offPool { try Self.run(cli, arguments) }
        guard status == 0 else { throw RedisServerError("redis-cli --cluster create failed (\(status)): \(output.suffix(2000))") }
        let cluster = RedisClusterNodes(nodes: nodes, password: password, tls: certificates.map { ($0, tlsPorts) })
        for node in nodes {
            try await cluster.awaitState(of: node.port) { info, nodesText in
                info.contains("cluster_state:ok") && nodesText.split(separator: "\n").count == 6
            }
        }
        // Replicas synced: a replica whose first sync has not finished refuses to take over.
        for node in nodes {
            for attempt in 0...600 {
                let role = try await cluster.cli(node.port, "role").split(separator: "\n").map(String.init)
                if role.first == "master" || (role.count >= 4 && role[3] == "connected") { break }
                guard attempt < 600 else { throw RedisServerError("replica \(node.port) did not finish its first sync within 60 s") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return cluster
    }

    private static func startNode(password: String? = nil, certificates: TestCertificates? = nil, extraConfig: [String] = []) async throws -> (RedisServer, Int?) {
        var attempts = 0
        while true {
            attempts += 1
            // An explicit bus port: the default (port + 10000) may be taken or above 65535.
            var config = ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
                          "cluster-port \(try RedisServer.freePort())"] + (password.map { ["masterauth \"\($0)\""] } ?? []) + extraConfig
            let tlsPort = certificates == nil ? nil : try RedisServer.freePort()
            if let certificates, let tlsPort {
                config += [
                    "tls-port \(tlsPort)", "tls-cert-file \(certificates.serverCertificate)", "tls-key-file \(certificates.serverKey)",
                    "tls-ca-cert-file \(certificates.caFile)", "tls-auth-clients no", "tls-cluster yes", "tls-replication yes",
                    // A node dialling another's bus or its primary is a TLS client: it shows a client certificate
                    // (the server one is for server authentication only).
                    "tls-client-cert-file \(certificates.clientCertificate)", "tls-client-key-file \(certificates.clientKey)",
                ]
            }
            do {
                return (try await RedisServer.start(RedisServer.Options(password: password, extraConfig: config)), tlsPort)
            } catch where attempts < 5 {
                continue   // the bus port was taken between probing and binding
            }
        }
    }

    /// Runs `redis-cli -p port ARGS…` and returns its output (throws on a non-zero exit).
    @discardableResult
    public func cli(_ port: Int, _ arguments: String...) async throws -> String {
        let cli = try Launcher.findRedisCLI()
        let (status, output) = try await RedisServer.offPool { [password] in try Self.run(cli, Self.auth(password) + ["-p", String(port)] + arguments) }
        // redis-cli exits 0 on error replies; they start with ERR (or MOVED/ASK) when not a terminal.
        guard status == 0, !["ERR", "MOVED", "ASK", "(error)"].contains(where: output.hasPrefix) else {
            throw RedisServerError("redis-cli -p \(port) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The port of the primary that owns `slot`, from a node's `CLUSTER NODES`.
    public func primary(ofSlot slot: Int, askingPort: Int? = nil) async throws -> (port: Int, id: String) {
        let text = try await cli(askingPort ?? livePort(), "cluster", "nodes")
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 9, fields[2].contains("master"), !fields[2].contains("fail") else { continue }
            for range in fields[8...] where !range.hasPrefix("[") {
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                let (low, high) = bounds.count == 2 ? (bounds[0], bounds[1]) : (bounds.first ?? -1, bounds.first ?? -1)
                if (low...high).contains(slot), let port = Int(fields[1].split(separator: ":")[1].split(separator: "@")[0]) {
                    return (port, fields[0])
                }
            }
        }
        throw RedisServerError("no primary owns slot \(slot): \(text)")
    }

    /// The ports and ids of the live primaries (each node asked its `ROLE`).
    public func primaries() async throws -> [(port: Int, id: String)] {
        var found: [(port: Int, id: String)] = []
        for node in nodes where node.isRunning {
            guard try await cli(node.port, "role").hasPrefix("master") else { continue }
            found.append((node.port, try await cli(node.port, "cluster", "myid")))
        }
        return found
    }

    /// Moves `slot` with its keys from its primary to `target` (the steps `redis-cli --cluster
    /// reshard` takes for one slot), announcing the new owner to every primary.
    public func moveSlot(_ slot: Int, to target: (port: Int, id: String)) async throws {
        let source = try await primary(ofSlot: slot)
        guard source.port != target.port else { return }
        try await beginMigration(slot, from: source, to: target)
        try await finishMigration(slot, from: source, to: target)
    }

    /// First half of a move: the slot is importing on the target and migrating on the source,
    /// and its keys are moved; the source answers `ASK` for keys it no longer has.
    public func beginMigration(_ slot: Int, from source: (port: Int, id: String), to target: (port: Int, id: String)) async throws {
        try await cli(target.port, "cluster", "setslot", String(slot), "importing", source.id)
        try await cli(source.port, "cluster", "setslot", String(slot), "migrating", target.id)
        while true {
            let keys = try await cli(source.port, "cluster", "getkeysinslot", String(slot), "100")
                .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            if keys.isEmpty { break }
            let cli = try Launcher.findRedisCLI()
            let arguments = Self.auth(password) + ["-p", String(source.port), "migrate", "127.0.0.1", String(target.port), "", "0", "5000"]
                + (password.map { ["auth", $0] } ?? []) + ["keys"] + keys
            let (status, output) = try await RedisServer.offPool { try Self.run(cli, arguments) }
            guard status == 0, !output.contains("ERR") else { throw RedisServerError("MIGRATE failed: \(output)") }
        }
    }

    /// Second half: every primary learns the slot's new owner.
    public func finishMigration(_ slot: Int, from source: (port: Int, id: String), to target: (port: Int, id: String)) async throws {
        // The order `redis-cli --cluster reshard` uses: the new owner, the old one, then the rest.
        let others = nodes.filter { $0.isRunning && $0.port != target.port && $0.port != source.port }.map(\.port)
        for port in [target.port, source.port] + others {
            guard try await cli(port, "role").hasPrefix("master") else { continue }
            try await cli(port, "cluster", "setslot", String(slot), "node", target.id)
        }
    }

    /// Starts a seventh node, joins it to the cluster and makes it a replica of `primary`; returns
    /// once its replication link is up (keep the returned server alive as long as it is needed).
    public func addReplica(of primary: (port: Int, id: String)) async throws -> RedisServer {
        let (node, _) = try await Self.startNode(password: password, certificates: tls?.certificates)
        // The bus ports are explicit (not port + 10000), so MEET names the primary's.
        let myself = try await cli(primary.port, "cluster", "nodes").split(separator: "\n").first { $0.contains("myself") } ?? ""
        let bus = myself.split(separator: " ").dropFirst().first?.split(separator: "@").last.flatMap { Int($0.split(separator: ",")[0]) }
        guard let bus else { throw RedisServerError("no bus port in \(myself)") }
        try await cli(node.port, "cluster", "meet", "127.0.0.1", String(primary.port), String(bus))
        try await awaitState(of: node.port) { _, nodes in nodes.contains(primary.id) }
        for _ in 0..<600 {
            if (try? await cli(node.port, "cluster", "replicate", primary.id)) != nil { break }
            try await Task.sleep(for: .milliseconds(100))   // it has not yet learnt the primary is one
        }
        for _ in 0..<600 {
            if try await cli(node.port, "info", "replication").contains("master_link_status:up") { return node }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServerError("the added replica's link did not come up within 60 s")
    }

    /// Waits until `port`'s `CLUSTER INFO` and `CLUSTER NODES` satisfy `condition` (60 s at most).
    public func awaitState(of port: Int, _ condition: @Sendable (String, String) -> Bool) async throws {
        for _ in 0..<600 {
            if let info = try? await cli(port, "cluster", "info"), let nodes = try? await cli(port, "cluster", "nodes"), condition(info, nodes) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServerError("cluster node \(port) did not reach the expected state within 60 s")
    }

    private func livePort() -> Int {
        nodes.first(where: \.isRunning)?.port ?? nodes[0].port
    }

    /// `redis-cli`'s arguments for the nodes' password (none without one).
    private static func auth(_ password: String?) -> [String] {
        password.map { ["-a", $0, "--no-auth-warning"] } ?? []
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // A hang guard, not a time bound: `--cluster create` waits forever for nodes that cannot meet.
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) { if process.isRunning { process.terminate() } }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension Launcher {
    /// `redis-cli` beside the `redis-server` the tests use (it creates clusters and moves slots).
    static func findRedisCLI() throws -> String {
        let server = try findRedisServer()
        let candidate = (server as NSString).deletingLastPathComponent + "/redis-cli"
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw RedisServerError("redis-cli was not found beside \(server); the Redis Cluster tests need it (apt-get install redis-tools)")
        }
        return candidate
    }
}
