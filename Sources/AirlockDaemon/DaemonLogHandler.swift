import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization

/// How the daemon writes log lines to stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-01T20:00:00.123Z notice airlock.worker: worker started queues=default …`
    case human
    /// One JSON object per line: `{"ts":…,"level":…,"label":…,"message":…, …metadata}`.
    case json
}

/// The daemon's log handler: one line per event on stderr, in the human or JSON format.
///
/// Messages and metadata often quote what a job carries (its task name, the error its task
/// threw), so the human format runs every part through ``SafeText`` and the JSON format through
/// the JSON writer's escaping: one event is always exactly one line, and no control character
/// reaches the terminal or the log collector raw.
struct DaemonLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: LogFormat, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.line(
            format: format, timestamp: Date(), level: event.level, label: label, message: "\(event.message)", metadata: merged)
        Self.output.withLock { _ in Console.write(line, to: STDERR_FILENO) }
    }

    /// Serialises writes so lines from concurrent tasks never interleave.
    private static let output = Mutex(())

    /// One formatted line, newline included.
    static func line(format: LogFormat, timestamp: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        let time = timestamp.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let keys = metadata.keys.sorted()
        switch format {
        case .human:
            var text = "\(time) \(level) \(SafeText.escape(label)): \(SafeText.escape(message))"
            for key in keys {
                text += " \(SafeText.escape(key))=\(SafeText.escape(flatten(metadata[key]!)))"
            }
            return text + "\n"
        case .json:
            var fields: [String: JSONValue] = [:]
            for key in keys { fields[key] = .string(flatten(metadata[key]!)) }
            fields["ts"] = .string(time)
            fields["level"] = .string(level.rawValue)
            fields["label"] = .string(label)
            fields["message"] = .string(message)
            var out: [UInt8] = []
            JSONWriter.write(.object(fields), into: &out, sortKeys: true)
            out.append(UInt8(ascii: "\n"))
            return String(decoding: out, as: UTF8.self)
        }
    }

    private static func flatten(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): "[" + values.map(flatten).joined(separator: ", ") + "]"
        case .dictionary(let entries): "{" + entries.keys.sorted().map { "\($0): \(flatten(entries[$0]!))" }.joined(separator: ", ") + "}"
        }
    }
}
