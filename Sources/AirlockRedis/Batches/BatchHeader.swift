import Airlock
import AirlockWorker
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a flush does with a batch: open one (or add to it), or join the running job's.
enum BatchWrite: Sendable {
    /// The flush's jobs are (or join) this batch, created with them if not recorded yet.
    case open(Batch)
    /// The flush's jobs join this batch if its record still exists (a task's follow-ups).
    case join(BatchMembership)

    /// Whether the flush may create the record (and complete it when no job is queued).
    var opens: Bool { if case .open = self { true } else { false } }
}

/// The batch part of one enqueue script call: its keys, its header arguments, and the fields
/// each member job carries.
struct BatchHeader {
    let membership: BatchMembership
    let opens: Bool
    /// The record, and for an opened batch its queue's ready list (the callbacks' target).
    let keys: [[UInt8]]
    /// ARGV[3...]: for an opened batch queue, onSuccess, onComplete (envelopes or empty),
    /// retention s, description, created ms, open expiry s; one empty string for a joined one.
    let arguments: [[UInt8]]
    let createdAt: Int64

    init(_ write: BatchWrite, executor: RedisExecutor, now: Date, trace: TraceContext?) throws(RedisExecutorError) {
        createdAt = epochMilliseconds(now)
        switch write {
        case .join(let membership):
            self.membership = membership
            opens = false
            keys = [Array(executor.keys.batch(membership.queue, id: membership.id).utf8)]
            arguments = [[]]
        case .open(let batch):
            let callbacks = [batch.onSuccess, batch.onComplete]
            let queue = batch.queue ?? callbacks.lazy.compactMap { $0?.options.queue }.first ?? executor.defaultQueue
            if let problem = QueueName.problem(with: queue) {
                throw RedisExecutorError(.invalidIntent, "batch \(SafeText.escape(batch.id)): \(problem); nothing was enqueued")
            }
            if !(1...128).contains(batch.id.utf8.count) || batch.id.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 }) {
                throw RedisExecutorError(.invalidIntent, "a batch id must be 1 to 128 bytes with no spaces or control characters, not '\(SafeText.escape(batch.id))'; nothing was enqueued")
            }
            var envelopes: [[UInt8]] = []
            for callback in callbacks {
                guard var callback else {
                    envelopes.append([])
                    continue
                }
                if let named = callback.options.queue, named != queue {
                    throw RedisExecutorError(.invalidIntent, "the callbacks of batch \(SafeText.escape(batch.id)) run on the batch's queue '\(SafeText.escape(queue))', "
                        + "not '\(SafeText.escape(named))': leave their queue unset or set Batch.queue; nothing was enqueued")
                }
                var options = callback.options
                options.queue = queue
                callback = Intent(id: callback.id, name: callback.name, taskName: callback.taskName, payload: callback.payload,
                                  options: options, origin: callback.origin, localPolicies: callback.localPolicies)
                envelopes.append(try executor.encode(callback, now: now, trace: trace).bytes)
            }
            membership = BatchMembership(id: batch.id, queue: queue)
            opens = true
            keys = [Array(executor.keys.batch(queue, id: batch.id).utf8), Array(executor.keys.ready(queue).utf8)]
            arguments = [
                Array(queue.utf8), envelopes[0], envelopes[1], Array(String(max(1, batch.retention.wholeMilliseconds / 1000)).utf8),
                Array(batch.description.utf8), Array(String(createdAt).utf8), Array(String(max(1, batch.openExpiry.wholeMilliseconds / 1000)).utf8),
            ]
        }
    }

    /// A header read back from a cross-slot flush's record (`CrossSlotFlush`).
    init(membership: BatchMembership, opens: Bool, arguments: [[UInt8]], createdAt: Int64, keys: RedisKeys) {
        self.membership = membership
        self.opens = opens
        self.arguments = arguments
        self.createdAt = createdAt
        let record = Array(keys.batch(membership.queue, id: membership.id).utf8)
        self.keys = opens ? [record, Array(keys.ready(membership.queue).utf8)] : [record]
    }

    /// Defines `createBatch(record, count)`: writes an opened batch's record with `count` jobs
    /// total and pending, from the header ``arguments`` at `ARGV[3…9]` (where the enqueue script
    /// and the cross-slot batch step both take them), and its open expiry.
    static let createFunction = """
        local function createBatch(record, count)
          redis.call('HSET', record, 'total', count, 'pending', count, 'succeeded', 0, 'dead', 0, 'cancelled', 0,
            'queue', ARGV[3], 'on_success', ARGV[4], 'on_complete', ARGV[5], 'retention_s', ARGV[6],
            'description', ARGV[7], 'created_at', ARGV[8])
          redis.call('EXPIRE', record, ARGV[9])
        end
        """

    /// `intent` carrying the batch's fields in its envelope.
    func member(_ intent: Intent) -> Intent {
        var options = intent.options
        options.extra.merge(membership.extra) { _, batch in batch }
        return Intent(id: intent.id, name: intent.name, taskName: intent.taskName, payload: intent.payload,
                      options: options, origin: intent.origin, localPolicies: intent.localPolicies)
    }
}

extension RedisExecutor {
    /// Lists an opened batch for operators (`<ns>:batches`), outside the script: the index is
    /// not in the batch's slot. Best effort, like the queue registry: a batch missing from it is
    /// still counted and completed, only not listed.
    func index(_ header: BatchHeader) async {
        _ = try? await client.pipeline([
            RedisCommand("ZADD", keys.batches, "NX", String(header.createdAt), "\(header.membership.id) \(header.membership.queue)"),
            RedisCommand("ZREMRANGEBYRANK", keys.batches, 0, -(Self.indexedBatches + 1)),
        ])
    }

    /// Most batches the operators' index keeps (the oldest go first).
    static let indexedBatches = 100_000
}
