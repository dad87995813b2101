import Airlock
import AirlockTestKit
@testable import AirlockWorker
import Synchronization
import Testing

/// Sleeps, job timeouts and doorbell waits that give their memory back when cut short: a
/// `Task.sleep` cancelled early stays allocated until its deadline, so a worker racing every job
/// against a long timeout grew by ~0.7 KB per job until the timeouts passed.
@Suite("Deadlines: sleeps that leave nothing behind when cancelled", .timeLimit(.minutes(2)))
struct DeadlinesTests {
    @Test("a sleep returns true once its deadline has passed")
    func aSleepReachesItsDeadline() async {
        let deadlines = Deadlines()
        let deadline = ContinuousClock.now + .milliseconds(20)
        #expect(await deadlines.sleep(until: deadline))
        #expect(ContinuousClock.now >= deadline)
        // A deadline already past returns at once, and true.
        #expect(await deadlines.sleep(until: .now - .seconds(1)))
        #expect(deadlines.waiting == 0)
    }

    @Test("cancelled sleeps return false at once and leave no entry, however far their deadlines")
    func cancelledSleepsLeaveNothing() async throws {
        let deadlines = Deadlines()
        let far = ContinuousClock.now + .seconds(3600)
        let sleepers = (0..<200).map { _ in Task { await deadlines.sleep(until: far) } }
        try await Eventually.until("200 sleeps registered (\(deadlines.waiting))") { deadlines.waiting == 200 }
        for sleeper in sleepers { sleeper.cancel() }
        for sleeper in sleepers { #expect(await sleeper.value == false) }
        #expect(deadlines.waiting == 0)
        // A task cancelled before it sleeps does not sleep at all.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await deadlines.sleep(until: far)
        }
        #expect(await early.value == false)
        #expect(deadlines.waiting == 0)
    }

    @Test("a deadline earlier than the one the sweeper sleeps toward wakes it")
    func anEarlierDeadlineWakesTheSweeper() async throws {
        // With a sweeper slice of an hour, only the wake-up can end the short sleep: without it
        // this test would hang until its time limit.
        let deadlines = Deadlines(slice: .seconds(3600))
        let long = Task { await deadlines.sleep(until: .now + .seconds(3600)) }
        try await Eventually.until("the long sleep registered") { deadlines.waiting == 1 }
        #expect(await deadlines.sleep(until: .now + .milliseconds(20)))
        #expect(await deadlines.sleep(until: .now + .milliseconds(10)))
        long.cancel()
        #expect(await long.value == false)
        #expect(deadlines.waiting == 0)
    }

    @Test("withTimeout: a body that finishes first leaves no sleep; one that outlives it is cancelled and reported")
    func timeoutsLeaveNothingBehind() async throws {
        let deadlines = Deadlines()
        for value in 0..<500 {
            #expect(try await withTimeout(.seconds(3600), deadlines: deadlines) { value } == value)
        }
        #expect(deadlines.waiting == 0)

        let sawCancellation = Flag()
        await #expect(throws: TaskTimeoutError.self) {
            try await withTimeout(.milliseconds(20), deadlines: deadlines) { () async throws -> Int in
                do { try await Task.sleep(for: .seconds(3600)) } catch { sawCancellation.set() }
                return 1
            }
        }
        #expect(sawCancellation.isSet)
        #expect(deadlines.waiting == 0)
    }

    @Test("withTimeout: cancelling the caller is a cancellation, not a timeout")
    func callerCancellationIsNotATimeout() async throws {
        let deadlines = Deadlines()
        let call = Task {
            try await withTimeout(.seconds(3600), deadlines: deadlines) { () async throws -> Int in
                try await Task.sleep(for: .seconds(3600))
                return 1
            }
        }
        try await Eventually.until("the timeout registered") { deadlines.waiting == 1 }
        call.cancel()
        let result = await call.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(deadlines.waiting == 0)
    }

    @Test("Doorbell.wait(): a ring before or during the wait ends it with true, cancellation with false")
    func doorbellWaitWithoutDeadline() async throws {
        let doorbell = Doorbell()
        doorbell.ring()
        #expect(await doorbell.wait())

        let waiter = Task { await doorbell.wait() }
        // Whether it lands before the waiter waits (kept for it) or while it waits (wakes it).
        doorbell.ring()
        #expect(await waiter.value)

        let cancelled = Task { await doorbell.wait() }
        cancelled.cancel()
        #expect(await cancelled.value == false)
    }

    @Test("Doorbell.wait(until:): a rung wait leaves no sleep behind")
    func ringingADoorbellLeavesNoSleep() async throws {
        let deadlines = Deadlines()
        let doorbell = Doorbell(deadlines: deadlines)
        let far = ContinuousClock.now + .seconds(3600)
        for _ in 0..<200 {
            let waiter = Task { await doorbell.wait(until: far) }
            doorbell.ring()
            #expect(await waiter.value)
        }
        #expect(deadlines.waiting == 0)
        // And one not rung returns at its deadline, not rung.
        #expect(await doorbell.wait(until: .now + .milliseconds(20)) == false)
        #expect(deadlines.waiting == 0)
    }
}

/// A flag set from a task's body and read after it.
private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
