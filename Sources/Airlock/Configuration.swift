import Synchronization

/// The defaults every new scope starts from.
///
/// Read it with ``Airlock/configuration``, change it with
/// ``Airlock/configure(policy:executor:behavior:settings:)``, restore the built-in defaults with
/// ``Airlock/resetConfiguration()``. Scopes read it when they are created, so a `scoped`
/// function sees the configuration in force at call time.
public struct AirlockConfiguration: Sendable {
    /// The policy of scopes that are not given one. Built-in default: ``AllowAll``.
    public var policy: any Policy
    /// The executor of scopes that are not given one. Built-in default: ``InProcessExecutor``.
    public var executor: any Executor
    /// The behaviour of scopes that are not given one. Built-in default: ``DefaultScopeBehavior``.
    public var behavior: any ScopeBehavior
    /// Settings merged under every scope's own settings. Built-in default: none.
    public var settings: ScopeSettings

    /// The built-in defaults.
    public static var builtIn: AirlockConfiguration {
        AirlockConfiguration(policy: AllowAll(), executor: InProcessExecutor(), behavior: DefaultScopeBehavior(), settings: [:])
    }

    /// Creates a configuration.
    public init(policy: any Policy, executor: any Executor, behavior: any ScopeBehavior, settings: ScopeSettings) {
        self.policy = policy
        self.executor = executor
        self.behavior = behavior
        self.settings = settings
    }
}

extension Airlock {
    static let configurationStorage = Mutex(AirlockConfiguration.builtIn)

    /// A copy of the configuration in force.
    public static var configuration: AirlockConfiguration {
        configurationStorage.withLock { $0 }
    }

    /// Changes the defaults of scopes created from now on. An omitted argument leaves that
    /// setting as it is; `settings` are merged over the configured ones key by key.
    /// - Throws: ``ConfigurationError`` when the resulting behaviour does not understand a setting.
    public static func configure(
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        behavior: (any ScopeBehavior)? = nil,
        settings: ScopeSettings? = nil
    ) throws {
        try configurationStorage.withLock { current in
            var next = current
            if let policy { next.policy = policy }
            if let executor { next.executor = executor }
            if let behavior { next.behavior = behavior }
            if let settings { next.settings = next.settings.merging(settings) }
            try next.settings.validate(for: next.behavior)
            current = next
        }
    }

    /// Restores the built-in defaults: ``AllowAll``, ``InProcessExecutor``, ``DefaultScopeBehavior``, no settings.
    public static func resetConfiguration() {
        configurationStorage.withLock { $0 = .builtIn }
    }
}
