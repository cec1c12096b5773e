import Logging
import TollgateCore
import TollgatePricing
import TollgateStorage

/// What every actor of the runtime works with: storage, the ledger writer, the pricing strategies, the clock
/// and the log. Built once by the server and handed down the supervisor tree as one value.
public struct RuntimeServices: Sendable {
    public let store: any TollgateStore
    public let ledger: LedgerWriter
    public let registry: StrategyRegistry
    public let clock: any WallClock
    public let logger: Logger
    public let alerts: AlertHub
    /// Whether a Stripe key is configured: finalized invoices are then handed to Stripe through the outbox.
    public let stripeConfigured: Bool

    public init(
        store: any TollgateStore, ledger: LedgerWriter, registry: StrategyRegistry,
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "tollgate.runtime"),
        alerts: AlertHub = AlertHub(), stripeConfigured: Bool = false
    ) {
        self.stripeConfigured = stripeConfigured
        self.store = store
        self.ledger = ledger
        self.registry = registry
        self.clock = clock
        self.logger = logger
        self.alerts = alerts
    }
}
