public import Airlock
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
/// Everything that can go wrong talking to Redis, as one concrete type so that
/// `throws(RedisError)` APIs stay exhaustive and callers can decide between
/// "retry later" (``isConnectionProblem``) and "tell a human" (everything else).
/// An ``AirlockError``, like every error Airlock throws.
///
/// Modelled on swift-service-lifecycle's errors: a struct wrapping a private
/// code, so new kinds can be added without breaking anyone's `switch`.
/// Compare kinds with `error.kind == .timedOut`.
public struct RedisError: AirlockError, Equatable {
    /// The category of a ``RedisError``; compare with `==` (e.g. `error.kind == .authenticationFailed`).
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Code: String, Sendable, Hashable {
            case connectionRefused, unreachable, authenticationFailed, timedOut, server
            case protocolError, connectionClosed, invalidURL, notConnected
            case tls, unknownMaster, notMaster
        }

        fileprivate let code: Code

        /// Nothing accepted the connection (server down, wrong host or port, missing socket file).
        public static let connectionRefused = Kind(code: .connectionRefused)
        /// The host name did not resolve, or the network had no route to it: no server was reached.
        public static let unreachable = Kind(code: .unreachable)
        /// AUTH was rejected or the server demands a password we did not send; retrying will not help.
        public static let authenticationFailed = Kind(code: .authenticationFailed)
        /// Connecting or waiting for a reply took longer than the configured timeout; the connection was dropped.
        public static let timedOut = Kind(code: .timedOut)
        /// Redis answered with an error reply (`-ERR ...`); ``RedisError/message`` holds its text verbatim.
        public static let server = Kind(code: .server)
        /// The bytes on the wire were not valid RESP, or the call itself was malformed.
        public static let protocolError = Kind(code: .protocolError)
        /// The connection broke mid-conversation (EOF or I/O error); the command may or may not have been applied.
        public static let connectionClosed = Kind(code: .connectionClosed)
        /// The Redis URL could not be parsed; the message names the offending part.
        public static let invalidURL = Kind(code: .invalidURL)
        /// The client was closed; no command was sent.
        public static let notConnected = Kind(code: .notConnected)
        /// TLS could not be set up: the server's certificate failed verification, the server wants a
        /// client certificate, a certificate or key file could not be loaded, or the port speaks the
        /// other protocol (plaintext against `rediss://`, TLS against `redis://`). A configuration
        /// problem: retrying will not help.
        public static let tls = Kind(code: .tls)
        /// The sentinels were reached, but none of them monitors a master of the configured name.
        public static let unknownMaster = Kind(code: .unknownMaster)
        /// The server the sentinels named is not a master (yet): a failover is under way, or the
        /// sentinels' view is stale. Reconnecting shortly asks them again.
        public static let notMaster = Kind(code: .notMaster)

