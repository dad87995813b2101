// A tour of the Airlock core with the in-process executor: scopes, policies, nesting.
// Run: swift run CoreTour
import Airlock
import Logging

struct SendConfirmationEmail: AirlockTask {
    static let name = "orders.send_confirmation_email"
    let orderID: Int
    func run(_ context: TaskContext) async throws { print("    ✉️  email for order \(orderID)") }
}

struct NotifyWarehouse: AirlockTask {
    static let name = "orders.notify_warehouse"
    let orderID: Int
    func run(_ context: TaskContext) async throws { print("    📦 warehouse notified for order \(orderID)") }
}

func processOrder(_ id: Int) throws {
    try Airlock.enqueue(SendConfirmationEmail(orderID: id))
    try Airlock.enqueue(NotifyWarehouse(orderID: id))
}

struct PaymentDeclined: Error {}

print("1. A scope that succeeds dispatches its side effects when it ends:")
try await Airlock.scope {
    try processOrder(1)
    print("    (inside the scope: nothing has run yet)")
}

print("2. A scope that throws drops them:")
do {
    try await Airlock.scope {
        try processOrder(2)
        throw PaymentDeclined()
    }
} catch {
    print("    body threw \(error); nothing dispatched")
}

print("3. Policies decide what escapes — BlockTasks drops the email only:")
try await Airlock.scope(policy: BlockTasks(["send_confirmation_email"])) { try processOrder(3) }

print("4. DropAll buffers everything for inspection (a dry run):")
let preview = try Scope(policy: DropAll())
try await Airlock.scope(preview) { try processOrder(4) }
for intent in preview.intents { print("    would run: \(intent)") }

print("5. Nested scopes: the outer scope captures the inner one's intents and decides:")
do {
    try await Airlock.scope {
        try await Airlock.scope { try processOrder(5) }
        print("    inner scope ended; outer holds \(Airlock.currentScope?.intents.count ?? 0) intents")
        throw PaymentDeclined()
    }
} catch {
    print("    outer threw: the inner scope's effects were dropped too")
}

print("6. AssertNoEffects catches unexpected side effects:")
do {
    try await Airlock.scope(policy: AssertNoEffects()) { try processOrder(6) }
} catch {
    print("    \(error)")
}

print("7. A local policy applies to part of a scope:")
try await Airlock.scope {
    try Airlock.policy(BlockTasks(["notify_warehouse"])) { try processOrder(7) }
    try Airlock.enqueue(NotifyWarehouse(orderID: 8))
}

print("8. enqueue outside any scope is an error, never a silent loss:")
do { try processOrder(9) } catch { print("    \(error)") }
