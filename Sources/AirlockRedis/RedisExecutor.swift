public import Airlock
public import AirlockRedisClient
import AirlockWorker
import Foundation
public import Logging
import Synchronization

/// Dispatches a scope's intents to Redis queues: one atomic script, one round trip per flush,
/// whatever the number of intents, queues and delays.
///
/// ```swift
/// let executor = try RedisExecutor(url: "redis://127.0.0.1:6379/0")
/// try Airlock.configure(executor: executor)
/// try await Airlock.scope { try Airlock.enqueue(SendConfirmationEmail(orderID: 42)) }
/// ```
///
/// Routing: `options.queue` (default ``defaultQueue``). A due time in the future (countdown or
/// eta) puts the job in the queue's delayed set; otherwise it goes to the ready list. A priority
/// above zero puts it at the consuming end of the ready list, ahead of the backlog.
/// An idempotency key already used on the same queue within ``idempotencyTTL`` makes the intent a
/// no-op (see ``enqueue(_:)``). An envelope larger than ``maxPayloadBytes`` fails the whole flush
/// before anything is sent.
///
/// Replicated acknowledgement (``replication``, opt-in): after the write, `WAIT` on the same
/// connection until that many replicas received it. A flush that reached fewer in time was
/// written to the primary but is not acknowledged: it throws ``DispatchError`` with every intent
/// dispatched and a ``RedisExecutorError`` of kind ``RedisExecutorError/Kind/notReplicated``.
public struct RedisExecutor: Executor {
    /// The connection flushes go through.
    public let client: RedisClient
    /// Key layout.
    public let keys: RedisKeys
    /// Queue of intents that name none.
    public let defaultQueue: String
    /// Largest envelope accepted, in bytes.
    public let maxPayloadBytes: Int
    /// How long an idempotency key blocks a second intent with the same key.
    public let idempotencyTTL: Duration
    /// Written into envelopes whose intent has no origin of its own.
    public let origin: String?
    /// Replicas that must hold a flush before it is acknowledged (``RedisReplication/none``: the primary's word is enough).
    public let replication: RedisReplication
    private let logger: Logger
    private let registeredQueues = SharedSet()

    /// Creates an executor over an existing client. `replication` nil takes the client's
    /// configuration's (the URL's `wait_replicas`/`wait_timeout`); ``RedisReplication/none`` turns it off.
    public init(
        client: RedisClient,
        namespace: String = "airlock",
        defaultQueue: String = "default",
        maxPayloadBytes: Int = 512 * 1024,
        idempotencyTTL: Duration = .seconds(24 * 3600),
        origin: String? = nil,
        replication: RedisReplication? = nil,
        logger: Logger = Logger(label: "airlock.redis.executor")
    ) {
        self.client = client
        self.replication = replication ?? client.configuration.replication ?? .none
        self.keys = RedisKeys(namespace: namespace)
        self.defaultQueue = defaultQueue
        self.maxPayloadBytes = maxPayloadBytes
        self.idempotencyTTL = idempotencyTTL
        self.origin = origin
        self.logger = logger
    }

    /// Creates an executor with its own connection to `url` (see ``RedisConfiguration/init(url:)``).
    public init(
        url: String,
        namespace: String = "airlock",
        defaultQueue: String = "default",
        maxPayloadBytes: Int = 512 * 1024,
        replication: RedisReplication? = nil,
        logger: Logger = Logger(label: "airlock.redis.executor")
    ) throws {
        let client = RedisClient(configuration: try RedisConfiguration(url: url), name: "airlock-producer", logger: logger)
        self.init(client: client, namespace: namespace, defaultQueue: defaultQueue, maxPayloadBytes: maxPayloadBytes, replication: replication, logger: logger)
    }

    /// What happened to one intent of a batch.
    public enum Outcome: Sendable, Hashable {
        /// Written to the queue (ready list or delayed set).
        case queued
        /// Not written: its idempotency key was already used, by the job with this id.
        case duplicate(existingJobID: String)
    }

    /// Flush entry point: all of `intents` or none. Throws ``DispatchError`` listing every intent
    /// as not dispatched (or, when the connection broke mid-request, saying the outcome is unknown).
    public func dispatch(_ intents: [Intent]) async throws {
        let outcomes = try await enqueue(intents)
        for (intent, outcome) in zip(intents, outcomes) {
            if case .duplicate(let existing) = outcome {
                logger.debug("idempotency key already used; not queued again",
                             metadata: ["task": "\(SafeText.escape(intent.taskName))", "intent": "\(intent.id)", "existing": "\(SafeText.escape(existing))"])
            }
        }
    }

