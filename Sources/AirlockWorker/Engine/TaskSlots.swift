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
            let expiredAlready = state.withLock { state -> Bool in
                state.running[ticket] = task
                return state.expired
            }
            if expiredAlready { task.cancel() }
            var settlement = await task.value
            let expired = state.withLock { state -> Bool in
                state.running[ticket] = nil
                return state.expired
            }
            if expired && !settlement.succeeded {
                let instruments = settlement.instruments
                settlement = Settlement(job: job.fetched, outcome: .requeue)
                settlement.instruments = instruments
            }
            settlement.instruments?.count(settlement.outcome)
            settlement.holdsSlot = true
            settler.submit(settlement)
            buffer.finished(ticket)
        }
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
