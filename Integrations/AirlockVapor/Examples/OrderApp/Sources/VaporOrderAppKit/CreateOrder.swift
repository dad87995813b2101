public import Fluent

/// Creates the `vapor_orders` table.
public struct CreateOrder: AsyncMigration {
    /// Creates the migration.
    public init() {}

    /// Creates the table.
    public func prepare(on database: any Database) async throws {
        try await database.schema(Order.schema)
            .field(.id, .int64, .identifier(auto: true))
            .field("item", .string, .required)
            .field("quantity", .int, .required)
            .field("email", .string, .required)
            .field("confirmed_at", .datetime)
            .create()
    }

    /// Drops the table.
    public func revert(on database: any Database) async throws {
        try await database.schema(Order.schema).delete()
    }
}
