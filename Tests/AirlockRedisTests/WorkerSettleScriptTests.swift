@testable import AirlockRedis
import AirlockRedisClient
import AirlockTestKit
import AirlockTestSupport
import Testing

/// The settle script removes each settled job from the in-flight list by its exact bytes, nearest the
/// tail first, and skips (counts nothing for) a job no longer there. Whatever the mix — jobs at the
/// tail and deeper, repeats, jobs a reaper already took — the list must end exactly as one
/// `LREM inflight -1 <job>` per settlement leaves it, and the count must be the same. The script's
/// whole contract with the reaper and with resends rests on this.
@Suite("Worker settle script: leaving the in-flight list", .timeLimit(.minutes(5)))
struct WorkerSettleScriptTests {
    /// What sequential `LREM key -1 job` calls leave of `list` (index 0 = head) and how many removed one.
    static func model(_ list: [String], removing jobs: [String]) -> (list: [String], removed: Int) {
        var list = list, removed = 0
        for job in jobs {
            if let index = list.lastIndex(of: job) {
                list.remove(at: index)
                removed += 1
            }
        }
        return (list, removed)
    }

    /// KEYS as `settle` builds them (in-flight, stats, home, delayed, dead, wake, series, leases,
    /// limit wake, limit) in `namespace`.
    static func keys(_ namespace: String) -> [[UInt8]] {
        ["inflight", "stats", "ready", "delayed", "dead", "wake", "series", "held", "limit-wake", "limit"].map { Array("\(namespace):{q}:\($0)".utf8) }
    }

    /// ARGV for acknowledging `jobs`: alternately the short form (`a`, job) and the long `ack` form,
    /// so both paths through the script remove jobs.
    static func arguments(acknowledging jobs: [String]) -> [[UInt8]] {
        var args: [[UInt8]] = [Array("1000".utf8), Array("1700000000000".utf8), Array("w1".utf8)]
        for (index, job) in jobs.enumerated() {
            if index.isMultiple(of: 2) {
                args += [Array("a".utf8), Array(job.utf8)]
            } else {
                args += ["ack", job, "", "0", "0", "", "0", "0", "0"].map { Array($0.utf8) }
            }
        }
        return args
    }

    /// The list at `key`, head first.
    static func list(_ client: RedisClient, _ key: [UInt8]) async throws -> [String] {
        try await client.send(RedisCommand("LRANGE", key, 0, -1)).bulks().map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("random lists and batches: the list and the count match one LREM per job", arguments: [1, 2, 3, 4])
    func randomBatchesMatchOneLREMPerJob(seed: UInt64) async throws {
        let server = try await RedisServer.shared()
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url), name: "t-settle-script", logger: WorkerKit.quiet)
        var random = SeededShuffle(state: seed)
        for round in 0..<60 {
            let namespace = RedisServer.uniqueNamespace("settle-\(seed)-\(round)")
            let keys = Self.keys(namespace)
            // Distinct jobs plus a few exact repeats (a job delivered twice to this worker).
            let distinct = Int.random(in: 0...40, using: &random)
            var list = (0..<distinct).map { "job-\(round)-\($0)" }
            for _ in 0..<Int.random(in: 0...3, using: &random) where !list.isEmpty {
                list.insert(list.randomElement(using: &random)!, at: Int.random(in: 0...list.count, using: &random))
            }
            // Settled: mostly the oldest (the tail), some deeper, some no longer held, some twice.
            var settled: [String] = []
            let fromTail = Int.random(in: 0...min(list.count, 30), using: &random)
            settled += list.suffix(fromTail).shuffled(using: &random)
            for _ in 0..<Int.random(in: 0...4, using: &random) where !list.isEmpty { settled.append(list.randomElement(using: &random)!) }
            for gone in 0..<Int.random(in: 0...2, using: &random) { settled.append("reaped-\(round)-\(gone)") }
            settled.shuffle(using: &random)
            guard !settled.isEmpty else { continue }

            if !list.isEmpty { _ = try await client.send([Array("RPUSH".utf8), keys[0]] + list.map { Array($0.utf8) }) }
            let reply = try await client.evalScript(RedisJobSource.settleScript, keys: keys, args: Self.arguments(acknowledging: settled))
            let left = try await Self.list(client, keys[0])
            let expected = Self.model(list, removing: settled)
            let context = "seed \(seed) round \(round): list \(list), settled \(settled)"
            #expect(left == expected.list, "\(context)")
            #expect(reply == .integer(expected.removed), "\(context)")
            let processed = try await client.send(RedisCommand("HGET", keys[1], "processed"))
            #expect(processed.int ?? 0 == expected.removed, "\(context)")
            _ = try await client.send(RedisCommand("DEL", keys[0], keys[1], keys[6]))
        }
        await client.close()
    }

    @Test("the running oldest job stays at the tail; a batch of everything left empties the list; a resend removes nothing")
    func tailAndDeepBatches() async throws {
        let server = try await RedisServer.shared()
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url), name: "t-settle-script", logger: WorkerKit.quiet)
        let keys = Self.keys(RedisServer.uniqueNamespace("settle-shapes"))
        let list = (0..<10).map { "j\($0)" }
        _ = try await client.send([Array("RPUSH".utf8), keys[0]] + list.map { Array($0.utf8) })

        // The oldest (the tail, j9) is still running; two next to it and one deeper finished.
        var reply = try await client.evalScript(RedisJobSource.settleScript, keys: keys, args: Self.arguments(acknowledging: ["j5", "j8", "j7"]))
        #expect(reply == .integer(3))
        #expect(try await Self.list(client, keys[0]) == ["j0", "j1", "j2", "j3", "j4", "j6", "j9"])

        // Everything else, newest first; then the same batch again (a resend after a lost reply).
        let rest = ["j0", "j1", "j2", "j3", "j4", "j6", "j9"]
        reply = try await client.evalScript(RedisJobSource.settleScript, keys: keys, args: Self.arguments(acknowledging: rest))
        #expect(reply == .integer(7))
        #expect(try await client.send(RedisCommand("EXISTS", keys[0])) == .integer(0))
        reply = try await client.evalScript(RedisJobSource.settleScript, keys: keys, args: Self.arguments(acknowledging: rest))
        #expect(reply == .integer(0))
        #expect(try await Self.list(client, keys[0]).isEmpty)
        _ = try await client.send(RedisCommand("DEL", keys[1], keys[6]))
        await client.close()
    }
}
