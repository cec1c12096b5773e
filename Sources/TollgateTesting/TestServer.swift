import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TollgateClient
import TollgateCore
import TollgateServer
import TollgateStorage

/// A real Tollgate node running in-process on a free loopback port: real TCP, real storage. Tests and
/// users' own test suites start one, talk to it with `TollgateConnection`, and stop it gracefully.
public final class TestServer: Sendable {
    /// The root token every test server accepts.
    public static let rootToken = "test-root-token-0123456789"

    public let app: TollgateApp
    public let host: String
    public let port: Int
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    /// Starts a node. `storageURL` is `memory:` (default), `sqlite:PATH` or a `postgres://` URL.
    /// With `log`, everything the node logs, at every level, goes there.
    public static func start(
        storageURL: String = "memory:", clock: any WallClock = SystemWallClock(),
        store: (any TollgateStore)? = nil, log: CapturedLog? = nil,
        configure: @Sendable (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.storageURL = storageURL
        // A test process runs dozens of servers on two cores beside their clients and child processes: a client's
        // first answer can take seconds there, which the default (10 s without a byte before `auth.hello` is
        // answered) would take for a socket left open. Tests of that limit set their own.
        configuration.listener.unauthenticatedIdleMs = 60_000
        // The same for PostgreSQL: the suite's dozens of servers share one database server on those two cores, and a
        // request that waits 10 s (the default) there is slow, not lost. Tests of the timeout set their own.
        configuration.postgres.requestTimeoutMs = 60_000
        configure(&configuration)
        var logger = Logger(label: "tollgate.test")
        // Quiet unless a run asks (`TOLLGATE_TEST_LOG_LEVEL=error`, say): dozens of servers log at once here.
        logger.logLevel =
            ProcessInfo.processInfo.environment["TOLLGATE_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? .critical
        if let log { logger = log.logger(label: "tollgate.test") }
        let app = try await TollgateApp.make(
            configuration: configuration,
            environment: ["TOLLGATE_ADMIN_TOKEN": rootToken], clock: clock,
            store: store, logger: logger)
        let group = app.serviceGroup(logger: logger)
        let runner = Task { try await group.run() }
        let address = try await app.listener.boundAddress()
        return TestServer(app: app, host: "127.0.0.1", port: address.port!, group: group, runner: runner)
    }

    private init(app: TollgateApp, host: String, port: Int, group: ServiceGroup, runner: Task<Void, any Error>) {
        self.app = app
        self.host = host
        self.port = port
        self.group = group
        self.runner = runner
    }

    public var address: String { "\(host):\(port)" }

    /// A new connection, already authenticated with `token` when one is given.
    public func connect(token: String? = nil) async throws -> TollgateConnection {
        let connection = try await TollgateConnection.connect(host: host, port: port)
        if let token { _ = try await connection.call("auth.hello", ["token": .string(token)]) }
        return connection
    }

    /// Runs `body` with a node started as `start` starts one, and always stops it — also when `body` throws or
    /// a `#require` fails — so that no test leaves a node running behind it.
    public static func with<T>(
        storageURL: String = "memory:", clock: any WallClock = SystemWallClock(), store: (any TollgateStore)? = nil,
        log: CapturedLog? = nil, configure: @Sendable (inout ServerConfiguration) -> Void = { _ in },
        _ body: (TestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(
            storageURL: storageURL, clock: clock, store: store, log: log, configure: configure)
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    /// Graceful shutdown, as on SIGTERM: stop accepting, answer in-flight requests, flush the ledger,
    /// close storage. Returns when the node has stopped.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await runner.value
    }

    /// Runs `body` with a scope in which nodes can be started (`Scope.start`), stopped and started again on the
    /// same storage — a restart — and stops every node still running when `body` ends, also when it throws or a
    /// `#require` fails.
    public static func scope<T>(_ body: (Scope) async throws -> T) async throws -> T {
        let scope = Scope()
        do {
            let result = try await body(scope)
            try await scope.stopAll()
            return result
        } catch {
            try? await scope.stopAll()
            throw error
        }
    }

    /// The nodes a test started (see `TestServer.scope`).
    public final class Scope: Sendable {
        private let started = Mutex<[TestServer]>([])

        /// Starts a node as `TestServer.start` does; it is stopped at the end of the scope if the test has not.
        public func start(
            storageURL: String = "memory:", clock: any WallClock = SystemWallClock(),
            store: (any TollgateStore)? = nil,
            configure: @Sendable (inout ServerConfiguration) -> Void = { _ in }
        ) async throws -> TestServer {
            let server = try await TestServer.start(
                storageURL: storageURL, clock: clock, store: store, configure: configure)
            started.withLock { $0.append(server) }
            return server
        }

        func stopAll() async throws {
            for server in started.withLock({ $0 }) { try await server.stop() }
        }
    }
}
