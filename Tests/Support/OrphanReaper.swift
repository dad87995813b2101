import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cleans up servers left behind by test processes that crashed (a crash skips
/// deinit and atexit, so their redis-server processes and directories would pile up).
///
/// Only directories this support code created are considered, and only when the
/// test process recorded in them is gone; the server is killed only if its pid
/// still belongs to a redis-server whose working directory is that directory.
enum OrphanReaper {
    static let ownerFile = "owner.pid"
    static let serverPIDFile = "redis.pid"
    private static let reaped = Atomic<Bool>(false)

    /// Runs once per test process, before its first server starts.
    static func reapOnce() {
        guard !reaped.exchange(true, ordering: .relaxed) else { return }
        let base = Launcher.baseDirectory
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        for entry in entries where entry.hasPrefix("airlock-redis-") {
            let directory = base + "/" + entry
            guard let owner = readPID(directory + "/" + ownerFile), owner != getpid(), !isAlive(owner) else { continue }
            if let server = readPID(directory + "/" + serverPIDFile), isRedisServer(server, in: directory) {
                kill(server, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private static func readPID(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Alive unless /proc says it is gone or a zombie.
    private static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            return kill(pid, 0) == 0 || errno == EPERM
        }
        // Format: "pid (comm) S ..."; the state follows the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    private static func isRedisServer(_ pid: Int32, in directory: String) -> Bool {
        guard isAlive(pid),
              let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") else { return false }
        let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        return cwd == directory && command.contains("redis-server")
    }
}
