/// Finds the current master by asking the sentinels, at every (re)connect.
///
/// Sentinels are asked in order; the first that names the master is moved to the front, so the
/// next connect asks it first (redis-py does the same). Each question is a fresh connection —
/// AUTH when the sentinels need it, then `SENTINEL get-master-addr-by-name` — since reconnects
/// are rare and a kept connection would need its own failure handling. The caller then checks
/// the named server's `ROLE`: a sentinel's answer can be stale while a failover is under way.
struct SentinelResolver {
    private var settings: RedisConfiguration.Sentinel

    init(_ settings: RedisConfiguration.Sentinel) {
        self.settings = settings
    }

    /// The master's address as the first sentinel that knows it says. Throws
    /// ``RedisError/Kind/unknownMaster`` when every sentinel that answered does not know the name
    /// (a configuration problem), else the last sentinel's failure (refused, timed out, auth…).
    mutating func masterAddress(using dialer: Dialer) throws(RedisError) -> (host: String, port: Int) {
        var lastError: RedisError?
        var unknown = 0
        for (index, node) in settings.nodes.enumerated() {
            do {
                if let address = try ask(node, dialer) {
                    if index > 0 { settings.nodes.insert(settings.nodes.remove(at: index), at: 0) }
                    return address
                }
                unknown += 1
            } catch {
                lastError = error
            }
        }
        let list = settings.nodes.map(\.description).joined(separator: ",")
        if unknown > 0 { throw .unknownMaster(settings.masterName, sentinels: list) }
        throw .sentinelsUnreachable(settings.masterName, sentinels: list, last: lastError ?? .connectionRefused(list))
    }

    /// One sentinel's answer: the address, nil when it does not know the master.
    private func ask(_ node: RedisConfiguration.Sentinel.Node, _ dialer: Dialer) throws(RedisError) -> (host: String, port: Int)? {
        let connection = try dialer.open(host: node.host, port: node.port)
        try connection.setReadTimeout(dialer.configuration.commandTimeout)
        var commands: [RedisCommand] = []
        if let password = settings.password {
            commands.append(settings.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        commands.append(RedisCommand("SENTINEL", "GET-MASTER-ADDR-BY-NAME", settings.masterName))
        let replies: [RedisReply]
        do {
            replies = try connection.pipeline(commands)
        } catch {
            throw dialer.diagnose(error, on: connection)
        }
        let answer = replies[replies.count - 1]
        if let message = (settings.password != nil ? replies[0].errorMessage : nil) ?? answer.errorMessage {
            if settings.password != nil && replies[0].errorMessage != nil || message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") {
                throw .authenticationFailed(user: settings.username, serverMessage: "sentinel \(node): \(message) (check sentinel_password and sentinel_username)")
            }
            throw .server(message)
        }
        guard let elements = try answer.optionalElements() else { return nil }
        guard elements.count == 2, let host = elements[0].string, !host.isEmpty, let port = elements[1].int, (1...65535).contains(port) else {
            throw .unexpectedReply(answer, expected: "a master's host and port from sentinel \(node)")
        }
        return (host, port)
    }
}
