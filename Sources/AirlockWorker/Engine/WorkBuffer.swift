import Synchronization

/// The worker's bounded hand-off between fetchers and task slots.
///
/// Capacity is `concurrency + prefetch` jobs, counting jobs being fetched (reserved), waiting
/// here, and running. Fetchers reserve slots before taking jobs from Redis, so the worker never
/// holds more than its capacity. Slots and waiting jobs both go to the earliest queue in the
/// worker's list first.
final class WorkBuffer: Sendable {
    private struct SlotWaiter {
        let laneIndex: Int
        let maximum: Int
        let continuation: CheckedContinuation<Int, Never>
    }
    private struct State {
        var used = 0
        var waiting: [[Job]]
        var running: [Int: Job] = [:]
        var nextTicket = 0
        var slotWaiters: [SlotWaiter] = []
        var jobWaiters: [CheckedContinuation<(Int, Job)?, Never>] = []
        var fetching = true
        var open = true
    }

    private let capacity: Int
    private let state: Mutex<State>

    init(capacity: Int, laneCount: Int) {
        self.capacity = max(capacity, 1)
        self.state = Mutex(State(waiting: Array(repeating: [], count: laneCount)))
    }

    /// Waits for at least one free slot and reserves up to `maximum`; 0 once fetching has stopped.
    func reserve(laneIndex: Int, maximum: Int) async -> Int {
        await deliverAndReserve([], laneIndex: laneIndex, reserved: 0, maximum: maximum)
    }

    /// Hands over fetched jobs and returns the reserved slots that were not used.
    func deliver(_ jobs: [Job], laneIndex: Int, reserved: Int) {
        var resumes: [() -> Void] = []
        state.withLock { state in
            Self.apply(jobs, laneIndex: laneIndex, reserved: reserved, to: &state)
            resumes = Self.match(&state, capacity: capacity)
        }
        for resume in resumes { resume() }
    }

    /// ``deliver(_:laneIndex:reserved:)`` and ``reserve(laneIndex:maximum:)`` as one step, so a
    /// fetcher that just found work keeps its place: a slot freed in between cannot go to a
    /// later queue first.
    func deliverAndReserve(_ jobs: [Job], laneIndex: Int, reserved: Int, maximum: Int) async -> Int {
        await withCheckedContinuation { continuation in
            var resumes: [() -> Void] = []
            state.withLock { state in
                Self.apply(jobs, laneIndex: laneIndex, reserved: reserved, to: &state)
                if !state.fetching {
                    resumes.append { continuation.resume(returning: 0) }
                } else {
                    state.slotWaiters.append(SlotWaiter(laneIndex: laneIndex, maximum: maximum, continuation: continuation))
                    state.slotWaiters.sort { $0.laneIndex < $1.laneIndex }
                }
                resumes += Self.match(&state, capacity: capacity)
            }
            for resume in resumes { resume() }
        }
    }

    /// Accounts delivered jobs against the fetcher's reservation. Jobs beyond it (a blocking take
    /// made without a reservation) count too: that lets an idle fetcher wait without holding a slot.
    private static func apply(_ jobs: [Job], laneIndex: Int, reserved: Int, to state: inout State) {
        state.used += jobs.count - reserved
        state.waiting[laneIndex].append(contentsOf: jobs)
    }

    /// The next job to run (earliest queue first) with a ticket for ``finished(_:)``; `nil`
    /// once the buffer is closed and empty.
    func next() async -> (Int, Job)? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> (Int, Job)?? in
                if let job = Self.popWaiting(&state) { return .some(job) }
                if !state.open { return .some(nil) }
                state.jobWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Marks a job as no longer running. Its slot stays taken until ``release(_:)``: a job
    /// counts against the worker's capacity until its settlement has reached Redis, so a slow
    /// acknowledgement path throttles fetching instead of letting held jobs pile up.
    func finished(_ ticket: Int) {
        state.withLock { _ = $0.running.removeValue(forKey: ticket) }
    }

