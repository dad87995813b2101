// The example order service: `VaporOrderApp serve` runs the HTTP API and the embedded worker that
// sends the confirmations; `VaporOrderApp migrate` creates the table. Settings from the
// environment: PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, AIRLOCK_REDIS_URL.
import Logging
import Vapor
import VaporOrderAppKit

var environment = try Environment.detect()
// The application, not a library, decides how logging works.
try LoggingSystem.bootstrap(from: &environment)
let app = try await Application.make(environment)
do {
    try OrderApp.configure(app, settings: OrderAppSettings())
    try await app.execute()
} catch {
    app.logger.report(error: error)
    try? await app.asyncShutdown()
    exit(1)
}
try await app.asyncShutdown()
