public import Airlock
public import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging

/// Reads the results of native jobs that asked to keep them
/// (``Airlock/DispatchOptions/keepingResult(for:)``, or a task registered with `keepResult:`).
///
/// ```swift
/// let results = try JobResults(url: "redis://127.0.0.1:6379/0")
/// let intent = try await Airlock.scope(executor: executor) {
///     try Airlock.enqueue(name: "math.add", args: [2, 3], options: DispatchOptions().keepingResult(for: .minutes(10)))
/// }
/// let sum = try await results.handle(for: intent).value(as: Int.self, timeout: .seconds(30))
/// ```
///
/// A wait is woken by the worker's settlement (it pushes to a list beside the result, which the
/// handle blocks on with `BLMOVE` of the list onto itself), never by polling; each wait blocks a connection — a thread —
/// of its own, opened for the wait and closed after it.
public final class JobResults: Sendable {
    /// Where Redis is.
    public let configuration: RedisConfiguration
    /// The key layout (the producers' and workers' namespace).
    public let keys: RedisKeys
    let logger: Logger

    /// Results in `namespace` of the Redis at `configuration`.
    public init(configuration: RedisConfiguration, namespace: String = "airlock", logger: Logger = Logger(label: "airlock.results")) {
        self.configuration = configuration
        self.keys = RedisKeys(namespace: namespace, for: configuration)
        self.logger = logger
    }

    /// Results in `namespace` of the Redis at `url`.
    /// - Throws: ``RedisError`` for a URL that cannot be used.
    public convenience init(url: String, namespace: String = "airlock") throws {
        self.init(configuration: try RedisConfiguration(url: url), namespace: namespace)
    }

    /// The handle of an enqueued intent's job; `defaultQueue` is the queue of an intent that
    /// names none (the executor's default).
    public func handle(for intent: Intent, defaultQueue: String = "default") -> ResultHandle {
        handle(jobID: intent.id.jobID, queue: intent.options.queue ?? defaultQueue)
    }

    /// The handle of job `jobID`, enqueued to `queue`.
    public func handle(jobID: String, queue: String) -> ResultHandle {
        ResultHandle(results: self, jobID: jobID, queue: queue)
    }
}

/// One job's result, to wait for.
public struct ResultHandle: Sendable {
    let results: JobResults
    /// The job id.
    public let jobID: String
    /// The queue it was enqueued to (its result is stored in that queue's slot).
    public let queue: String

    /// How the job ended.
    public enum Outcome: Sendable, Hashable {
        /// It returned this value.
        case success(JSONValue)
        /// It failed for good: the error's description and type name.
        case failure(reason: String, errorType: String)
    }

    /// The job's outcome, waiting up to `timeout` for it.
    /// - Throws: ``ResultError`` (`timedOut`) when no result arrived in time — the job has not
    ///   finished, did not ask to keep its result, or its result expired; ``RedisError`` when Redis
    ///   cannot be reached.
    public func outcome(timeout: Duration) async throws -> Outcome {
        let key = results.keys.result(queue, jobID: jobID)
        let client = RedisClient(configuration: results.configuration, name: "airlock-result-wait", logger: results.logger)
        let stored: [UInt8]?
        do {
            stored = try await Self.wait(client, key: key, notify: key + NativeCodec.resultNotifySuffix, timeout: timeout)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        guard let stored else {
            throw ResultError(.timedOut, "no result for job \(SafeText.escape(jobID)) on queue '\(SafeText.escape(queue))' within \(timeout): it has not finished, did not ask to keep its result (keepingResult(for:)), or the result expired")
        }
        return try Self.decode(stored, jobID: jobID)
    }

    /// The stored result: at once if it is there, else after the settlement's push to `notify`.
    private static func wait(_ client: RedisClient, key: String, notify: String, timeout: Duration) async throws -> [UInt8]? {
        if let stored = try await client.send(RedisCommand("GET", key)).throwingServerError().bytes { return stored }
        // A move of the list onto itself waits like BLPOP but leaves the token (and its TTL) in
        // place, so every waiter wakes, and nothing is left behind without an expiry.
        let token = Array(notify.utf8)
        guard try await !client.send(.blmove(token, token, from: .right, to: .left, timeout: timeout)).throwingServerError().isNull else { return nil }
        return try await client.send(RedisCommand("GET", key)).throwingServerError().bytes
    }

    /// The value the job returned, decoded as `T`, waiting up to `timeout`.
    /// - Throws: ``ResultError`` — `failed` with the job's error when it failed for good,
    ///   `timedOut`, or `undecodable` when the value is not a `T`; ``RedisError``.
    public func value<T: Decodable>(as type: T.Type = T.self, timeout: Duration) async throws -> T {
        switch try await outcome(timeout: timeout) {
        case .success(let value):
            do {
                return try JSONValueDecoder.decode(T.self, from: value)
            } catch {
                throw ResultError(.undecodable, "the result of job \(SafeText.escape(jobID)) is not a \(T.self): \(error)")
            }
        case .failure(let reason, let errorType):
            throw ResultError(.failed, "job \(SafeText.escape(jobID)) failed: \(errorType): \(reason)", reason: reason, errorType: errorType)
        }
    }

    static func decode(_ stored: [UInt8], jobID: String) throws -> Outcome {
        guard let record = (try? JSONParser.parse(stored))?.objectValue else {
            throw ResultError(.undecodable, "the stored result of job \(SafeText.escape(jobID)) is not a JSON object")
        }
        switch record["status"]?.stringValue {
        case "success"?: return .success(record["value"] ?? .null)
        case "failure"?: return .failure(reason: record["error"]?.stringValue ?? "", errorType: record["error_type"]?.stringValue ?? "Error")
        default: throw ResultError(.undecodable, "the stored result of job \(SafeText.escape(jobID)) has no known status")
        }
    }
}

/// A result that could not be had; the description says why.
public struct ResultError: AirlockError {
    /// The kind of problem, stable for code that branches on it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable { case timedOut, failed, undecodable }
        fileprivate let code: Code
        /// No result within the timeout.
        public static let timedOut = Kind(code: .timedOut)
        /// The job failed for good; ``ResultError/reason`` and ``ResultError/errorType`` say how.
        public static let failed = Kind(code: .failed)
        /// The stored result is not what was asked for.
        public static let undecodable = Kind(code: .undecodable)
        /// The kind's name.
        public var description: String { code.rawValue }
    }

    /// The kind of problem.
    public let kind: Kind
    /// What happened, in one line.
    public let description: String
    /// For a failed job: its error's description.
    public let reason: String?
    /// For a failed job: its error's type name.
    public let errorType: String?

    init(_ kind: Kind, _ description: String, reason: String? = nil, errorType: String? = nil) {
        self.kind = kind
        self.description = description
        self.reason = reason
        self.errorType = errorType
    }
}
