public import AirlockRedis
import Airlock
public import Hummingbird
public import Logging
import NIOCore
import HTTPTypes

/// Airlock's web dashboard as routes any Hummingbird 2 application can mount:
///
/// ```swift
/// let dashboard = Dashboard(admin: RedisAdmin(client: redis), configuration: DashboardConfiguration(access: try .token(secret)))
/// dashboard.addRoutes(to: router, atPath: "/airlock")
/// ```
///
/// Server-rendered pages (overview, queues, workers, periodic jobs, delayed and retrying jobs, dead letters, a job
/// by id) over ``RedisAdmin``; a small script refreshes figures in place. Every state-changing
/// request is a POST that must carry the session's CSRF token; with a token configured, every
/// request must carry it too (basic authentication or a bearer header); in read-only mode nothing
/// changes. Each action is logged at `notice` on the `airlock.dashboard.audit` logger: who, what,
/// on which queue, how many jobs.
public struct Dashboard: Sendable {
    /// The queries every page runs.
    public let admin: RedisAdmin
    /// How it behaves.
    public let configuration: DashboardConfiguration
    let logger: Logger
    let audit: Logger
    let series = SeriesCache()

    /// A dashboard over `admin`'s namespace. `logger` gets errors; each action is logged at
    /// `notice` on `auditLogger` (default: a logger labelled `airlock.dashboard.audit`).
    public init(admin: RedisAdmin, configuration: DashboardConfiguration, logger: Logger = Logger(label: "airlock.dashboard"), auditLogger: Logger? = nil) {
        self.admin = admin
        self.configuration = configuration
        self.logger = logger
        self.audit = auditLogger ?? Logger(label: "airlock.dashboard.audit")
    }

    /// Adds the dashboard's routes to `router` under `path` (`"/"` or e.g. `"/airlock"`).
    public func addRoutes<Router: RouterMethods>(to router: Router, atPath path: String = "/") {
        let base = Self.normalize(path)
        let group = router.group(RouterPath(base.isEmpty ? "/" : base))
        let access = AccessControl(access: configuration.access, readOnly: configuration.readOnly, cookiePath: base.isEmpty ? "/" : base)
        let handler = RouteHandler<Router.Context>(dashboard: self, access: access, base: base)
        group.get("/") { request, context in await handler.page(request, context) { try await $0.overview($1) } }
        group.get("queues") { request, context in await handler.page(request, context) { try await $0.queues($1) } }
        group.get("workers") { request, context in await handler.page(request, context) { try await $0.workers($1) } }
        group.get("schedules") { request, context in await handler.page(request, context) { try await $0.schedules($1) } }
        group.get("delayed") { request, context in await handler.page(request, context) { try await $0.delayed($1) } }
        group.get("dead") { request, context in await handler.page(request, context) { try await $0.dead($1) } }
        group.get("dead/show") { request, context in await handler.page(request, context) { try await $0.deadLetter($1) } }
        group.get("job") { request, context in await handler.page(request, context) { try await $0.job($1) } }
        group.get("live/overview") { request, context in await handler.page(request, context) { try await $0.liveOverview($1) } }
        group.get("live/queues") { request, context in await handler.page(request, context) { try await $0.liveQueues($1) } }
        group.get("live/workers") { request, context in await handler.page(request, context) { try await $0.liveWorkers($1) } }
        group.get("assets/dashboard.css") { _, _ in Assets.response(Assets.css, type: "text/css; charset=utf-8") }
        group.get("assets/dashboard.js") { _, _ in Assets.response(Assets.script, type: "text/javascript; charset=utf-8") }
        group.post("queues/pause") { request, context in await handler.action(request, context) { try await $0.pause($1) } }
        group.post("queues/resume") { request, context in await handler.action(request, context) { try await $0.resume($1) } }
        group.post("delayed/run") { request, context in await handler.action(request, context) { try await $0.runDelayed($1) } }
        group.post("delayed/delete") { request, context in await handler.action(request, context) { try await $0.deleteDelayed($1) } }
        group.post("dead/retry") { request, context in await handler.action(request, context) { try await $0.retryDead($1) } }
        group.post("dead/delete") { request, context in await handler.action(request, context) { try await $0.deleteDead($1) } }
        group.post("job/cancel") { request, context in await handler.action(request, context) { try await $0.cancelJob($1) } }
    }

    /// `"/"` → `""`, `"airlock/"` → `"/airlock"`.
    static func normalize(_ path: String) -> String {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        return trimmed.isEmpty ? "" : "/" + trimmed
    }

