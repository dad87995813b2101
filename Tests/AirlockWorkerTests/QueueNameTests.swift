import AirlockWorker
import Testing

/// `QueueName` decides short ASCII names on their bytes and everything else by the Unicode rule;
/// both must give the same answers, so every ASCII character is tried in both places of a name.
@Suite struct QueueNameTests {
    static let allowedInside = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:@/".unicodeScalars)
    static let allowedFirst = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_".unicodeScalars)

    @Test func everyASCIICharacterIsJudgedByTheDocumentedRule() {
        for value in UInt8(0)...UInt8(127) {
            let scalar = Unicode.Scalar(value)
            let character = String(Character(scalar))
            #expect((QueueName.problem(with: "q" + character) == nil) == Self.allowedInside.contains(scalar), "inside: U+\(value)")
            #expect((QueueName.problem(with: character + "q") == nil) == Self.allowedFirst.contains(scalar), "first: U+\(value)")
        }
    }

    @Test func theLengthLimitHoldsOnBothPaths() {
        #expect(QueueName.problem(with: String(repeating: "a", count: QueueName.maximumLength)) == nil)
        #expect(QueueName.problem(with: String(repeating: "a", count: QueueName.maximumLength + 1))?.contains("over the limit") == true)
        #expect(QueueName.problem(with: String(repeating: "ü", count: QueueName.maximumLength)) == nil)
        #expect(QueueName.problem(with: String(repeating: "ü", count: QueueName.maximumLength + 1))?.contains("over the limit") == true)
        #expect(QueueName.problem(with: "")?.contains("empty") == true)
    }

    @Test func aNonASCIINameTakesTheUnicodeRule() {
        #expect(QueueName.problem(with: "ü-queue") == nil)
        #expect(QueueName.problem(with: "日本.orders") == nil)
        #expect(QueueName.problem(with: "q\u{0085}x") != nil)  // NEL, a C1 control character
        #expect(QueueName.problem(with: "q\u{200B}x") != nil)  // zero-width space: neither letter nor digit
        #expect(QueueName.problem(with: "-ü") != nil)
    }
}