    /// Writes `intents` atomically and reports, per intent, whether it was queued or was a duplicate.
    /// With ``replication`` required, a batch fewer replicas received in time throws
    /// ``DispatchError`` (all dispatched) over ``RedisExecutorError/Kind/notReplicated``.
    public func enqueue(_ intents: [Intent]) async throws -> [Outcome] {
        guard !intents.isEmpty else { return [] }
        let now = Date()
        var keyArgs: [[UInt8]] = []
        var argv: [[UInt8]] = [Array(String(idempotencyTTL.wholeMilliseconds).utf8)]
        keyArgs.reserveCapacity(intents.count * 3)
        argv.reserveCapacity(1 + intents.count * 6)
        var queues: [String] = []
        // Key names repeat across a batch; each queue's are built once.
        var queueKeys: [String: (ready: [UInt8], delayed: [UInt8], wake: [UInt8])] = [:]
        // Every job of a flush continues the flush's span.
        let trace = TraceContext.current()
        for intent in intents {
            let job: OutgoingJob
            do {
                job = try OutgoingJob(intent: intent, now: now, defaultQueue: defaultQueue, origin: origin, maxBytes: maxPayloadBytes, trace: trace)
            } catch {
                throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError(error))
            }
            let names: (ready: [UInt8], delayed: [UInt8], wake: [UInt8])
            if let known = queueKeys[job.queue] {
                names = known
            } else {
                names = (Array(keys.ready(job.queue).utf8), Array(keys.delayed(job.queue).utf8), Array(keys.wake(job.queue).utf8))
                queueKeys[job.queue] = names
                queues.append(job.queue)
            }
            let target = job.placement == .delayed ? names.delayed : names.ready
            keyArgs.append(target)
            keyArgs.append(job.idempotencyKey.map { Array(keys.idempotency(job.queue, key: $0).utf8) } ?? target)
            keyArgs.append(names.wake)
            argv.append(Self.placementArgument(job.placement))
            argv.append(Array(String(job.dueAt).utf8))
            argv.append(job.bytes)
            argv.append(job.idempotencyKey == nil ? [] : Self.yes)
            argv.append(Array(job.id.utf8))
        }
        let reply: RedisReply
        var replicated: RedisReply?
        do {
            if replication.isRequired {
                // WAIT rides in the same round trip, on the same connection, right after the write.
                let (replies, wait) = try await client.evaluate([Self.enqueueScript.call(keys: keyArgs, arguments: argv)], replication: replication)
                reply = try replies[0].throwingServerError()
                replicated = wait
            } else {
                reply = try await client.evalScript(Self.enqueueScript, keys: keyArgs, args: argv)
            }
        } catch {
            throw DispatchError(dispatched: [], notDispatched: intents, underlying: RedisExecutorError.from(error))
        }
        // Queue names are registered outside the script, so the script touches only one queue's
        // (hash-tagged) keys; once per queue per executor, after a write succeeded, so a refused
        // batch leaves no trace. Workers re-register their queues with every heartbeat.
        let unregistered = registeredQueues.withLock { known in queues.filter { !known.contains($0) } }
        if !unregistered.isEmpty, (try? await client.send(RedisCommand("SADD", [keys.queues] + unregistered))) != nil {
            registeredQueues.withLock { $0.formUnion(unregistered) }
        }
        guard let results = reply.array, results.count == intents.count else {
            throw DispatchError(dispatched: [], notDispatched: intents,
                                underlying: RedisExecutorError(.protocolViolation, "unexpected reply to the enqueue script: \(reply)"))
        }
        if let replicated, let shortfall = RedisExecutorError.notReplicated(replicated, required: replication) {
            throw DispatchError(dispatched: intents, notDispatched: [], underlying: shortfall)
        }
        return results.map { result in
            if let existing = result.string, !existing.isEmpty { .duplicate(existingJobID: existing) } else { .queued }
        }
    }

    private static let yes: [UInt8] = [UInt8(ascii: "1")]

    /// `r` back of the ready list, `f` its consuming end (priority), `d` the delayed set.
    private static func placementArgument(_ placement: OutgoingJob.Placement) -> [UInt8] {
        switch placement {
        case .back: [UInt8(ascii: "r")]
        case .front: [UInt8(ascii: "f")]
        case .delayed: [UInt8(ascii: "d")]
        }
    }

    /// Checks every key's type before writing anything, so a batch is never half applied.
    /// KEYS: per job [target, idempotency key (or target), wake list].
    /// ARGV: [idempotency ttl ms] + per job [mode r|f|d, score, envelope, use-idempotency "1"|"", job id].
    static let enqueueScript = RedisScript("""
        #!lua
        local n = #KEYS / 3
        local function check(key, want)
          local t = redis.call('TYPE', key).ok
          if t ~= 'none' and t ~= want then
            return 'WRONGTYPE key ' .. key .. ' holds a ' .. t .. ', expected a ' .. want .. '; nothing was enqueued'
          end
        end
        local checked = {}
        local function checkOnce(key, want)
          if checked[key] then return nil end
          checked[key] = true
          return check(key, want)
        end
        for i = 0, n - 1 do
          local k, a = 1 + i * 3, 2 + i * 5
          local delayed = ARGV[a] == 'd'
          local bad = checkOnce(KEYS[k], delayed and 'zset' or 'list')
          if not bad and ARGV[a + 3] == '1' then bad = checkOnce(KEYS[k + 1], 'string') end
          if not bad and delayed then bad = checkOnce(KEYS[k + 2], 'list') end
          if bad then return redis.error_reply(bad) end
        end
        local results = {}
        local woken = {}
        for i = 0, n - 1 do
          local k, a = 1 + i * 3, 2 + i * 5
          local mode, score, envelope, idem, id = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
          local existing = false
          if idem == '1' then
            existing = redis.call('SET', KEYS[k + 1], id, 'NX', 'PX', ARGV[1], 'GET')
          end
          if existing then
            results[i + 1] = existing
          else
            if mode == 'd' then
              redis.call('ZADD', KEYS[k], score, envelope)
              if not woken[KEYS[k + 2]] then
                redis.call('LPUSH', KEYS[k + 2], score)
                redis.call('LTRIM', KEYS[k + 2], 0, 0)
                woken[KEYS[k + 2]] = true
              end
            elseif mode == 'f' then
              redis.call('RPUSH', KEYS[k], envelope)
            else
              redis.call('LPUSH', KEYS[k], envelope)
            end
            results[i + 1] = ''
          end
        end
        return results
        """)
}

