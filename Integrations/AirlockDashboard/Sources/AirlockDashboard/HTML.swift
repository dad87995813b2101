import Airlock

/// A piece of markup that is safe to send: literal text written in this package's source is
/// trusted, and everything interpolated into it is escaped unless it is ``HTML`` itself.
///
/// ```swift
/// let row: HTML = "<td>\(letter.task ?? "")</td><td><a href=\"\(attribute: link)\">show</a></td>"
/// ```
///
/// `\(text)` escapes with ``HTML/escape(_:)`` after making control and bidirectional characters
/// visible (``SafeText``), for display; `\(attribute: text)` only escapes, so a form value posts
/// back exactly what Redis holds; `\(html)` nests markup that is already safe. Every string that
/// comes from Redis (task names, ids, arguments, errors, queue names, worker hosts) reaches a page
/// through one of these, so no page can contain markup a job wrote.
struct HTML: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The markup.
    private(set) var markup: String

    init(stringLiteral value: String) { markup = value }
    init(stringInterpolation: Interpolation) { markup = stringInterpolation.markup }
    /// Markup built elsewhere in this package (already escaped).
    init(trusted markup: String) { self.markup = markup }

    var description: String { markup }

    static let empty: HTML = ""

    mutating func append(_ other: HTML) { markup += other.markup }

    static func + (lhs: HTML, rhs: HTML) -> HTML { HTML(trusted: lhs.markup + rhs.markup) }

    /// The interpolation rules above.
    struct Interpolation: StringInterpolationProtocol {
        var markup = ""
        init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity + interpolationCount * 16) }
        mutating func appendLiteral(_ literal: String) { markup += literal }
        /// Text for display: control characters made visible, then escaped.
        mutating func appendInterpolation(_ text: String) { markup += HTML.display(text) }
        /// Optional text; `nil` shows as `fallback`.
        mutating func appendInterpolation(_ text: String?, or fallback: String) { markup += HTML.display(text ?? fallback) }
        /// An attribute value or form value: escaped only, so it round-trips exactly.
        mutating func appendInterpolation(attribute text: String) { markup += HTML.escape(text) }
        /// A number.
        mutating func appendInterpolation(_ number: Int) { markup += String(number) }
        /// A number.
        mutating func appendInterpolation(_ number: Int64) { markup += String(number) }
        /// Markup that is already safe.
        mutating func appendInterpolation(_ html: HTML) { markup += html.markup }
        /// A sequence of safe markup, concatenated.
        mutating func appendInterpolation(_ parts: [HTML]) { for part in parts { markup += part.markup } }
    }

    /// The one escape: `&`, `<`, `>`, `"` and `'` become character references, so the text can
    /// sit in element content or in a double- or single-quoted attribute and never end either.
    /// Works on the UTF-8 bytes (the five are ASCII, and no other byte of UTF-8 can equal them):
    /// text without any is returned as it is, and runs between them are copied whole.
    static func escape(_ text: some StringProtocol) -> String {
        let utf8 = text.utf8
        guard let first = utf8.firstIndex(where: needsEscape) else { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 32)
        out.append(contentsOf: utf8[..<first])
        for byte in utf8[first...] {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            case UInt8(ascii: "'"): out.append(contentsOf: "&#39;".utf8)
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "'"): true
        default: false
        }
    }

    /// Text for display: control, bidirectional and line-separator characters shown as escapes
    /// (``SafeText/escape(_:)``, the terminal's rule), then ``escape(_:)``.
    static func display(_ text: some StringProtocol) -> String { escape(SafeText.escape(text)) }

    /// Percent-encodes a query-string value (everything but unreserved characters), so a link
    /// carries the exact bytes whatever they are.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// `text` cut to `limit` characters with an ellipsis, for table cells.
    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }
}
