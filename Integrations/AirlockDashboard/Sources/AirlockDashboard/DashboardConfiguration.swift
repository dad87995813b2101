/// Who may open the dashboard.
public struct DashboardAccess: Sendable, Hashable, CustomStringConvertible {
    enum Mode: Sendable, Hashable {
        case token(String)
        case open
    }

    let mode: Mode

    /// Every request must carry `token`: as the password of HTTP basic authentication (the user
    /// name is what the action log records as "who"; a browser asks for both), or as
    /// `Authorization: Bearer <token>` for scripts.
    /// - Throws: ``DashboardError`` when the token is shorter than 16 characters.
    public static func token(_ token: String) throws(DashboardError) -> DashboardAccess {
        guard token.count >= 16 else { throw DashboardError.weakToken }
        return DashboardAccess(mode: .token(token))
    }

    /// No authentication: only for a dashboard bound to loopback (the standalone server refuses
    /// anything else), or mounted behind the application's own authentication middleware.
    public static let open = DashboardAccess(mode: .open)

    /// Whether a token is required.
    public var requiresToken: Bool { if case .token = mode { true } else { false } }

    /// `token (…)` or `open`; never the token itself.
    public var description: String { requiresToken ? "token" : "open" }
}

/// How a ``Dashboard`` behaves.
public struct DashboardConfiguration: Sendable {
    /// Who may open it.
    public var access: DashboardAccess
    /// Shows everything and changes nothing: no action buttons, and every POST is refused (403).
    public var readOnly: Bool = false
    /// Seconds between live refreshes of the overview, queues and workers pages (0 turns them off).
    public var refreshSeconds: Int = 2
    /// Rows per page of the dead-letter and delayed lists.
    public var pageSize: Int = 50
    /// Where the job and dead-letter pages link a job's trace id (from its envelope's
    /// `traceparent`); without one the id is shown unlinked.
    public var traceLink: TraceLinkTemplate?
    /// The title in every page's header.
    public var title: String = "Airlock"
    /// How many messages wait in the transactional outbox, once there is one (another issue). Until
    /// an application sets this hook the overview shows "not configured" in its place.
    public var outboxDepth: (@Sendable () async throws -> Int)?

    /// A configuration with `access` and every other setting at its default.
    public init(access: DashboardAccess) { self.access = access }
}
