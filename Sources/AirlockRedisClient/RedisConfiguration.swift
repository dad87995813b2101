public import Airlock

/// Where and how to reach Redis, usually parsed from one URL so deployments
/// configure Airlock with a single string (e.g. `AIRLOCK_REDIS_URL`).
public struct RedisConfiguration: Sendable, Equatable {
    /// TCP host name or address; ignored when ``unixSocketPath`` is set.
    public var host: String
    /// TCP port; ignored when ``unixSocketPath`` is set.
    public var port: Int
    /// Path of a unix domain socket; preferred over TCP when set because it skips the network stack.
    public var unixSocketPath: String?
    /// ACL user; nil means the `default` user (plain `AUTH password`).
    public var username: String?
    /// Password sent with AUTH on every (re)connect; nil sends no AUTH.
    public var password: String?
    /// Logical database selected on every (re)connect.
    public var database: Int
    /// Name shown in `CLIENT LIST`, so operators can tell Airlock's connections apart.
    public var clientName: String?
    /// Limit for establishing the TCP/unix connection.
    public var connectTimeout: Duration
    /// Read timeout for ordinary commands; nil waits forever. Blocking commands
    /// (BLPOP etc.) automatically get their own timeout plus one second.
    public var commandTimeout: Duration?
    /// How reconnect attempts are spaced after failures.
    public var reconnectBackoff: Backoff

    /// A TCP configuration for code that does not start from a URL.
    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.unixSocketPath = nil
        self.username = username
        self.password = password
        self.database = database
        self.clientName = nil
        self.connectTimeout = .seconds(2)
        self.commandTimeout = .seconds(5)
        self.reconnectBackoff = Backoff()
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` or `unix:///path/to/socket[?db=N&password=...]`.
    ///
    /// User and password are percent-decoded (so passwords may contain `@`, `:` or `/`).
    /// `redis://name@host` (no colon) means a user name without password. Query
    /// parameters `db`, `password`, `user` and `name` (client name) are accepted on
    /// both schemes; anything else is rejected so typos do not go unnoticed.
    public init(url: String) throws(RedisError) {
        self.init()
        var parser = RedisURLParser(url: url)
        try parser.parse(into: &self)
    }

