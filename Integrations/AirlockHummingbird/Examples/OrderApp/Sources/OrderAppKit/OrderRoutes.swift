public import Airlock
public import AirlockHummingbird
public import Hummingbird
public import Logging
import PostgresNIO
public import ServiceLifecycle

/// The body of `POST /orders`.
public struct NewOrder: Codable, Sendable {
    /// What to order.
    public var item: String
    /// How many (at least 1).
    public var quantity: Int
    /// Where the confirmation goes.
    public var email: String

    /// Creates the request body.
    public init(item: String, quantity: Int, email: String) {
        self.item = item
        self.quantity = quantity
        self.email = email
    }
}

extension Order: ResponseEncodable {}

/// The example API: `POST /orders` and `GET /orders/:id`.
public enum OrderAPI {
    /// A router with the airlock middleware and the order routes. Add more routes to it before
    /// building the application; the middleware covers them too.
    /// - Parameter executor: the requests' executor; `nil` uses the one configured with
    ///   `Airlock.configure(executor:)`.
    public static func router(store: OrderStore, executor: (any Executor)? = nil) -> Router<BasicAirlockRequestContext> {
        let router = Router(context: BasicAirlockRequestContext.self)
        router.add(middleware: AirlockMiddleware(executor: executor))

        router.post("/orders") { request, context -> EditedResponse<Order> in
            let new = try await request.decode(as: NewOrder.self, context: context)
            guard new.quantity > 0, !new.item.isEmpty, new.email.contains("@") else {
                throw HTTPError(.badRequest, message: "item, quantity (> 0) and email are required")
            }
            // The row and the job succeed or fail together: the job is dispatched only once the
            // INSERT committed, and (by default) only if this request then succeeds too.
            let id = try await Airlock.transaction(on: store.database, logger: context.logger) { connection in
                let id = try await store.insert(item: new.item, quantity: new.quantity, email: new.email, on: connection)
                try Airlock.enqueue(SendOrderConfirmation(orderID: id))
                return id
            }
            let order = Order(id: id, item: new.item, quantity: new.quantity, email: new.email)
            return EditedResponse(status: .created, headers: [.location: "/orders/\(id)"], response: order)
        }

        router.get("/orders/:id") { _, context -> Order in
            let id = try context.parameters.require("id", as: Int.self)
            guard let order = try await store.order(id: id) else { throw HTTPError(.notFound) }
            return order
        }
        return router
    }

    /// The application: the router, the database pool as a service, the table created before the
    /// server accepts requests.
    /// - Parameter services: more services to run in the application's `ServiceGroup` — an
    ///   Airlock `Worker`, for web and worker in one process. They start after the database pool
    ///   and stop (gracefully, on SIGTERM) after the server and before the pool.
    public static func application(
        router: Router<BasicAirlockRequestContext>,
        store: OrderStore,
        host: String = "127.0.0.1",
        port: Int = 8080,
        services: [any Service] = [],
        logger: Logger = Logger(label: "orderapp")
    ) -> some ApplicationProtocol {
        var app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "OrderApp"),
            services: [store.database] + services,
            logger: logger)
        app.beforeServerStarts { try await store.migrate() }
        return app
    }
}
