import Airlock
import AirlockFluent
import AirlockVapor
import Fluent
public import Vapor

/// The example API: `POST /orders` and `GET /orders/:id`.
public struct OrderRoutes: RouteCollection, Sendable {
    /// Creates the routes.
    public init() {}

    /// Registers the routes on `routes`.
    public func boot(routes: any RoutesBuilder) throws {
        routes.post("orders", use: create)
        routes.get("orders", ":id", use: show)
    }

    /// Inserts the order and enqueues its confirmation in one transaction: the job is dispatched
    /// only once the INSERT committed, and (by default) only if this request then succeeds too.
    @Sendable
    func create(_ req: Request) async throws -> Response {
        let new = try req.content.decode(NewOrder.self)
        guard new.quantity > 0, !new.item.isEmpty, new.email.contains("@") else {
            throw Abort(.badRequest, reason: "item, quantity (> 0) and email are required")
        }
        let order = try await req.airlock.transaction { db in
            let order = Order(item: new.item, quantity: new.quantity, email: new.email)
            try await order.create(on: db)
            try OrderTasks.enqueueConfirmation(orderID: try order.requireID())
            return order.view
        }
        let response = try await order.encodeResponse(status: .created, for: req)
        response.headers.replaceOrAdd(name: .location, value: "/orders/\(order.id)")
        return response
    }

    /// The order, with whether its confirmation went out.
    @Sendable
    func show(_ req: Request) async throws -> OrderView {
        guard let id = req.parameters.get("id", as: Int.self), let order = try await Order.find(id, on: req.db) else {
            throw Abort(.notFound)
        }
        return order.view
    }
}
