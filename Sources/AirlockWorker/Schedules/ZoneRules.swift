/// A time zone's offsets from UTC over time, as a TZif file (RFC 8536, the files in
/// `/usr/share/zoneinfo`) gives them: the instants at which the offset changes, and for the
/// instants after the last of them the file's POSIX rule (``PosixZoneRule``).
///
/// We read these files ourselves rather than ask Foundation: its IANA zones come from ICU, which
/// costs a static worker ~2.5 MB of resident memory and 41 MB of binary for what is, here, a
/// binary search in a few hundred numbers.
struct ZoneRules: Sendable, Hashable {
    /// The instants (seconds since the epoch) at which the offset changes, ascending.
    private let transitions: [Int64]
    /// The offset in seconds east of UTC from each transition on.
    private let offsets: [Int32]
    /// The offset before the first transition.
    private let initial: Int32
    /// The rule after the last transition; `nil` when the last offset holds for ever.
    private let tail: PosixZoneRule?
    /// Every offset these rules can give, ascending, each once.
    let allOffsets: [Int32]

    /// A zone whose offset never changes.
    static func fixed(_ offset: Int32) -> ZoneRules { ZoneRules(transitions: [], offsets: [], initial: offset, tail: nil) }

    private init(transitions: [Int64], offsets: [Int32], initial: Int32, tail: PosixZoneRule?) {
        self.transitions = transitions
        self.offsets = offsets
        self.initial = initial
        self.tail = tail
        var all = Set(offsets)
        all.insert(initial)
        if let tail { all.formUnion(tail.offsets) }
        allOffsets = all.sorted()
    }

    /// The offset in seconds east of UTC at `instant` (seconds since the epoch).
    func offset(at instant: Int64) -> Int32 {
        guard let last = transitions.last else { return tail?.offset(at: instant) ?? initial }
        if instant >= last { return tail?.offset(at: instant) ?? offsets[offsets.count - 1] }
        let passed = transitionCount(through: instant)
        return passed == 0 ? initial : offsets[passed - 1]
    }

