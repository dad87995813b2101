import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stand-in for a sentinel whose answer the test sets: it speaks just enough RESP to answer
/// `AUTH` and `SENTINEL GET-MASTER-ADDR-BY-NAME`, naming whatever port ``name(port:)`` says.
/// What real sentinels cannot be made to do on cue — name a replica, forget the master, keep a
/// demoted master's clients connected — is what the client's failover handling must survive.
/// Its threads stop with ``stop()`` (or when it is released).
public final class FakeSentinel: Sendable {
    /// The port it listens on.
    public let port: Int
    /// The master name it knows.
    public let masterName: String
    private let listener: Int32
    private let state = Mutex<State>(State())

    private struct State {
        var answer: Int?
        var password: String?
        var questions = 0
        var connections: [Int32] = []
        var stopped = false
    }

    /// Listens on a free loopback port, answering for `masterName` with `port` (nil: unknown master).
    public init(masterName: String = "mymaster", answering port: Int?, password: String? = nil) throws {
        self.masterName = masterName
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Probe.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw RedisServerError("could not listen for the fake sentinel: \(String(cString: strerror(errno)))")
        }
        self.listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        state.withLock {
            $0.answer = port
            $0.password = password
        }
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit {
        stop()
    }

    /// From now on, name the master on `port` (nil: say the master is unknown).
    public func name(port: Int?) {
        state.withLock { $0.answer = port }
    }

    /// How many `GET-MASTER-ADDR-BY-NAME` questions it answered.
    public var questions: Int { state.withLock { $0.questions } }

    /// Closes the listener and every connection. Idempotent.
    public func stop() {
        let connections = state.withLock { state -> [Int32]? in
            guard !state.stopped else { return nil }
            state.stopped = true
            return state.connections
        }
        guard let connections else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.connections.append(fd)
                return true
            }
            guard accepted else {
                close(fd)
                return
            }
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { $0.connections.removeAll { $0 == fd } }
            close(fd)
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var authenticated = false
        while true {
            while let (command, used) = Self.parseCommand(buffer) {
                buffer.removeFirst(used)
                let reply = answer(command, authenticated: &authenticated)
                guard reply.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == reply.count else { return }
            }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    private func answer(_ command: [String], authenticated: inout Bool) -> [UInt8] {
        let name = command.first?.uppercased() ?? ""
        let expected = state.withLock { $0.password }
        if name == "AUTH" {
            guard let expected else { return Array("-ERR AUTH <password> called without any password configured for the default user\r\n".utf8) }
            authenticated = command.last == expected
            return authenticated ? Array("+OK\r\n".utf8) : Array("-WRONGPASS invalid username-password pair or user is disabled.\r\n".utf8)
        }
        if expected != nil && !authenticated { return Array("-NOAUTH Authentication required.\r\n".utf8) }
        guard name == "SENTINEL", command.count == 3, command[1].uppercased() == "GET-MASTER-ADDR-BY-NAME" else {
            return Array("-ERR unknown command for a fake sentinel\r\n".utf8)
        }
        let answer = state.withLock { state -> Int? in
            state.questions += 1
            return state.answer
        }
        guard command[2] == masterName, let answer else { return Array("*-1\r\n".utf8) }
        let port = String(answer)
        return Array("*2\r\n$9\r\n127.0.0.1\r\n$\(port.utf8.count)\r\n\(port)\r\n".utf8)
    }

    /// One complete `*N $len arg…` command at the start of `bytes`, and how many bytes it took.
    static func parseCommand(_ bytes: [UInt8]) -> ([String], Int)? {
        var index = 0
        func line() -> String? {
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: "\r")), end + 1 < bytes.count else { return nil }
            let text = String(decoding: bytes[index..<end], as: UTF8.self)
            index = end + 2
            return text
        }
        guard let header = line(), header.hasPrefix("*"), let count = Int(header.dropFirst()) else { return nil }
        var arguments: [String] = []
        for _ in 0..<count {
            guard let size = line(), size.hasPrefix("$"), let length = Int(size.dropFirst()), index + length + 2 <= bytes.count else { return nil }
            arguments.append(String(decoding: bytes[index..<index + length], as: UTF8.self))
            index += length + 2
        }
        return (arguments, index)
    }
}
