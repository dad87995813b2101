package import Tracing

/// The `airlock.flush` span around a flush's dispatch, when the application bootstrapped a tracer.
///
/// The executor runs inside the span, so it can carry the span's context with each job (the Redis
/// executors write it as the envelope's `traceparent`): the worker's run of the job then continues
/// the trace of the request that enqueued it.
enum FlushSpan {
    /// Runs `dispatch` inside the span; without a tracer, runs it with no span at all.
    static func around(_ intents: Int, executor: any Executor, _ dispatch: () async throws -> Void) async throws {
        // The default (no tracer) costs one check: no span, no task-local binding, no attributes.
        guard let tracer = TracingCheck.activeTracer() else { return try await dispatch() }
        try await traced(tracer, intents, executor, dispatch)
    }

    private static func traced<T: Tracer>(_ tracer: T, _ intents: Int, _ executor: any Executor, _ dispatch: () async throws -> Void) async throws {
        try await tracer.withSpan("airlock.flush", ofKind: .producer) { span in
            span.updateAttributes { attributes in
                attributes["airlock.intents"] = intents
                attributes["airlock.executor"] = String(describing: type(of: executor))
            }
            try await dispatch()
        }
    }
}

/// The tracer in effect for the hot paths (once per flush, once per job), or nil for none.
package enum TracingCheck {
    /// The bootstrapped tracer (or the one bound by `withInstrument`/`withTracer`); nil when that
    /// is a no-op. The no-op case is decided first by the instrument's concrete type, which costs
    /// far less than `InstrumentationSystem.tracer`'s search for a tracer (two casts to an
    /// existential).
    package static func activeTracer() -> (any Tracer)? {
        let instrument = InstrumentationSystem.instrument
        if instrument is NoOpInstrument || instrument is NoOpTracer { return nil }
        let tracer = InstrumentationSystem.tracer
        return tracer is NoOpTracer ? nil : tracer
    }
}
