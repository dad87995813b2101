// The only file that touches OpenSSL (the CTLS module over Debian's libssl-dev): hiredis 0.14.1
// has no TLS, so the connection thread owns the socket and runs TLS over it here.
import Airlock
import CTLS
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An OpenSSL client context (`SSL_CTX`) for one ``RedisConfiguration/TLS``: what to trust, what
/// certificate to present, whether to verify. Built once per connection owner, on its thread,
/// and used only there.
final class TLSContext {
    /// The settings it was built from.
    let settings: RedisConfiguration.TLS
    fileprivate let context: OpaquePointer

    /// Loads the CA file and client certificate now, so a missing or unreadable file is reported
    /// (as a configuration problem) at the first connect instead of as a handshake failure.
    init(_ settings: RedisConfiguration.TLS, endpoint: String) throws(RedisError) {
        ERR_clear_error()
        guard let context = airlock_tls_client_context() else {
            throw .tls(endpoint, "could not create an OpenSSL context: \(TLSErrors.take())")
        }
        func fail(_ detail: String) -> RedisError {
            SSL_CTX_free(context)
            return .tls(endpoint, detail)
        }
        if settings.verifyPeer {
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            if let caFile = settings.caFile {
                guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                    throw fail("could not load the CA file '\(SafeText.escape(caFile))' (tls_ca_file): \(TLSErrors.take())")
                }
            } else if SSL_CTX_set_default_verify_paths(context) != 1 {
                throw fail("could not load the system's trusted certificates: \(TLSErrors.take()) (name a CA file with tls_ca_file)")
            }
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
        if let certificate = settings.certificateFile {
            let key = settings.keyFile ?? certificate
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw fail("could not load the client certificate '\(SafeText.escape(certificate))' (tls_cert_file): \(TLSErrors.take())")
            }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                let detail = TLSErrors.take()
                if detail.reason == X509_R_KEY_VALUES_MISMATCH {
                    throw fail("the private key '\(SafeText.escape(key))' does not belong to the certificate '\(SafeText.escape(certificate))'")
                }
                throw fail("could not load the private key '\(SafeText.escape(key))' (tls_key_file): \(detail)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw fail("the private key '\(SafeText.escape(key))' does not belong to the certificate '\(SafeText.escape(certificate))'")
            }
        }
        self.settings = settings
        self.context = context
    }

    deinit {
        SSL_CTX_free(context)
    }
}

/// TLS over a connected socket: the handshake (with certificate and name verification) in
/// `init`, then blocking reads and writes bounded by the socket's timeouts.
///
/// Not Sendable: the `SSL*` is created, used and freed by the one connection thread that owns it.
final class TLSStream: ByteStream {
    private let socket: Socket
    private let ssl: OpaquePointer
    private let endpoint: String
    /// After a fatal error OpenSSL forbids `SSL_shutdown`; the socket is just closed.
    private var failed = false

