import Airlock
import Logging

/// A Redis Cluster behind one client's thread: the slot map learnt with `CLUSTER SLOTS`, a
/// ``ConnectionOwner`` per node (opened on first use, each with its own handshake, reconnects and
/// script reloads), and the redirects a cluster answers with.
///
/// Each command goes to the node owning the slot of its first key (a script: of its first key;
/// a keyless command such as `WAIT` or `MULTI`: to the node of its neighbour in the pipeline, so
/// `WAIT` covers the writes before it). A pipeline spanning nodes becomes one round trip per node,
/// replies back in order. Redirects are followed because a redirected command did not run:
/// `MOVED` updates the map and re-sends, `ASK` re-sends once after `ASKING`, `TRYAGAIN` and
/// `CLUSTERDOWN` re-send after a short backoff. A transport failure is thrown as on a single node
/// (the command may have run) and marks the map stale, so the next call asks the cluster again:
/// that is how a failover is followed.
///
/// Not Sendable on purpose: it lives on its client's owned thread, like ConnectionOwner.
final class ClusterRouter: CommandRunner {
    private let configuration: RedisConfiguration
    private let name: String?
    private let logger: Logger
    /// Connections by node address (`host:port`).
    private var nodes: [String: ConnectionOwner] = [:]
    /// The owning node's address per slot; nil where the map has no owner.
    private var owners: [String?] = Array(repeating: nil, count: RedisHashSlot.count)
    private var mapIsStale = true
    /// Nodes whose last call failed in transport: asked for the map last, so a dead primary does
    /// not delay every refresh by its connect timeout while the cluster replaces it.
    private var failing: Set<String> = []
    private var lastRefresh: ContinuousClock.Instant?
    /// How many times one command is redirected before its last error reply is returned. From the
    /// third on, each waits a little longer (up to half a second): nodes told of a slot's new owner
    /// one after the other can send a command back and forth for a few milliseconds.
    private static let maxRedirects = 16

    init(configuration: RedisConfiguration, name: String?, logger: Logger) {
        self.configuration = configuration
        self.name = name
        self.logger = logger
    }

    func connect() throws(RedisError) {
        try refreshIfStale()
    }

    func execute(_ command: RedisCommand, timeout: Duration?) throws(RedisError) -> RedisReply {
        try executePipeline([command], timeout: timeout)[0]
    }

    func executePipeline(_ commands: [RedisCommand], timeout: Duration?) throws(RedisError) -> [RedisReply] {
        try refreshIfStale()
        let targets = route(commands.map(Self.key(of:)), opensTransaction: commands.map { $0.name == "MULTI" })
        var replies = [RedisReply](repeating: .null, count: commands.count)
        for (address, indices) in Self.grouped(targets) {
            let got = try onNode(address) { node throws(RedisError) in
                try node.executePipeline(indices.map { commands[$0] }, timeout: timeout)
            }
            for (index, reply) in zip(indices, got) { replies[index] = reply }
        }
        // Inside MULTI a redirect aborts the transaction: re-sending single commands would not
        // re-create it, so the caller gets the replies (the map is updated for its next try).
        let transactional = commands.contains { $0.name == "MULTI" }
        for index in replies.indices where Self.redirect(in: replies[index]) != nil {
            if transactional {
                if case .moved(let slot, let address)? = Self.redirect(in: replies[index]) { owners[slot] = address; mapIsStale = true }
                continue
            }
            replies[index] = try followRedirects(replies[index]) { address, asking throws(RedisError) in
                try self.onNode(address) { node throws(RedisError) in
                    let sent = try node.executePipeline((asking ? [Self.asking] : []) + [commands[index]], timeout: timeout)
                    return sent[sent.count - 1]
                }
            } rerouted: { self.route([Self.key(of: commands[index])])[0] }
        }
        return replies
    }

    func evaluate(_ calls: [RedisScript.Call], then wait: RedisCommand?) throws(RedisError) -> (replies: [RedisReply], wait: RedisReply?) {
        try refreshIfStale()
        let targets = route(calls.map { $0.keys.first })
        var replies = [RedisReply](repeating: .null, count: calls.count)
        var waited: RedisReply?
        for (address, indices) in Self.grouped(targets) {
            let got = try onNode(address) { node throws(RedisError) in
                try node.evaluate(indices.map { calls[$0] }, then: wait)
            }
            for (index, reply) in zip(indices, got.replies) { replies[index] = reply }
            if let reply = got.wait { waited = ConnectionOwner.weaker(waited, reply) }
        }
        var redirected = false
        for index in replies.indices where Self.redirect(in: replies[index]) != nil {
            redirected = true
            replies[index] = try followRedirects(replies[index]) { address, asking throws(RedisError) in
                try self.onNode(address) { node throws(RedisError) in
                    guard asking else { return try node.evaluate([calls[index]], then: nil).replies[0] }
                    // ASKING holds for the next command only, so a reload goes before it.
                    var sent = try node.executePipeline([Self.asking, calls[index].evalsha], timeout: nil)
                    if sent[1].errorMessage?.hasPrefix("NOSCRIPT") == true {
                        sent = try node.executePipeline([calls[index].script.load, Self.asking, calls[index].evalsha], timeout: nil)
                    }
                    return sent[sent.count - 1]
                }
            } rerouted: { self.route([calls[index].keys.first])[0] }
        }
        // A redirected script's writes went to another node than the `WAIT` that followed the
        // first attempt: that acknowledgement cannot vouch for them.
        if wait != nil, redirected { waited = .integer(0) }
        return (replies, waited)
    }

