import Dispatch
import Foundation
import Synchronization

/// SIGTERM / SIGINT handling: the first signal asks for a graceful shutdown, a second one exits
/// at once (what was running is recovered by another worker's reaper).
final class ShutdownSignals {
    private let sources: [any DispatchSourceSignal]

    init(onFirstSignal: @escaping @Sendable () -> Void) {
        let received = Counter()
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if received.increment() == 1 {
                    onFirstSignal()
                } else {
                    FileHandle.standardError.write(Data("airlock-workerd: second signal, exiting now\n".utf8))
                    exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for source in sources { source.cancel() }
    }

    private final class Counter: Sendable {
        private let value = Mutex(0)
        func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    }
}