    /// The number of transitions at or before `instant` (a binary search).
    private func transitionCount(through instant: Int64) -> Int {
        var low = 0, high = transitions.count
        while low < high {
            let mid = (low + high) / 2
            if transitions[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The smallest and largest offsets in effect at any instant from `start` through `end`
    /// (or wider: callers use them as bounds).
    func offsetBounds(from start: Int64, through end: Int64) -> (min: Int32, max: Int32) {
        var low = offset(at: start), high = low
        // The rule after the last transition applies from it on — or always, in a file with none.
        if let tail, end >= transitions.last ?? .min {
            for o in tail.offsets {
                low = min(low, o)
                high = max(high, o)
            }
        }
        var i = transitionCount(through: start)
        while i < transitions.count, transitions[i] <= end {
            low = min(low, offsets[i])
            high = max(high, offsets[i])
            i += 1
        }
        return (low, high)
    }

    /// The instants whose wall-clock time is `local` (seconds since the epoch read as a wall
    /// clock), ascending: one; two when clocks went back over it; none when they jumped over it.
    func instants(showing local: Int64) -> [Int64] {
        var out: [Int64] = []
        // An instant u shows `local` exactly when offset(u) == local - u, and offset(u) is one of
        // the zone's offsets, so trying each of those finds every such u.
        for o in allOffsets.reversed() {
            let u = local - Int64(o)
            if offset(at: u) == o { out.append(u) }
        }
        return out
    }

    // MARK: Reading a TZif file

    /// Why a file is not a zone file.
    struct Malformed: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Reads the rules from the bytes of a TZif file, version 1 to 4.
    init(tzif bytes: [UInt8]) throws(Malformed) {
        var reader = Reader(bytes: bytes)
        let v1 = try reader.header()
        guard v1.version >= 2 else {
            let block = try reader.block(v1, timeSize: 4)
            try self.init(block: block, footer: nil)
            return
        }
        // Version 2 and later repeat the data with 64-bit times after the version 1 block,
        // then end with a POSIX rule for the instants after the last transition.
        try reader.skip(v1.dataSize(timeSize: 4))
        let v2 = try reader.header()
        let block = try reader.block(v2, timeSize: 8)
        guard try reader.byte() == 0x0A, let end = reader.rest.firstIndex(of: 0x0A) else { throw Malformed("the footer is not a newline-framed line") }
        let text = String(decoding: reader.rest[..<end], as: UTF8.self)
        try self.init(block: block, footer: text)
    }

    private init(block: Reader.Block, footer: String?) throws(Malformed) {
        guard block.leapCount == 0 else { throw Malformed("it counts leap seconds (a right/ zone); use the zone of the same name without right/") }
        var tail: PosixZoneRule?
        if let footer, !footer.isEmpty {
            guard let rule = PosixZoneRule(footer) else { throw Malformed("its footer \(CronExpression.quote(footer)) is not a POSIX TZ rule") }
            tail = rule
        }
        self.init(
            transitions: block.times, offsets: block.typeIndices.map { block.typeOffsets[Int($0)] },
            initial: block.typeOffsets[0], tail: tail)
    }

    /// Bounds-checked big-endian reads over the file's bytes.
    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        struct Header {
            let version: Int
            let isUTCCount, isStdCount, leapCount, timeCount, typeCount, charCount: Int

            func dataSize(timeSize: Int) -> Int {
                timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount + isUTCCount
            }
        }

        struct Block {
            var times: [Int64] = []
            var typeIndices: [UInt8] = []
            var typeOffsets: [Int32] = []
            var leapCount = 0
        }

        var rest: ArraySlice<UInt8> { bytes[at...] }

        mutating func byte() throws(Malformed) -> UInt8 {
            guard at < bytes.count else { throw Malformed("it ends early") }
            defer { at += 1 }
            return bytes[at]
        }

        mutating func integer(_ size: Int) throws(Malformed) -> Int64 {
            guard bytes.count - at >= size else { throw Malformed("it ends early") }
            var value: UInt64 = 0
            for b in bytes[at..<at + size] { value = value << 8 | UInt64(b) }
            at += size
            // Sign-extend the 32-bit fields.
            return size == 4 ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value)
        }

        mutating func skip(_ count: Int) throws(Malformed) {
            guard count >= 0, bytes.count - at >= count else { throw Malformed("it ends early") }
            at += count
        }

        mutating func header() throws(Malformed) -> Header {
            guard bytes.count - at >= 44, bytes[at..<at + 4].elementsEqual("TZif".utf8) else { throw Malformed("it does not start with TZif") }
            let versionByte = bytes[at + 4]
            let version = versionByte == 0 ? 1 : Int(versionByte) - Int(UInt8(ascii: "0"))
            guard (1...9).contains(version) else { throw Malformed("its version byte is \(versionByte)") }
            at += 20
            var counts: [Int] = []
            for _ in 0..<6 {
                let n = try integer(4)
                // A zone has a few hundred transitions; anything near this is not a zone file.
                guard (0...1_000_000).contains(n) else { throw Malformed("a count is \(n)") }
                counts.append(Int(n))
            }
            let header = Header(
                version: version, isUTCCount: counts[0], isStdCount: counts[1], leapCount: counts[2], timeCount: counts[3],
                typeCount: counts[4], charCount: counts[5])
            guard header.typeCount >= 1 else { throw Malformed("it has no local time types") }
            return header
        }

        mutating func block(_ header: Header, timeSize: Int) throws(Malformed) -> Block {
            guard bytes.count - at >= header.dataSize(timeSize: timeSize) else { throw Malformed("it ends early") }
            var block = Block(leapCount: header.leapCount)
            for _ in 0..<header.timeCount {
                let t = try integer(timeSize)
                if let previous = block.times.last, t <= previous { throw Malformed("its transitions are out of order") }
                block.times.append(t)
            }
            for _ in 0..<header.timeCount {
                let index = try byte()
                guard Int(index) < header.typeCount else { throw Malformed("a transition names local time type \(index) of \(header.typeCount)") }
                block.typeIndices.append(index)
            }
            for _ in 0..<header.typeCount {
                let offset = try integer(4)
                // RFC 8536: -89999…93599 (just under -25 h to just under +26 h).
                guard (-89_999...93_599).contains(offset) else { throw Malformed("an offset is \(offset) s") }
                block.typeOffsets.append(Int32(offset))
                try skip(2)   // isdst, abbreviation index
            }
            try skip(header.charCount + header.leapCount * (timeSize + 4) + header.isStdCount + header.isUTCCount)
            return block
        }
    }
}
