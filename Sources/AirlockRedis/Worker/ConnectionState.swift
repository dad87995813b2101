import Airlock
import Logging
import Synchronization

/// Logs Redis trouble once per change of state, not once per failed attempt, paces retries, and
/// stops the worker when Redis refuses it for good.
///
/// Three kinds of trouble are told apart, because an operator fixes each differently:
/// - an outage (refused, timed out, connection lost): "Redis unavailable", retried with backoff;
/// - a refusal Redis may lift (`OOM` at `maxmemory`, `LOADING`, `BUSY`): "Redis refused …", with
///   its reason, retried with backoff;
/// - a configuration problem (wrong password, an ACL without a command the worker needs): fatal,
///   reported once through `onFatal`, never retried in a loop.
final class ConnectionState: Sendable {
    private let down = Mutex<[String: String]>([:])
    private let logger: Logger
    private let pacing: RedisConfiguration.Backoff
    private let onFatal: @Sendable (RedisError) -> Void

    init(logger: Logger, backoff: RedisConfiguration.Backoff, onFatal: @escaping @Sendable (RedisError) -> Void = { _ in }) {
        self.logger = logger
        self.pacing = backoff
        self.onFatal = onFatal
    }

    /// Records a failure of `component`; logs when its state changed (healthy → failing, or a
    /// different kind of failure). Returns true when the error is fatal (the worker is stopping).
    @discardableResult
    func failed(_ component: String, _ error: any Error) -> Bool {
        let redis = error as? RedisError
        if let redis, redis.isConfigurationProblem {
            logger.critical("Redis refused this worker for good; stopping", metadata: [
                "component": "\(component)", "error": "\(SafeText.escape(redis.description))",
            ])
            onFatal(redis)
            return true
        }
        let state = redis.map { $0.kind == .server ? "refused:\($0.serverErrorCode ?? "")" : "down" } ?? "down"
        let changed = down.withLock { states in
            defer { states[component] = state }
            return states[component] != state
        }
        guard changed else { return false }
        let metadata: Logger.Metadata = ["component": "\(component)", "error": "\(SafeText.escape("\(error)"))"]
        if state == "down" {
            logger.warning("Redis unavailable; retrying with backoff", metadata: metadata)
        } else {
            logger.warning("Redis refused a command; retrying with backoff", metadata: metadata)
        }
        return false
    }

    /// Records a success of `component`; logs only when it had been failing.
    func recovered(_ component: String) {
        let wasDown = down.withLock { $0.removeValue(forKey: component) != nil }
        if wasDown { logger.notice("Redis reachable again", metadata: ["component": "\(component)"]) }
    }

    /// Sleeps for the `attempt`-th step (1 after the first failure) of the connection's
    /// reconnect backoff, unless cancelled.
    func backoff(attempt: Int) async {
        try? await Task.sleep(for: pacing.delay(attempt: max(attempt - 1, 0)))
    }
}
