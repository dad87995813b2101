import Foundation
import Logging
import Synchronization
import Testing

@testable import Airlock

/// Root of the conformance suite.
///
/// Airlock's configuration is process-global, and a configured behaviour or settings reach every
/// scope created while they are in force (even one given an explicit policy and executor). So the
/// whole suite is serialized: the configuration tests can never race with another test. Each test
/// still passes explicit `policy:`/`executor:`/`behavior:` wherever it can, so none depends on
/// what another test left configured.
@Suite(.serialized) struct AirlockCore {}

// MARK: - Errors

/// An error a test throws on purpose.
struct Boom: Error, Equatable, CustomStringConvertible {
    var tag: String
    init(_ tag: String = "boom") { self.tag = tag }
    var description: String { "Boom(\(tag))" }
}

// MARK: - Random JSON

extension JSONValue {
    /// A random tree of nested arrays and objects (at most five levels) of random scalars: full-range
    /// integers, doubles, short ASCII strings (control characters included), booleans and nulls.
    static func randomTree(depth: Int = 0, using generator: inout some RandomNumberGenerator) -> JSONValue {
        switch Int.random(in: depth > 3 ? 0...4 : 0...6, using: &generator) {
        case 0: return .int(Int.random(in: .min ... .max, using: &generator))
        case 1: return .double(Double.random(in: -1e6...1e6, using: &generator))
        case 2: return .string(String((0..<Int.random(in: 0...12, using: &generator)).map { _ in
            Character(Unicode.Scalar(UInt8.random(in: 1...127, using: &generator))) }))
        case 3: return .bool(Bool.random(using: &generator))
        case 4: return .null
        case 5: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in randomTree(depth: depth + 1, using: &generator) })
        default:
            var object: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...4, using: &generator) { object["k\(index)"] = randomTree(depth: depth + 1, using: &generator) }
            return .object(object)
        }
    }
}

// MARK: - Shared event log

/// A thread-safe, append-only list of events, for asserting what ran and in which order.
final class EventLog: Sendable {
    private let storage = Mutex<[String]>([])
    init() {}
    func record(_ event: String) { storage.withLock { $0.append(event) } }
    var events: [String] { storage.withLock { $0 } }
    var count: Int { storage.withLock { $0.count } }
}

/// Lets typed tasks (which must be `Codable`, so cannot hold a reference) report that they ran:
/// each test uses its own token.
enum ProbeRegistry {
    private static let logs = Mutex<[String: [String]]>([:])
    static func record(_ token: String, _ event: String) { logs.withLock { $0[token, default: []].append(event) } }
    static func events(_ token: String) -> [String] { logs.withLock { $0[token] ?? [] } }
}

func freshToken() -> String { UUID().uuidString }

// MARK: - Typed tasks

/// A plain typed task with a dotted name.
struct SendEmail: AirlockTask {
    static let name = "myapp.tasks.send_email"
    let userID: Int
    let subject: String
    func run(_ context: TaskContext) async throws {}
}

/// A typed task with positional names and default options.
struct ResizeImage: AirlockTask {
    static let name = "images.resize"
    static let argumentNames = ["path", "width", "height"]
    static let defaultOptions = DispatchOptions(
        queue: "images", maxRetries: 3, priority: 5, extra: ["shared": "default", "fromDefaults": true])
    let path: String
    let width: Int
    var height: Int? = nil
    func run(_ context: TaskContext) async throws {}
}

/// Records `label` (and the context's task name) under `token` when run.
struct Probe: AirlockTask {
    static let name = "tests.probe"
    let token: String
    let label: String
    func run(_ context: TaskContext) async throws {
        ProbeRegistry.record(token, label)
    }
}

/// Records that it ran, then fails.
struct Explode: AirlockTask {
    static let name = "tests.explode"
    let token: String
    let label: String
    func run(_ context: TaskContext) async throws {
        ProbeRegistry.record(token, label)
        throw Boom("explode \(label)")
    }
}

/// When run, enqueues a follow-up and records the outcome (`"enqueued"` or the error's type name).
struct EnqueueFollowUp: AirlockTask {
    static let name = "tests.enqueue_follow_up"
    let token: String
    func run(_ context: TaskContext) async throws {
        do {
            try Airlock.enqueue(name: "tests.follow_up", args: [.string(token)])
            ProbeRegistry.record(token, "enqueued")
        } catch {
            ProbeRegistry.record(token, "\(type(of: error))")
        }
    }
}

/// Encodes as a bare string rather than a keyed container: not a valid task shape.
struct NotAnObjectTask: AirlockTask {
    static let name = "tests.not_an_object"
    let value: String
    init(value: String) { self.value = value }
    init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(String.self) }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
    func run(_ context: TaskContext) async throws {}
}

// MARK: - Policies

/// A policy made of closures, with a readable name.
struct ClosurePolicy: Policy {
    var label: String = "ClosurePolicy"
    var enqueue: @Sendable (Intent) throws -> Void = { _ in }
    var allow: @Sendable (Intent) throws -> Bool = { _ in true }
    func onEnqueue(_ intent: Intent) throws { try enqueue(intent) }
    func allows(_ intent: Intent) throws -> Bool { try allow(intent) }
    var description: String { label }
}

/// Logs `"<label>.onEnqueue:<name>"` and `"<label>.allows:<name>"` and answers with `decide`.
func recordingPolicy(
    _ label: String, log: EventLog, decide: @escaping @Sendable (Intent) -> Bool = { _ in true }
) -> ClosurePolicy {
    ClosurePolicy(
        label: label,
        enqueue: { log.record("\(label).onEnqueue:\($0.name)") },
        allow: { intent in
            log.record("\(label).allows:\(intent.name)")
            return decide(intent)
        })
}

