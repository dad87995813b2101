import Airlock
import Tracing

/// The span of one task attempt, `airlock.run <task>`, when the application bootstrapped a tracer.
///
/// It is a child of the producer's span (the `airlock.flush` that enqueued the job, read back from
/// the envelope's ``TraceContext``), not a new trace with a link: a job is caused by the request
/// that enqueued it, so one trace follows the request into the job, and every retry is another
/// child of the same flush (docs/OPERATIONS.md, "Tracing"). A job without a trace context starts
/// a trace of its own. Jobs the task enqueues are flushed inside this span and so continue it.
enum JobSpan {
    /// Runs `body` inside the span; without a tracer, runs it with no span at all.
    static func around<T: Sendable>(_ envelope: Envelope, queue: String, _ body: () async throws -> T) async throws -> T {
        // The default (no tracer) costs one check: nothing is extracted, started or bound.
        guard let tracer = TracingCheck.activeTracer() else { return try await body() }
        return try await traced(tracer, envelope, queue, body)
    }

    private static func traced<Tr: Tracer, T: Sendable>(
        _ tracer: Tr, _ envelope: Envelope, _ queue: String, _ body: () async throws -> T
    ) async throws -> T {
        let parent = envelope.trace?.serviceContext(extractedBy: tracer) ?? .topLevel
        return try await tracer.withSpan("airlock.run \(envelope.task)", context: parent, ofKind: .consumer) { span in
            // One read and one write of the span's attributes, not one of each per attribute.
            span.updateAttributes { attributes in
                attributes["airlock.task"] = envelope.task
                attributes["airlock.queue"] = queue
                attributes["airlock.job_id"] = envelope.id
                attributes["airlock.attempt"] = envelope.attempt
            }
            return try await body()
        }
    }
}
