/// A Lua script identified by its SHA-1, so it can be run with EVALSHA (sending
/// 40 bytes instead of the whole source) and reloaded transparently when the
/// server's script cache was flushed or the server restarted.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source, sent with EVAL when the server does not know the script yet.
    public let source: String
    /// Lowercase hex SHA-1 of `source`, the same digest Redis uses for EVALSHA / SCRIPT LOAD.
    public let sha1: String

    /// Computes the digest once, so hot paths never hash.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
        self.sha1Bytes = Array(sha1.utf8)
    }

    /// ``sha1`` as bytes, kept so a call never re-encodes it.
    let sha1Bytes: [UInt8]

    /// One invocation of a script: its keys and arguments.
    public struct Call: Sendable, Hashable {
        /// The script.
        public var script: RedisScript
        /// `KEYS`.
        public var keys: [[UInt8]]
        /// `ARGV`.
        public var arguments: [[UInt8]]

        /// An invocation of `script`.
        public init(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) {
            self.script = script
            self.keys = keys
            self.arguments = arguments
        }

        /// `EVALSHA sha numkeys keys… args…`.
        var evalsha: RedisCommand {
            var bytes: [[UInt8]] = [Self.evalshaName, script.sha1Bytes, Array(String(keys.count).utf8)]
            bytes.reserveCapacity(3 + keys.count + arguments.count)
            bytes.append(contentsOf: keys)
            bytes.append(contentsOf: arguments)
            return RedisCommand(arguments: bytes)
        }

        private static let evalshaName = Array("EVALSHA".utf8)
    }

    /// An invocation of this script with `keys` and `arguments`.
    public func call(keys: [[UInt8]], arguments: [[UInt8]]) -> Call { Call(self, keys: keys, arguments: arguments) }

    /// `SCRIPT LOAD source`, sent when the server's cache lacks the script.
    var load: RedisCommand { RedisCommand("SCRIPT", "LOAD", source) }
}

/// Minimal SHA-1 (FIPS 180-4), only for naming scripts the way Redis does;
/// no crypto library is available and no security property is needed.
enum SHA1 {
    static func hexDigest(_ message: [UInt8]) -> String {
        digest(message).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bitLength = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) {
            padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }

        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let base = chunk + i * 4
                w[i] = UInt32(padded[base]) << 24 | UInt32(padded[base + 1]) << 16
                    | UInt32(padded[base + 2]) << 8 | UInt32(padded[base + 3])
            }
            for i in 16..<80 {
                w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
            }
            var (a, b, c, d, e) = h
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = rotl(a, 5) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = rotl(b, 30)
                b = a
                a = temp
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }

        var out: [UInt8] = []
        out.reserveCapacity(20)
        for word in [h.0, h.1, h.2, h.3, h.4] {
            out += [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)]
        }
        return out
    }

    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 {
        (x << n) | (x >> (32 - n))
    }
}
