import Airlock
public import AirlockPostgres
public import AirlockVapor
import Synchronization
import Vapor

extension ApplicationAirlock {
    /// The outbox `req.airlock.transaction` writes through when the call does not say otherwise
    /// (`outbox: .configured`, the default); `nil` (the default) leaves it to
    /// `Airlock.configure(outbox:)`.
    public var outbox: Outbox? {
        application.storage[OutboxKey.self]?.value.withLock { $0 }
    }

    /// Makes `outbox` the application's: every `req.airlock.transaction` that does not pass
    /// `outbox:` writes its intents through it. Call it in `configure`, before requests; run the
    /// outbox (it deletes delivered rows) and an `OutboxRelay` as services of the application,
    /// e.g. with `app.lifecycle` or a `ServiceGroup` (see `docs/OUTBOX.md`).
    /// - Parameters:
    ///   - outbox: the outbox, or `nil` for none.
    ///   - global: also make it the process-wide default (`Airlock.configure(outbox:)`) for
    ///     `Database.airlockTransaction` and `Airlock.transaction(on:)` outside requests. Leave it
    ///     `false` when several applications share a process, as tests do.
    public func use(outbox: Outbox?, global: Bool = false) {
        if global { Airlock.configure(outbox: outbox) }
        if let box = application.storage[OutboxKey.self] {
            box.value.withLock { $0 = outbox }
        } else {
            application.storage[OutboxKey.self] = OutboxBox(outbox)
        }
    }
}

/// The application's outbox, behind a lock: requests read it concurrently.
private final class OutboxBox: Sendable {
    let value: Mutex<Outbox?>
    init(_ outbox: Outbox?) { value = Mutex(outbox) }
}

private struct OutboxKey: StorageKey {
    typealias Value = OutboxBox
}
