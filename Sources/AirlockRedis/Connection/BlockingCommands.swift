/// Recognises commands that legitimately keep the server silent for a while
/// (BLPOP, BLMOVE, XREAD BLOCK, WAIT, ...) so the socket read timeout can be
/// stretched for that call instead of killing a healthy connection.
enum BlockingCommands {
    /// How long a command may block server-side.
    enum Block: Equatable {
        /// Not a blocking command.
        case none
        /// Blocks at most this long.
        case upTo(Duration)
        /// Blocks until data arrives (timeout 0).
        case forever
    }

    /// Inspects the command name and its timeout argument.
    static func block(of args: [[UInt8]]) -> Block {
        guard let first = args.first, first.count <= 12, first.first.map({ $0 | 0x20 }) == UInt8(ascii: "b") || isXorW(first) else {
            return .none
        }
        let name = String(decoding: first, as: UTF8.self).uppercased()
        switch name {
        case "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX", "BRPOPLPUSH", "BLMOVE":
            return seconds(args.last, minimumCount: 3, args)
        case "BLMPOP", "BZMPOP":
            return seconds(args.count > 1 ? args[1] : nil, minimumCount: 2, args)
        case "XREAD", "XREADGROUP":
            guard let index = args.firstIndex(where: { String(decoding: $0, as: UTF8.self).uppercased() == "BLOCK" }),
                  index + 1 < args.count else { return .none }
            return milliseconds(args[index + 1])
        case "WAIT":
            return args.count == 3 ? milliseconds(args[2]) : .none
        case "WAITAOF":
            return args.count == 4 ? milliseconds(args[3]) : .none
        default:
            return .none
        }
    }

    /// The read timeout a call needs: blocking commands get their own timeout plus a
    /// second of slack (never less than the normal command timeout); `nil` = no timeout.
    static func readTimeout(for commands: [[[UInt8]]], commandTimeout: Duration?) -> Duration? {
        guard let commandTimeout else { return nil }
        var needed = commandTimeout
        for args in commands {
            switch block(of: args) {
            case .none: continue
            case .forever: return nil
            case .upTo(let limit): needed = max(needed, limit + .seconds(1))
            }
        }
        return needed
    }

    private static func isXorW(_ name: [UInt8]) -> Bool {
        let lower = name.first.map { $0 | 0x20 }
        return lower == UInt8(ascii: "x") || lower == UInt8(ascii: "w")
    }

    private static func seconds(_ arg: [UInt8]?, minimumCount: Int, _ args: [[UInt8]]) -> Block {
        guard args.count >= minimumCount, let arg, let value = Double(String(decoding: arg, as: UTF8.self)), value >= 0, value.isFinite else {
            return .none
        }
        return value == 0 ? .forever : .upTo(.milliseconds(Int64((min(value, 1e9) * 1000).rounded(.up))))
    }

    private static func milliseconds(_ arg: [UInt8]) -> Block {
        guard let value = Int64(String(decoding: arg, as: UTF8.self)), value >= 0 else { return .none }
        return value == 0 ? .forever : .upTo(.milliseconds(value))
    }
}
