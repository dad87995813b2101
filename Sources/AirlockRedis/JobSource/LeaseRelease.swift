/// The one Lua step that hands freed concurrency leases to the workers waiting on a queue's limit,
/// shared by the settle script (jobs settled) and the reaper's recover script (a dead worker's
/// lease deleted).
enum LeaseRelease {
    /// Defines `releaseLeases(wake, limit, freed)`: one token per freed lease pushed onto the
    /// queue's limit wake list — each wakes one worker blocked in `BLPOP` — and the list kept to
    /// the limit's `concurrency` entries (more tokens than leases would only wake workers for
    /// nothing). Nothing without a concurrency limit.
    static let function = """
        local function releaseLeases(wake, limit, freed)
          if freed < 1 then return end
          local cap = tonumber(redis.call('HGET', limit, 'concurrency')) or 0
          if cap < 1 then return end
          for _ = 1, math.min(freed, cap) do redis.call('LPUSH', wake, '1') end
          redis.call('LTRIM', wake, 0, cap - 1)
        end
        """
}
