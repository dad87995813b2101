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

/// A plain-text table: a header row, columns padded to their widest cell.
struct TextTable {
    var headers: [String]
    /// Columns aligned right (numbers).
    var rightAligned: Set<Int> = []
    var rows: [[String]] = []

    /// The table as text; every cell goes through ``SafeText`` first, since cells show what jobs
    /// carry (task names, ids, errors, queue names) and must not reach the terminal raw.
    var rendered: String {
        let rows = self.rows.map { $0.map { SafeText.escape($0) } }
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (index, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: max(0, widths[index] - cell.count))
                let isLast = index == cells.count - 1
                parts.append(rightAligned.contains(index) ? padding + cell : (isLast ? cell : cell + padding))
            }
            return parts.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

enum Format {
    /// `850ms`, `4.2s`, `42s`, `3m05s`, `2h03m`, `4d02h`.
    static func age(milliseconds: Int64?) -> String {
        guard let ms = milliseconds else { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        let seconds = ms / 1000
        if seconds < 10 { return oneDecimal(Double(ms) / 1000) + "s" }
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m" + twoDigits(seconds % 60) + "s" }
        if seconds < 86400 { return "\(seconds / 3600)h" + twoDigits((seconds % 3600) / 60) + "m" }
        return "\(seconds / 86400)d" + twoDigits((seconds % 86400) / 3600) + "h"
    }

    /// `value` with one decimal, exactly as printf's `%.1f` writes it (`4.2`, `0.0`, `nan`):
    /// the C library's own formatting, which Foundation's `String(format:)` also calls.
    static func oneDecimal(_ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let written = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.1f", $0) }
        guard written > 0, Int(written) < buffer.count else { return "\(value)" }
        return String(decoding: buffer.prefix(Int(written)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `5` as `05`: the minutes, seconds or hours after a larger unit.
    private static func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// `2025-05-01T12:00:00Z` (UTC); `-` for none, `?` for a timestamp outside years 1970–9999.
    static func date(milliseconds: Int64?) -> String {
        guard let ms = milliseconds else { return "-" }
        guard acceptedEpochMilliseconds.contains(ms) else { return "?" }
        return Date(timeIntervalSince1970: Double(ms / 1000)).formatted(Date.ISO8601FormatStyle())
    }

    /// `12.5`, one decimal.
    static func rate(_ value: Double?) -> String {
        guard let value else { return "-" }
        return oneDecimal(value)
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : oneDecimal(value) + "s"
    }

    /// `text` on one line with its control characters escaped, cut to `limit` characters with `…`.
    static func truncate(_ text: String, _ limit: Int) -> String {
        let flat = SafeText.escape(Console.oneLine(text))
        return flat.count <= limit ? flat : String(flat.prefix(limit - 1)) + "…"
    }

    /// `1 dead letter`, `2 dead letters`.
    static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : (plural ?? singular + "s"))"
    }
}
