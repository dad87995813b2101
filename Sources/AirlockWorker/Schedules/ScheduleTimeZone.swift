#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A time zone a cron schedule runs in: `UTC`, a fixed offset (`UTC+02:00`, `GMT-5`), or an IANA
/// zone (`Europe/Paris`) read from the system's zone files — `$TZDIR`, or `/usr/share/zoneinfo`
/// (Debian's `tzdata` package).
///
/// The zone's rules are read once, when the schedule is declared; a worker does not notice a
/// `tzdata` upgrade until it restarts, as with any process reading the files.
public struct ScheduleTimeZone: Sendable, Hashable, CustomStringConvertible {
    /// The name as written.
    public let identifier: String
    let rules: ZoneRules

    /// UTC.
    public static let utc = ScheduleTimeZone(identifier: "UTC", rules: .fixed(0))

    private init(identifier: String, rules: ZoneRules) {
        self.identifier = identifier
        self.rules = rules
    }

    /// The zone `name` names.
    /// - Throws: ``ScheduleError`` (``ScheduleError/Kind/invalidCron``) saying why there is no
    ///   such zone here and what to write or install instead.
    public init(_ name: String) throws(ScheduleError) {
        try self.init(name, directory: Self.directory)
    }

    /// The zone `name` names, its file looked up in `directory`.
    init(_ name: String, directory: String) throws(ScheduleError) {
        if let offset = Self.fixedOffset(name) {
            self.init(identifier: name, rules: .fixed(offset))
            return
        }
        let quoted = CronExpression.quote(name)
        guard Self.isZoneName(name) else {
            throw ScheduleError(.invalidCron, "unknown time zone \(quoted): an IANA name is words of letters, digits, '_', '-', '+' and '.' joined by '/', such as Europe/Paris; or write UTC, or UTC+hh:mm")
        }
        let path = directory + "/" + name
        let bytes: [UInt8]
        switch Self.readFile(path) {
        case .success(let read): bytes = read
        case .failure(let failure) where [ENOENT, ENOTDIR, EISDIR].contains(failure.errno):
            throw ScheduleError(
                .invalidCron,
                "unknown time zone \(quoted): there is no zone file \(CronExpression.quote(path)); use an IANA name such as Europe/Paris, or UTC+hh:mm (the zone files come from the tzdata package; TZDIR names another directory)")
        case .failure(let failure):
            throw ScheduleError(.invalidCron, "time zone \(quoted): cannot read \(CronExpression.quote(path)): \(String(cString: strerror(failure.errno)))")
        }
        do {
            self.init(identifier: name, rules: try ZoneRules(tzif: bytes))
        } catch {
            throw ScheduleError(.invalidCron, "time zone \(quoted): \(CronExpression.quote(path)) is not a usable zone file: \(error.reason)")
        }
    }

    /// The zone `name` names, or nil (``init(_:)`` says why).
    public static func named(_ name: String) -> ScheduleTimeZone? { try? ScheduleTimeZone(name) }

    /// The zone's name as written.
    public var description: String { identifier }

    /// Seconds east of UTC at `date`.
    public func secondsFromUTC(at date: Date) -> Int {
        Int(rules.offset(at: Int64((date.timeIntervalSince1970).rounded(.down))))
    }

    /// Where the zone files are: `$TZDIR`, or `/usr/share/zoneinfo`.
    static var directory: String {
        if let dir = getenv("TZDIR"), dir.pointee != 0 { return String(cString: dir) }
        return "/usr/share/zoneinfo"
    }

    /// `UTC`, `GMT`, or either followed by `±h`, `±hh`, `±hhmm` or `±hh:mm` (at most 18 hours),
    /// east of UTC when positive, as Foundation reads them — not the inverted POSIX `Etc/GMT+2`,
    /// which is a zone file and is read as one.
    static func fixedOffset(_ name: String) -> Int32? {
        guard name.hasPrefix("UTC") || name.hasPrefix("GMT") else { return nil }
        let rest = name.utf8.dropFirst(3)
        guard let sign = rest.first else { return 0 }
        guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        // `h`, `hh`, `hmm` or `hhmm`; or `h:mm` or `hh:mm`.
        let parts = rest.dropFirst().split(separator: UInt8(ascii: ":"), maxSplits: 2, omittingEmptySubsequences: false)
        let hourDigits: Substring.UTF8View.SubSequence, minuteDigits: Substring.UTF8View.SubSequence
        switch parts.count {
        case 1 where (1...4).contains(parts[0].count):
            let split = parts[0].count <= 2 ? parts[0].endIndex : parts[0].index(parts[0].endIndex, offsetBy: -2)
            (hourDigits, minuteDigits) = (parts[0][..<split], parts[0][split...])
        case 2 where (1...2).contains(parts[0].count) && parts[1].count == 2:
            (hourDigits, minuteDigits) = (parts[0], parts[1])
        default: return nil
        }
        guard let hours = Self.number(hourDigits), let minutes = minuteDigits.isEmpty ? 0 : Self.number(minuteDigits), hours <= 18, minutes < 60 else { return nil }
        return (sign == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
    }

    /// The decimal number `digits` spell, or nil for anything but digits.
    private static func number(_ digits: Substring.UTF8View.SubSequence) -> Int32? {
        digits.reduce(Int32(0) as Int32?) { value, byte in
            guard let value, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            return value * 10 + Int32(byte - UInt8(ascii: "0"))
        }
    }

    /// Whether `name` can only name a file inside the zone directory: no `..`, no leading `/`,
    /// nothing but the characters IANA names use.
    static func isZoneName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part != "." && part != ".."
                && part.utf8.allSatisfy { b in
                    (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                        || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                }
        }
    }

    private struct ReadFailure: Error {
        let errno: Int32
    }

    /// The file's bytes, or the errno that stopped the read. Zone files are a few kilobytes;
    /// anything over 1 MiB is refused as not one.
    private static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(fd) }
        let limit = 1 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while bytes.count <= limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            if n == 0 { return .success(bytes) }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return .failure(ReadFailure(errno: EFBIG))
    }
}
