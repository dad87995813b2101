import Airlock
import AirlockRedisClient
import AirlockWorker
import Logging

/// Final outcomes of batch jobs whose batch record is in another hash slot of a Redis Cluster
/// (docs/PROTOCOL.md, "A batch across slots"). No script may touch two slots, so the settle (or
/// cancel) script of such a job adds one entry to `<ns>:{J}:batch-tallies` in its own queue's slot,
/// atomically with the settlement, and the worker then *folds* the set: it counts each entry in
/// its batch (`countInBatch` in the batch's slot, which counts a job id once) and only then removes
/// it. A worker that dies between the two leaves the entries for the next fold (every worker's
/// reaper folds the tallies of every queue), which counts them once all the same.
enum BatchTallies {
    /// One tally: a job's final outcome in its batch.
    struct Entry: Hashable {
        /// `succeeded`, `dead` or `cancelled`: the record's field it counts in.
        let field: String
        let count: BatchCount

        /// The set member: a JSON array `[field, batch queue, batch id, job id]` (any bytes of the
        /// id survive it).
        var encoded: [UInt8] {
            var out: [UInt8] = []
            JSONWriter.write(.array([.string(field), .string(count.batch.queue), .string(count.batch.id), .string(count.jobID)]), into: &out)
            return out
        }

        /// Reads a member back; nil for anything this code did not write (or a batch whose queue
        /// is not a valid queue name, which must not aim the count at arbitrary keys).
        init?(_ bytes: [UInt8]) {
            guard case .array(let fields)? = try? JSONParser.parse(bytes), fields.count == 4,
                  let field = fields[0].stringValue, Self.fields.contains(field),
                  let queue = fields[1].stringValue, let id = fields[2].stringValue, let jobID = fields[3].stringValue,
                  let batch = BatchMembership(extra: [BatchMembership.idField: .string(id), BatchMembership.queueField: .string(queue)])
            else { return nil }
            self.init(field: field, count: BatchCount(batch: batch, jobID: jobID))
        }

        init(field: String, count: BatchCount) {
            self.field = field
            self.count = count
        }

        static let fields: Set<String> = ["succeeded", "dead", "cancelled"]
    }

    /// Most entries one fold reads from one queue's set per round.
    static let foldLimit = 256

    /// Counts the tallies of `queues` in their batches and removes them; returns how many entries
    /// it folded. Safe anywhere, any number of times at once: a job id counts once in its batch.
    /// An entry it cannot read is logged (escaped) and moved to `<ns>:{J}:batch-tallies:unreadable`
    /// for an operator.
    @discardableResult
    static func fold(queues: [String], client: RedisClient, keys: RedisKeys, logger: Logger) async throws(RedisError) -> Int {
        var folded = 0
        var pending = queues
        while !pending.isEmpty {
            let replies = try await client.pipeline(pending.map { RedisCommand("SRANDMEMBER", keys.batchTallies($0), foldLimit) })
            var full: [String] = []
            for (queue, reply) in zip(pending, replies) {
                let members = try reply.throwingServerError().array?.compactMap(\.bytes) ?? []
                guard !members.isEmpty else { continue }
                var groups: [String: (entry: Entry, ids: [String])] = [:]
                var readable: [[UInt8]] = []
                for member in members {
                    guard let entry = Entry(member) else {
                        // Set aside once, for an operator, rather than read again at every fold.
                        _ = try await client.send([Array("SMOVE".utf8), Array(keys.batchTallies(queue).utf8), Array(keys.unreadableBatchTallies(queue).utf8), member])
                        logger.error("a batch tally cannot be read; set aside", metadata: [
                            "key": "\(SafeText.escape(keys.unreadableBatchTallies(queue)))", "entry": "\(SafeText.escape(String(decoding: member.prefix(200), as: UTF8.self)))"])
                        continue
                    }
                    readable.append(member)
                    groups["\(entry.field) \(entry.count.batch.queue) \(entry.count.batch.id)", default: (entry, [])].ids.append(entry.count.jobID)
                }
                guard !readable.isEmpty else { continue }
                let now = Array(String(epochMilliseconds()).utf8)
                let calls = groups.values.map { group in
                    BatchCounting.countScript.call(
                        keys: BatchCounting.keys(group.entry.count.batch, keys),
                        arguments: [Array(group.entry.field.utf8), now] + group.ids.map { Array($0.utf8) })
                }
                for reply in try await client.evaluate(calls) { _ = try reply.throwingServerError() }
                // Counted: only now may the entries go (a crash before this leaves them to count again, once).
                _ = try await client.send([Array("SREM".utf8), Array(keys.batchTallies(queue).utf8)] + readable).throwingServerError()
                folded += readable.count
                if members.count == foldLimit, readable.count == members.count { full.append(queue) }
            }
            pending = full
        }
        return folded
    }
}
