import Airlock
import AirlockRedisClient
public import AirlockWorker

extension RedisJobSource {
    /// Periodic jobs are written as Airlock envelopes, so only a native-protocol source runs them.
    public var supportsSchedules: Bool { configuration.wireProtocol == .native }

    /// One script in the slot of the schedule's queue: the tick record is read, the jobs of later
    /// ticks pushed, and the record advanced, with nothing in between for another worker to see.
    public func claimTicks(_ claim: TickClaim) async throws -> TickClaimResult {
        guard supportsSchedules else { throw ScheduleError.unsupportedProtocol }
        var args: [[UInt8]] = [
            Array((claim.advanceTo.map { String($0) } ?? "").utf8), Array((claim.initialize.map { String($0) } ?? "").utf8),
        ]
        args.reserveCapacity(2 + claim.jobs.count * 2)
        for job in claim.jobs {
            args.append(Array(String(job.tick).utf8))
            args.append(job.message)
        }
        let reply = try await current().control.evalScript(
            Self.claimTicksScript,
            keys: [Array(keys.scheduleTick(claim.queue, schedule: claim.schedule).utf8), Array(keys.ready(claim.queue).utf8)], args: args)
        let parts = try reply.elements()
        guard parts.count == 2 else { throw RedisError.unexpectedReply(reply, expected: "{last tick, pushed}") }
        let last = try parts[0].optionalBulk().flatMap { Int64(String(decoding: $0, as: UTF8.self)) }
        return TickClaimResult(last: last, enqueued: try parts[1].integer())
    }

    /// `HSET <ns>:schedules` of each schedule's description, with who declared it and when.
    public func describeSchedules(_ schedules: [PeriodicJob], worker: String) async throws {
        guard !schedules.isEmpty else { return }
        let now = epochMilliseconds()
        var fields: [[UInt8]] = []
        for schedule in schedules {
            var record = schedule.record
            record["declared_by"] = .string(worker)
            record["seen_at"] = .int(Int(now))
            var bytes: [UInt8] = []
            JSONWriter.write(.object(record), into: &bytes)
            fields.append(Array(schedule.name.utf8))
            fields.append(bytes)
        }
        _ = try await current().control.send(RedisCommand(arguments: [Array("HSET".utf8), Array(keys.schedules.utf8)] + fields))
    }

    /// KEYS: tick record, ready list. ARGV: advance-to tick or '', initial tick or '', then
    /// (tick, message) pairs, oldest first. Returns {last tick or false, jobs pushed}.
    static let claimTicksScript = RedisScript("""
        #!lua
        local recorded = redis.call('GET', KEYS[1])
        if not recorded then
          if ARGV[2] ~= '' then
            redis.call('SET', KEYS[1], ARGV[2])
            return {ARGV[2], 0}
          end
          return {false, 0}
        end
        local last = tonumber(recorded)
        local kind = redis.call('TYPE', KEYS[2]).ok
        if kind ~= 'none' and kind ~= 'list' then
          return redis.error_reply('WRONGTYPE key ' .. KEYS[2] .. ' holds a ' .. kind .. ', expected a list; no tick was enqueued')
        end
        local pushed = 0
        for i = 3, #ARGV - 1, 2 do
          if tonumber(ARGV[i]) > last then
            redis.call('LPUSH', KEYS[2], ARGV[i + 1])
            pushed = pushed + 1
          end
        end
        if ARGV[1] ~= '' and tonumber(ARGV[1]) > last then
          redis.call('SET', KEYS[1], ARGV[1])
          recorded = ARGV[1]
        end
        return {recorded, pushed}
        """)
}
