import Airlock
import AirlockRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAppKit
import Synchronization
import Testing

/// `OrderApp all` — Hummingbird and an Airlock worker in one process, one ServiceGroup — as a real
/// child process under HTTP load, stopped with SIGTERM.
@Suite("OrderApp all: web + worker in one ServiceGroup", .timeLimit(.minutes(5)))
struct ShutdownUnderLoadTests {
    @Test("SIGTERM under load: clean exit, nothing left in flight, and after a restart every committed order is confirmed exactly once")
    func sigtermUnderLoad() async throws {
        let harness = try await Harness.make()
        // Every order of this test carries this address: the table is shared with the other tests.
        let email = "sigterm-\(harness.keys.namespace)@example.com"
        let port = try await freePort()
        let app = try ChildProcess.orderApp(
            "all", servers: harness.servers, namespace: harness.keys.namespace, port: port, deliveryDelayMilliseconds: 200)
        defer { app.kill() }

        try await harness.withDatabase { _ in
            let up = try await eventually(timeout: .seconds(60)) { await answers(port: port) }
            try #require(up, "OrderApp all never answered on port \(port):\n\(app.output)")

            // Eight clients post orders back to back until the server goes away.
            let accepted = CreatedOrders()
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<8 {
                        group.addTask { await postOrders(port: port, email: email, client: client) { id in accepted.add(id) } }
                    }
                }
            }

            // SIGTERM once tasks have run and a backlog waits in Redis, so the shutdown has running
            // tasks, prefetched jobs and queued jobs to deal with.
            let loaded = try await eventually(timeout: .seconds(90)) {
                let confirmed = try await harness.store.orders(email: email).filter(\.confirmed).count
                let waiting = try await harness.redis.send("LLEN", harness.keys.ready("default")).integer()
                return confirmed >= 5 && waiting >= 50
            }
            #expect(loaded, "no backlog built up before SIGTERM:\n\(app.output)")
            app.terminate()
            let status = await app.exitStatus()
            #expect(status == .exited(0), "OrderApp all did not exit cleanly:\n\(app.output)")
            await load.value

            // Nothing held by the stopped worker, and it deregistered.
            let held = try await harness.redis.send("KEYS", "\(harness.keys.namespace):*:inflight:*").array ?? []
            #expect(held.isEmpty, "in-flight lists left behind: \(held)")
            #expect(try await harness.redis.send("SCARD", harness.keys.workers).integer() == 0)

            let orders = try await harness.store.orders(email: email)
            let acceptedIDs = accepted.ids
            #expect(!acceptedIDs.isEmpty)
            // Every 201 names a committed row (the rows may include requests whose response the shutdown cut off).
            #expect(acceptedIDs.isSubset(of: Set(orders.map(\.id))))
            #expect(orders.allSatisfy { $0.confirmations <= 1 }, "confirmed twice before the restart: \(orders.filter { $0.confirmations > 1 }.map(\.id))")
            let unconfirmed = orders.filter { !$0.confirmed }
            let waiting = try await harness.redis.send("LLEN", harness.keys.ready("default")).integer()
            // The jobs of unconfirmed orders are back in (or still in) the ready list, one each.
            #expect(waiting == unconfirmed.count)
            #expect(!unconfirmed.isEmpty, "the shutdown left no work for the restart; the test did not exercise it")
            print("SIGTERM under load: \(orders.count) orders (\(acceptedIDs.count) answered 201), \(orders.count - unconfirmed.count) confirmed before the exit, \(unconfirmed.count) left in Redis")

            // A restarted worker confirms exactly the rest.
            let deliveries = Deliveries()
            let drained = try await harness.withWorker(deliver: { order, context in deliveries.record(order, context) }) {
                try await eventually(timeout: .seconds(120)) { try await harness.store.orders(email: email).allSatisfy(\.confirmed) }
            }
            #expect(drained)
            let final = try await harness.store.orders(email: email)
            #expect(final.count == orders.count)
            #expect(final.allSatisfy { $0.confirmations == 1 }, "lost or duplicated: \(final.filter { $0.confirmations != 1 }.map { ($0.id, $0.confirmations) })")
            #expect(Set(deliveries.seen.map(\.order.id)) == Set(unconfirmed.map(\.id)))
            #expect(deliveries.seen.count == unconfirmed.count)
        }
        await harness.redis.close()
    }
}