/// A policy with only the protocol's default hooks.
struct DefaultHooksPolicy: Policy {
    var description: String { "DefaultHooksPolicy" }
}

// MARK: - Executors

/// Counts calls and records batches; optionally logs `"dispatch:<name>"` per intent.
final class CountingExecutor: Executor {
    private let state = Mutex<[[Intent]]>([])
    let log: EventLog?
    init(log: EventLog? = nil) { self.log = log }
    func dispatch(_ intents: [Intent]) async throws {
        state.withLock { $0.append(intents) }
        for intent in intents { log?.record("dispatch:\(intent.name)") }
    }
    var calls: Int { state.withLock { $0.count } }
    var batches: [[Intent]] { state.withLock { $0 } }
    var names: [String] { batches.flatMap { $0 }.map(\.name) }
}

/// Always fails with `error` (not a `DispatchError`).
struct ThrowingExecutor: Executor {
    var error: Boom = Boom("executor down")
    func dispatch(_ intents: [Intent]) async throws { throw error }
}

/// Fails with its own precise `DispatchError`: the first intent went out, the rest did not.
struct PartialBatchExecutor: Executor {
    func dispatch(_ intents: [Intent]) async throws {
        throw DispatchError(
            dispatched: Array(intents.prefix(1)), notDispatched: Array(intents.dropFirst()),
            underlying: Boom("partial"))
    }
}

// MARK: - Behaviours

/// A scope behaviour made of closures; omitted hooks keep the default behaviour.
struct TestBehavior: ScopeBehavior {
    var flushDecision: (@Sendable (Scope, (any Error)?) -> Bool)? = nil
    var capture: (@Sendable (_ holder: Scope, _ exiting: Scope, _ intents: [Intent]) -> [Intent])? = nil
    var settingsKeys: Set<String> = []

    var supportedSettings: Set<String> { settingsKeys }
    func shouldFlush(_ scope: Scope, error: (any Error)?) -> Bool {
        flushDecision?(scope, error) ?? (error == nil)
    }
    func beforeDescendantFlushes(_ scope: Scope, exiting: Scope, intents: [Intent]) -> [Intent] {
        capture?(scope, exiting, intents) ?? []
    }

    /// Lets descendants flush everything themselves (captures nothing).
    static let independent = TestBehavior(capture: { _, _, intents in intents })
    /// Flushes whatever happened.
    static let flushAlways = TestBehavior(flushDecision: { _, _ in true })
    /// Never flushes: always discards.
    static let flushNever = TestBehavior(flushDecision: { _, _ in false })
}

/// Records every `beforeDescendantFlushes` call as (holder, exiting, offered names), then
/// answers with `decide` (default: capture all).
final class CaptureSpy: Sendable {
    struct Call: Sendable {
        let holder: ObjectIdentifier
        let exiting: ObjectIdentifier
        let offered: [String]
    }
    private let calls = Mutex<[Call]>([])
    init() {}
    var recorded: [Call] { calls.withLock { $0 } }

    func behavior(decide: @escaping @Sendable ([Intent]) -> [Intent] = { _ in [] }) -> TestBehavior {
        TestBehavior(capture: { [self] holder, exiting, intents in
            calls.withLock {
                $0.append(Call(holder: ObjectIdentifier(holder), exiting: ObjectIdentifier(exiting), offered: intents.map(\.name)))
            }
            return decide(intents)
        })
    }
}

// MARK: - Logging

/// Collects log lines in memory.
final class LogSink: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }
    private let storage = Mutex<[Line]>([])
    init() {}
    func append(_ line: Line) { storage.withLock { $0.append(line) } }
    var lines: [Line] { storage.withLock { $0 } }
}

/// A swift-log handler writing into a ``LogSink``.
struct CapturingLogHandler: LogHandler {
    let sink: LogSink
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        sink.append(
            LogSink.Line(
                level: event.level, message: event.message.description,
                metadata: merged.mapValues { "\($0)" }))
    }
}

func capturingLogger(label: String, sink: LogSink) -> Logger {
    Logger(label: label) { _ in CapturingLogHandler(sink: sink) }
}

// MARK: - Helpers

/// A fresh default-behaviour scope that does not depend on the global configuration.
func makeScope(
    policy: any Policy = AllowAll(),
    executor: any Executor = CountingExecutor(),
    behavior: any ScopeBehavior = DefaultScopeBehavior()
) throws -> Scope {
    try Scope(policy: policy, executor: executor, behavior: behavior)
}

/// Enqueues a dynamic task by name (returns nothing, so a one-line scope body stays `Void`).
func enqueue(_ name: String, _ args: JSONValue...) throws {
    try Airlock.enqueue(name: name, args: args)
}

/// Enqueues a dynamic task by name and returns the buffered intent.
func enqueued(_ name: String, _ args: JSONValue...) throws -> Intent {
    try Airlock.enqueue(name: name, args: args)
}

/// A free-standing intent, for unit-testing policies and behaviours.
func makeIntent(_ name: String, args: [JSONValue] = [], localPolicies: [any Policy] = []) -> Intent {
    Intent(taskName: name, payload: .dynamic(TaskArguments(args: args)), localPolicies: localPolicies)
}

extension Array where Element == Intent {
    var names: [String] { map(\.name) }
    var ids: [UUID] { map(\.id) }
}
