import Airlock
/// The one rule for queue names, checked at every entry point: producers (``RedisExecutor``,
/// ``CeleryExecutor``), workers (``WorkerConfiguration/queues``) and every CLI command that takes a
/// queue. `docs/PROTOCOL.md` states it.
///
/// A queue name is 1 to 128 characters: letters and digits (any script), and `.` `_` `-` `:` `@`
/// `/`; it starts with a letter, a digit or `_`. That excludes what breaks a name somewhere along
/// the way: `{` and `}` (they would change the Redis Cluster hash tag of the queue's keys), `,` (the
/// CLI's list separator), spaces at either end (trimmed by the CLI, so such a queue could never be
/// consumed), quotes, and control characters.
public enum QueueName {
    /// The longest accepted name, in characters.
    public static let maximumLength = 128

    /// Why `name` is not a valid queue name, in one line; `nil` when it is valid.
    public static func problem(with name: String) -> String? {
        // Every producer checks every intent's queue, so the common case — a short ASCII name — is
        // decided on its bytes; only a name this cannot accept pays for the Unicode rule below.
        if isPlainASCIIName(name) { return nil }
        if name.isEmpty { return "a queue name must not be empty" }
        if name.count > maximumLength {
            return "queue name '\(SafeText.escape(name.prefix(40)))…' is \(name.count) characters, over the limit of \(maximumLength)"
        }
        if let first = name.first, !(first.isLetter || first.isNumber || first == "_") {
            return "queue name '\(SafeText.escape(name))' must start with a letter, a digit or '_'"
        }
        if let bad = name.first(where: { !isAllowed($0) }) {
            let shown = bad.unicodeScalars.count == 1 && SafeText.isSafe(String(bad)) && bad != " " ? "'\(bad)'" : describe(bad)
            return "queue name '\(SafeText.escape(name))' contains \(shown); use letters, digits and . _ - : @ / only"
        }
        return nil
    }

    /// Whether `name` is a valid queue name.
    public static func isValid(_ name: String) -> Bool { problem(with: name) == nil }

    /// Whether `name` is 1…``maximumLength`` bytes of ASCII letters, digits and `. _ - : @ /`,
    /// starting with a letter, a digit or `_`: the rule above restricted to ASCII, where a byte is a
    /// character.
    private static func isPlainASCIIName(_ name: String) -> Bool {
        // A native Swift string is contiguous; one that is not just takes the general path.
        name.utf8.withContiguousStorageIfAvailable { isPlainASCIIName(bytes: $0) } ?? false
    }

    private static func isPlainASCIIName(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, bytes.count <= maximumLength else { return false }
        guard isASCIILetterOrDigit(first) || first == UInt8(ascii: "_") else { return false }
        return bytes.allSatisfy { isASCIILetterOrDigit($0) || punctuation.utf8.contains($0) }
    }

    private static func isASCIILetterOrDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    /// The characters allowed besides letters and digits, on both paths.
    private static let punctuation = ".-_:@/"

    private static func isAllowed(_ character: Character) -> Bool {
        if character.isLetter || character.isNumber { return !character.unicodeScalars.contains { $0.properties.generalCategory == .control } }
        return punctuation.contains(character)
    }

    private static func describe(_ character: Character) -> String {
        let codes = character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined(separator: " ")
        return character == " " ? "a space" : "the character \(codes)"
    }
}
