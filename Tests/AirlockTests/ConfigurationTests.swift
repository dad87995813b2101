import Testing

@testable import Airlock

/// Resets the global configuration before and after each test it applies to.
struct CleanConfiguration: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        Airlock.resetConfiguration()
        defer { Airlock.resetConfiguration() }
        try await function()
    }
}

extension Trait where Self == CleanConfiguration {
    static var cleanConfiguration: CleanConfiguration { CleanConfiguration() }
}

extension AirlockCore {
    /// Everything here touches the process-global configuration: serialized, and reset around each test.
    @Suite("Configuration", .serialized, .cleanConfiguration)
    struct ConfigurationTests {
        /// A behaviour with default semantics that reads two settings.
        static let settingsBehavior = TestBehavior(settingsKeys: ["timeout", "label"])

        @Test func theBuiltInDefaults() async throws {
            let configuration = Airlock.configuration
            #expect(configuration.policy is AllowAll)
            #expect(configuration.executor is InProcessExecutor)
            #expect(configuration.behavior is DefaultScopeBehavior)
            #expect(configuration.settings == [:])

            let scope = try Scope()
            #expect(scope.policy is AllowAll)
            #expect(scope.executor is InProcessExecutor)
            #expect(scope.behavior is DefaultScopeBehavior)
            #expect(scope.settings == [:])

            // The default executor runs tasks in-process.
            let token = freshToken()
            try await Airlock.scope { _ = try Airlock.enqueue(Probe(token: token, label: "ran")) }
            #expect(ProbeRegistry.events(token) == ["ran"])
        }

        @Test func configuredDefaultsReachNewScopes() async throws {
            let executor = CountingExecutor()
            try Airlock.configure(policy: BlockTasks(["b"]), executor: executor)
            try await Airlock.scope {
                try enqueue("a")
                try enqueue("b")
            }
            #expect(executor.names == ["a"])
        }

        @Test func explicitArgumentsOverrideTheConfiguration() async throws {
            let configured = CountingExecutor()
            let explicit = CountingExecutor()
            try Airlock.configure(policy: DropAll(), executor: configured, behavior: TestBehavior.flushNever)
            let scope = try Scope(policy: AllowAll(), executor: explicit, behavior: DefaultScopeBehavior())
            try await Airlock.scope(scope) { try enqueue("a") }
            #expect(scope.isFlushed)
            #expect(explicit.names == ["a"])
            #expect(configured.calls == 0)
        }

        @Test func anOmittedArgumentLeavesThatSettingUnchanged() throws {
            let executor = CountingExecutor()
            try Airlock.configure(policy: DropAll())
            try Airlock.configure(executor: executor)
            try Airlock.configure(settings: nil)
            try Airlock.configure()
            let configuration = Airlock.configuration
            #expect(configuration.policy is DropAll)
            #expect(configuration.executor as? CountingExecutor === executor)
            #expect(configuration.behavior is DefaultScopeBehavior)
        }

        @Test func theConfigurationIsACopy() throws {
            var copy = Airlock.configuration
            copy.policy = DropAll()
            copy.settings["timeout"] = 5
            #expect(Airlock.configuration.policy is AllowAll)
            #expect(Airlock.configuration.settings == [:])
        }

        @Test func resetRestoresTheBuiltInDefaults() throws {
            try Airlock.configure(
                policy: DropAll(), executor: CountingExecutor(), behavior: Self.settingsBehavior, settings: ["timeout": 5])
            Airlock.resetConfiguration()
            let configuration = Airlock.configuration
            #expect(configuration.policy is AllowAll)
            #expect(configuration.executor is InProcessExecutor)
            #expect(configuration.behavior is DefaultScopeBehavior)
            #expect(configuration.settings == [:])
        }

        @Test func configuredSettingsMergeKeyByKey() throws {
            try Airlock.configure(behavior: Self.settingsBehavior, settings: ["timeout": 5, "label": "a"])
            try Airlock.configure(settings: ["label": "b"])
            #expect(Airlock.configuration.settings == ["timeout": 5, "label": "b"])
        }