    /// Where we connect, for log lines and error messages (never contains credentials).
    public var endpointDescription: String {
        if let unixSocketPath { return "unix:\(unixSocketPath)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The configuration as a URL with the password replaced by `***`, safe to log.
    public var redactedURL: String {
        var query: [String] = []
        if let unixSocketPath {
            if let username { query.append("user=\(RedisURLParser.percentEncode(username))") }
            if password != nil { query.append("password=***") }
            if database != 0 { query.append("db=\(database)") }
            return "unix://\(unixSocketPath)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        }
        var userInfo = ""
        if let username { userInfo = RedisURLParser.percentEncode(username) }
        if password != nil { userInfo += ":***" }
        if !userInfo.isEmpty { userInfo += "@" }
        return "redis://\(userInfo)\(endpointDescription)/\(database)"
    }
}

/// Hand-rolled so errors can name exactly which part is wrong and so we do not
/// depend on Foundation's URL quirks (it rejects some valid passwords).
struct RedisURLParser {
    let url: String

    mutating func parse(into config: inout RedisConfiguration) throws(RedisError) {
        guard let schemeEnd = url.range(of: "://") else {
            throw .invalidURL(url, "missing scheme")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        // The user info is everything before the last `@`, so an unencoded `/`, `?` or `@` in a
        // password can neither break the URL apart nor end up quoted in an error about the host,
        // port or database (which all come after it).
        var userInfo: Substring?
        if scheme == "redis" || scheme == "rediss", let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        switch scheme {
        case "redis":
            if let userInfo { try parseUserInfo(userInfo, into: &config) }
            try parseTCP(rest, into: &config)
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw .invalidURL(url, "a unix socket URL needs an absolute path, like unix:///run/redis.sock")
            }
            config.unixSocketPath = try decode(rest, "socket path")
        case "rediss":
            throw .invalidURL(url, "TLS (rediss://) is not supported by this build")
        default:
            let wellFormed = !scheme.isEmpty && scheme.count <= 20 && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
            throw .invalidURL(url, wellFormed ? "unsupported scheme '\(scheme)'" : "the scheme is malformed")
        }
        try parseQuery(query, into: &config)
    }

    private func parseUserInfo(_ userInfo: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        if let colon = userInfo.firstIndex(of: ":") {
            let user = try decode(userInfo[..<colon], "user name")
            config.username = user.isEmpty ? nil : user
            config.password = try decode(userInfo[userInfo.index(after: colon)...], "password")
        } else {
            let user = try decode(userInfo, "user name")
            config.username = user.isEmpty ? nil : user
        }
    }

    private func parseTCP(_ text: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        var authority = text
        var path: Substring = ""
        if let slash = text.firstIndex(of: "/") {
            authority = text[..<slash]
            path = text[text.index(after: slash)...]
        }
        var hostPart = authority
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalidURL(url, "unterminated IPv6 address")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL(url, "unexpected '\(after)' after the IPv6 address") }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        if !hostPart.isEmpty { config.host = String(hostPart) }
        if let portPart {
            guard let port = Int(portPart), (1...65535).contains(port) else {
                throw .invalidURL(url, "port '\(portPart)' is not a number between 1 and 65535")
            }
            config.port = port
        }
        if !path.isEmpty {
            config.database = try database(path)
        }
    }

    private func parseQuery(_ query: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : ""
            switch key {
            case "db": config.database = try database(value)
            case "password": config.password = try decode(value, "password")
            case "user", "username": config.username = try decode(value, "user name")
            case "name", "clientName": config.clientName = try decode(value, "client name")
            default: throw .invalidURL(url, "unknown query parameter '\(key)' (known: db, password, user, name)")
            }
        }
    }

    private func database(_ text: Substring) throws(RedisError) -> Int {
        guard let db = Int(text), db >= 0 else {
            throw .invalidURL(url, "database '\(text)' is not a non-negative integer")
        }
        return db
    }

    /// Percent-decodes `%XX` escapes; a malformed escape is an error, not silently kept.
    private func decode(_ text: Substring, _ what: String) throws(RedisError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                throw .invalidURL(url, "bad percent-escape in the \(what)")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `url` with any password replaced by `***` — in the user info (`redis://user:***@host`) and in
    /// a `password=` query parameter — however malformed the rest is, so an error message that
    /// quotes a URL never leaks the secret. Everything before the last `@` counts as user info
    /// here (a `/`, `?` or `://` inside an unencoded password does not hide it); only a well-formed
    /// scheme in front of it is kept.
    static func redacted(_ url: String) -> String {
        redaction(url).url
    }

    /// The redacted URL and the secrets it removed (for scrubbing them from error details that
    /// quote a part of the URL).
    static func redaction(_ url: String) -> (url: String, secrets: [String]) {
        var text = Substring(url)
        var result = ""
        var secrets: [String] = []
        if let at = text.lastIndex(of: "@") {
            var credentials = text[..<at]
            text = text[at...]
            if let scheme = credentials.range(of: "://"), credentials[..<scheme.lowerBound].allSatisfy(isSchemeCharacter),
               (1...20).contains(credentials.distance(from: credentials.startIndex, to: scheme.lowerBound)) {
                result = String(credentials[..<scheme.upperBound])
                credentials = credentials[scheme.upperBound...]
                if let colon = credentials.firstIndex(of: ":") {
                    result += credentials[..<colon] + ":***"
                    secrets.append(String(credentials[credentials.index(after: colon)...]))
                } else {
                    result += credentials
                }
            } else {
                result = "***"
                secrets.append(String(credentials))
            }
        }
        var query: Substring?
        if let q = text.firstIndex(of: "?") {
            query = text[text.index(after: q)...]
            text = text[..<q]
        }
        result += text
        if let query {
            let items = query.split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.first.map({ $0.lowercased() == "password" }) == true else { return String(item) }
                if parts.count > 1 { secrets.append(String(parts[1])) }
                return parts[0] + "=***"
            }
            result += "?" + items.joined(separator: "&")
        }
        return (result, secrets.filter { !$0.isEmpty })
    }

    private static func isSchemeCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "+-.".contains(character))
    }

    /// Escapes everything but unreserved characters, so a redacted URL parses back.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
