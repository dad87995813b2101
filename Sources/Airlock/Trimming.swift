extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (Unicode space separators and
    /// U+0009: what Foundation's `trimmingCharacters(in: .whitespaces)` removes), for parsing
    /// operator-written values without importing Foundation.
    package func trimmingSpaces() -> String {
        let text = self[...]
        guard let first = text.firstIndex(where: { !Self.isSpace($0) }) else { return "" }
        let last = text.lastIndex(where: { !Self.isSpace($0) })!
        return String(text[first...last])
    }

    private static func isSpace(_ character: Character) -> Bool {
        guard character.unicodeScalars.count == 1, let scalar = character.unicodeScalars.first else { return false }
        return scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator
    }
}
