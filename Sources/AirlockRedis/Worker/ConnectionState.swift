import Logging
import Synchronization

/// Logs Redis outages once per change of state, not once per failed attempt, and paces retries.
final class ConnectionState: Sendable {
    private let down = Mutex<Set<String>>([])
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

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

    /// Sleeps for the `attempt`-th backoff step (capped), unless cancelled.
    static func backoff(attempt: Int) async {
        let milliseconds = min(50 * (1 << min(attempt, 6)), 2_000)
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }
}
