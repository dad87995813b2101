public import Logging
public import PostgresNIO

/// One row of the `orders` table.
public struct Order: Codable, Sendable, Hashable {
    /// Primary key.
    public var id: Int
    /// What was ordered.
    public var item: String
    /// How many.
    public var quantity: Int
    /// Where the confirmation goes.
    public var email: String
    /// Whether the confirmation task has run for this order.
    public var confirmed: Bool { confirmations > 0 }
    /// How many times it ran to the end: 1, unless a worker died between sending and settling
    /// (delivery is at least once; a real mailer dedupes on the order id).
    public var confirmations: Int

    /// Creates an order value.
    public init(id: Int, item: String, quantity: Int, email: String, confirmations: Int = 0) {
        self.id = id
        self.item = item
        self.quantity = quantity
        self.email = email
        self.confirmations = confirmations
    }

    private enum CodingKeys: String, CodingKey { case id, item, quantity, email, confirmed, confirmations }

    /// Decodes an order as ``encode(to:)`` writes it (`confirmations` defaults to 0).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(Int.self, forKey: .id), item: try container.decode(String.self, forKey: .item),
            quantity: try container.decode(Int.self, forKey: .quantity), email: try container.decode(String.self, forKey: .email),
            confirmations: try container.decodeIfPresent(Int.self, forKey: .confirmations) ?? 0)
    }

    /// Writes the stored fields and `confirmed`, for clients that only ask whether it went out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(item, forKey: .item)
        try container.encode(quantity, forKey: .quantity)
        try container.encode(email, forKey: .email)
        try container.encode(confirmed, forKey: .confirmed)
        try container.encode(confirmations, forKey: .confirmations)
    }
}

/// The `orders` table, over a running `PostgresClient`.
public struct OrderStore: Sendable {
    /// The connection pool (run it: it is one of the application's services).
    public let database: PostgresClient
    private let logger: Logger

    /// A store over `database`.
    public init(database: PostgresClient, logger: Logger = Logger(label: "orderapp.store")) {
        self.database = database
        self.logger = logger
    }

    /// Creates the table if it does not exist; safe when several instances start at once.
    public func migrate() async throws {
        try await database.withTransaction(logger: logger) { connection in
            // Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog: serialise.
            try await connection.query("SELECT pg_advisory_xact_lock(7265476)", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS orders (
                    id           BIGSERIAL PRIMARY KEY,
                    item         TEXT NOT NULL,
                    quantity     INTEGER NOT NULL CHECK (quantity > 0),
                    email        TEXT NOT NULL,
                    confirmed_at TIMESTAMPTZ,
                    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """, logger: logger)
            try await connection.query(
                "ALTER TABLE orders ADD COLUMN IF NOT EXISTS confirmations INTEGER NOT NULL DEFAULT 0", logger: logger)
        }
    }

    /// Inserts an order on `connection` (inside the caller's transaction) and returns its id.
    public func insert(item: String, quantity: Int, email: String, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            "INSERT INTO orders (item, quantity, email) VALUES (\(item), \(quantity), \(email)) RETURNING id",
            logger: logger)
        for try await id in rows.decode(Int.self) { return id }
        throw OrderStoreError("INSERT … RETURNING id returned no row")
    }

    /// The order with `id`, if it exists (and is committed, as seen from a new connection).
    public func order(id: Int) async throws -> Order? {
        let rows = try await database.query(
            "SELECT id, item, quantity, email, confirmations FROM orders WHERE id = \(id)", logger: logger)
        for try await (id, item, quantity, email, confirmations) in rows.decode((Int, String, Int, String, Int).self) {
            return Order(id: id, item: item, quantity: quantity, email: email, confirmations: confirmations)
        }
        return nil
    }

    /// The orders sent with `email`, by id.
    public func orders(email: String) async throws -> [Order] {
        let rows = try await database.query(
            "SELECT id, item, quantity, email, confirmations FROM orders WHERE email = \(email) ORDER BY id", logger: logger)
        var orders: [Order] = []
        for try await (id, item, quantity, email, confirmations) in rows.decode((Int, String, Int, String, Int).self) {
            orders.append(Order(id: id, item: item, quantity: quantity, email: email, confirmations: confirmations))
        }
        return orders
    }

    /// Records that the confirmation for `id` went out.
    public func markConfirmed(id: Int) async throws {
        try await database.query(
            "UPDATE orders SET confirmed_at = now(), confirmations = confirmations + 1 WHERE id = \(id)", logger: logger)
    }
}

/// The database answered something the store did not expect.
public struct OrderStoreError: Error, CustomStringConvertible, Sendable {
    /// What was unexpected.
    public let description: String
    init(_ description: String) { self.description = description }
}
