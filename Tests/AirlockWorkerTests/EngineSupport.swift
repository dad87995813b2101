import Airlock
import AirlockWorker
import Foundation
import Logging
import Synchronization
import AirlockTestKit
import Testing

// The worker engine against InMemoryQueues: no server, so these run in milliseconds and pin the
// engine's own logic (slots, prefetch bound, priority, retries, timeouts, shutdown ordering).

/// A bounded wait that ran out.
struct EngineWaitTimeout: Error, CustomStringConvertible {
    let description: String
}

enum Engine {
    static var quiet: Logger {
        var logger = Logger(label: "airlock.engine-tests")
        logger.logLevel = .critical
        return logger
    }

    /// Polls `condition` until it holds; fails with `what` after `timeout` (a hang guard of at
    /// least a minute, ``Eventually/floor``).
    static func eventually(_ what: @autoclosure () -> String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        try await Eventually.until(what(), within: timeout, poll: .milliseconds(5), condition)
    }

    /// Engine settings for fast tests: short intervals, immediate retries.
    static func configuration(queues: [String] = ["default"], concurrency: Int = 2, prefetch: Int = 0) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(queues: queues)
        configuration.concurrency = concurrency
        configuration.prefetch = prefetch
        configuration.heartbeatInterval = .milliseconds(50)
        configuration.heartbeatTTL = .seconds(5)
        configuration.reaperInterval = .milliseconds(50)
        configuration.retryStrategy = .fixed(.milliseconds(20))
        configuration.shutdownTimeout = .seconds(5)
        configuration.blockTimeout = .milliseconds(100)
        return configuration
    }

    /// Enqueues named jobs through the in-memory executor, in one flush.
    static func enqueue(_ queues: InMemoryQueues, _ jobs: [(task: String, kwargs: [String: JSONValue])], options: DispatchOptions = DispatchOptions()) async throws {
        try await Airlock.scope(policy: AllowAll(), executor: queues.executor(), behavior: DefaultScopeBehavior()) {
            for job in jobs { try Airlock.enqueue(name: job.task, kwargs: job.kwargs, options: options) }
        }
    }

    static func object(_ bytes: [UInt8]) throws -> [String: JSONValue] {
        try #require(try JSONParser.parse(bytes).objectValue)
    }
}

/// A worker's `run()` in a task of its own.
final class EngineRun: Sendable {
    private final class Outcome: Sendable {
        let value = Mutex<Result<Void, any Error>?>(nil)
    }
    let worker: Worker
    private let outcome = Outcome()

    init(_ worker: Worker) {
        self.worker = worker
        let outcome = self.outcome
        Task {
            do {
                try await worker.run()
                outcome.value.withLock { $0 = .success(()) }
            } catch {
                outcome.value.withLock { $0 = .failure(error) }
            }
        }
    }

    var result: Result<Void, any Error>? { outcome.value.withLock { $0 } }

    func stop() async throws {
        worker.shutdown()
        try await Engine.eventually("run() of \(worker.id) returned") { result != nil }
        try result!.get()
    }
}

/// Records what tasks did, in order, and how many ran at once.
final class EngineProbe: Sendable {
    private struct State {
        var events: [String] = []
        var running = 0
        var maxRunning = 0
    }
    private let state = Mutex(State())

    func record(_ event: String) { state.withLock { $0.events.append(event) } }
    var events: [String] { state.withLock { $0.events } }
    func count(_ event: String) -> Int { state.withLock { $0.events.count { $0 == event } } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }

    func running<R>(_ body: () async throws -> R) async rethrows -> R {
        state.withLock {
            $0.running += 1
            $0.maxRunning = max($0.maxRunning, $0.running)
        }
        defer { state.withLock { $0.running -= 1 } }
        return try await body()
    }
}

/// A gate tasks wait at until opened; honours cancellation.
final class EngineGate: Sendable {
    private struct State {
        var open = false
        var waiting: [Int: CheckedContinuation<Void, any Error>] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    var waiting: Int { state.withLock { $0.waiting.count } }

    func wait() async throws {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.open { return .success(()) }
                    state.waiting[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.open = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

struct EngineTaskError: Error, CustomStringConvertible {
    let description: String
}
