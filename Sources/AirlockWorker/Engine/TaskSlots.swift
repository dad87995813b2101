import Logging
import Synchronization

/// The worker's task slots: each takes the next job from the buffer, runs it, and hands the
/// outcome to the settler.
///
/// A slot runs its jobs one after another inside one task of its own, not a task per job (that
/// cost a quarter of the worker's CPU per no-op job: docs/BENCHMARKS.md). A shutdown that reaches
/// its deadline, or an operator's cancel, cancels the task of the slot running that job; the
/// slot settles the job — those that then did not succeed go back to their queue, or count as
/// cancelled, instead of as failures — and, since a task stays cancelled, hands over to a fresh
/// task for the next job.
final class TaskSlots: Sendable {
    private struct State {
        /// The slot each started, unsettled ticket runs in.
        var running: [Int: Int] = [:]
        /// Each slot's current task.
        var tasks: [Int: Task<Bool, Never>] = [:]
        var nextSlot = 0
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

    /// One slot; returns when the buffer is closed and empty.
    func run() async {
        let slot = state.withLock { state in
            defer { state.nextSlot += 1 }
            return state.nextSlot
        }
        while true {
            // Created under the lock, so `cancel` and `expire` always find the slot's task.
            let task = state.withLock { state in
                let task = Task { await self.runJobs(slot: slot) }
                state.tasks[slot] = task
                return task
            }
            guard await task.value else { break }
        }
        state.withLock { _ = $0.tasks.removeValue(forKey: slot) }
    }

    /// Runs jobs until the buffer is closed and empty (false), or until one of them was cancelled
    /// (true: this task stays cancelled, so a fresh one must run the next job).
    private func runJobs(slot: Int) async -> Bool {
        while let (ticket, job) = await buffer.next() {
            let cancelNow = state.withLock { state -> Bool in
                state.running[ticket] = slot
                // An empty set is checked first: hashing the ticket is a measurable share of a no-op job.
                return state.expired || (!state.cancelled.isEmpty && state.cancelled.contains(ticket))
            }
            if cancelNow { withUnsafeCurrentTask { $0?.cancel() } }
            var settlement = await runner.run(job)
            // Once the ticket is off `running`, nothing cancels this task on its behalf any more.
            let (expired, revoked) = state.withLock { state -> (Bool, Bool) in
                state.running[ticket] = nil
                return (state.expired, !state.cancelled.isEmpty && state.cancelled.remove(ticket) != nil)
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
            if Task.isCancelled { return true }
        }
        return false
    }

    /// Cancels the tasks of these running jobs for an operator: a task that then does not succeed
    /// settles as cancelled, never retried. A ticket whose job has not registered yet is
    /// cancelled as it does.
    func cancel(tickets: [Int]) {
        // Cancelled under the lock: a slot cannot move on to another job in between (it takes the
        // lock to settle), so no other job's task is cancelled by mistake.
        state.withLock { state in
            state.cancelled.formUnion(tickets)
            for ticket in tickets {
                if let slot = state.running[ticket] { state.tasks[slot]?.cancel() }
            }
        }
    }

    /// Cancels every running job; from now on their jobs go back to the queue unless they succeed.
    func expire() {
        state.withLock { state in
            state.expired = true
            for slot in Set(state.running.values) { state.tasks[slot]?.cancel() }
        }
    }
}
