/// What a client's owned thread runs calls against: one node's connection (``ConnectionOwner``),
/// or a Redis Cluster's nodes behind a slot map (``ClusterRouter``). Lives on that thread only.
protocol CommandRunner: AnyObject {
    /// Connects now if not connected (to a cluster: learns the slot map from a seed).
    func connect() throws(RedisError)
    /// One command; error replies returned, not thrown.
    func execute(_ command: RedisCommand, timeout: Duration?) throws(RedisError) -> RedisReply
    /// Commands in one round trip per node; error replies stay in place.
    func executePipeline(_ commands: [RedisCommand], timeout: Duration?) throws(RedisError) -> [RedisReply]
    /// Script calls, reloading scripts a server forgot; `wait` ends the round trip (see ConnectionOwner).
    func evaluate(_ calls: [RedisScript.Call], then wait: RedisCommand?) throws(RedisError) -> (replies: [RedisReply], wait: RedisReply?)
    /// Drops every connection for good.
    func close()
}

extension ConnectionOwner: CommandRunner {
    func connect() throws(RedisError) { _ = try connected() }
}
