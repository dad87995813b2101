#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// Work for the owned thread. It receives the thread's runner (nil when the
/// client was closed before the job ran) and returns the code that resumes the
/// waiting task, so the job closure is released before the task is resumed.
typealias ConnectionJob = @Sendable ((any CommandRunner)?) -> @Sendable () -> Void

/// One OS thread that owns one CommandRunner (a ConnectionOwner, or a ClusterRouter), fed through a lock-protected queue.
///
/// Blocking socket and TLS calls run here and never on Swift's cooperative pool (which has
/// as few threads as cores). Async callers enqueue a job and suspend on a
/// continuation; the thread runs jobs strictly in order and resumes each caller.
///
/// `@unchecked Sendable` is safe: `jobs` and `accepting` are only read or written
/// while holding `condition`'s lock, and everything else is `let`.
final class ConnectionThread: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var jobs: [ConnectionJob] = []
    private var accepting = true

    /// Starts the thread; the runner is created on it and never leaves it.
    init(configuration: RedisConfiguration, name: String?, logger: Logger) {
        OwnedThread.start(name: "airlock-redis" + (name.map { "-\($0)" } ?? "")) { [self] in
            Self.blockSIGPIPE()
            let owner: any CommandRunner = configuration.cluster == nil
                ? ConnectionOwner(configuration: configuration, name: name, logger: logger)
                : ClusterRouter(configuration: configuration, name: name, logger: logger)
            self.runLoop(owner)
        }
    }

    /// Queues a job; false if the client is already closed (the job is dropped unrun).
    func submit(_ job: @escaping ConnectionJob) -> Bool {
        condition.lock()
        guard accepting else {
            condition.unlock()
            return false
        }
        jobs.append(job)
        condition.unlock()
        // Signalled after unlocking: woken with the lock still held, the thread would block on the
        // mutex at once and need a second wake-up — a futex call and a context switch per request.
        condition.signal()
        return true
    }

    /// Stops accepting work; jobs already queued still run, then `final` (if any),
    /// then the thread closes the connection and exits. False if already shut down.
    @discardableResult
    func shutdown(final: ConnectionJob?) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { return false }
        accepting = false
        if let final { jobs.append(final) }
        condition.signal()
        return true
    }

    private func runLoop(_ owner: any CommandRunner) {
        while true {
            var (pending, last) = takeBatch()
            while !pending.isEmpty {
                let resume = Self.runLast(&pending, owner)
                resume()
            }
            if last { break }
        }
        owner.close()
    }

    /// Blocks until there is work or the thread must stop. Returns the queued jobs
    /// newest first (so the caller pops the oldest in O(1)) and whether to stop after them.
    /// The returned array is the only reference to its jobs: each is released as it is popped.
    private func takeBatch() -> ([ConnectionJob], Bool) {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && accepting {
            condition.wait()
        }
        var batch: [ConnectionJob] = []
        swap(&batch, &jobs)
        batch.reverse()
        return (batch, !accepting)
    }

    /// Runs one job in its own frame so the closure is released when this returns,
    /// before its resume callback runs.
    private static func runLast(_ pending: inout [ConnectionJob], _ owner: any CommandRunner) -> @Sendable () -> Void {
        let job = pending.removeLast()
        return job(owner)
    }

    /// OpenSSL writes with write(2), which raises SIGPIPE (killing the process) when the
    /// server has gone away (plain sockets use MSG_NOSIGNAL). Blocking it on this thread turns
    /// that into EPIPE, an I/O error, without touching process-wide handlers.
    private static func blockSIGPIPE() {
        #if os(Linux)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        #endif
    }
}
