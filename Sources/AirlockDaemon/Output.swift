import ArgumentParser
import Foundation
import Logging

/// A failure reported as one line on stderr with a non-zero exit, never a stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Logs to stderr at `level`, once per process.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
