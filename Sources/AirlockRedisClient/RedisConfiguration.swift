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
    /// TLS for every connection (`rediss://`); nil speaks plaintext. Verification is on by default.
    public var tls: TLS?
    /// Find the master through these sentinels (`redis+sentinel://`) instead of ``host``/``port``.
    public var sentinel: Sentinel?
    /// Talk to a Redis Cluster (`redis+cluster://`): ``host``/``port`` is the first seed node,
    /// these are all of them; the client learns the slot map from them and routes each command to
    /// the node that owns its key's slot.
    public var cluster: Cluster?
    /// Replicated acknowledgement for the executors and workers built from this configuration
    /// (`wait_replicas`/`wait_timeout` in the URL); nil acknowledges once the primary has a write.
    /// The client itself never sends `WAIT` on its own: the executor and the job source do.
    public var replication: RedisReplication?

    /// TLS settings: which certificates to trust, which to present, and which name to expect.
    ///
    /// With no ``caFile`` the system's trust store is used (`/etc/ssl/certs`), which is what a
    /// managed Redis with a public certificate needs. ``verifyPeer`` false accepts any certificate
    /// (the URL's `tls_insecure=true`): for tests only, since it lets anyone in the path read the traffic.
    public struct TLS: Sendable, Hashable {
        /// PEM file of the certificate authorities to trust; nil trusts the system's.
        public var caFile: String?
        /// PEM certificate (chain) presented to the server, for mutual TLS.
        public var certificateFile: String?
        /// PEM private key of ``certificateFile``; nil reads it from the certificate file.
        public var keyFile: String?
        /// Name sent as SNI and expected in the server's certificate; nil uses the host connected to
        /// (for a master found through sentinels: the address they name).
        public var serverName: String?
        /// Whether the server's certificate and name are verified. Off only for tests.
        public var verifyPeer: Bool

        /// TLS with the system's trust store and verification on, unless told otherwise.
        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil, verifyPeer: Bool = true) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverName = serverName
            self.verifyPeer = verifyPeer
        }
    }

    /// Sentinels that monitor the master, and its name there (`sentinel monitor <name> …`).
    ///
    /// Each (re)connect asks the sentinels, in order, for the master's address
    /// (`SENTINEL get-master-addr-by-name`), connects to it and checks with `ROLE` that it is a
    /// master. A lost connection, or a `READONLY` reply (the node was demoted), makes the next
    /// connect ask again, so clients follow a failover without a restart.
    public struct Sentinel: Sendable, Hashable {
        /// One sentinel's address.
        public struct Node: Sendable, Hashable, CustomStringConvertible {
            /// Host name or address.
            public var host: String
            /// Port (26379 by default).
            public var port: Int
            /// A sentinel at `host:port`.
            public init(host: String, port: Int = 26379) {
                self.host = host
                self.port = port
            }
            /// `host:port`, IPv6 in brackets.
            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// The sentinels, asked in this order (the one that answered last is asked first next time).
        public var nodes: [Node]
        /// The master's name in the sentinels' configuration.
        public var masterName: String
        /// ACL user for the sentinels (`sentinel_username`); nil = the default user.
        public var username: String?
        /// Password for the sentinels (`sentinel_password`, their `requirepass`); nil sends no AUTH.
        public var password: String?

        /// Sentinels at `nodes` monitoring `masterName`.
        public init(nodes: [Node], masterName: String, username: String? = nil, password: String? = nil) {
            self.nodes = nodes
            self.masterName = masterName
            self.username = username
            self.password = password
        }
    }

    /// The seed nodes of a Redis Cluster: any reachable one tells the client the whole slot map,
    /// so one per primary is plenty, and a single one works.
    public struct Cluster: Sendable, Hashable {
        /// The seeds, asked in order until one answers `CLUSTER SLOTS`.
        public var seeds: [Sentinel.Node]

        /// A cluster reached through these seed nodes (at least one).
        public init(seeds: [Sentinel.Node]) {
            self.seeds = seeds
        }
    }

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
        self.tls = nil
        self.sentinel = nil
        self.cluster = nil
        self.replication = nil
    }

    /// Parses a Redis URL:
    ///
    /// - `redis://[[user]:password@]host[:port][/db]` — plaintext TCP;
    /// - `rediss://…` — the same over TLS, the server's certificate verified;
    /// - `redis+sentinel://[[user]:password@]host1[:26379],host2[:26379]/master[/db]` (and
    ///   `rediss+sentinel://` for TLS to the sentinels and the master) — the master found through
    ///   sentinels; Celery/kombu's `sentinel://host1:26379;sentinel://host2:26379?master_name=…` too;
    /// - `redis+cluster://[[user]:password@]host1[:6379],host2[:6379]` (and `rediss+cluster://`) — a
    ///   Redis Cluster reached through these seed nodes; commands go to the node owning their slot;
    /// - `unix:///path/to/socket[?db=N&password=...]`.
    ///
    /// User and password are percent-decoded (so passwords may contain `@`, `:` or `/`).
    /// `redis://name@host` (no colon) means a user name without password. Query parameters:
    /// `db`, `password`, `user`, `name` (client name); for TLS `tls_ca_file`, `tls_cert_file`,
    /// `tls_key_file`, `tls_server_name`, `tls_insecure=true` (redis-py's and Celery's `ssl_ca_certs`,
    /// `ssl_certfile`, `ssl_keyfile` and `ssl_cert_reqs` are accepted as aliases); for sentinels
    /// `sentinel_password`, `sentinel_username`; for replicated acknowledgement `wait_replicas=N`
    /// and `wait_timeout=ms`. Anything else is rejected so typos do not go unnoticed.
    public init(url: String) throws(RedisError) {
        self.init()
        var parser = RedisURLParser(url: url)
        try parser.parse(into: &self)
    }

    /// Where we connect, for log lines and error messages (never contains credentials).
    public var endpointDescription: String {
        if let cluster {
            return "cluster via " + cluster.seeds.map(\.description).joined(separator: ",")
        }
        if let sentinel {
            return "master '\(sentinel.masterName)' via sentinels " + sentinel.nodes.map(\.description).joined(separator: ",")
        }
        if let unixSocketPath { return "unix:\(unixSocketPath)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The configuration as a URL with the password replaced by `***`, safe to log.
    public var redactedURL: String {
        var query: [String] = []
        if let unixSocketPath, sentinel == nil {
            if let username { query.append("user=\(RedisURLParser.percentEncode(username))") }
            if password != nil { query.append("password=***") }
            if database != 0 { query.append("db=\(database)") }
            query += optionQuery
            return "unix://\(unixSocketPath)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        }
        var userInfo = ""
        if let username { userInfo = RedisURLParser.percentEncode(username) }
        if password != nil { userInfo += ":***" }
        if !userInfo.isEmpty { userInfo += "@" }
        let scheme = tls == nil ? "redis" : "rediss"
        query = optionQuery
        let suffix = query.isEmpty ? "" : "?" + query.joined(separator: "&")
        if let cluster {
            let nodes = cluster.seeds.map(\.description).joined(separator: ",")
            return "\(scheme)+cluster://\(userInfo)\(nodes)" + suffix
        }
        if let sentinel {
            let nodes = sentinel.nodes.map(\.description).joined(separator: ",")
            return "\(scheme)+sentinel://\(userInfo)\(nodes)/\(RedisURLParser.percentEncode(sentinel.masterName))/\(database)" + suffix
        }
        return "\(scheme)://\(userInfo)\(endpointDescription)/\(database)" + suffix
    }

    /// The TLS, sentinel and replication query parameters of ``redactedURL`` (file paths and names
    /// are not secrets; the sentinel password is).
    private var optionQuery: [String] {
        var query: [String] = []
        func add(_ key: String, _ value: String?) {
            if let value { query.append("\(key)=\(RedisURLParser.percentEncode(value))") }
        }
        if let tls {
            add("tls_ca_file", tls.caFile)
            add("tls_cert_file", tls.certificateFile)
            add("tls_key_file", tls.keyFile)
            add("tls_server_name", tls.serverName)
            if !tls.verifyPeer { query.append("tls_insecure=true") }
        }
        if let sentinel {
            add("sentinel_username", sentinel.username)
            if sentinel.password != nil { query.append("sentinel_password=***") }
        }
        if let replication {
            query.append("wait_replicas=\(replication.replicas)")
            query.append("wait_timeout=\(replication.timeout.wholeMillisecondsForRedis)")
        }
        return query
    }
}

/// Hand-rolled so errors can name exactly which part is wrong and so we do not
/// depend on Foundation's URL quirks (it rejects some valid passwords).
struct RedisURLParser {
    let url: String

    mutating func parse(into config: inout RedisConfiguration) throws(RedisError) {
        if url.lowercased().hasPrefix("sentinel://") {
            try parseKombuSentinel(into: &config)
            return
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw .invalidURL(url, "missing scheme")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        let tcpSchemes = ["redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"]
        // The user info is everything before the last `@`, so an unencoded `/`, `?` or `@` in a
        // password can neither break the URL apart nor end up quoted in an error about the host,
        // port or database (which all come after it).
        var userInfo: Substring?
        if tcpSchemes.contains(scheme), let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        switch scheme {
        case "redis", "rediss":
            if let userInfo { try parseUserInfo(userInfo, into: &config) }
            try parseTCP(rest, into: &config)
        case "redis+sentinel", "rediss+sentinel":
            if let userInfo { try parseUserInfo(userInfo, into: &config) }
            try parseSentinel(rest, into: &config)
        case "redis+cluster", "rediss+cluster":
            if let userInfo { try parseUserInfo(userInfo, into: &config) }
            try parseCluster(rest, into: &config)
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw .invalidURL(url, "a unix socket URL needs an absolute path, like unix:///run/redis.sock")
            }
            config.unixSocketPath = try decode(rest, "socket path")
        default:
            let wellFormed = !scheme.isEmpty && scheme.count <= 20 && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
            throw .invalidURL(url, wellFormed ? "unsupported scheme '\(scheme)'" : "the scheme is malformed")
        }
        if scheme.hasPrefix("rediss") { config.tls = RedisConfiguration.TLS() }
        try parseQuery(query, into: &config)
    }

    /// `host1[:port],host2[:port]/master[/db]`: the sentinels, then the master's name.
    private func parseSentinel(_ text: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        var authority = text
        var path: [Substring] = []
        if let slash = text.firstIndex(of: "/") {
            authority = text[..<slash]
            path = text[text.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
        }
        var nodes: [RedisConfiguration.Sentinel.Node] = []
        for item in authority.split(separator: ",", omittingEmptySubsequences: false) {
            let (host, port) = try hostAndPort(item, defaultPort: 26379)
            guard !host.isEmpty else { throw .invalidURL(url, "a sentinel address is empty (expected host[:port],host[:port]/master)") }
            nodes.append(.init(host: host, port: port))
        }
        var master = ""
        if let first = path.first { master = try decode(first, "master name") }
        if path.count > 2 { throw .invalidURL(url, "unexpected path after the master name and database (expected /master[/db])") }
        if path.count == 2, !path[1].isEmpty { config.database = try database(path[1]) }
        config.sentinel = RedisConfiguration.Sentinel(nodes: nodes, masterName: master)
    }

    /// `host1[:port],host2[:port][/]`: the seed nodes. A cluster has one database, so no path.
    private func parseCluster(_ text: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        var authority = text
        if let slash = text.firstIndex(of: "/") {
            let path = text[text.index(after: slash)...]
            guard path.isEmpty || path == "0" else {
                throw .invalidURL(url, "a Redis Cluster has only database 0, so a cluster URL has no database path")
            }
            authority = text[..<slash]
        }
        var seeds: [RedisConfiguration.Sentinel.Node] = []
        for item in authority.split(separator: ",", omittingEmptySubsequences: false) {
            let (host, port) = try hostAndPort(item, defaultPort: 6379)
            guard !host.isEmpty else { throw .invalidURL(url, "a seed node's address is empty (expected host[:port],host[:port])") }
            seeds.append(.init(host: host, port: port))
        }
        config.host = seeds[0].host
        config.port = seeds[0].port
        config.cluster = RedisConfiguration.Cluster(seeds: seeds)
    }

    /// Celery/kombu's form, `sentinel://[:password@]host:26379;sentinel://host2:26379[/db]?master_name=…`
    /// (kombu takes the master's name from its transport options; here it is a query parameter).
    private func parseKombuSentinel(into config: inout RedisConfiguration) throws(RedisError) {
        var hosts: [String] = []
        var userInfo: Substring?
        var pathAndQuery = ""
        let parts = url.split(separator: ";", omittingEmptySubsequences: true)
        for (index, part) in parts.enumerated() {
            guard part.lowercased().hasPrefix("sentinel://") else {
                throw .invalidURL(url, "every address of a sentinel:// list starts with sentinel:// (separated by ';')")
            }
            var rest = part.dropFirst("sentinel://".count)
            if let at = rest.lastIndex(of: "@") {
                if userInfo == nil { userInfo = rest[..<at] }
                rest = rest[rest.index(after: at)...]
            }
            if let cut = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                guard index == parts.count - 1 else { throw .invalidURL(url, "only the last sentinel:// address may carry a path or query") }
                pathAndQuery = String(rest[cut...])
                rest = rest[..<cut]
            }
            hosts.append(String(rest))
        }
        var query: Substring = ""
        var path = Substring(pathAndQuery)
        if let q = path.firstIndex(of: "?") {
            query = path[path.index(after: q)...]
            path = path[..<q]
        }
        if let userInfo { try parseUserInfo(userInfo, into: &config) }
        // The master's name is a query parameter here; parsing it first keeps the rest shared.
        var master: String?
        var remaining: [Substring] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            if item.hasPrefix("master_name=") { master = try decode(item.dropFirst("master_name=".count), "master name") } else { remaining.append(item) }
        }
        guard let master, !master.isEmpty else {
            throw .invalidURL(url, "a sentinel:// URL needs ?master_name=<name> (kombu's master_name transport option)")
        }
        let database = path.dropFirst()
        try parseSentinel(Substring(hosts.joined(separator: ",") + "/" + master + (database.isEmpty ? "" : "/" + database)), into: &config)
        try parseQuery(Substring(remaining.joined(separator: "&")), into: &config)
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
        let (host, port) = try hostAndPort(authority, defaultPort: config.port)
        if !host.isEmpty { config.host = host }
        config.port = port
        if !path.isEmpty {
            config.database = try database(path)
        }
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    private func hostAndPort(_ authority: Substring, defaultPort: Int) throws(RedisError) -> (String, Int) {
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
        var port = defaultPort
        if let portPart {
            guard let number = Int(portPart), (1...65535).contains(number) else {
                throw .invalidURL(url, "port '\(portPart)' is not a number between 1 and 65535")
            }
            port = number
        }
        return (String(hostPart), port)
    }

    private func parseQuery(_ query: Substring, into config: inout RedisConfiguration) throws(RedisError) {
        var tls = config.tls ?? RedisConfiguration.TLS()
        var firstTLSOption: Substring?
        var firstSentinelOption: Substring?
        var sentinelUser: String?
        var sentinelPassword: String?
        var masterName: String?
        var waitReplicas: Int?
        var waitTimeout: Int64?
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : ""
            if key.hasPrefix("tls_") || key.hasPrefix("ssl_") { firstTLSOption = firstTLSOption ?? key }
            if key.hasPrefix("sentinel_") || key == "master_name" { firstSentinelOption = firstSentinelOption ?? key }
            switch key {
            case "db": config.database = try database(value)
            case "password": config.password = try decode(value, "password")
            case "user", "username": config.username = try decode(value, "user name")
            case "name", "clientName": config.clientName = try decode(value, "client name")
            case "tls_ca_file", "ssl_ca_certs": tls.caFile = try path(value, key)
            case "tls_cert_file", "ssl_certfile": tls.certificateFile = try path(value, key)
            case "tls_key_file", "ssl_keyfile": tls.keyFile = try path(value, key)
            case "tls_server_name":
                let name = try decode(value, "TLS server name")
                guard !name.isEmpty else { throw .invalidURL(url, "tls_server_name is empty") }
                tls.serverName = name
            case "tls_insecure":
                switch value.lowercased() {
                case "true", "1", "yes": tls.verifyPeer = false
                case "false", "0", "no": tls.verifyPeer = true
                default: throw .invalidURL(url, "tls_insecure must be true or false, not '\(value)'")
                }
            case "ssl_cert_reqs":
                switch value.lowercased() {
                case "required", "cert_required", "optional", "cert_optional": tls.verifyPeer = true
                case "none", "cert_none": tls.verifyPeer = false
                default: throw .invalidURL(url, "ssl_cert_reqs must be required, optional or none, not '\(value)'")
                }
            case "sentinel_password": sentinelPassword = try decode(value, "sentinel password")
            case "sentinel_username", "sentinel_user": sentinelUser = try decode(value, "sentinel user name")
            case "master_name": masterName = try decode(value, "master name")
            case "wait_replicas":
                guard let count = Int(value), (0...1000).contains(count) else {
                    throw .invalidURL(url, "wait_replicas must be a number of replicas from 0 to 1000, not '\(value)'")
                }
                waitReplicas = count
            case "wait_timeout":
                guard let millis = Int64(value), millis >= 0 else {
                    throw .invalidURL(url, "wait_timeout must be a whole number of milliseconds (0 waits forever), not '\(value)'")
                }
                waitTimeout = millis
            default:
                throw .invalidURL(url, "unknown query parameter '\(key)' (known: db, password, user, name, tls_ca_file, tls_cert_file, tls_key_file, tls_server_name, tls_insecure, sentinel_password, sentinel_username, wait_replicas, wait_timeout)")
            }
        }
        if let firstTLSOption {
            // Silently speaking plaintext when the URL asks for certificates would be the worst outcome.
            guard config.tls != nil else { throw .invalidURL(url, "\(firstTLSOption) needs TLS: use rediss:// (or rediss+sentinel://)") }
            if tls.keyFile != nil && tls.certificateFile == nil {
                throw .invalidURL(url, "tls_key_file needs tls_cert_file (the certificate it belongs to)")
            }
            config.tls = tls
        }
        if let firstSentinelOption {
            guard var sentinel = config.sentinel else {
                throw .invalidURL(url, "\(firstSentinelOption) needs a sentinel URL: redis+sentinel://host:26379,host2:26379/master")
            }
            if sentinelUser != nil { sentinel.username = sentinelUser }
            if sentinelPassword != nil { sentinel.password = sentinelPassword }
            if let masterName {
                guard sentinel.masterName.isEmpty || sentinel.masterName == masterName else {
                    throw .invalidURL(url, "the master is named twice, in the path and in master_name")
                }
                sentinel.masterName = masterName
            }
            config.sentinel = sentinel
        }
        if let sentinel = config.sentinel, sentinel.masterName.isEmpty {
            throw .invalidURL(url, "a sentinel URL names the master after the addresses: redis+sentinel://host:26379,host2:26379/mymaster")
        }
        if config.cluster != nil, config.database != 0 {
            throw .invalidURL(url, "a Redis Cluster has only database 0 (db=\(config.database) given)")
        }
        if let waitReplicas {
            config.replication = RedisReplication(replicas: waitReplicas, timeout: .milliseconds(waitTimeout ?? 500))
        } else if waitTimeout != nil {
            throw .invalidURL(url, "wait_timeout needs wait_replicas (how many replicas to wait for)")
        }
    }

    /// A file path from the query: percent-decoded and not empty.
    private func path(_ text: Substring, _ key: Substring) throws(RedisError) -> String {
        let decoded = try decode(text, "\(key) path")
        guard !decoded.isEmpty else { throw .invalidURL(url, "\(key) is empty (expected a file path)") }
        return decoded
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
            if let scheme = credentials.firstRange(of: "://"), credentials[..<scheme.lowerBound].allSatisfy(isSchemeCharacter),
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
                guard parts.first.map({ ["password", "sentinel_password"].contains($0.lowercased()) }) == true else { return String(item) }
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