        /// The kind's name, e.g. `timedOut`, for logs and metrics labels.
        public var description: String { code.rawValue }
    }

    /// What kind of failure this is; drives retry decisions.
    public let kind: Kind

    /// The detail to show or match on. For ``Kind/server`` errors this is Redis's own
    /// error text verbatim (e.g. `ERR unknown command 'NOPE'...`); for the other kinds it
    /// is the complete one-line explanation, identical to ``description``.
    public let message: String

    /// True when the connection failed *after* the request was written, so Redis may
    /// or may not have executed it: the caller must treat the outcome as unknown (or
    /// make the command idempotent before retrying). False when the failure happened
    /// before anything was sent (refused, connect/handshake/auth failure, closed
    /// client), so retrying cannot apply it twice. Error replies (``Kind/server``) are
    /// always false: Redis answered, and the reply says what happened.
    public let mayHaveBeenApplied: Bool

    private init(_ kind: Kind, _ message: String, mayHaveBeenApplied: Bool = false) {
        self.kind = kind
        self.message = message
        self.mayHaveBeenApplied = mayHaveBeenApplied
    }

    /// The same error, marked as having happened after the request was written.
    func afterSending() -> RedisError {
        RedisError(kind, message, mayHaveBeenApplied: true)
    }

    /// One readable line saying what happened and what to check.
    public var description: String {
        kind == .server ? "Redis replied with an error: \(message)" : message
    }

    /// True when reconnecting and trying again later may succeed (refused, timed out,
    /// closed, not connected). Authentication, URL and server errors are not
    /// connection problems: retrying them in a loop only hides a misconfiguration.
    public var isConnectionProblem: Bool {
        switch kind.code {
        case .connectionRefused, .unreachable, .timedOut, .connectionClosed, .notConnected, .notMaster: true
        default: false
        }
    }

    /// True when Redis refuses us because of how it is configured for this client — wrong or
    /// missing credentials (`WRONGPASS`, `NOAUTH`), an ACL without a command or key the caller
    /// needs (`NOPERM`, or a script's "can't run this command"), a TLS setup that cannot work
    /// (certificate verification failed, plaintext against a TLS port), or a master name no
    /// sentinel knows. Retrying cannot help: a worker stops with this error, as it does for a wrong
    /// password.
    public var isConfigurationProblem: Bool {
        if kind == .authenticationFailed || kind == .tls || kind == .unknownMaster { return true }
        guard kind == .server, let code = serverErrorCode else { return false }
        return code == "NOPERM" || code == "NOAUTH" || code == "WRONGPASS"
            || message.contains("can't run this command") || message.contains("no permissions to")
    }

    /// True when Redis is at its `maxmemory` limit and refuses commands that could grow memory
    /// (`OOM command not allowed …`): it answers, so this is not an outage, and it may pass once
    /// workers drain the queues.
    public var isOutOfMemory: Bool {
        kind == .server && serverErrorCode == "OOM"
    }

    /// The leading word of a server error (`ERR`, `WRONGTYPE`, `NOSCRIPT`, `BUSYGROUP`...),
    /// which is how Redis identifies error classes; nil for non-server errors.
    public var serverErrorCode: String? {
        guard kind == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    // MARK: - Constructors

    /// Nothing listens at `endpoint`; `detail` (e.g. the OS error) is appended when it adds information.
    public static func connectionRefused(_ endpoint: String, detail: String? = nil) -> RedisError {
        let reason = detail.map { ": \($0)" } ?? ""
        return RedisError(.connectionRefused, "Redis refused the connection at \(endpoint)\(reason) (is redis-server running and is the address in the Redis URL right?)")
    }

    /// The host name could not be resolved or the network path failed before any Redis was reached.
    public static func unreachable(_ endpoint: String, detail: String) -> RedisError {
        RedisError(.unreachable, "Could not reach Redis at \(endpoint): \(detail) (check the host name in the Redis URL)")
    }

    /// Redis rejected our credentials; `serverMessage` is its reply (`WRONGPASS ...`, `NOAUTH ...`).
    public static func authenticationFailed(user: String?, serverMessage: String) -> RedisError {
        let who = user ?? "default"
        return RedisError(.authenticationFailed, "Redis authentication failed for user '\(who)': \(serverMessage) (check the user name and password in the Redis URL)")
    }

    /// No TCP/unix connection could be established within the connect timeout.
    public static func connectTimedOut(_ endpoint: String, after timeout: Duration) -> RedisError {
        RedisError(.timedOut, "Could not connect to Redis at \(endpoint) within \(seconds(timeout)) (is the host reachable, or is the server overloaded?)")
    }

    /// A reply did not arrive within the read timeout; the connection was dropped and
    /// the command may or may not have been applied.
    public static func commandTimedOut(_ endpoint: String, after timeout: Duration?) -> RedisError {
        let limit = timeout.map { " within \(seconds($0))" } ?? ""
        return RedisError(.timedOut, "Redis at \(endpoint) did not reply\(limit) (is the server busy with a slow command, or is commandTimeout too short?)")
    }

    /// An error reply from Redis, carried verbatim.
    public static func server(_ message: String) -> RedisError {
        RedisError(.server, message)
    }

    /// The reply stream was unintelligible, or the request could not be encoded.
    public static func protocolError(_ detail: String) -> RedisError {
        RedisError(.protocolError, "Redis protocol error: \(detail)")
    }

    /// A reply of another shape than the command answers with: the peer is not the Redis this
    /// code was written for (or not Redis at all).
    public static func unexpectedReply(_ reply: RedisReply, expected: String) -> RedisError {
        let shown = String(reply.description.prefix(120))
        return RedisError(.protocolError, "Redis protocol error: expected \(expected), got \(SafeText.escape(shown))")
    }

    /// The connection broke mid-conversation.
    public static func connectionClosed(_ endpoint: String, detail: String) -> RedisError {
        RedisError(.connectionClosed, "Lost the connection to Redis at \(endpoint): \(detail) (was the server restarted or the client killed?)")
    }

    /// The Redis URL is malformed; `detail` names the offending part. The URL is shown with its
    /// password replaced by `***` (``RedisURLParser/redacted(_:)``): error messages end up in logs.
    public static func invalidURL(_ url: String, _ detail: String) -> RedisError {
        let (redacted, secrets) = RedisURLParser.redaction(url)
        // A detail quoting a malformed part of the URL must not quote the password either.
        let scrubbed = secrets.reduce(detail) { $0.replacing($1, with: "***") }
        return RedisError(.invalidURL, "Invalid Redis URL '\(SafeText.escape(redacted))': \(SafeText.escape(scrubbed)) (expected redis://[[user]:password@]host[:port][/db], rediss://… for TLS, redis+sentinel://host:26379,host2:26379/master[/db] or unix:///path/to/socket[?db=N])")
    }

    /// A TLS failure at `endpoint` (see ``Kind/tls``); `detail` says what and what to check.
    public static func tls(_ endpoint: String, _ detail: String) -> RedisError {
        RedisError(.tls, "TLS with Redis at \(endpoint) failed: \(detail)")
    }

    /// No sentinel of `sentinels` knows a master called `masterName`.
    public static func unknownMaster(_ masterName: String, sentinels: String) -> RedisError {
        RedisError(.unknownMaster, "No sentinel (\(sentinels)) knows a master named '\(SafeText.escape(masterName))' (check the master name in the Redis URL against `sentinel monitor` in sentinel.conf)")
    }

    /// The server at `endpoint`, named by the sentinels as master `masterName`, says it is a `role`.
    public static func notMaster(_ endpoint: String, masterName: String, role: String) -> RedisError {
        RedisError(.notMaster, "Redis at \(endpoint), which the sentinels named master '\(SafeText.escape(masterName))', is a \(SafeText.escape(role)) (a failover is under way; the next attempt asks the sentinels again)")
    }

    /// No sentinel could be asked; the kind is that of the last sentinel's failure.
    static func sentinelsUnreachable(_ masterName: String, sentinels: String, last: RedisError) -> RedisError {
        RedisError(last.kind, "Could not ask any sentinel (\(sentinels)) for master '\(SafeText.escape(masterName))'; the last one: \(last.message)")
    }

    /// The client has been closed, so nothing was sent.
    public static let notConnected = RedisError(.notConnected, "The Redis client is closed; no command was sent (create a new RedisClient)")

    /// Renders a duration as seconds with millisecond precision, e.g. `0.3 s`.
    static func seconds(_ duration: Duration) -> String {
        let millis = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if millis % 1000 == 0 { return "\(millis / 1000) s" }
        let text = String(Double(millis) / 1000)
        return "\(text) s"
    }
}
