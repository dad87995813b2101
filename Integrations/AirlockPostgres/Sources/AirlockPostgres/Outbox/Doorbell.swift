import Synchronization

/// Wakes one waiting task early: a relay waits for its poll interval, a `NOTIFY` or shutdown
/// rings. A ring with nobody waiting is kept for the next wait.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when rung (now or since the last wait), after `timeout`, or when the task is cancelled.
    /// - Returns: whether it was rung.
    @discardableResult
    func wait(upTo timeout: Duration) async -> Bool {
        if consume() { return true }
        let timedOut = Flag()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return   // the ring came first: no ring of our own
                }
                timedOut.set()
                self.ring()
            }
            group.addTask { await self.waitForRing() }
            await group.next()
            group.cancelAll()
        }
        // The timer's own ring may still be pending when the real one won the race: drop it.
        _ = consume()
        return !timedOut.isSet
    }

    private func consume() -> Bool {
        state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            ring()
        }
    }
}

/// A one-way flag shared between tasks.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
