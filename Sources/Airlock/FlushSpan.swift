import Tracing

/// The `airlock.flush` span around a flush's dispatch, when the application bootstrapped a tracer.
///
/// The executor runs inside the span, so it can carry the span's context with each job (the Redis
/// executors write it as the envelope's `traceparent`): the worker's run of the job then continues
/// the trace of the request that enqueued it.
enum FlushSpan {
    /// Runs `dispatch` inside the span; without a tracer, runs it with no span at all.
    static func around(_ intents: Int, executor: any Executor, _ dispatch: () async throws -> Void) async throws {
        // The default (no tracer) costs one check: no span, no task-local binding, no attributes.
        guard TracingCheck.mayTrace else { return try await dispatch() }
        let tracer = InstrumentationSystem.tracer
        if tracer is NoOpTracer { return try await dispatch() }
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

/// Whether any tracer can be active, decided cheaply for the hot paths (once per flush, once per job).
package enum TracingCheck {
    /// False when the instrument in effect (bootstrapped, or bound by `withInstrument`/`withTracer`)
    /// is a no-op one: its concrete type costs far less to test than `InstrumentationSystem.tracer`'s
    /// search for a tracer, which casts to an existential twice. True means "look the tracer up".
    package static var mayTrace: Bool {
        let instrument = InstrumentationSystem.instrument
        return !(instrument is NoOpInstrument || instrument is NoOpTracer)
    }
}
