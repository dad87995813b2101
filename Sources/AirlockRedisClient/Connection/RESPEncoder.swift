/// Writes commands as RESP arrays of bulk strings straight into one buffer: the whole pipeline
/// goes out in one write, with no per-argument C arrays (what hiredis's argv interface needed).
enum RESPEncoder {
    /// Appends `*N\r\n` and `$len\r\n<bytes>\r\n` per argument for each command.
    static func encode(_ commands: [RedisCommand], into buffer: inout [UInt8]) {
        var size = 0
        for command in commands {
            size += 16
            for argument in command.arguments { size += argument.count + 16 }
        }
        buffer.reserveCapacity(buffer.count + size)
        for command in commands {
            buffer.append(UInt8(ascii: "*"))
            appendDecimal(command.arguments.count, to: &buffer)
            buffer.append(contentsOf: crlf)
            for argument in command.arguments {
                buffer.append(UInt8(ascii: "$"))
                appendDecimal(argument.count, to: &buffer)
                buffer.append(contentsOf: crlf)
                buffer.append(contentsOf: argument)
                buffer.append(contentsOf: crlf)
            }
        }
    }

    private static let crlf: [UInt8] = [0x0D, 0x0A]

    /// The decimal digits of a non-negative count, without going through String.
    static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value < 10 {
            buffer.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var digits = 0
        var rest = value
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: digits))
        rest = value
        var index = start + digits - 1
        while index >= start {
            buffer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            index -= 1
        }
    }
}
