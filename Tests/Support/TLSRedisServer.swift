import AirlockRedis
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Certificates made at test time by the `openssl` command line: a CA, a server certificate
/// for 127.0.0.1 and localhost signed by it, a client certificate signed by it, and a second,
/// unrelated CA with a client certificate of its own (for "wrong CA" tests). EC P-256 keys:
/// generating them takes milliseconds.
public struct TestCertificates: Sendable {
    /// Where the files are.
    public let directory: String

    /// The CA that signed the server and client certificates.
    public var caFile: String { directory + "/ca.crt" }
    /// The server's certificate (SAN IP:127.0.0.1, DNS:localhost).
    public var serverCertificate: String { directory + "/server.crt" }
    /// The server's key.
    public var serverKey: String { directory + "/server.key" }
    /// A client certificate signed by ``caFile``.
    public var clientCertificate: String { directory + "/client.crt" }
    /// Its key.
    public var clientKey: String { directory + "/client.key" }
    /// A CA that signed nothing the server presents.
    public var otherCAFile: String { directory + "/other-ca.crt" }
    /// A client certificate signed by ``otherCAFile``: a server trusting only ``caFile`` rejects it.
    public var otherClientCertificate: String { directory + "/other-client.crt" }
    /// Its key.
    public var otherClientKey: String { directory + "/other-client.key" }

    private static let sharedTask = Mutex<Task<TestCertificates, any Error>?>(nil)

    /// One set per test process, generated on first use and removed at exit.
    public static func shared() async throws -> TestCertificates {
        let task = sharedTask.withLock { slot in
            if let slot { return slot }
            let task = Task<TestCertificates, any Error> { try await RedisServer.offPool { try generate() } }
            slot = task
            return task
        }
        return try await task.value
    }

    /// Generates a fresh set in a directory of its own (removed at exit, or by the next test
    /// process if this one crashes).
    public static func generate() throws -> TestCertificates {
        let openssl = try findOpenSSL()
        let directory = try Launcher.makeDirectory()
        CertificateCleanup.register(directory)
        func run(_ arguments: [String]) throws {
            try Self.run(openssl, arguments, in: directory)
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: directory + "/client.ext", atomically: true, encoding: .utf8)
        for ca in ["ca", "other-ca"] {
            try run(["req", "-x509"] + ec + ["-keyout", "\(ca).key", "-out", "\(ca).crt", "-days", "3650", "-subj", "/CN=airlock-test-\(ca)"])
        }
        for (name, ca, ext, subject) in [
            ("server", "ca", "server.ext", "/CN=127.0.0.1"), ("client", "ca", "client.ext", "/CN=airlock-test-client"),
            ("other-client", "other-ca", "client.ext", "/CN=airlock-test-stranger"),
        ] {
            try run(["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try run(["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).crt", "-CAkey", "\(ca).key", "-CAcreateserial",
                     "-out", "\(name).crt", "-days", "3650", "-extfile", ext])
        }
        return TestCertificates(directory: directory)
    }

    private static func findOpenSSL() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in path + ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/openssl") {
            return directory + "/openssl"
        }
        throw RedisServerError("openssl was not found in PATH or /usr/bin; the TLS tests make their certificates with it (install it: apt-get install openssl)")
    }

    private static func run(_ binary: String, _ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let log = directory + "/openssl.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? output.close()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw RedisServerError("openssl \(arguments.prefix(2).joined(separator: " ")) failed (status \(process.terminationStatus)): \(text.suffix(400))")
        }
    }
}

/// Removes generated certificate directories when the test process exits.
private enum CertificateCleanup {
    static let directories = Mutex<[String]>([])
    static let installed = Atomic<Bool>(false)

    static func register(_ directory: String) {
        directories.withLock { $0.append(directory) }
        guard !installed.exchange(true, ordering: .relaxed) else { return }
        atexit {
            for directory in CertificateCleanup.directories.withLock({ $0 }) {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }
}

/// A real redis-server with a TLS port (certificates from ``TestCertificates``) beside its
/// plaintext one, which the readiness probe and the tests' own inspection use.
public final class TLSRedisServer: Sendable {
    /// The process (stopped with this object, or by ``stop()``).
    public let server: RedisServer
    /// The port that speaks TLS only.
    public let tlsPort: Int
    /// The certificates it was started with.
    public let certificates: TestCertificates
    /// Whether it demands a client certificate (`tls-auth-clients yes`).
    public let requiresClientCertificates: Bool

    private init(server: RedisServer, tlsPort: Int, certificates: TestCertificates, requiresClientCertificates: Bool) {
        self.server = server
        self.tlsPort = tlsPort
        self.certificates = certificates
        self.requiresClientCertificates = requiresClientCertificates
    }

    /// Starts a server; `requireClientCertificates` makes it mutual TLS.
    public static func start(requireClientCertificates: Bool = false, options: RedisServer.Options = .init()) async throws -> TLSRedisServer {
        let certificates = try await TestCertificates.shared()
        var lastError: (any Error)?
        for _ in 0..<3 {
            let tlsPort = try RedisServer.freePort()
            var options = options
            options.extraConfig = [
                "tls-port \(tlsPort)",
                "tls-cert-file \(certificates.serverCertificate)",
                "tls-key-file \(certificates.serverKey)",
                "tls-ca-cert-file \(certificates.caFile)",
                "tls-auth-clients \(requireClientCertificates ? "yes" : "no")",
            ] + options.extraConfig
            do {
                let server = try await RedisServer.start(options)
                return TLSRedisServer(server: server, tlsPort: tlsPort, certificates: certificates, requiresClientCertificates: requireClientCertificates)
            } catch {
                lastError = error // the TLS port was taken between probe and bind
            }
        }
        throw lastError ?? RedisServerError("could not start a TLS redis-server")
    }

    /// `rediss://127.0.0.1:<tls port>/<db>?tls_ca_file=<ca>` plus `query` (`&`-joined parameters).
    public func url(database: Int = 0, query: String = "") -> String {
        "rediss://127.0.0.1:\(tlsPort)/\(database)?tls_ca_file=\(certificates.caFile)" + (query.isEmpty ? "" : "&" + query)
    }

    /// The same URL with the client certificate (mutual TLS).
    public func mutualURL(database: Int = 0, query: String = "") -> String {
        url(database: database, query: "tls_cert_file=\(certificates.clientCertificate)&tls_key_file=\(certificates.clientKey)" + (query.isEmpty ? "" : "&" + query))
    }

    /// The plaintext port's URL, for inspecting what the TLS clients wrote.
    public var plaintextURL: String { server.url }

    /// Stops the server now.
    public func stop() { server.stop() }
}
