import Testing

@testable import Airlock

@Suite("Trimming spaces without Foundation")
struct TrimmingTests {
    @Test("spaces and tabs go from both ends; inner ones, newlines and other characters stay")
    func trimsSpacesAndTabsOnly() {
        #expect("  a b\t".trimmingSpaces() == "a b")
        // No-break, em and ideographic spaces are space separators (Zs), as in Foundation's `.whitespaces`.
        #expect("\u{00A0}\u{2003}x\u{3000}".trimmingSpaces() == "x")
        // Newlines are not in `.whitespaces`: they stay.
        #expect("\nx \n".trimmingSpaces() == "\nx \n")
        #expect("   ".trimmingSpaces() == "")
        #expect("".trimmingSpaces() == "")
        #expect(Substring(" 5 ").trimmingSpaces() == "5")
        // A space carrying a combining mark is one character, and not a space.
        #expect(" \u{0301}x ".trimmingSpaces() == " \u{0301}x")
    }
}
