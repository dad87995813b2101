// `import AirlockRedis` is the one import a Redis user needs: the client (RedisClient,
// RedisConfiguration, RedisError) and the worker engine (Worker, WorkerConfiguration,
// TaskRegistry) come with it, as they did before the transport was split into modules.
@_exported public import AirlockRedisClient
@_exported public import AirlockWorker
