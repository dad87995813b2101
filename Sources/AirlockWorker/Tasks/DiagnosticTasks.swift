public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension TaskRegistry {
    /// Adds the built-in diagnostic tasks, so a deployment can be smoke-tested end to end with
    /// `airlock-workerd enqueue`. Names already registered are left alone.
    ///
    /// - `airlock.ping`: does nothing.
    /// - `airlock.echo`: logs its args and kwargs and returns them as its result (`{"args": …, "kwargs": …}`).
    /// - `airlock.sleep`: sleeps kwargs `seconds` (cancellable); with kwargs `record` (a string),
    ///   records `<record> start` before and `<record> end` after, as `airlock.record` does (so a
    ///   test of a fleet-wide limit can count the jobs running across worker processes).
    /// - `airlock.fail`: throws an error with kwargs `message`.
    /// - `airlock.record`: hands kwargs `token` (a string) to `record` (for Redis: an RPUSH onto
    ///   `<ns>:diag:record`).
    package mutating func registerDiagnostics(record: @escaping @Sendable (String) async throws -> Void) {
        func add(_ name: String, _ handler: @escaping Handler) {
            if self[name] == nil { register(name, handler) }
        }
        add("airlock.ping") { _, _ in }
        if self["airlock.echo"] == nil {
            registerFunction("airlock.echo") { arguments, context in
                context.logger.notice("airlock.echo", metadata: [
                    "args": "\(SafeText.escape(JSONValue.array(arguments.args).description))",
                    "kwargs": "\(SafeText.escape(JSONValue.object(arguments.kwargs).description))",
                ])
                return ["args": .array(arguments.args), "kwargs": .object(arguments.kwargs)]
            }
        }
        add("airlock.sleep") { arguments, _ in
            guard let seconds = arguments.kwargs["seconds"]?.doubleValue, let duration = Duration(checkedSeconds: seconds) else {
                throw PermanentFailure("airlock.sleep needs kwargs {\"seconds\": a number from 0 to \(Int(Duration.longestAccepted.timeInterval))}")
            }
            let token = arguments.kwargs["record"]?.stringValue
            if let token { try await record("\(token) start") }
            try await Task.sleep(for: duration)
            if let token { try await record("\(token) end") }
        }
        add("airlock.fail") { arguments, _ in
            throw DiagnosticFailure(message: arguments.kwargs["message"]?.stringValue ?? "airlock.fail was asked to fail")
        }
        add("airlock.record") { arguments, _ in
            guard let token = arguments.kwargs["token"]?.stringValue else {
                throw PermanentFailure("airlock.record needs kwargs {\"token\": string}")
            }
            try await record(token)
        }
    }
}

/// The error `airlock.fail` throws.
public struct DiagnosticFailure: AirlockError {
    /// The message it was given.
    public let message: String
    /// The message.
    public var description: String { message }
}