        @Test func scopeSettingsAreConfiguredSettingsWithExplicitOnesOnTop() throws {
            try Airlock.configure(behavior: Self.settingsBehavior, settings: ["timeout": 5, "label": "configured"])
            let scope = try Scope(settings: ["label": "explicit"])
            #expect(scope.settings == ["timeout": 5, "label": "explicit"])
            #expect(scope.settings["timeout"] == 5)
            let plain = try Scope()
            #expect(plain.settings == ["timeout": 5, "label": "configured"])
        }

        @Test func configureRejectsASettingTheBehaviourDoesNotUnderstand() throws {
            try Airlock.configure(policy: DropAll())
            let error = #expect(throws: ConfigurationError.self) {
                try Airlock.configure(policy: BlockTasks(["x"]), settings: ["timeuot": 5])
            }
            #expect(error?.description.contains("'timeuot'") == true)
            #expect(error?.description.contains("understands: none") == true)
            // Nothing of the rejected call was applied.
            #expect(Airlock.configuration.policy is DropAll)
            #expect(Airlock.configuration.settings == [:])
        }

        @Test func configureRejectsABehaviourThatDoesNotUnderstandTheConfiguredSettings() throws {
            try Airlock.configure(behavior: Self.settingsBehavior, settings: ["timeout": 5])
            let error = #expect(throws: ConfigurationError.self) { try Airlock.configure(behavior: DefaultScopeBehavior()) }
            #expect(error?.description.contains("'timeout'") == true)
            #expect(Airlock.configuration.behavior is TestBehavior)
        }

        @Test func creatingAScopeWithAnUnknownSettingIsAConfigurationError() async throws {
            let error = #expect(throws: ConfigurationError.self) {
                try Scope(policy: AllowAll(), executor: CountingExecutor(), behavior: Self.settingsBehavior, settings: ["colour": "red"])
            }
            #expect(error?.description.contains("'colour'") == true)
            #expect(error?.description.contains("label, timeout") == true)

            let ran = EventLog()
            await #expect(throws: ConfigurationError.self) {
                try await Airlock.scope(policy: AllowAll(), executor: CountingExecutor(), settings: ["colour": "red"]) {
                    ran.record("body")
                }
            }
            #expect(ran.events.isEmpty)
        }

        @Test func configuredSettingsAreCheckedAgainstAnExplicitBehaviourToo() throws {
            // Merging works the same everywhere: the configured settings reach a scope given its own behaviour.
            try Airlock.configure(behavior: Self.settingsBehavior, settings: ["timeout": 5])
            #expect(throws: ConfigurationError.self) { try Scope(behavior: DefaultScopeBehavior()) }
            let understood = try Scope(behavior: TestBehavior(settingsKeys: ["timeout"]))
            #expect(understood.settings == ["timeout": 5])
        }

        @Test func theConfiguredBehaviourIsUsed() async throws {
            let executor = CountingExecutor()
            try Airlock.configure(executor: executor, behavior: TestBehavior.flushAlways)
            await #expect(throws: Boom.self) {
                try await Airlock.scope {
                    try enqueue("a")
                    throw Boom()
                }
            }
            #expect(executor.names == ["a"])
        }

        @Test func aScopeReadsTheConfigurationWhenCreated() async throws {
            let first = CountingExecutor()
            let second = CountingExecutor()
            try Airlock.configure(executor: first)
            let scope = try Scope()
            try Airlock.configure(executor: second)
            try await Airlock.scope(scope) { try enqueue("a") }
            #expect(first.names == ["a"])
            #expect(second.calls == 0)
        }

        @Test func scopedReadsTheConfigurationAtCallTime() async throws {
            let work = Airlock.scoped { () async throws -> Void in try enqueue("a") }
            let early = CountingExecutor()
            let late = CountingExecutor()
            try Airlock.configure(executor: early)
            try await work()
            try Airlock.configure(executor: late)
            try await work()
            #expect(early.names == ["a"])
            #expect(late.names == ["a"])
        }

        @Test func scopeSettingsValuesMerge() {
            let base: ScopeSettings = ["a": 1, "b": 2]
            let merged = base.merging(["b": 3, "c": 4])
            #expect(merged == ["a": 1, "b": 3, "c": 4])
            #expect(base == ["a": 1, "b": 2])
            #expect(ScopeSettings(["x": true])["x"] == true)
        }
    }
}
