/// The customisation points of a scope: when it flushes, what its ancestors capture, and how
/// its dispatch is scheduled.
///
/// These are the hooks the Python original exposes by subclassing `Scope`
/// (`should_flush`, `before_descendant_flushes`, `_dispatch_all`). Every method has a default,
/// so a behaviour overrides only what it changes. Configure one globally with
/// ``Airlock/configure(policy:executor:behavior:settings:)`` or pass it to a single scope.
public protocol ScopeBehavior: Sendable {
    /// The ``ScopeSettings`` keys this behaviour reads; a scope given any other key fails to
    /// build with a ``ConfigurationError``, so a typo never goes unnoticed.
    var supportedSettings: Set<String> { get }

    /// Whether `scope` flushes when its body ends; `error` is what the body threw, or `nil`.
    /// Default: flush exactly when there was no error.
    func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool

    /// Called on each ancestor of a flushing scope, nearest first, with the intents still on
    /// their way out. Return the ones the descendant may flush itself; the rest are captured
    /// into `scope`'s buffer and flushed (or discarded) with it. Returning an intent that was
    /// not offered has no effect: an ancestor can only narrow the list.
    /// Default: capture everything, so the outermost scope decides.
    func beforeDescendantFlushes(_ scope: Scope, exiting: Scope, intents: [Intent]) -> [Intent]

    /// Hands the allowed intents of `scope` to `executor`. Override to schedule the dispatch
    /// elsewhere, for example after a database transaction commits.
    func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws
}

extension ScopeBehavior {
    /// No settings.
    public var supportedSettings: Set<String> { [] }

    /// Flush on success, discard on error.
    public func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool { error == nil }

    /// Capture everything.
    public func beforeDescendantFlushes(_ scope: Scope, exiting: Scope, intents: [Intent]) -> [Intent] { [] }

    /// Dispatch at once.
    public func dispatch(_ intents: [Intent], from scope: Scope, to executor: any Executor) async throws {
        try await executor.dispatch(intents)
    }
}

/// The built-in behaviour: flush on success, discard on error, outermost scope captures all,
/// dispatch at once.
public struct DefaultScopeBehavior: ScopeBehavior {
    /// Creates the behaviour.
    public init() {}
}

/// Named values that configure a scope's behaviour (the original's `scope_kwargs`).
///
/// Settings given to a scope are merged over the configured ones, key by key; the behaviour
/// declares which keys it reads (``ScopeBehavior/supportedSettings``).
public struct ScopeSettings: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    /// The values by name.
    public var values: [String: JSONValue]

    /// Creates settings from a dictionary.
    public init(_ values: [String: JSONValue] = [:]) { self.values = values }

    /// Creates settings from a literal.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.values = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }

    /// The value of `key`, if set.
    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// These settings with `overrides` taking precedence key by key.
    public func merging(_ overrides: ScopeSettings) -> ScopeSettings {
        ScopeSettings(values.merging(overrides.values) { _, new in new })
    }

    /// Throws unless `behavior` understands every key.
    func validate(for behavior: any ScopeBehavior) throws {
        let unknown = Set(values.keys).subtracting(behavior.supportedSettings)
        guard !unknown.isEmpty else { return }
        let understood = behavior.supportedSettings.sorted()
        throw ConfigurationError(
            "Scope behaviour \(type(of: behavior)) does not understand the setting(s) \(unknown.sorted().map { "'\($0)'" }.joined(separator: ", ")) "
                + "(it understands: \(understood.isEmpty ? "none" : understood.joined(separator: ", "))). "
                + "Remove them, or use a behaviour that reads them.")
    }
}
