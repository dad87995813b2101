/// Waiting in a test for a condition nothing notifies (a list length in Redis, a flag a task
/// sets): polled, with a deadline that only guards against a hang.
///
/// The deadline is never shorter than ``floor``: the machines these suites run on are shared, and
/// their load slows a step three times or more, so a wait must never double as a bound on speed.
/// Speed is measured in `bench/`, not asserted here.
public enum Eventually {
    /// The shortest deadline any wait gets.
    public static let floor: Duration = .seconds(60)

    /// Whether `condition` held before the deadline (`max(timeout, floor)`), checked every `poll`
    /// and once more at the deadline.
    public static func holds(
        within timeout: Duration = floor, poll: Duration = .milliseconds(20), _ condition: () async throws -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + max(timeout, floor)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: poll)
        }
        return try await condition()
    }

    /// Returns once `condition` holds; throws ``EventuallyTimeout`` naming `what` when the deadline
    /// (`max(timeout, floor)`) passes first.
    public static func until(
        _ what: @autoclosure () -> String, within timeout: Duration = floor, poll: Duration = .milliseconds(20),
        _ condition: () async throws -> Bool
    ) async throws {
        let limit = max(timeout, floor)
        guard try await holds(within: limit, poll: poll, condition) else {
            throw EventuallyTimeout(description: "timed out after \(limit) waiting for: \(what())")
        }
    }
}

/// A wait that ran out: what was awaited and for how long.
public struct EventuallyTimeout: Error, CustomStringConvertible {
    /// What was awaited, and for how long.
    public let description: String
}
