import Logging
import Synchronization

/// Logs Redis outages once per change of state, not once per failed attempt, and paces retries.
final class ConnectionState: Sendable {
    private let down = Mutex<Set<String>>([])
    private let logger: Logger
    private let pacing: RedisConfiguration.Backoff

    init(logger: Logger, backoff: RedisConfiguration.Backoff) {
        self.logger = logger
        self.pacing = backoff
    }

    /// Records a failure of `component`; logs only when it was healthy before.
    func failed(_ component: String, _ error: any Error) {
        let first = down.withLock { $0.insert(component).inserted }
        if first { logger.warning("Redis unavailable; retrying with backoff", metadata: ["component": "\(component)", "error": "\(error)"]) }
    }

    /// Records a success of `component`; logs only when it had been failing.
    func recovered(_ component: String) {
        let wasDown = down.withLock { $0.remove(component) != nil }
        if wasDown { logger.notice("Redis reachable again", metadata: ["component": "\(component)"]) }
    }

    /// Sleeps for the `attempt`-th step (1 after the first failure) of the connection's
    /// reconnect backoff, unless cancelled.
    func backoff(attempt: Int) async {
        try? await Task.sleep(for: pacing.delay(attempt: max(attempt - 1, 0)))
    }
}
