import Logging
import Synchronization

/// The worker's task slots: each takes the next job from the buffer, runs it, and hands the
/// outcome to the settler.
///
/// Each job runs in a task of its own so a shutdown that reaches its deadline can cancel the
/// jobs still running; those that then did not succeed go back to their queue instead of being
/// counted as failures.
final class TaskSlots: Sendable {
    private struct State {
        var running: [Int: Task<Settlement, Never>] = [:]
        var expired = false
        /// Tickets an operator cancelled: their jobs settle as cancelled unless they succeeded.
        var cancelled: Set<Int> = []
    }
    private let buffer: WorkBuffer
    private let runner: JobRunner
    private let settler: Settler
    private let state = Mutex(State())

    init(buffer: WorkBuffer, runner: JobRunner, settler: Settler) {
        self.buffer = buffer
        self.runner = runner
        self.settler = settler
    }

    /// One slot's loop; returns when the buffer is closed and empty.
    func run() async {
        while let (ticket, job) = await buffer.next() {
            let runner = self.runner
            let task = Task { await runner.run(job) }
            let cancelNow = state.withLock { state -> Bool in
                state.running[ticket] = task
                return state.expired || state.cancelled.contains(ticket)
            }
            if cancelNow { task.cancel() }
            var settlement = await task.value
            let (expired, revoked) = state.withLock { state -> (Bool, Bool) in
                state.running[ticket] = nil
                return (state.expired, state.cancelled.remove(ticket) != nil)
            }
            // The job's outcome changes; its instruments and batch stay (a failure's result does not).
            if revoked && !settlement.succeeded {
                settlement.outcome = .cancelled
                settlement.result = nil
            } else if expired && !settlement.succeeded {
                settlement.outcome = .requeue
                settlement.result = nil
            }
            settlement.instruments?.count(settlement.outcome)
            settlement.holdsSlot = true
            settler.submit(settlement)
            buffer.finished(ticket)
        }
    }

    /// Cancels the tasks of these running jobs for an operator: a task that then does not succeed
    /// settles as cancelled, never retried. A ticket whose task has not registered yet is
    /// cancelled as it does.
    func cancel(tickets: [Int]) {
        let tasks = state.withLock { state -> [Task<Settlement, Never>] in
            state.cancelled.formUnion(tickets)
            return tickets.compactMap { state.running[$0] }
        }
        for task in tasks { task.cancel() }
    }

    /// Cancels every running task; from now on their jobs go back to the queue unless they succeed.
    func expire() {
        let tasks = state.withLock { state -> [Task<Settlement, Never>] in
            state.expired = true
            return Array(state.running.values)
        }
        for task in tasks { task.cancel() }
    }
}
