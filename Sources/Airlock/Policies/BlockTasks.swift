/// Blocks tasks by name: silently dropped at flush, or refused at enqueue with `raiseOnEnqueue`.
///
/// A name matches an intent's name or its last dotted component, so `"send_email"` blocks
/// `"myapp.tasks.send_email"` as the Python original (which names intents by their last component) would.
public struct BlockTasks: Policy {
    /// The blocked names.
    public let names: Set<String>
    /// Refuse at enqueue (``PolicyViolation``) instead of dropping at flush.
    public let raiseOnEnqueue: Bool

    /// Creates the policy.
    public init(_ names: Set<String>, raiseOnEnqueue: Bool = false) {
        self.names = names
        self.raiseOnEnqueue = raiseOnEnqueue
    }

    /// Whether `intent` is one of the blocked tasks.
    public func blocks(_ intent: Intent) -> Bool {
        if names.contains(intent.name) { return true }
        guard let dot = intent.name.lastIndex(of: ".") else { return false }
        return names.contains(String(intent.name[intent.name.index(after: dot)...]))
    }

    /// Refuses a blocked intent when `raiseOnEnqueue` is set.
    public func onEnqueue(_ intent: Intent) throws {
        if raiseOnEnqueue && blocks(intent) {
            throw PolicyViolation("Task '\(intent.name)' is blocked in this scope by \(self).")
        }
    }

    /// Drops blocked intents.
    public func allows(_ intent: Intent) throws -> Bool { !blocks(intent) }

    /// `BlockTasks(["a", "b"], raiseOnEnqueue: false)`.
    public var description: String {
        "BlockTasks([\(names.sorted().map { "\"\($0)\"" }.joined(separator: ", "))], raiseOnEnqueue: \(raiseOnEnqueue))"
    }
}

extension Policy where Self == BlockTasks {
    /// Blocks the named tasks.
    public static func blockTasks(_ names: Set<String>, raiseOnEnqueue: Bool = false) -> BlockTasks {
        BlockTasks(names, raiseOnEnqueue: raiseOnEnqueue)
    }
}
