import Synchronization

/// Sleeps that give their memory back the moment they are cancelled.
///
/// A `Task.sleep` cut short by cancellation returns at once, but its timer, and the task it was to
/// resume, stay allocated until the original deadline (Swift 6.3 on Linux, ~0.7 KB each). A job
/// raced against a 10-minute timeout, or a doorbell rung hundreds of times a second with a long
/// wait, would keep one of those per job or per ring for the whole wait: memory growing with
/// throughput. Here a sleep is an entry in one table. Cancelling it removes the entry and resumes
/// the sleeper at once; one sweeper task sleeps until the earliest deadline (at most `slice` at a
/// time, so its own timer never outlives it by long) and resumes whoever is due.
package final class Deadlines: Sendable {
    /// The process's table, shared by every doorbell and job timeout.
    package static let shared = Deadlines()

    private struct Waiter {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var waiters: [Int: Waiter] = [:]
        /// Whether a sweeper task is running (it stops when the table empties).
        var sweeping = false
        /// When the sweeper's current sleep ends, and that sleep: cancelled to wake the sweeper
        /// early for an earlier deadline.
        var target: ContinuousClock.Instant?
        var sleeper: Task<Void, Never>?
    }

    private enum Arrival {
        case now(Bool)
        case startSweeper
        case wake(Task<Void, Never>)
        case waiting
    }

    private let state = Mutex(State())
    /// Each sleep's key in `waiters`, taken without the lock.
    private let nextID = Atomic<Int>(0)
    private let slice: Duration

    /// A table whose sweeper sleeps at most `slice` at a time (tests pass a long one to show that
    /// an earlier deadline wakes it).
    package init(slice: Duration = .seconds(1)) {
        self.slice = slice
    }

    /// Sleeps until `deadline`.
    /// - Returns: `true` at the deadline, `false` as soon as the task is cancelled (or was already).
    package func sleep(until deadline: ContinuousClock.Instant) async -> Bool {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let arrival = state.withLock { state -> Arrival in
                    // Checked under the lock the cancellation handler takes, so a cancellation that
                    // lands now is seen either here or there, never lost between.
                    if Task.isCancelled { return .now(false) }
                    if deadline <= .now { return .now(true) }
                    state.waiters[id] = Waiter(deadline: deadline, continuation: continuation)
                    if !state.sweeping {
                        state.sweeping = true
                        return .startSweeper
                    }
                    if let target = state.target, deadline < target, let sleeper = state.sleeper {
                        state.sleeper = nil
                        return .wake(sleeper)
                    }
                    return .waiting
                }
                switch arrival {
                case .now(let reached): continuation.resume(returning: reached)
                case .startSweeper: Task.detached { await self.sweep() }
                case .wake(let sleeper): sleeper.cancel()
                case .waiting: break
                }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: false)
        }
    }

    /// How many sleeps are waiting (for tests: a cancelled one must not stay).
    package var waiting: Int { state.withLock { $0.waiters.count } }

    /// Resumes the due sleepers, then sleeps until the next deadline (or `slice`), until none is left.
    private func sweep() async {
        while true {
            let now = ContinuousClock.now
            let (due, sleeper) = state.withLock { state -> ([CheckedContinuation<Bool, Never>], Task<Void, Never>?) in
                var dueIDs: [Int] = []
                var earliest: ContinuousClock.Instant?
                for (id, waiter) in state.waiters {
                    if waiter.deadline <= now {
                        dueIDs.append(id)
                    } else if earliest.map({ waiter.deadline < $0 }) ?? true {
                        earliest = waiter.deadline
                    }
                }
                let due = dueIDs.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
                guard let earliest else {
                    state.sweeping = false
                    state.target = nil
                    state.sleeper = nil
                    return (due, nil)
                }
                let target = min(earliest, now + slice)
                // Made under the lock, so a sleep that arrives with an earlier deadline finds it to cancel.
                let sleeper = Task.detached { _ = try? await Task.sleep(until: target, clock: .continuous) }
                state.target = target
                state.sleeper = sleeper
                return (due, sleeper)
            }
            for continuation in due { continuation.resume(returning: true) }
            guard let sleeper else { return }
            await sleeper.value
        }
    }
}
