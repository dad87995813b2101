// The commit gate's types (TransactionDispatch, TransactionNotCommitted, CommittedButNotDispatched,
// TransactionScope) are part of this module's API: `import AirlockFluent` is enough to use them.
@_exported import AirlockPostgres