/// The ids of the orders the server answered 201 for.
private final class CreatedOrders: Sendable {
    private let state = Mutex<Set<Int>>([])
    var ids: Set<Int> { state.withLock { $0 } }
    func add(_ id: Int) { state.withLock { _ = $0.insert(id) } }
}

/// Posts orders on one keep-alive connection until the server stops answering, reporting each
/// created order's id.
private func postOrders(port: Int, email: String, client: Int, created: @Sendable (Int) -> Void) async {
    let body = try! JSONEncoder().encode(NewOrder(item: "load-\(client)", quantity: 1, email: email))
    var connection: TestClient?
    while !Task.isCancelled {
        let current: TestClient
        if let connection { current = connection } else {
            current = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30)))
            current.connect()
            connection = current
        }
        do {
            let response = try await current.post("/orders", headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body))
            guard response.status == .created,
                  let order = try? JSONDecoder().decode(Order.self, from: Data((response.body ?? ByteBuffer()).readableBytesView)) else { break }
            created(order.id)
        } catch {
            break      // the server closed the connection: it is shutting down
        }
    }
    try? await connection?.shutdown()
}

/// Whether an HTTP server answers on `port`.
private func answers(port: Int) async -> Bool {
    let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(5)))
    client.connect()
    defer { Task { try? await client.shutdown() } }
    return (try? await client.get("/orders/0").status) == .notFound
}

/// A loopback port nothing listens on right now (the kernel's pick for port 0).
private func freePort() async throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("bind() to 127.0.0.1:0 failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A child process whose output goes to a temp file, awaited without blocking a thread.
final class ChildProcess: Sendable {
    enum Status: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
    }

    private let process: Process
    private let log: URL
    private let ended = Ending()

    /// How the process ended, and who waits to know.
    private final class Ending: Sendable {
        let state = Mutex<(status: Status?, waiters: [CheckedContinuation<Status, Never>])>((nil, []))
    }

    init(executable: URL, arguments: [String], environment: [String: String]) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("orderapp-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw TestFailure("cannot create \(log.path)") }
        let output = try FileHandle(forWritingTo: log)
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        process.terminationHandler = { [ended] process in
            let status: Status = process.terminationReason == .exit ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
            let waiters = ended.state.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
        try process.run()
        try output.close()
    }

    /// `OrderApp <command>` built beside this test binary (or at `$ORDERAPP_BINARY`), on the test servers.
    static func orderApp(_ command: String, servers: TestServers, namespace: String, port: Int, deliveryDelayMilliseconds: Int) throws -> ChildProcess {
        let binary: URL
        if let path = ProcessInfo.processInfo.environment["ORDERAPP_BINARY"] {
            binary = URL(fileURLWithPath: path)
        } else {
            let me = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            binary = me.deletingLastPathComponent().appendingPathComponent("OrderApp")
        }
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("\(binary.path) is not built: run scripts/test.sh (swift build --build-tests builds it), or set ORDERAPP_BINARY")
        }
        return try ChildProcess(executable: binary, arguments: [command], environment: [
            "PGHOST": servers.postgresHost, "PGPORT": "\(servers.postgresPort)", "PGUSER": servers.postgresUser,
            "PGDATABASE": servers.postgresDatabase, "AIRLOCK_REDIS_URL": servers.redisURL, "AIRLOCK_NAMESPACE": namespace,
            "PORT": "\(port)", "ORDERAPP_DELIVERY_DELAY_MS": "\(deliveryDelayMilliseconds)",
        ])
    }

    /// Sends SIGTERM.
    func terminate() { process.terminate() }

    /// Sends SIGKILL if it is still running (cleanup after a failed test).
    func kill() {
        if ended.state.withLock({ $0.status == nil }) { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// How it ended, once it has.
    func exitStatus() async -> Status {
        await withCheckedContinuation { continuation in
            let status = ended.state.withLock { state -> Status? in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// The last 4 KB of what it printed.
    var output: String {
        let data = (try? Data(contentsOf: log)) ?? Data()
        return String(decoding: data.suffix(4096), as: UTF8.self)
    }
}
