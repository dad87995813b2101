public import Airlock
import Synchronization

/// Whether a transaction writes its intents through an ``Outbox``: `Airlock.transaction(on:outbox:…)`'s choice.
///
/// With an outbox the intents are rows committed with the data, so they belong to the transaction
/// alone: they leave at `COMMIT` (as with ``TransactionDispatch/atCommit``), and an enclosing scope
/// that fails afterwards cannot call them back.
public struct TransactionOutbox: Sendable, CustomStringConvertible {
    private enum Mode: Sendable { case configured, off, using(Outbox) }
    private let mode: Mode

    /// The default: the outbox set with `Airlock.configure(outbox:)`, or none when none is set.
    public static let configured = TransactionOutbox(mode: .configured)
    /// No outbox, even when one is configured: the intents wait in memory for the commit.
    public static let off = TransactionOutbox(mode: .off)
    /// Writes through `outbox`.
    public static func using(_ outbox: Outbox) -> TransactionOutbox { TransactionOutbox(mode: .using(outbox)) }

    /// The outbox in effect now, if any.
    public var resolved: Outbox? {
        switch mode {
        case .configured: Airlock.outbox
        case .off: nil
        case .using(let outbox): outbox
        }
    }

    /// The outbox in effect now, with `configured` in place of `Airlock.outbox` when it is set:
    /// how a framework's own default (Vapor's `app.airlock.use(outbox:)`) comes before the
    /// process-wide one.
    public func resolved(preferring configured: Outbox?) -> Outbox? {
        switch mode {
        case .configured: configured ?? Airlock.outbox
        case .off: nil
        case .using(let outbox): outbox
        }
    }

    /// `configured`, `off` or `using(Outbox(namespace: …))`.
    public var description: String {
        switch mode {
        case .configured: "configured"
        case .off: "off"
        case .using(let outbox): "using(\(outbox))"
        }
    }
}

private let configuredOutbox = Mutex<Outbox?>(nil)

extension Airlock {
    /// The outbox transactions write through by default (``TransactionOutbox/configured``); `nil`
    /// until ``configure(outbox:)`` sets one.
    public static var outbox: Outbox? { configuredOutbox.withLock { $0 } }

    /// Makes every `Airlock.transaction(on:)` that does not say otherwise write its intents
    /// through `outbox` (`nil`: none).
    public static func configure(outbox: Outbox?) {
        configuredOutbox.withLock { $0 = outbox }
    }
}
