// The PostgreSQL commit gate lives in AirlockPostgres, framework-neutral, so other integrations
// (Vapor/Fluent) share it. Re-exported so `import AirlockHummingbird` keeps giving
// `Airlock.transaction(on:)`, `TransactionDispatch`, `TransactionNotCommitted`, `CommitGate` and
// `DispatchAfterCommit`, as it did when they lived here.
@_exported import AirlockPostgres
