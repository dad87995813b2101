import Airlock
import AirlockRedis
import AirlockWorker
import Foundation
import Logging

/// The worker's whole path for one input, as the fuzzer (`make fuzz`) and the corpus replay in
/// `make test` both drive it: decode with a codec → run a diagnostic task inside a scope → the
/// settlement it leads to (retry message, dead letter, postponement) → the promoter's handling of a
/// delayed-set score → the text a log line or the CLI would print. It returns the invariants the
/// input broke; a trap anywhere on the way is a finding in itself.
package enum WorkerPath {
    /// The first byte picks the codec (even: native, odd: Celery); the rest is the message, and
    /// also read as a delayed-set score and as operator text.
    package static func check(_ input: [UInt8]) async -> [String] {
        guard let selector = input.first else { return [] }
        let message = Array(input.dropFirst())
        let codec: any WireCodec = selector & 1 == 0 ? NativeCodec() : CeleryCodec()
        var problems: [String] = []

        let settlement = await runner(codec).run(Job(laneIndex: 0, fetched: FetchedJob(queue: "fuzz", raw: message)))
        switch settlement.outcome {
        case .acknowledge, .expired, .requeue:
            break
        case .cancelled:
            problems.append("the runner cancelled a job no operator cancelled")
        case .postpone(let dueAt):
            if !acceptedEpochMilliseconds.contains(dueAt) { problems.append("postponed to \(dueAt), outside the wire range") }
        case .retry(let next, let dueAt):
            if !acceptedEpochMilliseconds.contains(dueAt) { problems.append("retry due at \(dueAt), outside the wire range") }
            do {
                let again = try codec.decode(next, queue: "fuzz")
                let before = try codec.decode(message, queue: "fuzz")
                if again.envelope.attempt != before.envelope.attempt + 1 { problems.append("a retry did not add one attempt") }
                if again.envelope.id != before.envelope.id { problems.append("a retry changed the job id") }
            } catch {
                problems.append("the retry message does not decode: \(error)")
            }
        case .dead(let entry):
            guard let value = try? JSONParser.parse(entry), case .object(let fields) = value else {
                problems.append("the dead letter is not a JSON object")
                break
            }
            if fields["error"]?.stringValue?.isEmpty != false { problems.append("the dead letter has no reason") }
            let letter = DeadLetter(queue: "fuzz", stored: entry)
            if letter.isMalformed, letter.fields["raw"] == nil, letter.fields["raw_base64"] == nil {
                problems.append("an unreadable message's bytes were not kept")
            }
            if let raw = letter.fields["raw"]?.stringValue, Array(raw.utf8) != message, message.count <= maxMessageBytes {
                problems.append("the kept raw text differs from the message")
            }
        }

        // A delayed-set score: anything someone ZADDed must become a wait, never a trap.
        let due = RedisJobSource.dueTime(score: message)
        let wait = Promoter.wait(untilDue: due, now: epochMilliseconds())
        if wait < .zero || wait > Promoter.idleWait { problems.append("promoter wait \(wait) out of bounds") }

        // What a terminal or a log line would show of it.
        let text = String(decoding: message, as: UTF8.self)
        let shown = SafeText.escape(text)
        if shown.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value) }) {
            problems.append("escaped text still holds a control character")
        }
        // A URL an operator typed: parsed or refused, and never echoed with its password.
        do {
            _ = try RedisConfiguration(url: text)
        } catch {
            let onlyAsPassword = text.contains(":s3cret@") && text.components(separatedBy: "s3cret").count == 2
            if onlyAsPassword && error.description.contains("s3cret") { problems.append("an invalid URL's error shows its password") }
        }
        return problems
    }

    static let maxMessageBytes = 64 * 1024

    /// One runner per codec for the process: the diagnostic tasks, with `airlock.sleep` checking
    /// its argument as the real one does but not sleeping (a fuzzer cannot wait years).
    private static let runners: [String: JobRunner] = {
        var registry = TaskRegistry()
        registry.register("airlock.sleep") { arguments, _ in
            guard let seconds = arguments.kwargs["seconds"]?.doubleValue, Duration(checkedSeconds: seconds) != nil else {
                throw PermanentFailure("airlock.sleep needs kwargs {\"seconds\": a number}")
            }
        }
        registry.registerDiagnostics { _ in }
        var configuration = WorkerConfiguration(queues: ["fuzz"])
        configuration.maxMessageBytes = maxMessageBytes
        configuration.defaultTimeout = .milliseconds(200)
        configuration.retryStrategy = .exponentialJitter()
        let logger = Logger(label: "airlock.fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        func runner(_ codec: any WireCodec) -> JobRunner {
            JobRunner(registry: registry, configuration: configuration, codec: codec, followUps: RecordingExecutor(), logger: logger,
                      metrics: .discarding)
        }
        return ["native": runner(NativeCodec()), "celery": runner(CeleryCodec())]
    }()

    private static func runner(_ codec: any WireCodec) -> JobRunner { runners[codec.name]! }
}
