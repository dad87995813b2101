/// `application/x-www-form-urlencoded` fields (a POST body or a query string), in order, with
/// repeated names kept (checkbox selections).
struct FormFields: Sendable {
    private(set) var pairs: [(name: String, value: String)] = []

    /// Parses `a=1&b=x+y&c=%3C`: `+` is a space, `%XX` a byte, invalid UTF-8 replaced.
    init(encoded: some Sequence<UInt8>) {
        var name: [UInt8] = [], value: [UInt8] = []
        var inValue = false
        func flush() {
            if !name.isEmpty || inValue { pairs.append((Self.decode(name), Self.decode(value))) }
            name.removeAll(keepingCapacity: true)
            value.removeAll(keepingCapacity: true)
            inValue = false
        }
        for byte in encoded {
            switch byte {
            case UInt8(ascii: "&"): flush()
            case UInt8(ascii: "=") where !inValue: inValue = true
            default: if inValue { value.append(byte) } else { name.append(byte) }
            }
        }
        flush()
    }

    /// The first value named `name`, `nil` when absent.
    subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    /// The first value named `name`, trimmed; `nil` when absent or blank.
    func nonEmpty(_ name: String) -> String? {
        guard let value = self[name]?.trimmingWhitespace, !value.isEmpty else { return nil }
        return value
    }

    /// Every value named `name`, in order.
    func all(_ name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }

    private static func decode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line breaks.
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