/// Queue names this executor has registered in `<ns>:queues`, shared by its copies.
final class SharedSet: Sendable {
    private let names = Mutex<Set<String>>([])
    func withLock<R: Sendable>(_ body: (inout sending Set<String>) -> sending R) -> R { names.withLock(body) }
}

/// Why the Redis executor could not dispatch a batch.
public struct RedisExecutorError: AirlockError {
    /// The kind of failure, stable for code that branches on it.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable {
            case payloadTooLarge, encodingFailed, notWritten, outcomeUnknown, protocolViolation, invalidIntent
            case notReplicated
        }
        fileprivate let code: Code
        /// An envelope exceeded the payload limit; nothing was sent.
        public static let payloadTooLarge = Kind(code: .payloadTooLarge)
        /// A task's arguments could not be encoded; nothing was sent.
        public static let encodingFailed = Kind(code: .encodingFailed)
        /// Redis could not be reached or refused the batch; nothing was written.
        public static let notWritten = Kind(code: .notWritten)
        /// The connection broke after the batch was sent: it was applied entirely or not at all,
        /// and which is unknown. Idempotency keys make a retry safe.
        public static let outcomeUnknown = Kind(code: .outcomeUnknown)
        /// Redis answered something this code does not understand.
        public static let protocolViolation = Kind(code: .protocolViolation)
        /// An intent cannot become a valid job (a queue name outside the rule, a due time past
        /// year 9999, a retry count out of range); nothing was sent.
        public static let invalidIntent = Kind(code: .invalidIntent)
        /// Written to the primary, but fewer replicas than the executor's ``RedisExecutor/replication``
        /// requires received it in time (`WAIT`): a failover now could lose it. The jobs are queued
        /// and will run unless that happens; sending them again would queue them twice unless they
        /// carry idempotency keys.
        public static let notReplicated = Kind(code: .notReplicated)
        /// The kind's name, e.g. `outcomeUnknown`.
        public var description: String { code.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// What happened, in one line.
    public let description: String
    /// The Redis error behind it, if any.
    public let redisError: RedisError?
    /// For ``Kind/notReplicated``: how many replicas had received the batch when `WAIT` returned
    /// (nil when `WAIT` itself failed).
    public let replicasAcknowledged: Int?

    init(_ kind: Kind, _ description: String, redisError: RedisError? = nil, replicasAcknowledged: Int? = nil) {
        self.kind = kind
        self.description = description
        self.redisError = redisError
        self.replicasAcknowledged = replicasAcknowledged
    }

    /// The error for a `WAIT` reply short of `required`, nil when enough replicas have the batch.
    static func notReplicated(_ wait: RedisReply, required: RedisReplication) -> RedisExecutorError? {
        if case .integer(let count) = wait {
            guard count < required.replicas else { return nil }
            return RedisExecutorError(.notReplicated, "written to the primary, not yet replicated: \(count) of the required \(required) acknowledged the batch (a failover now could lose it)", replicasAcknowledged: count)
        }
        let reason = wait.errorMessage.map { "WAIT failed: \(SafeText.escape($0))" } ?? "unexpected reply to WAIT: \(wait)"
        return RedisExecutorError(.notReplicated, "written to the primary, not known to be replicated to \(required): \(reason)", redisError: wait.errorMessage.map(RedisError.server))
    }

    /// The Redis view of an intent that cannot become a job.
    init(_ error: EnqueueError) {
        switch error.kind {
        case .payloadTooLarge: self.init(.payloadTooLarge, error.description)
        case .encodingFailed: self.init(.encodingFailed, error.description)
        default: self.init(.invalidIntent, error.description)
        }
    }

    static func from(_ error: any Error) -> RedisExecutorError {
        guard let redis = error as? RedisError else { return RedisExecutorError(.notWritten, "\(error)") }
        if redis.mayHaveBeenApplied {
            return RedisExecutorError(.outcomeUnknown, "the connection broke after the batch was sent, so it was applied entirely or not at all: \(redis)", redisError: redis)
        }
        return RedisExecutorError(.notWritten, "nothing was enqueued: \(redis)", redisError: redis)
    }
}