    func close() {
        for node in nodes.values { node.close() }
        nodes.removeAll()
    }

    // MARK: Redirects

    private enum Redirect {
        case moved(slot: Int, address: String)
        case ask(address: String)
        case retryLater
    }

    private static let asking = RedisCommand("ASKING")

    private static func redirect(in reply: RedisReply) -> Redirect? {
        guard let message = reply.errorMessage else { return nil }
        if message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
            let parts = message.split(separator: " ")
            guard parts.count == 3, let slot = Int(parts[1]), (0..<RedisHashSlot.count).contains(slot) else { return nil }
            return message.hasPrefix("MOVED") ? .moved(slot: slot, address: String(parts[2])) : .ask(address: String(parts[2]))
        }
        if message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN") { return .retryLater }
        return nil
    }

    /// Re-sends one command while its reply is a redirect, at most ``maxRedirects`` times.
    private func followRedirects(
        _ first: RedisReply,
        send: (_ address: String, _ asking: Bool) throws(RedisError) -> RedisReply,
        rerouted: () -> String
    ) throws(RedisError) -> RedisReply {
        var reply = first
        for attempt in 0..<Self.maxRedirects {
            guard let redirect = Self.redirect(in: reply) else { return reply }
            if attempt >= 2 { ConnectionOwner.sleep(.milliseconds(min(500, 5 << min(attempt - 2, 7)))) }
            switch redirect {
            case .moved(let slot, let address):
                owners[slot] = address
                mapIsStale = true   // a slot moved: others probably did too; refresh on the next call
                reply = try send(address, false)
            case .ask(let address):
                reply = try send(address, true)
            case .retryLater:
                // A slot mid-migration with keys on both sides, or a cluster electing a new
                // primary: wait, ask the cluster again, re-send.
                if attempt < 2 { ConnectionOwner.sleep(.milliseconds(25)) }
                mapIsStale = true
                try? refreshIfStale(force: true)
                reply = try send(rerouted(), false)
            }
        }
        return reply
    }

    // MARK: Routing

    /// The node of each key's slot; a keyless command goes where its neighbour goes: `MULTI` with
    /// the command after it (the transaction it opens), any other (`EXEC`, `WAIT`) with the one
    /// before it.
    private func route(_ keys: [[UInt8]?], opensTransaction: [Bool] = []) -> [String] {
        let fallback = owners[0] ?? Self.address(configuration.cluster?.seeds.first?.host ?? configuration.host,
                                                 configuration.cluster?.seeds.first?.port ?? configuration.port)
        var targets: [String?] = keys.map { key in key.flatMap { owners[RedisHashSlot.of($0)] ?? fallback } }
        var previous: String?
        for index in targets.indices {
            if let target = targets[index] { previous = target; continue }
            let next = targets[(index + 1)...].lazy.compactMap { $0 }.first
            let opens = index < opensTransaction.count && opensTransaction[index]
            targets[index] = (opens ? next ?? previous : previous ?? next) ?? fallback
        }
        return targets.map { $0 ?? fallback }
    }

    /// Indices per target, in first-seen order (so a single-node pipeline stays one round trip).
    private static func grouped(_ targets: [String]) -> [(String, [Int])] {
        var order: [String] = []
        var groups: [String: [Int]] = [:]
        for (index, target) in targets.enumerated() {
            if groups[target] == nil { order.append(target) }
            groups[target, default: []].append(index)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// The key a command's slot is computed from, nil for commands without keys.
    static func key(of command: RedisCommand) -> [UInt8]? {
        let arguments = command.arguments
        guard arguments.count >= 2 else { return nil }
        switch command.name {
        case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO":
            guard arguments.count >= 4, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count > 0 else { return nil }
            return arguments[3]
        case "OBJECT", "MEMORY":
            return arguments.count >= 3 ? arguments[2] : nil
        case "PING", "TIME", "INFO", "CLUSTER", "SCRIPT", "CLIENT", "ROLE", "DBSIZE", "WAIT", "WAITAOF", "AUTH",
             "SELECT", "MULTI", "EXEC", "DISCARD", "CONFIG", "DEBUG", "FLUSHALL", "FLUSHDB", "ACL", "COMMAND",
             "HELLO", "ECHO", "LASTSAVE", "SLOWLOG", "LATENCY", "FUNCTION", "READONLY", "READWRITE", "ASKING",
             "KEYS", "SCAN", "RANDOMKEY", "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "SAVE", "BGSAVE":
            return nil
        default:
            return arguments[1]
        }
    }

    // MARK: Nodes and the slot map

    /// `host:port` (`[v6]:port`), the form `MOVED` and `ASK` name nodes in.
    private static func address(_ host: String, _ port: Int) -> String {
        RedisConfiguration.Sentinel.Node(host: host, port: port).description
    }

    /// Runs `work` on a node's connection; a transport failure marks the map stale (the node may
    /// have failed over) and is rethrown.
    private func onNode<T>(_ address: String, _ work: (ConnectionOwner) throws(RedisError) -> T) throws(RedisError) -> T {
        do {
            let result = try work(node(address))
            failing.remove(address)
            return result
        } catch {
            if error.kind != .server {
                mapIsStale = true
                failing.insert(address)
            }
            throw error
        }
    }

    private func node(_ address: String) -> ConnectionOwner {
        if let existing = nodes[address] { return existing }
        var settings = configuration
        settings.cluster = nil
        settings.sentinel = nil
        let (host, port) = Self.split(address)
        settings.host = host
        settings.port = port
        var nodeLogger = logger
        nodeLogger[metadataKey: "redis.node"] = "\(address)"
        let owner = ConnectionOwner(configuration: settings, name: name, logger: nodeLogger)
        nodes[address] = owner
        return owner
    }

    private static func split(_ address: String) -> (String, Int) {
        let (host, port) = Dialer.hostAndPort(address)
        return host.map { ($0, port) } ?? (address, 6379)
    }

    /// Asks the cluster for its slot map when it is stale (at most every 100 ms unless forced):
    /// nodes already known first, then the seeds. Throws the last failure when none answers.
    private func refreshIfStale(force: Bool = false) throws(RedisError) {
        guard mapIsStale else { return }
        if !force, let lastRefresh, lastRefresh.duration(to: .now) < .milliseconds(100), owners.contains(where: { $0 != nil }) { return }
        lastRefresh = .now
        let seeds = (configuration.cluster?.seeds ?? []).map { Self.address($0.host, $0.port) }
        var candidates: [String] = []
        for address in Array(Set(owners.compactMap { $0 })).sorted() + seeds where !candidates.contains(address) { candidates.append(address) }
        candidates = candidates.filter { !failing.contains($0) } + candidates.filter { failing.contains($0) }
        var lastError = RedisError.notConnected
        for address in candidates {
            do {
                let reply = try node(address).execute(RedisCommand("CLUSTER", "SLOTS"))
                if let message = reply.errorMessage {
                    // Not a cluster node (cluster support disabled): a configuration error, said plainly.
                    lastError = .server(message.hasPrefix("ERR This instance has cluster support disabled")
                        ? "\(address) is not a Redis Cluster node (cluster-enabled no): use redis:// for a single server"
                        : message)
                    continue
                }
                try apply(reply, askedHost: Self.split(address).0)
                mapIsStale = false
                failing.remove(address)
                return
            } catch {
                if error.kind != .server { failing.insert(address) }
                lastError = error
            }
        }
        // With a map already known, keep routing by it (calls to healthy nodes still work; the
        // next call asks again); only a client that never had one cannot go on.
        guard owners.contains(where: { $0 != nil }) else { throw lastError }
        logger.debug("Could not refresh the Redis Cluster slot map; routing by the last one", metadata: ["error": "\(SafeText.escape(lastError.description))"])
    }

    /// `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replicas…], …]`. An empty host means
    /// the host of the node asked.
    private func apply(_ reply: RedisReply, askedHost: String) throws(RedisError) {
        guard let ranges = reply.array else { throw .unexpectedReply(reply, expected: "the CLUSTER SLOTS array") }
        var fresh = [String?](repeating: nil, count: RedisHashSlot.count)
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                  (0...end).contains(start), end < RedisHashSlot.count,
                  let primary = fields[2].array, primary.count >= 2, let port = primary[1].int else {
                throw .unexpectedReply(range, expected: "a CLUSTER SLOTS range [start, end, [host, port, …]]")
            }
            var host = primary[0].string ?? ""
            if host.isEmpty || host == "?" { host = askedHost }
            let address = Self.address(host, port)
            for slot in start...end { fresh[slot] = address }
        }
        if fresh != owners, owners.contains(where: { $0 != nil }) {
            logger.info("Redis Cluster slot map changed", metadata: ["nodes": "\(Set(fresh.compactMap { $0 }).sorted().joined(separator: ","))"])
        }
        owners = fresh
    }
}
