import Synchronization

/// Hands finished jobs' settlements to the source in batches: whatever accumulated while the
/// previous batch was being written goes in the next one, so settling costs one round trip per
/// batch, not per job.
///
/// A batch that fails is kept and sent again (settling is idempotent) until the source takes it.
final class Settler: Sendable {
    private struct State {
        var pending: [Settlement] = []
        /// The batch being written now.
        var sending: [Settlement] = []
        var drainWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let source: any JobSource
    private let state = Mutex(State())
    private let doorbell = Doorbell()
    private let health: SourceHealth
    /// Called with the number of slot-holding settlements each time a batch was written.
    private let written: @Sendable (Int) -> Void

    init(source: any JobSource, health: SourceHealth, written: @escaping @Sendable (Int) -> Void) {
        self.source = source
        self.health = health
        self.written = written
    }

    /// Queues a settlement; it reaches the source with the next batch.
    func submit(_ settlement: Settlement) {
        state.withLock { $0.pending.append(settlement) }
        doorbell.ring()
    }

    /// The jobs of `queue` whose settlement has not been written yet: they are still, rightly,
    /// held by this worker.
    func unsettledJobs(queue: String) -> [[UInt8]] {
        state.withLock { state in
            (state.sending + state.pending).filter { $0.job.queue == queue }.map(\.job.raw)
        }
    }

    /// Returns once everything submitted so far has been written, or when the task is cancelled.
    func drain() async {
        let id = state.withLock { state -> Int in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> Bool in
                    if (state.pending.isEmpty && state.sending.isEmpty) || Task.isCancelled { return true }
                    state.drainWaiters[id] = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.drainWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Sends batches until cancelled; cancellation waits for nothing, so call ``drain()`` first.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let batch = state.withLock { state -> [Settlement] in
                defer { state.pending.removeAll(keepingCapacity: true) }
                state.sending = state.pending
                return state.pending
            }
            if batch.isEmpty {
                releaseDrainWaiters()
                await doorbell.wait()
                continue
            }
            do {
                try await source.settle(batch)
                written(batch.reduce(0) { $0 + ($1.holdsSlot ? 1 : 0) })
                health.recovered("acknowledge")
                failures = 0
                state.withLock { $0.sending = [] }
            } catch {
                // Keep the batch: settlements are idempotent, so it is resent until the source takes it.
                state.withLock { state in
                    state.pending.insert(contentsOf: batch, at: 0)
                    state.sending = []
                }
                if health.failed("acknowledge", error) { return }
                failures += 1
                await health.backoff(attempt: failures)
            }
        }
    }

    private func releaseDrainWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.pending.isEmpty && state.sending.isEmpty else { return [] }
            defer { state.drainWaiters.removeAll() }
            return Array(state.drainWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}
