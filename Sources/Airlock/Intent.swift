#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The wish to run a side effect later: which task, with what arguments, how to dispatch it, and
/// the local policies that were active when it was made.
///
/// Intents are immutable values. A scope buffers them; at flush, policies decide which escape and
/// an ``Executor`` dispatches those. The ``id`` becomes the job id on the wire, so the caller of
/// ``Airlock/enqueue(_:options:origin:name:)`` knows it before anything is dispatched.
public struct Intent: Sendable, Identifiable, CustomStringConvertible {
    /// Unique id; executors that create jobs use it as the job id.
    public var id: UUID { storage.id }
    /// The name policies and logs see: the explicit name given at enqueue, else ``taskName``.
    public var name: String { storage.name }
    /// The task name executors dispatch (the wire name a worker looks up).
    public var taskName: String { storage.taskName }
    /// The arguments: a typed task value, or Celery-style positional and keyword JSON.
    public var payload: Payload { storage.payload }
    /// How and when to dispatch.
    public var options: DispatchOptions { storage.options }
    /// Free-form provenance (for example the request or job that produced the intent).
    public var origin: String? { storage.origin }
    /// The local policies in force at enqueue, outermost first.
    public var localPolicies: [any Policy] { storage.localPolicies }

    /// An intent is passed from `enqueue` to the scope, through its policies, to the executor:
    /// held in one immutable object, each of those copies is one reference count, not one for
    /// every string, array and option it carries.
    private final class Storage: Sendable {
        let id: UUID
        let name: String
        let taskName: String
        let payload: Payload
        let options: DispatchOptions
        let origin: String?
        let localPolicies: [any Policy]

        init(id: UUID, name: String, taskName: String, payload: Payload, options: DispatchOptions, origin: String?, localPolicies: [any Policy]) {
            self.id = id
            self.name = name
            self.taskName = taskName
            self.payload = payload
            self.options = options
            self.origin = origin
            self.localPolicies = localPolicies
        }
    }

    private let storage: Storage

    /// What an intent carries as the task's arguments.
    public enum Payload: Sendable {
        /// A typed task value; its encoded fields are the keyword arguments.
        case typed(any AirlockTask)
        /// Arguments for a task known only by name (possibly implemented in another language).
        case dynamic(TaskArguments)
    }

    /// Creates an intent; a `nil` id draws a fresh random one. Most code calls ``Airlock/enqueue(_:options:origin:name:)`` instead.
    public init(
        id: UUID? = nil,
        name: String? = nil,
        taskName: String,
        payload: Payload,
        options: DispatchOptions = DispatchOptions(),
        origin: String? = nil,
        localPolicies: [any Policy] = []
    ) {
        storage = Storage(id: id ?? IDGenerator.uuid(), name: name ?? taskName, taskName: taskName, payload: payload,
                          options: options, origin: origin, localPolicies: localPolicies)
    }

    /// The typed task value, when the intent was made from one.
    public var task: (any AirlockTask)? {
        if case .typed(let task) = payload { task } else { nil }
    }

    /// The arguments in Celery's model; a typed task is encoded to keyword arguments.
    public func arguments() throws -> TaskArguments {
        switch payload {
        case .dynamic(let arguments): return arguments
        case .typed(let task): return try TaskArguments(encoding: task)
        }
    }

    /// Whether the local policies captured at enqueue allow this intent, innermost first.
    ///
    /// For inspection only: the scope's own policy, and ancestors' capture, still decide at flush.
    public func passesLocalPolicies() throws -> Bool {
        try AirlockContext.judging {
            for policy in localPolicies.reversed() where try !policy.allows(self) {
                return false
            }
            return true
        }
    }

    /// Reads like a call: `send_email(1, "a", k=2)`.
    public var description: String {
        guard let arguments = try? arguments() else { return "\(name)(<arguments not encodable>)" }
        let positional = arguments.args.map(\.description)
        let keywords = arguments.kwargs.keys.sorted().map { "\($0)=\(arguments.kwargs[$0]!)" }
        return "\(name)(\((positional + keywords).joined(separator: ", ")))"
    }
}

/// Celery's argument model: a positional array and a keyword object.
public struct TaskArguments: Sendable, Hashable {
    /// Positional arguments.
    public var args: [JSONValue]
    /// Keyword arguments.
    public var kwargs: [String: JSONValue]

    /// Creates arguments from positional and keyword parts.
    public init(args: [JSONValue] = [], kwargs: [String: JSONValue] = [:]) {
        self.args = args
        self.kwargs = kwargs
    }

    /// The keyword arguments of a typed task: its encoded fields.
    public init(encoding task: some AirlockTask) throws {
        // The fields as JSONEncoder would write them (a whole Double as an integer), parsed as the worker will.
        let value = try JSONParser.parse(try JSONBytesEncoder.encode(task))
        guard case .object(let fields) = value else {
            throw TaskArgumentsError("task \(type(of: task).name) must encode as a keyed container (a JSON object), not \(value)")
        }
        self.init(args: [], kwargs: fields)
    }

    /// Decodes a typed task from these arguments: positional `args` are matched to
    /// `T.argumentNames` first, then keyword arguments fill (and override) the rest.
    public func decode<T: AirlockTask>(_ type: T.Type) throws -> T {
        var fields = [String: JSONValue]()
        if !args.isEmpty {
            let names = T.argumentNames
            guard args.count <= names.count else {
                throw TaskArgumentsError(
                    "task \(T.name) takes \(names.count) positional argument(s) \(names), got \(args.count); "
                        + "declare `static let argumentNames` on \(T.self) or send keyword arguments")
            }
            for (name, value) in zip(names, args) { fields[name] = value }
        }
        fields.merge(kwargs) { _, keyword in keyword }
        do {
            return try JSONValueDecoder.decode(T.self, from: .object(fields))
        } catch {
            throw TaskArgumentsError("arguments do not decode as \(T.self) for task \(T.name): \(error)")
        }
    }
}

/// Arguments that do not fit a task's declared shape.
public struct TaskArgumentsError: AirlockError {
    /// What does not fit, and how to fix it.
    public let description: String
    /// Creates the error with its message.
    public init(_ description: String) { self.description = description }
}
