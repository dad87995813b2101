import AirlockDashboard
import Testing

/// Pieces that need no server.
@Suite("Dashboard: pieces")
struct UnitTests {
    @Test func listenAddresses() throws {
        let v4 = try ListenAddress.parse("127.0.0.1:9300")
        #expect(v4.host == "127.0.0.1" && v4.port == 9300)
        let v6 = try ListenAddress.parse("[::1]:0")
        #expect(v6.host == "::1" && v6.port == 0)
        #expect(throws: DashboardError.self) { try ListenAddress.parse("9300") }
        #expect(throws: DashboardError.self) { try ListenAddress.parse("host:70000") }
        #expect(ListenAddress.isLoopback("127.0.0.1"))
        #expect(ListenAddress.isLoopback("127.1.2.3"))
        #expect(ListenAddress.isLoopback("localhost"))
        #expect(ListenAddress.isLoopback("::1"))
        #expect(!ListenAddress.isLoopback("0.0.0.0"))
        #expect(!ListenAddress.isLoopback("10.0.0.1"))
        #expect(!ListenAddress.isLoopback("127.0.0.1.evil.com"))
    }

    @Test func tokensMustBeLongEnough() {
        #expect(throws: DashboardError.self) { try DashboardAccess.token("short") }
        #expect((try? DashboardAccess.token("0123456789abcdef"))?.requiresToken == true)
        #expect(!DashboardAccess.open.requiresToken)
        #expect("\((try? DashboardAccess.token("0123456789abcdef-secret"))!)" == "token", "the description never shows the token")
    }
}

