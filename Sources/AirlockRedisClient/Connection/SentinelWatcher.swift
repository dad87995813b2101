import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization

/// Listens to the sentinels' `+switch-master` announcements for one master, on a thread of its
/// own, so connections to a master that was failed over *without dying* are dropped at once.
///
/// A lost connection or a `READONLY` reply already sends a client to the new master, but after a
/// graceful failover (`SENTINEL FAILOVER`, or a partitioned master) the old master keeps
/// accepting writes until the sentinels get round to demoting it — seconds in which every write
/// would be lost. Each connection owner remembers the ``epoch`` it connected in and reconnects,
/// before its next request, when the epoch moved; its next connect goes first to the master the
/// announcement named (``announcement``), then asks the sentinels as usual.
///
/// One watcher per sentinel set, master name and TLS setting in the process, shared by every
/// client using them (``acquire(_:logger:)``/``release()``), and stopped when the last one closes.
final class SentinelWatcher: Sendable {
    /// Where the sentinels said the master moved, and the epoch that announcement started.
    struct Announcement: Sendable {
        let host: String
        let port: Int
        let epoch: Int
    }

    private let key: Key
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let epochCounter = Atomic<Int>(0)
    private let latest = Mutex<Announcement?>(nil)
    private let stopped = Atomic<Bool>(false)

    /// Bumped by every `+switch-master` for this master.
    var epoch: Int { epochCounter.load(ordering: .acquiring) }

    /// The newest announcement, if any arrived.
    var announcement: Announcement? { latest.withLock { $0 } }

    private init(key: Key, configuration: RedisConfiguration, logger: Logger) {
        self.key = key
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Sharing

    private struct Key: Hashable, Sendable {
        let sentinel: RedisConfiguration.Sentinel
        let tls: RedisConfiguration.TLS?
    }

    private static let watchers = Mutex<[Key: (watcher: SentinelWatcher, users: Int)]>([:])

    /// The watcher for `configuration`'s sentinels, started on first use.
    static func acquire(_ configuration: RedisConfiguration, logger: Logger) -> SentinelWatcher? {
        guard let sentinel = configuration.sentinel else { return nil }
        let key = Key(sentinel: sentinel, tls: configuration.tls)
        let (watcher, started) = watchers.withLock { table -> (SentinelWatcher, Bool) in
            if let entry = table[key] {
                table[key] = (entry.watcher, entry.users + 1)
                return (entry.watcher, false)
            }
            let watcher = SentinelWatcher(key: key, configuration: configuration, logger: logger)
            table[key] = (watcher, 1)
            return (watcher, true)
        }
        if started { watcher.start() }
        return watcher
    }

    /// One user fewer; the last one stops the thread (within a second).
    func release() {
        let last = Self.watchers.withLock { table -> Bool in
            guard let entry = table[key], entry.watcher === self else { return false }
            if entry.users > 1 {
                table[key] = (self, entry.users - 1)
                return false
            }
            table[key] = nil
            return true
        }
        if last { stopped.store(true, ordering: .releasing) }
    }

    // MARK: The thread

    private func start() {
        OwnedThread.start(name: "airlock-sentinel-watch") { [self] in run() }
    }

    private func run() {
        let dialer = Dialer(configuration: configuration, watcher: nil)
        var failures = 0
        var next = 0
        while !stopped.load(ordering: .acquiring) {
            let nodes = key.sentinel.nodes
            let node = nodes[next % nodes.count]
            do {
                try listen(to: node, dialer)
            } catch {
                failures += 1
                next += 1
                if failures == 1 || failures % 100 == 0 {
                    logger.debug("Not subscribed to +switch-master: \(SafeText.escape(error.description))", metadata: ["sentinel": "\(node)"])
                }
                pause(configuration.reconnectBackoff.delay(attempt: min(failures, 10)))
                continue
            }
            failures = 0
        }
    }

    /// Subscribes on one sentinel and handles its announcements until it fails or the watcher stops.
    private func listen(to node: RedisConfiguration.Sentinel.Node, _ dialer: Dialer) throws(RedisError) {
        let connection = try dialer.open(host: node.host, port: node.port)
        let readTimeout = configuration.commandTimeout ?? .seconds(5)
        try connection.setReadTimeout(readTimeout)
        var commands: [RedisCommand] = []
        if let password = key.sentinel.password {
            commands.append(key.sentinel.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        commands.append(RedisCommand("SUBSCRIBE", "+switch-master"))
        let replies = try connection.pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw .server(message) }
        logger.debug("Subscribed to +switch-master", metadata: ["sentinel": "\(node)"])
        // A silent sentinel may be a dead one: a PING after a quiet spell must be answered.
        var quietSince = ContinuousClock.now
        var pingSent: ContinuousClock.Instant?
        while !stopped.load(ordering: .acquiring) {
            guard let reply = try connection.nextPushedReply(waitingUpTo: .seconds(1)) else {
                if let pingSent, pingSent.duration(to: .now) > readTimeout {
                    throw .commandTimedOut(connection.endpoint, after: readTimeout)
                }
                if pingSent == nil, quietSince.duration(to: .now) > .seconds(5) {
                    try connection.write([RedisCommand("PING")])
                    pingSent = .now
                }
                continue
            }
            quietSince = .now
            pingSent = nil
            guard let parts = reply.array, parts.count == 3, parts[0].string == "message", let text = parts[2].string else { continue }
            announce(text)
        }
    }

    /// `<master> <old-ip> <old-port> <new-ip> <new-port>`.
    private func announce(_ text: String) {
        let fields = text.split(separator: " ")
        guard fields.count == 5, fields[0] == key.sentinel.masterName, let port = Int(fields[4]) else { return }
        let epoch = epochCounter.load(ordering: .relaxed) + 1
        latest.withLock { $0 = Announcement(host: String(fields[3]), port: port, epoch: epoch) }
        epochCounter.store(epoch, ordering: .releasing)
        logger.info("The sentinels switched master '\(SafeText.escape(key.sentinel.masterName))' to \(fields[3]):\(port); reconnecting before the next command",
                    metadata: ["from": "\(fields[1]):\(fields[2])"])
    }

    /// Sleeps up to `duration`, waking early when the watcher stops.
    private func pause(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !stopped.load(ordering: .acquiring) {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return }
            ConnectionOwner.sleep(min(.milliseconds(100), remaining))
        }
    }
}