    /// Connects TLS on `socket` (already connected to `host:port`) within `timeout`. A failure that
    /// a plaintext Redis on that port explains is reported as exactly that.
    init(socket: Socket, context: TLSContext, host: String, port: Int, endpoint: String, timeout: Duration) throws(RedisError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else {
            throw .tls(endpoint, "could not create a TLS session: \(TLSErrors.take())")
        }
        self.socket = socket
        self.ssl = ssl
        self.endpoint = endpoint
        SSL_set_fd(ssl, socket.fd)
        let name = context.settings.serverName ?? host
        let isAddress = Self.isIPAddress(name)
        // SNI carries host names only (RFC 6066); an address is checked against the IP SANs.
        if !isAddress { _ = airlock_tls_set_server_name(ssl, name) }
        if context.settings.verifyPeer {
            let expected = isAddress ? airlock_tls_expect_ip(ssl, name) : SSL_set1_host(ssl, name)
            guard expected == 1 else {
                failed = true
                throw .tls(endpoint, "cannot check the certificate against the name '\(SafeText.escape(name))': \(TLSErrors.take())")
            }
        }
        _ = socket.setTimeout(timeout)
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result != 1 else { return }
        failed = true
        let code = SSL_get_error(ssl, result)
        let savedErrno = errno
        let verification = SSL_get_verify_result(ssl)
        let detail = TLSErrors.take()
        if context.settings.verifyPeer && verification != X509_V_OK {
            let reason = String(cString: X509_verify_cert_error_string(verification))
            throw .tls(endpoint, "certificate verify failed: \(reason) (the server's certificate for '\(SafeText.escape(name))' is not trusted: check tls_ca_file and tls_server_name; tls_insecure=true skips verification, for tests only)")
        }
        if PortProbe.answersPlaintextRedis(host: host, port: port, timeout: timeout) {
            throw .tls(endpoint, "the server answers in plaintext, not TLS: is this a plaintext port? use redis:// (or the server's tls-port)")
        }
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            throw .connectTimedOut(endpoint, after: timeout)
        case SSL_ERROR_SYSCALL:
            let why = savedErrno == 0 ? "the server closed the connection" : String(cString: strerror(savedErrno))
            throw .connectionClosed(endpoint, detail: "during the TLS handshake: \(why)")
        default:
            throw .tls(endpoint, "the TLS handshake failed: \(detail.text)\(detail.hint)")
        }
    }

    /// What the server says to a fresh TLS connection that writes nothing: an alert (it requires a
    /// client certificate, or rejects ours) as a ``RedisError/Kind/tls`` error, nil when it says
    /// nothing bad within `timeout`. Asked only after a connection was reset before its first
    /// reply: the alert had raced our first request, and the reset that request caused took it.
    static func serverVerdict(context: TLSContext, host: String, port: Int, endpoint: String, timeout: Duration) -> RedisError? {
        guard let socket = try? Socket.connect(host: host, port: port, timeout: timeout, endpoint: endpoint),
              let stream = try? TLSStream(socket: socket, context: context, host: host, port: port, endpoint: endpoint, timeout: timeout) else { return nil }
        guard socket.waitReadable(timeout) else { return nil }
        var byte: UInt8 = 0
        ERR_clear_error()
        let peeked = SSL_peek(stream.ssl, &byte, 1)
        guard peeked <= 0, SSL_get_error(stream.ssl, peeked) == SSL_ERROR_SSL else {
            ERR_clear_error()
            return nil
        }
        stream.failed = true
        let detail = TLSErrors.take()
        return .tls(endpoint, "the server refused the TLS session: \(detail.text)\(detail.hint)")
    }

    deinit {
        if !failed {
            // A best-effort close_notify that must never wait on a peer that stopped reading.
            socket.setNonBlocking(true)
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
        }
        SSL_free(ssl)
        ERR_clear_error()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(StreamFailure) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let written = SSL_write(ssl, bytes.baseAddress! + offset, Int32(clamping: bytes.count - offset))
            if written > 0 {
                offset += Int(written)
                continue
            }
            throw failure(written)
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamFailure) -> Int {
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        if count > 0 { return Int(count) }
        throw failure(count)
    }

    func setTimeout(_ timeout: Duration?) throws(StreamFailure) {
        if !socket.setTimeout(timeout) { throw .system(errno) }
    }

    /// A readable socket is not necessarily a closed one here: TLS 1.3 servers send session
    /// tickets after the handshake. So the records are read without blocking: only application
    /// data, a close_notify, an alert or EOF count.
    var peerHasClosed: Bool {
        if failed || SSL_pending(ssl) > 0 { return true }
        guard socket.isReadable else { return false }
        socket.setNonBlocking(true)
        defer { socket.setNonBlocking(false) }
        var byte: UInt8 = 0
        ERR_clear_error()
        let peeked = SSL_peek(ssl, &byte, 1)
        if peeked > 0 { return true }
        let code = SSL_get_error(ssl, peeked)
        ERR_clear_error()
        return code != SSL_ERROR_WANT_READ
    }

    func waitReadable(_ timeout: Duration) -> Bool {
        SSL_pending(ssl) > 0 || socket.waitReadable(timeout)
    }

    private func failure(_ result: Int32) -> StreamFailure {
        let savedErrno = errno
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_ZERO_RETURN:
            failed = true
            return .closed
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            // The socket's timeout passed inside OpenSSL's read or write.
            failed = true
            return .timedOut
        case SSL_ERROR_SYSCALL:
            failed = true
            ERR_clear_error()
            if savedErrno == 0 { return .closed }
            return PlainStream.failure(savedErrno)
        default:
            failed = true
            let detail = TLSErrors.take()
            if detail.reason == SSL_R_UNEXPECTED_EOF_WHILE_READING { return .closed }
            return .tls(.tls(endpoint, "\(detail.text)\(detail.hint)"))
        }
    }

    private static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }
}

extension PortProbe {
    /// Whether `host:port` completes a TLS handshake (nothing verified): tells "a TLS port" apart
    /// when a plaintext connection was closed before any reply.
    static func completesTLSHandshake(host: String, port: Int, timeout: Duration) -> Bool {
        guard let socket = try? Socket.connect(host: host, port: port, timeout: timeout, endpoint: host),
              let context = airlock_tls_client_context() else { return false }
        defer { SSL_CTX_free(context) }
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        guard let ssl = SSL_new(context) else { return false }
        defer {
            SSL_free(ssl)
            ERR_clear_error()
        }
        SSL_set_fd(ssl, socket.fd)
        _ = socket.setTimeout(timeout)
        return SSL_connect(ssl) == 1
    }
}

/// OpenSSL's thread-local error queue, read once per failure.
private enum TLSErrors {
    struct Detail {
        let reason: Int32
        let text: String
        /// What the reason usually means for a Redis client, when it is one of the common ones.
        var hint: String {
            switch reason {
            case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
                " (the server requires a client certificate: set tls_cert_file and tls_key_file)"
            case SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
                " (the server rejected the client certificate: is it signed by the CA in the server's tls-ca-cert-file?)"
            case SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG:
                " (the server did not answer with TLS: is this a plaintext port? use redis://)"
            default: ""
            }
        }
    }

    /// The oldest queued error (the cause), the queue cleared.
    static func take() -> Detail {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return Detail(reason: 0, text: "no detail from OpenSSL") }
        let reason = airlock_tls_error_reason(code)
        let text = ERR_reason_error_string(code).map { String(cString: $0) } ?? "OpenSSL error \(code)"
        return Detail(reason: reason, text: text)
    }
}

extension TLSErrors.Detail: CustomStringConvertible {
    var description: String { text }
}
