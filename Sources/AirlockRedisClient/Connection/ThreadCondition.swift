#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex and its condition variable, for a thread of our own that sleeps until work arrives
/// (Swift's `Mutex` has no condition to wait on; Foundation's `NSCondition` would link all of
/// Foundation).
///
/// `@unchecked Sendable` is safe: the pthread objects live at fixed heap addresses for the
/// object's lifetime, and pthreads makes every operation on them thread-safe.
package final class ThreadCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }

    package func unlock() { pthread_mutex_unlock(mutex) }

    /// Wakes one waiter. Best called just after unlocking: a waiter woken while the lock is still
    /// held blocks on the mutex at once and needs a second wake-up.
    package func signal() { pthread_cond_signal(condition) }

    /// Releases the lock while asleep; call with it held, in a loop re-checking what was awaited.
    package func wait() { pthread_cond_wait(condition, mutex) }
}
