#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts the OS threads this package owns (one per connection, the Sentinel watcher, the
/// metrics endpoint) straight on pthreads, so no module needs Foundation's `Thread` (which
/// would link all of Foundation, CoreFoundation and ICU into every binary: ~2.5 MB of
/// resident memory in an idle worker, see docs/BENCHMARKS.md).
package enum OwnedThread {
    /// Runs `body` on a new detached thread named `name` (Linux shows at most 15 bytes of it).
    /// A thread that cannot be created is a resource exhaustion the process cannot work
    /// around, so it stops with a message saying so.
    package static func start(name: String, stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackSize)
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let status = pthread_create(&thread, &attributes, ownedThreadEntry, box)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            fatalError("cannot start thread '\(name)': pthread_create failed with error \(status); raise the process's thread or memory limit")
        }
    }

    /// Names the calling thread, for `top -H` and debuggers. Glibc's `pthread_setname_np` is not
    /// visible to Swift, so on Linux the name is written to the thread's `comm` file, which is
    /// what that call does; a failure only leaves the default name.
    fileprivate static func setName(_ name: String) {
        #if canImport(Glibc)
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #else
        pthread_setname_np(name)
        #endif
    }

    fileprivate final class Body: Sendable {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }
}

/// The thread's first frame: takes back the retained body `start` handed over and runs it.
private func ownedThreadEntry(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let body = Unmanaged<OwnedThread.Body>.fromOpaque(raw!).takeRetainedValue()
    OwnedThread.setName(body.name)
    body.run()
    return nil
}
