/// The message format a worker consumes.
public enum WireProtocol: String, Sendable, CaseIterable {
    /// Airlock envelopes on `<ns>:{Q}:ready` (see `docs/PROTOCOL.md`).
    case native
    /// Celery protocol v2 messages on kombu's queue keys (`Q`, then its priority sub-keys), with
    /// results stored the way Celery's Redis result backend stores them (see `docs/CELERY.md`).
    case celery
}

/// Where a queue's jobs are read from and returned to.
struct QueueRoute: Sendable {
    /// The queue name (bookkeeping keys are named after it).
    let queue: String
    /// Keys to take jobs from, highest priority first.
    let fetchKeys: [String]
    /// Where due, retried, recovered and returned jobs go: the key consumed first.
    let homeKey: String

    init(queue: String, protocol wireProtocol: WireProtocol, keys: RedisKeys) {
        self.queue = queue
        switch wireProtocol {
        case .native:
            fetchKeys = [keys.ready(queue)]
            homeKey = keys.ready(queue)
        case .celery:
            fetchKeys = CeleryMessage.queueKeys(queue)
            homeKey = queue
        }
    }
}

extension WorkerConfiguration {
    /// One route per configured queue, in priority order.
    var routes: [QueueRoute] { queues.map { QueueRoute(queue: $0, protocol: wireProtocol, keys: keys) } }
}
