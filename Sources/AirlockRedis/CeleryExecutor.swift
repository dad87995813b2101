public import Airlock
public import AirlockRedisClient
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging

/// Dispatches a scope's intents to a Celery fleet: messages a stock Celery 5 worker accepts,
/// pushed onto kombu's queue keys in one atomic script (all of the batch or none).
///
/// ```swift
/// let celery = try CeleryExecutor(url: "redis://127.0.0.1:6379/0")
/// try await Airlock.scope(executor: celery) {
///     try Airlock.enqueue(name: "proj.tasks.add", args: [2, 2])
/// }
/// ```
///
/// Routing: `options.queue` (default `celery`); `priority` picks kombu's priority sub-key (steps
/// 0, 3, 6, 9; 0 is consumed first); countdown and eta become the `eta` header (Celery's worker
/// then holds the task until it is due); `expires` becomes the `expires` header. The intent's id
/// is the Celery task id, so `AsyncResult(id)` in Python finds its result.
public struct CeleryExecutor: Executor {
    /// The connection flushes go through.
    public let client: RedisClient
    /// Queue of intents that name none.
    public let defaultQueue: String
    /// Largest message accepted, in bytes.
    public let maxPayloadBytes: Int
    private let logger: Logger

    /// Creates an executor over an existing client.
    public init(client: RedisClient, defaultQueue: String = "celery", maxPayloadBytes: Int = 512 * 1024,
                logger: Logger = Logger(label: "airlock.celery.executor")) {
        self.client = client
        self.defaultQueue = defaultQueue
        self.maxPayloadBytes = maxPayloadBytes
        self.logger = logger
    }

    /// Creates an executor with its own connection to `url`.
    public init(url: String, defaultQueue: String = "celery") throws {
        self.init(client: RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-celery-producer"), defaultQueue: defaultQueue)
    }

    /// Pushes every intent as a Celery message, atomically; throws ``DispatchError`` naming them all on failure.
    public func dispatch(_ intents: [Intent]) async throws {
        guard !intents.isEmpty else { return }
        let now = Date()
        var keys: [[UInt8]] = []
        var messages: [[UInt8]] = []
        let trace = TraceContext.current()
        for intent in intents {
            let options = intent.options
            let queue = options.queue ?? defaultQueue
            if let problem = QueueName.problem(with: queue) {
                throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError(
                    .invalidIntent, "cannot dispatch \(SafeText.escape(intent.name)) (\(intent.id)): \(problem); nothing was sent"))
            }
            let arguments: TaskArguments
            do {
                arguments = try intent.arguments()
            } catch {
                throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError(.encodingFailed, "cannot encode the arguments of \(intent.name): \(error)"))
            }
            let message = CeleryMessage.make(
                id: intent.id.jobID, task: intent.taskName, args: arguments.args, kwargs: arguments.kwargs,
                queue: queue, eta: options.dueDate(dispatchedAt: now), expires: options.expiryDate(dispatchedAt: now),
                priority: options.priority ?? 0, origin: intent.origin, trace: trace
            ).encoded()
            guard message.count <= maxPayloadBytes else {
                throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError(
                    .payloadTooLarge, "the Celery message of \(intent.name) (\(intent.id)) is \(message.count) bytes, over the limit of \(maxPayloadBytes)"))
            }
            keys.append(Array(CeleryMessage.queueKey(queue, priority: options.priority ?? 0).utf8))
            messages.append(message)
        }
        do {
            _ = try await client.evalScript(Self.pushScript, keys: keys, args: messages)
        } catch {
            throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError.from(error))
        }
    }

    /// KEYS: one queue key per message; ARGV: the messages. Checks every key before writing any.
    static let pushScript = RedisScript("""
        #!lua
        for i = 1, #KEYS do
          local t = redis.call('TYPE', KEYS[i]).ok
          if t ~= 'none' and t ~= 'list' then
            return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. t .. ', expected a list; nothing was sent')
          end
        end
        for i = 1, #KEYS do redis.call('LPUSH', KEYS[i], ARGV[i]) end
        return #KEYS
        """)
}
