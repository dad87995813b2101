/// Redis Cluster's key → slot function: CRC16 (XMODEM) of the key's hash tag, modulo 16384.
///
/// The hash tag is the text between the first `{` and the next `}` when that text is not empty;
/// otherwise the whole key. Airlock's queue keys carry `{<queue>}`, so every key of one queue
/// lands in one slot and each per-queue script runs on one node.
public enum RedisHashSlot {
    /// The number of slots in a Redis Cluster.
    public static let count = 16384

    /// The slot of `key`.
    public static func of<Key: Collection>(_ key: Key) -> Int where Key.Element == UInt8 {
        let bytes = Array(key)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
           let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            return Int(crc16(bytes[(open + 1)..<close]) & 0x3FFF)
        }
        return Int(crc16(bytes[...]) & 0x3FFF)
    }

    /// The slot of `key`'s UTF-8 bytes.
    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    private static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
