/// `--listen` values: parsing, and whether an address is loopback (where no token is required).
public enum ListenAddress {
    /// `host:port` or `[v6]:port`.
    public static func parse(_ text: String) throws(DashboardError) -> (host: String, port: Int) {
        var host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw DashboardError(.invalidAddress, "--listen '\(text)' is not [host]:port") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw DashboardError(.invalidAddress, "--listen '\(text)' is not host:port") }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else {
            throw DashboardError(.invalidAddress, "--listen '\(text)' is not host:port with a port from 0 to 65535")
        }
        return (String(host), number)
    }

    /// 127.0.0.0/8, ::1 or localhost.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