    /// Frees the slots of `count` jobs whose settlements reached Redis.
    func release(_ count: Int) {
        guard count > 0 else { return }
        var resumes: [() -> Void] = []
        state.withLock { state in
            state.used -= count
            resumes = Self.match(&state, capacity: capacity)
        }
        for resume in resumes { resume() }
    }

    /// The jobs of `queue` this worker holds (waiting or running).
    func heldJobs(queue: String) -> [[UInt8]] {
        state.withLock { state in
            (state.waiting.flatMap { $0 } + state.running.values).filter { $0.queue == queue }.map(\.raw)
        }
    }

    /// Number of jobs held (running or waiting).
    var heldCount: Int { state.withLock { $0.running.count + $0.waiting.reduce(0) { $0 + $1.count } } }

    /// Stops handing out slots: waiting fetchers get 0 and stop.
    func stopFetching() {
        let waiters = state.withLock { state -> [SlotWaiter] in
            state.fetching = false
            defer { state.slotWaiters.removeAll() }
            return state.slotWaiters
        }
        for waiter in waiters { waiter.continuation.resume(returning: 0) }
    }

    /// Takes the jobs that have not started, leaving the buffer open (a reaped worker gives them up).
    func takeUnstarted() -> [Job] {
        state.withLock { Self.takeWaiting(&$0) { _ in true } }
    }

    /// Takes the jobs matching `matches` that have not started (an operator cancelled them).
    func takeUnstarted(where matches: (Job) -> Bool) -> [Job] {
        state.withLock { Self.takeWaiting(&$0, where: matches) }
    }

    /// The tickets of the running jobs matching `matches`.
    func runningTickets(where matches: (Job) -> Bool) -> [Int] {
        state.withLock { state in state.running.filter { matches($0.value) }.map(\.key) }
    }

    /// Closes the buffer and returns the jobs that never started; task slots then see `nil`.
    func closeAndTakeUnstarted() -> [Job] {
        let (jobs, waiters) = state.withLock { state -> ([Job], [CheckedContinuation<(Int, Job)?, Never>]) in
            state.open = false
            let jobs = Self.takeWaiting(&state) { _ in true }
            defer { state.jobWaiters.removeAll() }
            return (jobs, state.jobWaiters)
        }
        for waiter in waiters { waiter.resume(returning: nil) }
        return jobs
    }

    /// Removes the waiting jobs `matches` accepts (asked once per job), in lane order, and frees
    /// their slots.
    private static func takeWaiting(_ state: inout State, where matches: (Job) -> Bool) -> [Job] {
        var taken: [Job] = []
        for index in state.waiting.indices {
            var kept: [Job] = []
            for job in state.waiting[index] {
                if matches(job) { taken.append(job) } else { kept.append(job) }
            }
            state.waiting[index] = kept
        }
        state.used -= taken.count
        return taken
    }

    private static func popWaiting(_ state: inout State) -> (Int, Job)? {
        for index in state.waiting.indices where !state.waiting[index].isEmpty {
            let job = state.waiting[index].removeFirst()
            let ticket = state.nextTicket
            state.nextTicket += 1
            state.running[ticket] = job
            return (ticket, job)
        }
        return nil
    }

    /// Pairs waiting jobs with idle task slots and free slots with waiting fetchers.
    private static func match(_ state: inout State, capacity: Int) -> [() -> Void] {
        var resumes: [() -> Void] = []
        while !state.jobWaiters.isEmpty, let job = popWaiting(&state) {
            let waiter = state.jobWaiters.removeFirst()
            resumes.append { waiter.resume(returning: job) }
        }
        while state.fetching, capacity - state.used > 0, !state.slotWaiters.isEmpty {
            let waiter = state.slotWaiters.removeFirst()
            let count = min(capacity - state.used, waiter.maximum)
            state.used += count
            resumes.append { waiter.continuation.resume(returning: count) }
        }
        return resumes
    }
}
