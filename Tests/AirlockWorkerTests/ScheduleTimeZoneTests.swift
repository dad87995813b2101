import AirlockTestKit
import Foundation
import Testing

@testable import AirlockWorker

// Our reader of the system's zone files against glibc reading the same files (through `date`),
// and cron's walk across clock changes against a minute-by-minute scan.

@Suite("Time zones from the system's zone files")
struct ScheduleTimeZoneTests {
    static let directory = "/usr/share/zoneinfo"

    /// Every zone file (not links, not the `posix/` and `right/` copies), by name.
    static func zoneFiles() throws -> [String] {
        var names: [String] = []
        let root = URL(fileURLWithPath: directory)
        let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey])
        while let url = walker?.nextObject() as? URL {
            let name = String(url.path.dropFirst(root.path.count + 1))
            if name == "posix" || name == "right" { walker?.skipDescendants() }
            let keys = try url.resourceValues(forKeys: [.isRegularFileKey, .isSymbolicLinkKey])
            guard keys.isRegularFile == true, keys.isSymbolicLink != true else { continue }
            guard let head = FileManager.default.contents(atPath: url.path)?.prefix(4), head.elementsEqual("TZif".utf8) else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    static func rules(_ name: String) throws -> ZoneRules {
        try ZoneRules(tzif: Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))))
    }

    /// glibc's offset (seconds east of UTC) in `zone` at each of `instants`, from one run of `date -f`.
    static func glibcOffsets(_ zone: String, _ instants: [Int64]) throws -> [Int32] {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("tz-\(UUID().uuidString)")
        try instants.map { "@\($0)" }.joined(separator: "\n").write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/date")
        process.arguments = ["-f", input.path, "+%::z"]
        // A leading colon makes glibc read the file and never parse the name as a POSIX rule.
        process.environment = ["TZ": ":" + zone, "TZDIR": directory, "LC_ALL": "C"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map { line in
            // +hh:mm:ss
            let sign: Int32 = line.first == "-" ? -1 : 1
            let parts = line.dropFirst().split(separator: ":").compactMap { Int32($0) }
            return parts.count == 3 ? sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]) : .min
        }
    }

    @Test("every zone file gives glibc's offsets from 1901 to 2106")
    func everyZoneAgreesWithGlibc() async throws {
        let zones = try Self.zoneFiles()
        #expect(zones.count > 300, "\(zones.count) zone files in \(Self.directory)")
        var shuffle = SeededShuffle(state: 20_261_203)
        // The span of 32-bit time and then some, where the files' transitions and their
        // footers' rules both apply.
        let instants = (0..<800).map { _ in shuffle.next(-2_147_483_648...4_294_967_295) }
        try await withThrowingTaskGroup(of: (String, [Int32], [Int32]).self) { group in
            for (i, zone) in zones.enumerated() {
                if i >= 8 { if let (zone, ours, glibc) = try await group.next() { Self.compare(zone, instants, ours, glibc) } }
                group.addTask {
                    let rules = try Self.rules(zone)
                    return (zone, instants.map { rules.offset(at: $0) }, try Self.glibcOffsets(zone, instants))
                }
            }
            for try await (zone, ours, glibc) in group { Self.compare(zone, instants, ours, glibc) }
        }
    }

    static func compare(_ zone: String, _ instants: [Int64], _ ours: [Int32], _ glibc: [Int32]) {
        #expect(ours.count == glibc.count, "\(zone)")
        let wrong = zip(instants, zip(ours, glibc)).filter { $1.0 != $1.1 }
        #expect(wrong.isEmpty, "\(zone): \(wrong.count) instants differ, first \(wrong.prefix(3).map { "\($0.0): ours \($0.1.0), glibc \($0.1.1)" })")
    }

    @Test(
        "each half hour of a year, and the second before it, agrees with glibc where clocks change oddly",
        arguments: [
            "Europe/Paris", "America/New_York", "Australia/Sydney", "Europe/Dublin", "America/Nuuk", "Pacific/Chatham",
            "Australia/Lord_Howe", "America/Santiago", "Africa/Casablanca", "Asia/Gaza", "America/Havana", "Pacific/Auckland",
            "America/Scoresbysund", "Asia/Tehran",
        ])
    func transitionsAgreeWithGlibc(zone: String) throws {
        let rules = try Self.rules(zone)
        // 2026 is inside the files' transition lists; 2046 and 2099 are past them (the footer's rule).
        for year in [2026, 2046, 2099] {
            let start = CivilTime.days(year: year, month: 1, day: 1) * 86_400
            var instants: [Int64] = []
            for step in 0..<Int64(366 * 48) {
                let at = start + step * 1800
                instants += [at - 1, at]
            }
            Self.compare("\(zone) \(year)", instants, instants.map { rules.offset(at: $0) }, try Self.glibcOffsets(zone, instants))
        }
    }

    @Test("a link names the zone it links to, and TZDIR moves the directory")
    func linksAndOtherDirectories() throws {
        let winter = Date(timeIntervalSince1970: 1_796_119_200)  // 2026-12-01
        #expect(try ScheduleTimeZone("Europe/Paris").secondsFromUTC(at: winter) == 3600)
        // `Europe/Monaco` is a link to Europe/Paris; `Asia/Calcutta` to Asia/Kolkata.
        #expect(try ScheduleTimeZone("Europe/Monaco").secondsFromUTC(at: winter) == 3600)
        #expect(try ScheduleTimeZone("Asia/Calcutta").secondsFromUTC(at: winter) == 19_800)
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("zones-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: elsewhere.appendingPathComponent("Test"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try FileManager.default.copyItem(atPath: Self.directory + "/Asia/Tokyo", toPath: elsewhere.path + "/Test/Zone")
        #expect(try ScheduleTimeZone("Test/Zone", directory: elsewhere.path).secondsFromUTC(at: winter) == 32_400)
        #expect(throws: ScheduleError.self) { try ScheduleTimeZone("Test/Zone") }
    }

    @Test("UTC and fixed offsets need no zone file and read as Foundation reads them")
    func fixedOffsets() throws {
        let expected: [(String, Int)] = [
            ("UTC", 0), ("GMT", 0), ("GMT+2", 7200), ("GMT-5", -18_000), ("UTC+05:30", 19_800), ("GMT+0530", 19_800),
            ("UTC-1", -3600), ("GMT+14", 50_400), ("UTC+5:45", 20_700), ("GMT-09:30", -34_200),
        ]
        let nowhere = "/nonexistent-\(UUID().uuidString)"
        for (name, offset) in expected {
            let zone = try ScheduleTimeZone(name, directory: nowhere)
            #expect(zone.secondsFromUTC(at: Date()) == offset, "\(name)")
            #expect(zone.description == name)
            if let foundation = TimeZone(identifier: name) { #expect(foundation.secondsFromGMT() == offset, "\(name) in Foundation") }
        }
        // The inverted POSIX names are zone files: Etc/GMT+2 is two hours west.
        #expect(try ScheduleTimeZone("Etc/GMT+2").secondsFromUTC(at: Date()) == -7200)
        for bad in ["UTC+", "GMT+19", "UTC+2:60", "UTC+123456", "GMT++1", "UTC+1:2:3"] {
            #expect(ScheduleTimeZone.fixedOffset(bad) == nil, "\(bad)")
        }
    }

    @Test(
        "names that are not zones say why, and never reach outside the zone directory",
        arguments: [
            ("Mars/Olympus", "unknown time zone 'Mars/Olympus': there is no zone file '/usr/share/zoneinfo/Mars/Olympus'"),
            ("Europe", "unknown time zone 'Europe': there is no zone file"),
            ("../../etc/passwd", "unknown time zone '../../etc/passwd': an IANA name is words of letters"),
            ("/etc/passwd", "an IANA name is words"),
            ("Europe//Paris", "an IANA name is words"),
            ("", "an IANA name is words"),
            ("zone.tab", "'/usr/share/zoneinfo/zone.tab' is not a usable zone file: it does not start with TZif"),
            ("right/Europe/Paris", "is not a usable zone file: it counts leap seconds (a right/ zone)"),
            ("Europe/Paris\u{1b}[2J", "unknown time zone 'Europe/Paris\\x1b[2J'"),
        ])
    func refusedNames(name: String, message: String) {
        #expect {
            try ScheduleTimeZone(name)
        } throws: { error in
            guard let error = error as? ScheduleError, error.kind == .invalidCron else { return false }
            return error.description.contains(message) && !error.description.contains("\u{1b}")
        }
        #expect(ScheduleTimeZone.named(name) == nil)
    }

    @Test("a damaged zone file is refused, whatever the damage, and nothing traps")
    func damagedFiles() throws {
        let paris = Array(try Data(contentsOf: URL(fileURLWithPath: Self.directory + "/Europe/Paris")))
        #expect(throws: Never.self) { try ZoneRules(tzif: paris) }
        // Every cut short of the whole file.
        for length in 0..<paris.count {
            #expect(throws: ZoneRules.Malformed.self, "\(length) bytes") { try ZoneRules(tzif: Array(paris[..<length])) }
        }
        // Random bytes overwritten: refused or read, but never a crash or a hang.
        var shuffle = SeededShuffle(state: 7)
        var refused = 0
        for _ in 0..<3000 {
            var damaged = paris
            for _ in 0..<Int(shuffle.next(1...4)) { damaged[Int(shuffle.next(0...Int64(paris.count - 1)))] = UInt8(shuffle.next(0...255)) }
            if let rules = try? ZoneRules(tzif: damaged) {
                _ = rules.offset(at: shuffle.next(-5_000_000_000...5_000_000_000))
                _ = rules.instants(showing: shuffle.next(-5_000_000_000...5_000_000_000))
            } else {
                refused += 1
            }
        }
        #expect(refused > 0)
        // A file claiming millions of transitions is refused before anything is allocated for them.
        var huge = paris
        huge.replaceSubrange(32..<36, with: [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: ZoneRules.Malformed.self) { try ZoneRules(tzif: huge) }
    }

    /// A version 2 zone file with no transitions at all: one local time type and a footer rule.
    static func ruleOnlyFile(offset: Int32, footer: String) -> [UInt8] {
        func be(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
        let header = Array("TZif2".utf8) + [UInt8](repeating: 0, count: 15) + [0, 0, 0, 0, 1, 4].flatMap { be($0) }
        let data = be(offset) + [0, 0] + Array("STD\0".utf8)
        return header + data + header + data + Array("\n\(footer)\n".utf8)
    }

    @Test("a file with no transitions, only a footer rule, changes its clocks as that rule says")
    func aRuleOnlyFile() throws {
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("zones-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: elsewhere.appendingPathComponent("Test"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try Data(Self.ruleOnlyFile(offset: 3600, footer: "CET-1CEST,M3.5.0,M10.5.0/3")).write(to: elsewhere.appendingPathComponent("Test/Rule"))
        let rule = try ScheduleTimeZone("Test/Rule", directory: elsewhere.path)
        // Paris follows the same rule after its file's last transition (2037).
        let paris = try ScheduleTimeZone("Europe/Paris")
        let start = CivilTime.days(year: 2046, month: 1, day: 1) * 86_400
        var changes: [Int64] = []
        for hour in 1..<(365 * 24) {
            let u = start + Int64(hour) * 3600
            #expect(rule.rules.offset(at: u) == paris.rules.offset(at: u), "\(u)")
            if paris.rules.offset(at: u) != paris.rules.offset(at: u - 3600) { changes.append(u) }
        }
        #expect(changes.count == 2)
        // Cron's walk needs both offsets as bounds even though the file lists no change.
        for change in changes {
            for before: Int64 in [0, 600, 1200, 1800, 3600, 5400, 7200] {
                let after = Date(timeIntervalSince1970: Double(change - before))
                for (text, _) in Self.expressions {
                    let cron = try CronExpression(text)
                    #expect(cron.next(after: after, in: rule) == cron.next(after: after, in: paris), "\(text) after \(after)")
                }
            }
        }
    }

    @Test("POSIX rules read as RFC 8536 writes them", arguments: [
        ("CET-1CEST,M3.5.0,M10.5.0/3", 3600, 7200),
        ("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -7200, -3600),
        ("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 45_900, 49_500),
        ("IST-1GMT0,M10.5.0,M3.5.0/1", 3600, 0),
        ("EST5EDT", -18_000, -14_400),
        ("<+0330>-3:30", 12_600, nil),
        ("AAA3BBB,J60/25,300/-167", -10_800, -7200),
    ] as [(String, Int32, Int32?)])
    func posixRules(text: String, standard: Int32, daylight: Int32?) throws {
        let rule = try #require(PosixZoneRule(text))
        #expect(rule.standardOffset == standard)
        #expect(rule.daylight?.offset == daylight)
    }

    @Test func malformedPosixRulesAreRefused() {
        for text in ["", "CET", "C-1", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,J0,J365",
                     "CET-25", "CET-1CEST,M3.5.0/168,M10.5.0", "<A>1", "CET-1 ", "CET-1:60"] {
            #expect(PosixZoneRule(text) == nil, "\(text)")
        }
    }

    /// The cron expressions the scan checks, with the wall-clock times each matches.
    static let expressions: [(String, @Sendable (CivilTime) -> Bool)] = [
        ("30 2 * * *", { $0.minute == 30 && $0.hour == 2 }),
        ("0 * * * *", { $0.minute == 0 }),
        ("*/15 1-3 * * *", { $0.minute % 15 == 0 && (1...3).contains($0.hour) }),
        ("0 0 * * SUN", { $0.minute == 0 && $0.hour == 0 && $0.weekday == 0 }),
        ("45 23 * * *", { $0.minute == 45 && $0.hour == 23 }),
        ("59 1 * * *", { $0.minute == 59 && $0.hour == 1 }),
    ]

    @Test(
        "cron's next match across clock changes is the first minute a scan finds",
        arguments: ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Europe/Dublin", "America/Havana", "Pacific/Chatham", "Asia/Beirut"])
    func cronAcrossClockChanges(zone: String) throws {
        let timeZone = try ScheduleTimeZone(zone)
        var shuffle = SeededShuffle(state: UInt64(zone.utf8.count))
        var checked = 0
        for _ in 0..<6 {
            // Find the instants in a random year at which the offset changes, then start the
            // search a little before each.
            let year = Int(shuffle.next(1980...2090))
            let start = CivilTime.days(year: year, month: 1, day: 1) * 86_400
            var changes: [Int64] = []
            for hour in 1..<(366 * 24) {
                let u = start + Int64(hour) * 3600
                if timeZone.rules.offset(at: u) != timeZone.rules.offset(at: u - 3600) { changes.append(u) }
            }
            for change in changes {
                let after = change - shuffle.next(0...172_800)
                for (text, matches) in Self.expressions {
                    let found = try CronExpression(text).next(after: Date(timeIntervalSince1970: Double(after)), in: timeZone)
                    // The scan: each whole minute after `after` whose wall-clock time matches.
                    var u = (after / 60 + 1) * 60
                    while !matches(CivilTime(u + Int64(timeZone.rules.offset(at: u)))) { u += 60 }
                    #expect(found == Date(timeIntervalSince1970: Double(u)), "\(text) in \(zone) after \(after)")
                    checked += 1
                }
            }
        }
        #expect(checked > 0)
    }
}
