import Synchronization

/// Wakes one sleeping loop early: a promoter sleeping until its next due job when an earlier one
/// arrives, a settler with work, an outbox relay on a `NOTIFY` or at shutdown. A ring with nobody
/// waiting is remembered until the next wait.
///
/// A ring that lands just as a wait times out may be reported as the timeout. The loops that use
/// it re-check their condition after every wake-up either way, so nothing is lost.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Bool, Never>?
    }
    private let state = Mutex(State())

    private let deadlines: Deadlines

    /// A doorbell nobody has rung.
    public init() {
        deadlines = .shared
    }

    /// A doorbell whose timed waits sleep in `deadlines` (tests count what is left there).
    package init(deadlines: Deadlines) {
        self.deadlines = deadlines
    }

    /// Wakes the waiter, or the next one to wait.
    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// Returns at `deadline`, on a ring, or when the task is cancelled, whichever comes first.
    /// - Returns: whether it was rung (now or since the last wait).
    @discardableResult
    public func wait(until deadline: ContinuousClock.Instant) async -> Bool {
        if takeRing() { return true }
        return await withTaskGroup(of: Bool.self) { group in
            // Not `Task.sleep`: cancelled by every ring, it would stay allocated until `deadline`.
            group.addTask { _ = await self.deadlines.sleep(until: deadline); return false }
            group.addTask { await self.waitForRing() }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Returns on a ring or when the task is cancelled: for a loop with nothing to do until rung,
    /// this costs no timer and no child tasks.
    /// - Returns: whether it was rung (now or since the last wait); `false` when cancelled.
    @discardableResult
    public func wait() async -> Bool {
        if takeRing() { return true }
        return await waitForRing()
    }

    /// Whether a ring is waiting to be taken; takes it.
    private func takeRing() -> Bool {
        state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    /// ``wait(until:)`` for at most `timeout`.
    @discardableResult
    public func wait(upTo timeout: Duration) async -> Bool {
        await wait(until: .now + timeout)
    }

    /// True when resumed by a ring, false when by cancellation.
    private func waitForRing() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: false)
        }
    }
}
