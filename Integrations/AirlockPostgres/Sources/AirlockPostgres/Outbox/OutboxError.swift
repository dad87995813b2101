public import Airlock
import PostgresNIO

/// Why the outbox could not do what was asked. The description says what happened and what to do.
public struct OutboxError: AirlockError {
    /// The kind of failure, stable for code that branches on it.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Code: String, Hashable, Sendable {
            case unsendableIntent, writeFailed, notMigrated, postgres, invalidConfiguration, notFound
        }
        fileprivate let code: Code
        /// An intent cannot become a job (oversized envelope, invalid queue, unencodable
        /// arguments): nothing was written, and the transaction must not commit.
        public static let unsendableIntent = Kind(code: .unsendableIntent)
        /// Writing the rows failed inside the transaction: it must be rolled back.
        public static let writeFailed = Kind(code: .writeFailed)
        /// The `airlock_outbox` table does not exist: run `airlock-outbox migrate`.
        public static let notMigrated = Kind(code: .notMigrated)
        /// PostgreSQL failed otherwise (unreachable, a query refused).
        public static let postgres = Kind(code: .postgres)
        /// A setting cannot work (a deduplication margin longer than the window, say).
        public static let invalidConfiguration = Kind(code: .invalidConfiguration)
        /// A parked row named by id does not exist.
        public static let notFound = Kind(code: .notFound)
        /// The kind's name, e.g. `notMigrated`.
        public var description: String { code.rawValue }
    }

    /// The kind of failure.
    public let kind: Kind
    /// What happened and what to do, in one line.
    public let description: String
    /// The PostgreSQL error behind it, if any.
    public let underlying: (any Error)?

    init(_ kind: Kind, _ description: String, underlying: (any Error)? = nil) {
        self.kind = kind
        self.description = description
        self.underlying = underlying
    }

    /// A PostgreSQL failure while `doing` something; a missing table becomes `.notMigrated`.
    static func postgres(_ error: any Error, doing: String) -> OutboxError {
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState] {
            let message = psql.serverInfo?[.message] ?? "SQLSTATE \(state)"
            if state == "42P01" || state == "42883" {   // undefined table / function
                return OutboxError(.notMigrated, "the outbox table is missing (\(message)) while \(doing): run `airlock-outbox migrate --postgres URL` "
                    + "(or apply OutboxSchema.migrations with your migration tool)", underlying: error)
            }
            return OutboxError(.postgres, "PostgreSQL refused \(doing): \(message) (SQLSTATE \(state))", underlying: error)
        }
        return OutboxError(.postgres, "PostgreSQL failed while \(doing): \(String(reflecting: error))", underlying: error)
    }
}