    /// Logs one action: who, what, where, how many.
    func record(_ action: String, by visitor: Visitor, queue: String? = nil, count: Int, detail: String? = nil) {
        var metadata: Logger.Metadata = ["who": "\(visitor.who)", "action": "\(action)", "jobs": "\(count)"]
        if let queue { metadata["queue"] = "\(SafeText.escape(queue))" }
        if let detail { metadata["detail"] = "\(SafeText.escape(detail))" }
        audit.notice("dashboard action", metadata: metadata)
    }
}

/// What a page or action hands back to the router.
enum Reply: Sendable {
    case page(HTML, status: HTTPResponse.Status = .ok)
    case json(String)
    /// 303 See Other to a path inside the dashboard (with its query).
    case redirect(String)
}

/// The request as a page sees it: the parsed query (or form), the visitor, the page context.
struct Visit: Sendable {
    let query: FormFields
    let form: FormFields
    let page: PageContext
    var visitor: Visitor { page.visitor }
}

/// Wraps every route: access control, CSRF, error pages, security headers.
struct RouteHandler<Context: RequestContext>: Sendable {
    let dashboard: Dashboard
    let access: AccessControl
    let base: String

    func page(_ request: Request, _ context: Context, _ render: @Sendable (Dashboard, Visit) async throws -> Reply) async -> Response {
        await respond(request, context, form: FormFields(encoded: []), render)
    }

    func action(_ request: Request, _ context: Context, _ perform: @Sendable (Dashboard, Visit) async throws -> Reply) async -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 1 << 20)
        } catch {
            return plain(.contentTooLarge, "request body too large")
        }
        let form = FormFields(encoded: body.readableBytesView)
        return await respond(request, context, form: form, isPost: true, perform)
    }

    private func respond(_ request: Request, _ context: Context, form: FormFields, isPost: Bool = false,
                         _ work: @Sendable (Dashboard, Visit) async throws -> Reply) async -> Response {
        let peer = (context as? any RemoteAddressRequestContext)?.remoteAddress.map { address in
            address.ipAddress.map { "\($0)" } ?? "\(address)"
        }
        let visitor: Visitor
        switch access.admit(request, peer: peer) {
        case .success(let admitted): visitor = admitted
        case .failure(let refusal): return refused(refusal)
        }
        if isPost, let refusal = access.checkPost(request, form: form) {
            dashboard.audit.warning("dashboard action refused", metadata: ["who": "\(visitor.who)", "path": "\(SafeText.escape(request.uri.path))", "reason": "\(refusal.reason)"])
            return refused(refusal)
        }
        let query = FormFields(encoded: Array((request.uri.query ?? "").utf8))
        let page = PageContext(base: base, visitor: visitor, configuration: dashboard.configuration, namespace: dashboard.admin.namespace, now: epochMilliseconds())
        var response: Response
        do {
            response = render(try await work(dashboard, Visit(query: query, form: form, page: page)))
        } catch let error as AdminError {
            let status: HTTPResponse.Status = error.kind == .unknownDeadLetter ? .notFound : .badRequest
            response = render(.page(Layout.page(page, section: .overview, title: "Not possible", Layout.problem(error.description)), status: status))
        } catch {
            dashboard.logger.error("dashboard request failed", metadata: ["path": "\(SafeText.escape(request.uri.path))", "error": "\(SafeText.escape(String(describing: error)))"])
            response = render(.page(Layout.page(page, section: .overview, title: "Redis did not answer", Layout.problem("The request failed: \(error)")), status: .serviceUnavailable))
        }
        if visitor.issuesCookie { response.setCookie(access.cookie(for: visitor)) }
        return response
    }

    private func render(_ reply: Reply) -> Response {
        switch reply {
        case .page(let html, let status):
            return Self.secured(Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html.markup))))
        case .json(let text):
            return Self.secured(Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text))))
        case .redirect(let location):
            return Self.secured(Response(status: .seeOther, headers: [.location: location]))
        }
    }

    private func refused(_ refusal: AccessControl.Refusal) -> Response {
        var response = plain(refusal.status, refusal.reason)
        if refusal.challenge { response.headers[.wwwAuthenticate] = "Basic realm=\"Airlock dashboard\", charset=\"UTF-8\"" }
        return response
    }

    private func plain(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(status.code)</title></head><body><h1>\(status.code) \(HTML.escape(status.reasonPhrase))</h1><p>\(HTML.display(reason))</p></body></html>"
        return Self.secured(Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body))))
    }

    /// Headers every response carries: scripts and styles only from the dashboard itself, no
    /// framing, no caching, no referrer, no MIME sniffing.
    static func secured(_ response: Response) -> Response {
        var response = response
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
