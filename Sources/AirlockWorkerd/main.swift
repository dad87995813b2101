import AirlockDaemon
import AirlockWorker

// The stock daemon: the built-in diagnostic tasks only. Applications build their own binary the
// same way with their tasks registered (see Examples/EmbeddedWorker).
await AirlockCommand.main(tasks: TaskRegistry())
