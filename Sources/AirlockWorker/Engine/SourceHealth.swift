import Airlock
import Logging
import Synchronization

/// Logs trouble with the job source once per change of state, not once per failed attempt, paces
/// retries, and stops the worker when the source refuses it for good.
///
/// Three kinds of trouble are told apart (``JobSource/classify(_:)``), because an operator fixes
/// each differently:
/// - an outage (refused, timed out, connection lost): "unavailable", retried with backoff;
/// - a refusal the back end may lift (out of memory, loading, busy): "refused", with its reason,
///   retried with backoff;
/// - a configuration problem (wrong password, missing permission): fatal, reported once through
///   `onFatal`, never retried in a loop.
final class SourceHealth: Sendable {
    private let down = Mutex<[String: String]>([:])
    private let source: any JobSource
    private let logger: Logger
    private let pacing: Backoff
    private let onFatal: @Sendable (any Error) -> Void

    init(source: any JobSource, logger: Logger, backoff: Backoff, onFatal: @escaping @Sendable (any Error) -> Void) {
        self.source = source
        self.logger = logger
        self.pacing = backoff
        self.onFatal = onFatal
    }

    /// Records a failure of `component`; logs when its state changed (healthy → failing, or a
    /// different kind of failure). Returns true when the error is fatal (the worker is stopping).
    @discardableResult
    func failed(_ component: String, _ error: any Error) -> Bool {
        let failure = source.classify(error)
        let metadata: Logger.Metadata = ["component": "\(component)", "error": "\(SafeText.escape("\(error)"))"]
        let state: String
        switch failure {
        case .fatal:
            logger.critical("\(source.name) refused this worker for good; stopping", metadata: metadata)
            onFatal(error)
            return true
        case .unavailable: state = "down"
        case .refused(let reason): state = "refused:\(reason)"
        }
        let changed = down.withLock { states in
            defer { states[component] = state }
            return states[component] != state
        }
        guard changed else { return false }
        if state == "down" {
            logger.warning("\(source.name) unavailable; retrying with backoff", metadata: metadata)
        } else {
            logger.warning("\(source.name) refused a command; retrying with backoff", metadata: metadata)
        }
        return false
    }

    /// Whether `error` may have been applied by the source before it failed.
    func mayHaveBeenApplied(_ error: any Error) -> Bool {
        if case .unavailable(mayHaveBeenApplied: true) = source.classify(error) { return true }
        return false
    }

    /// Records a success of `component`; logs only when it had been failing.
    func recovered(_ component: String) {
        let wasDown = down.withLock { $0.removeValue(forKey: component) != nil }
        if wasDown { logger.notice("\(source.name) reachable again", metadata: ["component": "\(component)"]) }
    }

    /// Sleeps for the `attempt`-th step (1 after the first failure) of the backoff, unless cancelled.
    func backoff(attempt: Int) async {
        try? await Task.sleep(for: pacing.delay(attempt: max(attempt - 1, 0)))
    }
}
