// The example order service: `VaporOrderApp serve` runs the HTTP API and the embedded worker that
// sends the confirmations; `VaporOrderApp migrate --yes` creates the table (without a worker). Settings from the
// environment: PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, AIRLOCK_REDIS_URL.
import Logging
import Vapor
import VaporOrderAppKit

var environment = try Environment.detect()
// The application, not a library, decides how logging works.
try LoggingSystem.bootstrap(from: &environment)
let app = try await Application.make(environment)
var settings = OrderAppSettings()
// The worker belongs to `serve` (Vapor's default command); `migrate` and `routes` run without it.
let command = environment.commandInput.arguments.first
settings.runsWorker = command == nil || command == "serve" || command?.hasPrefix("-") == true
do {
    try OrderApp.configure(app, settings: settings)
    try await app.execute()
} catch {
    app.logger.report(error: error)
    try? await app.asyncShutdown()
    exit(1)
}
try await app.asyncShutdown()
