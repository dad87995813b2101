#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The front door: wrap work in a ``scope(policy:executor:behavior:settings:isolation:_:)``,
/// call ``enqueue(_:options:origin:name:)`` anywhere inside it, and the side effects escape
/// only if the work succeeds.
///
/// ```swift
/// try await Airlock.scope {
///     try Airlock.enqueue(SendConfirmationEmail(orderID: 42))
///     try Airlock.enqueue(name: "proj.tasks.add", args: [2, 2])
/// }   // flushed here; had the body thrown, both would have been dropped
/// ```
///
/// Scope state is task-local: concurrent requests never see each other's scope, and child tasks
/// inherit their parent's.
public enum Airlock {
    /// The scope `enqueue` adds to in the current task, if any.
    public static var currentScope: Scope? { AirlockContext.current.scope }

    // MARK: Scopes

    /// Runs `body` in a new scope; flushes when it returns, discards when it throws (unless the
    /// behaviour decides otherwise), and re-throws the body's error.
    ///
    /// Omitted arguments come from ``configuration`` at the time of the call.
    /// - Throws: the body's error; ``DispatchError`` when the flush's dispatch failed;
    ///   ``ConfigurationError`` for settings the behaviour does not understand.
    @discardableResult
    public static func scope<R>(
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        behavior: (any ScopeBehavior)? = nil,
        settings: ScopeSettings = [:],
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> R
    ) async throws -> R {
        let scope = try Scope(policy: policy, executor: executor, behavior: behavior, settings: settings)
        return try await self.scope(scope, isolation: isolation, body)
    }

    /// Runs `body` in `scope`, which must not have been entered yet: enter, run with it current,
    /// exit, then flush or discard as its behaviour decides — unless the body already ended the
    /// scope by hand.
    @discardableResult
    public static func scope<R>(
        _ scope: Scope,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> R
    ) async throws -> R {
        try scope.enter()
        let result: R
        do {
            result = try await scope.withCurrent(isolation: isolation, body)
        } catch {
            try await scope.end(after: error)
            throw error
        }
        try await scope.end(after: nil)
        return result
    }

    /// Wraps `function` so every call runs in a fresh scope (the original's `@scoped` decorator).
    ///
    /// The configuration is read at call time, not when the wrapper is made.
    public static func scoped<each Argument, R>(
        policy: (any Policy)? = nil,
        executor: (any Executor)? = nil,
        behavior: (any ScopeBehavior)? = nil,
        settings: ScopeSettings = [:],
        _ function: @escaping @Sendable (repeat each Argument) async throws -> R
    ) -> @Sendable (repeat each Argument) async throws -> R {
        { (argument: repeat each Argument) async throws -> R in
            try await Airlock.scope(policy: policy, executor: executor, behavior: behavior, settings: settings) {
                try await function(repeat each argument)
            }
        }
    }

    // MARK: Local policies

    /// Runs `body` with `policy` pushed on the local policy stack: intents enqueued inside carry
    /// it, and it filters them at flush (innermost first, before the scope's policy). It creates
    /// no buffer and its `onEnqueue` is never called.
    @discardableResult
    public static func policy<R>(
        _ policy: any Policy,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> R
    ) async rethrows -> R {
        var context = AirlockContext.current
        context.localPolicies.append(policy)
        return try await AirlockContext.$current.withValue(context, operation: body, isolation: isolation)
    }

    /// Synchronous form of ``policy(_:isolation:_:)``.
    @discardableResult
    public static func policy<R>(_ policy: any Policy, _ body: () throws -> R) rethrows -> R {
        var context = AirlockContext.current
        context.localPolicies.append(policy)
        return try AirlockContext.$current.withValue(context, operation: body)
    }

    // MARK: Enqueue

    /// Buffers a typed task in the current scope.
    ///
    /// - Parameters:
    ///   - options: merged over the task type's ``AirlockTask/defaultOptions``.
    ///   - origin: free-form provenance carried to the executor.
    ///   - name: a label for policies and logs instead of the task's name; the task still runs
    ///     under its own name.
    /// - Returns: the buffered intent; its ``Intent/id`` is the future job id.
    /// - Throws: ``PolicyEnqueueError``, ``NoScopeError``, ``ScopeStateError``, or what the
    ///   scope's policy throws (then nothing is buffered).
    @discardableResult
    public static func enqueue<T: AirlockTask>(
        _ task: T,
        options: DispatchOptions = DispatchOptions(),
        origin: String? = nil,
        name: String? = nil
    ) throws -> Intent {
        try enqueue(taskName: T.name, label: name, payload: .typed(task), options: T.defaultOptions.merged(with: options), origin: origin)
    }

    /// Buffers a task known only by name, with Celery-style arguments (for example one
    /// implemented in Python).
    @discardableResult
    public static func enqueue(
        name: String,
        args: [JSONValue] = [],
        kwargs: [String: JSONValue] = [:],
        options: DispatchOptions = DispatchOptions(),
        origin: String? = nil
    ) throws -> Intent {
        try enqueue(taskName: name, label: nil, payload: .dynamic(TaskArguments(args: args, kwargs: kwargs)), options: options, origin: origin)
    }

    private static func enqueue(
        taskName: String,
        label: String?,
        payload: Intent.Payload,
        options: DispatchOptions,
        origin: String?
    ) throws -> Intent {
        let context = AirlockContext.current
        guard !context.inPolicy else { throw PolicyEnqueueError(taskName: label ?? taskName) }
        let intent = Intent(
            name: label, taskName: taskName, payload: payload, options: options, origin: origin,
            localPolicies: context.localPolicies
        )
        guard let scope = context.scope else { throw NoScopeError(taskName: intent.name) }
        try scope.requireOpen(for: intent)
        try AirlockContext.judging { try scope.policy.onEnqueue(intent) }
        try scope.append(intent)
        return intent
    }
}

/// Everything Airlock keeps per task, in one task-local so `enqueue` reads it once.
struct AirlockContext: Sendable {
    var scope: Scope?
    var localPolicies: [any Policy] = []
    var inPolicy = false

    @TaskLocal static var current = AirlockContext()

    /// Runs a policy hook with the "in policy" flag set, so an enqueue inside it is refused.
    static func judging<R>(_ body: () throws -> R) rethrows -> R {
        var context = current
        context.inPolicy = true
        return try $current.withValue(context, operation: body)
    }
}
