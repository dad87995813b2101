import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Task results in the form Celery's Redis result backend stores them, so a Python caller's
/// `AsyncResult.get()` returns the value (or raises the failure).
enum CeleryResult {
    /// The key Celery reads a task's result from.
    static func key(taskID: String) -> String { "celery-task-meta-\(taskID)" }

    static func success(taskID: String, value: JSONValue) -> [UInt8] {
        meta(taskID: taskID, status: "SUCCESS", result: value, traceback: .null)
    }

    /// A failure Python re-raises: the exception class is named after the Swift error's type
    /// (created on the fly by Celery, as for any class it cannot import), its message is the
    /// error's description.
    static func failure(taskID: String, error: String, typeName: String) -> [UInt8] {
        let exception: JSONValue = [
            "exc_type": .string(pythonIdentifier(typeName)), "exc_module": "airlock.swift",
            "exc_message": [.string(error)],
        ]
        return meta(taskID: taskID, status: "FAILURE", result: exception,
                    traceback: .string("Traceback (Swift task on an Airlock worker):\n  \(typeName): \(error)\n"))
    }

    private static func meta(taskID: String, status: String, result: JSONValue, traceback: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.write([
            "status": .string(status), "result": result, "traceback": traceback, "children": [],
            "date_done": .string(CeleryTime.format(Date())), "task_id": .string(taskID),
        ], into: &out)
        return out
    }

    private static func pythonIdentifier(_ name: String) -> String {
        let cleaned = String(name.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        guard let first = cleaned.first, !first.isNumber else { return "SwiftTaskError" }
        return cleaned
    }
}
