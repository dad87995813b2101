/// Synchronous access to a client's connection, valid only inside
/// ``RedisClient/withConnection(_:)``.
///
/// The body runs on the client's owned thread, so it may block (e.g. a
/// `BLMOVE ... 1.0` loop) without starving Swift's cooperative pool, and several
/// steps run back-to-back with no thread hops. It is deliberately not Sendable:
/// it must not leave that thread.
public struct RedisConnectionHandle {
    let owner: ConnectionOwner
    let control: JobControl

    /// True when the task awaiting `withConnection` was cancelled or the client is
    /// closing; long loops (blocking pops) should check it between iterations.
    public var isCancelled: Bool { control.isCancelled }

    /// Sends one command and waits for its reply. Error replies are thrown as
    /// ``RedisError/server(_:)``. Blocking commands get a read timeout longer than
    /// their own; pass `timeout` to override the read timeout for this call only.
    public func command(_ args: [[UInt8]], timeout: Duration? = nil) throws(RedisError) -> RedisReply {
        try owner.execute(args, timeout: timeout).throwingServerError()
    }

    /// String convenience for ``command(_:timeout:)``.
    public func command(_ args: String...) throws(RedisError) -> RedisReply {
        try command(args.map { Array($0.utf8) })
    }

    /// Sends all commands in one round trip. Error replies are returned in place so
    /// MULTI/EXEC sequences can be inspected step by step.
    public func pipeline(_ commands: [[[UInt8]]], timeout: Duration? = nil) throws(RedisError) -> [RedisReply] {
        try owner.executePipeline(commands, timeout: timeout)
    }

    /// Runs a Lua script by SHA, loading it on NOSCRIPT; script errors are thrown.
    public func evalScript(_ script: RedisScript, keys: [[UInt8]], args: [[UInt8]]) throws(RedisError) -> RedisReply {
        try owner.evalScript(script, keys: keys, args: args).throwingServerError()
    }
}

@available(*, unavailable, message: "use the handle only inside the withConnection body")
extension RedisConnectionHandle: Sendable {}

extension RedisReply {
    /// Single-command APIs report `-ERR` replies as thrown errors.
    func throwingServerError() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw .server(message) }
        return self
    }
}
