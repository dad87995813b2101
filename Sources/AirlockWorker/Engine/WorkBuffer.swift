import Synchronization

/// The worker's bounded hand-off between fetchers and task slots.
///
/// Capacity is `concurrency + prefetch` jobs, counting jobs being fetched (reserved), waiting
/// here, and running. Fetchers reserve slots before taking jobs from Redis, so the worker never
/// holds more than its capacity. Slots and waiting jobs both go to the earliest queue in the
/// worker's list first; lanes of equal rank (the partitions of one partitioned queue) take turns.
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
        /// Per lane: slots granted and jobs handed out so far, for turns among equal ranks.
        var granted: [Int]
        var handedOut: [Int]
    }

    private let capacity: Int
    private let state: Mutex<State>
    /// Per lane: its priority, lowest first; equal ranks share one and take turns.
    private let ranks: [Int]

    /// A buffer for lanes of the given ranks (one per lane, lowest served first).
    init(capacity: Int, ranks: [Int]) {
        self.capacity = max(capacity, 1)
        self.ranks = ranks
        let zeros = Array(repeating: 0, count: ranks.count)
        self.state = Mutex(State(waiting: Array(repeating: [], count: ranks.count), granted: zeros, handedOut: zeros))
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
            resumes = Self.match(&state, capacity: capacity, ranks: ranks)
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
                }
                resumes += Self.match(&state, capacity: capacity, ranks: ranks)
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
                if let job = Self.popWaiting(&state, ranks: ranks) { return .some(job) }
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
            resumes = Self.match(&state, capacity: capacity, ranks: ranks)
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

    /// The next waiting job: from the lowest rank that has one; within a rank, from the lane
    /// served least so far.
    private static func popWaiting(_ state: inout State, ranks: [Int]) -> (Int, Job)? {
        var best: Int?
        for index in state.waiting.indices where !state.waiting[index].isEmpty {
            guard let current = best else { best = index; continue }
            if ranks[index] > ranks[current] { break }
            if state.handedOut[index] < state.handedOut[current] { best = index }
        }
        guard let index = best else { return nil }
        let job = state.waiting[index].removeFirst()
        state.handedOut[index] += 1
        let ticket = state.nextTicket
        state.nextTicket += 1
        state.running[ticket] = job
        return (ticket, job)
    }

    /// Pairs waiting jobs with idle task slots and free slots with waiting fetchers (lowest rank
    /// first; within a rank, the lane granted least so far).
    private static func match(_ state: inout State, capacity: Int, ranks: [Int]) -> [() -> Void] {
        var resumes: [() -> Void] = []
        while !state.jobWaiters.isEmpty, let job = popWaiting(&state, ranks: ranks) {
            let waiter = state.jobWaiters.removeFirst()
            resumes.append { waiter.resume(returning: job) }
        }
        while state.fetching, capacity - state.used > 0, !state.slotWaiters.isEmpty {
            var pick = 0
            for candidate in state.slotWaiters.indices.dropFirst() {
                let a = state.slotWaiters[candidate].laneIndex, b = state.slotWaiters[pick].laneIndex
                if (ranks[a], state.granted[a], a) < (ranks[b], state.granted[b], b) { pick = candidate }
            }
            let waiter = state.slotWaiters.remove(at: pick)
            let count = min(capacity - state.used, waiter.maximum)
            state.used += count
            state.granted[waiter.laneIndex] += 1
            resumes.append { waiter.continuation.resume(returning: count) }
        }
        return resumes
    }
}
