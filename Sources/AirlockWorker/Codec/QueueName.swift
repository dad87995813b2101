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

    private static func isAllowed(_ character: Character) -> Bool {
        if character.isLetter || character.isNumber { return !character.unicodeScalars.contains { $0.properties.generalCategory == .control } }
        return ".-_:@/".contains(character)
    }

    private static func describe(_ character: Character) -> String {
        let codes = character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined(separator: " ")
        return character == " " ? "a space" : "the character \(codes)"
    }
}
