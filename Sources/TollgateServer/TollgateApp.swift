import Foundation
import Logging
import ServiceLifecycle
import TollgateCore
import TollgatePricing
import TollgateRuntime
import TollgateStorage
import TollgateStrategies

/// A whole Tollgate node, assembled: storage, the ledger writer, the actor tree and the listener, as one
/// service group started in that order and stopped in reverse (stop accepting and answer what is in
/// flight; flush the ledger; close storage).
public struct TollgateApp: Sendable {
    public static let version = "0.1.0"

    public let configuration: ServerConfiguration
    public let store: any TollgateStore
    public let listener: Listener
    public let ledger: LedgerWriter
    public let supervisor: Supervisor
    /// The root token if this start generated it (first start without `TOLLGATE_ADMIN_TOKEN`); print it once.
    public let generatedRootToken: String?
    let services: [any Service]

    public static func make(
        configuration: ServerConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        clock: any WallClock = SystemWallClock(),
        registry: StrategyRegistry = .builtIn,
        store givenStore: (any TollgateStore)? = nil,
        logger: Logger = Logger(label: "tollgate")
    ) async throws -> TollgateApp {
        try configuration.validate()
        // A given store (tests wrapping a real one to inject faults) replaces the configured one.
        let store = if let givenStore { givenStore } else { try await StoreService.open(configuration, logger: logger) }
        let root: (hash: String, generated: String?)
        do { root = try await RootToken.resolve(environment: environment, store: store) } catch {
            try? await store.close()
            throw error
        }
        let ledger = LedgerWriter(store: store, configuration: configuration.ledger, logger: logger)
        let services = RuntimeServices(
            store: store, ledger: ledger, registry: registry, clock: clock, logger: logger,
            stripeConfigured: configuration.stripe.secretKey != nil)
        let stripe = StripeOutboxService.make(configuration.stripe, store: store, clock: clock, logger: logger)
        let supervisor = Supervisor(services: services, rootTokenHash: root.hash, configuration: configuration.runtime)
        let listener = Listener(
            configuration: configuration, router: Router(logger: logger), supervisor: supervisor,
            version: version, logger: logger)
        var running: [any Service] = [
            StoreService(store: store), ledger, listener,
            SessionSweeper(supervisor: supervisor, intervalMs: configuration.runtime.sessionSweepMs),
        ]
        // Last: a graceful shutdown stops services in reverse order, so the outbox stops before the store closes.
        if let stripe { running.append(stripe) }
        return TollgateApp(
            configuration: configuration, store: store, listener: listener, ledger: ledger,
            supervisor: supervisor, generatedRootToken: root.generated, services: running)
    }

    /// Runs until SIGTERM/SIGINT (when `signals` is true) or until the calling task is cancelled.
    public func run(signals: Bool = true, logger: Logger = Logger(label: "tollgate")) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
                cancellationSignals: [],
                logger: logger))
        try await group.run()
    }

    /// A service group the caller controls (tests trigger graceful shutdown on it).
    public func serviceGroup(logger: Logger = Logger(label: "tollgate")) -> ServiceGroup {
        ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
    }
}
