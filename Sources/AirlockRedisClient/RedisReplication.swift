/// How many replicas must hold a write before it counts as acknowledged, and how long to wait for
/// them: Redis's `WAIT replicas timeout`, sent on the same connection right after the write.
///
/// `WAIT` is not consensus. It says that `replicas` replicas had *received* the write when it
/// returned — not that they wrote it to disk, and not that a failover will promote one of them.
/// It narrows the window in which a failover loses an acknowledged write; it does not close it
/// (docs/OPERATIONS.md, "Production Redis").
///
/// ```swift
/// let executor = RedisExecutor(client: client, replication: RedisReplication(replicas: 1, timeout: .milliseconds(500)))
/// ```
public struct RedisReplication: Sendable, Hashable, CustomStringConvertible {
    /// Replicas that must have received the write; 0 waits for none (no `WAIT` is sent).
    public var replicas: Int
    /// How long to wait for them; `Duration.zero` waits forever (WAIT's own convention).
    public var timeout: Duration

    /// Waits for `replicas` replicas, at most `timeout`.
    public init(replicas: Int, timeout: Duration = .milliseconds(500)) {
        self.replicas = max(0, replicas)
        self.timeout = timeout
    }

    /// No replicated acknowledgement: a write counts once the primary has it.
    public static let none = RedisReplication(replicas: 0, timeout: .zero)

    /// Whether a `WAIT` is sent at all.
    public var isRequired: Bool { replicas > 0 }

    /// `WAIT replicas timeout-ms`.
    public var command: RedisCommand { .wait(replicas: replicas, timeout: timeout) }

    /// `1 replica within 0.5 s`, for messages.
    public var description: String {
        let noun = replicas == 1 ? "replica" : "replicas"
        return timeout <= .zero ? "\(replicas) \(noun), no time limit" : "\(replicas) \(noun) within \(RedisError.seconds(timeout))"
    }
}
