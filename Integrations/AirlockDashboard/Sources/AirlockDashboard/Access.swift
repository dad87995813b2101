import Airlock
import Foundation
import Hummingbird
import Logging

/// Whoever passed the access check, and the CSRF token of their browser session.
struct Visitor: Sendable {
    /// For the action log: the basic-auth user name, `bearer`, or `anonymous`, with the peer address.
    let who: String
    /// The session's CSRF token (the cookie's value, or a new one this response sets).
    let csrf: String
    /// Whether ``csrf`` is new, so the response must set the cookie.
    let issuesCookie: Bool
}

/// Authentication (token), CSRF (a per-session token in a cookie and in every form) and the
/// read-only switch: every request passes ``admit(_:peer:)``, every POST also ``checkPost(_:form:)``.
struct AccessControl: Sendable {
    let access: DashboardAccess
    let readOnly: Bool
    /// The cookie's path: the dashboard's mount point.
    let cookiePath: String

    static let csrfCookie = "airlock_csrf"
    static let csrfField = "_csrf"

    /// Why a request is refused: status and the one-line reason shown to the visitor.
    struct Refusal: Error, Sendable {
        let status: HTTPResponse.Status
        let reason: String
        var challenge = false
    }

    /// Checks the credentials; returns the visitor (with their CSRF token) or a refusal.
    func admit(_ request: Request, peer: String?) -> Result<Visitor, Refusal> {
        let suffix = peer.map { " from \($0)" } ?? ""
        var who = "anonymous" + suffix
        if case .token(let token) = access.mode {
            guard let header = request.headers[.authorization] else {
                return .failure(Refusal(status: .unauthorized, reason: "this dashboard needs its token (user name of your choice, the token as password)", challenge: true))
            }
            if let user = Self.basicPassword(header, matches: token) {
                who = (user.isEmpty ? "token" : user) + suffix
            } else if header.lowercased().hasPrefix("bearer "), Self.constantTimeEquals(String(header.dropFirst(7)).trimmingWhitespace, token) {
                who = "bearer" + suffix
            } else {
                return .failure(Refusal(status: .unauthorized, reason: "wrong token", challenge: true))
            }
        }
        if let cookie = request.cookies[Self.csrfCookie]?.value, Self.isWellFormedToken(cookie) {
            return .success(Visitor(who: who, csrf: cookie, issuesCookie: false))
        }
        return .success(Visitor(who: who, csrf: Self.newToken(), issuesCookie: true))
    }

    /// A state-changing request: refused in read-only mode, and unless its form carries the
    /// session's CSRF token (the cookie, which another site's page can neither read nor set).
    func checkPost(_ request: Request, form: FormFields) -> Refusal? {
        if readOnly { return Refusal(status: .forbidden, reason: "this dashboard is read-only (--read-only): nothing can be changed from it") }
        guard let cookie = request.cookies[Self.csrfCookie]?.value, Self.isWellFormedToken(cookie),
              let field = form[Self.csrfField], Self.constantTimeEquals(field, cookie) else {
            return Refusal(status: .forbidden, reason: "missing or wrong CSRF token: reload the page and try again")
        }
        return nil
    }

    /// The `Set-Cookie` for a new session token: HttpOnly, SameSite=Strict, scoped to the mount point.
    func cookie(for visitor: Visitor) -> Cookie {
        Cookie(name: Self.csrfCookie, value: visitor.csrf, path: cookiePath, httpOnly: true, sameSite: .strict)
    }

    // MARK: Pieces

    /// The user name of `Authorization: Basic …` when its password is `token`.
    static func basicPassword(_ header: String, matches token: String) -> String? {
        guard header.lowercased().hasPrefix("basic "),
              let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingWhitespace),
              let credentials = String(data: data, encoding: .utf8),
              let colon = credentials.firstIndex(of: ":") else { return nil }
        guard constantTimeEquals(String(credentials[credentials.index(after: colon)...]), token) else { return nil }
        return SafeText.escape(credentials[..<colon])
    }

    /// Compares without an early exit, so the time taken says nothing about where they differ.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference: UInt8 = x.count == y.count ? 0 : 1
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }

    /// 32 random bytes (the system's cryptographic generator), as 64 hex digits.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }.joined()
    }

    static func isWellFormedToken(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
