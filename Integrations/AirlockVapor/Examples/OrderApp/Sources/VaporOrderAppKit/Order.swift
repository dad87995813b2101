public import Fluent
import Foundation
public import Vapor

/// One row of the `vapor_orders` table (named apart from the Hummingbird example's `orders`, so
/// both examples can share a database).
///
/// `@unchecked Sendable` as Fluent models are: its property wrappers hold mutable storage, and a
/// model is used by one task at a time.
public final class Order: Model, @unchecked Sendable {
    /// The table.
    public static let schema = "vapor_orders"

    /// Primary key, assigned by PostgreSQL (`BIGSERIAL`) at insert.
    @ID(custom: .id, generatedBy: .database) public var id: Int?
    /// What was ordered.
    @Field(key: "item") public var item: String
    /// How many.
    @Field(key: "quantity") public var quantity: Int
    /// Where the confirmation goes.
    @Field(key: "email") public var email: String
    /// When the confirmation task ran for this order; `nil` until then.
    @OptionalField(key: "confirmed_at") public var confirmedAt: Date?

    /// Fluent's empty model.
    public init() {}

    /// A new, unsaved order.
    public init(item: String, quantity: Int, email: String) {
        self.item = item
        self.quantity = quantity
        self.email = email
    }

    /// What the API returns for it.
    public var view: OrderView {
        OrderView(id: id ?? 0, item: item, quantity: quantity, email: email, confirmed: confirmedAt != nil)
    }
}

/// An order as the API shows it.
public struct OrderView: Content, Hashable {
    /// Primary key.
    public var id: Int
    /// What was ordered.
    public var item: String
    /// How many.
    public var quantity: Int
    /// Where the confirmation goes.
    public var email: String
    /// Whether the confirmation went out.
    public var confirmed: Bool

    /// Creates the view.
    public init(id: Int, item: String, quantity: Int, email: String, confirmed: Bool) {
        self.id = id
        self.item = item
        self.quantity = quantity
        self.email = email
        self.confirmed = confirmed
    }
}

/// The body of `POST /orders`.
public struct NewOrder: Content {
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
