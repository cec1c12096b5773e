import Foundation
import Logging
import TollgateCore
import TollgatePricing
import TollgateStorage

/// Owns one tenant: every request for the tenant passes through this actor. The actor is a thin shell: its
/// state lives in values that each own their part and are tested on their own, without an actor or a store —
///
/// - `directory` (`TenantDirectory`): the hierarchy, plans, subscriptions and plan swaps;
/// - `capLedger` (`CapLedger`): spend and holds per scope, and the caps on them;
/// - `ratings` (`SubscriptionRating`): each subscription's running pricing totals for the month;
/// - `sessions` (`SessionTable`): the open sessions, their lifecycles and calls in flight;
/// - `holds` (`ReservationBook`): the `meter.authorize` holds still held;
/// - `keys` (`IdempotencyCache`): the idempotency rule and the keys seen recently;
/// - `guards` (`SpendGuards`) and `marks` (`AlertMarks`): velocity, margins and the alerts raised once;
/// - `credits` (`CreditBook`): each customer's credit, drawn as charges are recorded.
///
/// The actor carries out what those values decide: it awaits storage, the ledger writer and the clock.
///
/// The one-turn rule, relied on throughout: state read before an `await` may have changed after it, because
/// another call of the tenant can run at every suspension point. So a call's checks and the holds they
/// justify happen synchronously, in one turn, before the first suspension point (`admit`); after an await,
/// what is needed is read again.
public actor TenantActor {
    public nonisolated let tenantId: String
    let services: RuntimeServices
    let configuration: RuntimeConfiguration

    var directory: TenantDirectory
    var capLedger = CapLedger()
    /// Running pricing totals per subscription and plan version for the current month (`TenantActor+Rating`).
    var ratings: [String: SubscriptionRating] = [:]
    var sessions: SessionTable
    var holds = ReservationBook()
    /// Holds loaded at start whose session is not open any more (closed before its holds were released, by a
    /// version that did not release them): the first sweep releases them.
    var orphanedHolds: [ReservationRecord] = []
    var keys: IdempotencyCache
    var guards: SpendGuards
    var marks = AlertMarks()
    var credits: CreditBook
    /// Closing a period and voiding an invoice take turns (`billingTurn`): each reads what invoices applied of a
    /// customer's credit and writes what it applies, so two at once could apply the same credit twice.
    var billingBusy = false
    var billingWaiters: [CheckedContinuation<Void, Never>] = []
    /// Event ids claimed by `events.ingest` batches not answered yet, and the batches waiting for them to be.
    var eventsInFlight: Set<String> = []
    var eventWaiters: [CheckedContinuation<Void, Never>] = []

    /// Everything the tenant's storage holds that the actor keeps in memory, as `Supervisor` loads it.
    struct Loaded {
        var snapshot: TenantSnapshot
        /// Made from `snapshot`.
        var directory: TenantDirectory
        var spend: [SpendRow]
        /// The windows `spend` was summed in.
        var spendWindows: SpendWindows
        /// Open sessions, and the latest closed ones (to learn how long sessions last).
        var sessions: [SessionRecord]
        var sessionTimeouts: SessionTimeouts?
        /// Holds still held.
        var reservations: [ReservationRecord]
        /// The credit of each customer with grants.
        var credits: [String: CreditWallet] = [:]
    }

    init(_ loaded: Loaded, services: RuntimeServices, configuration: RuntimeConfiguration) throws {
        tenantId = loaded.snapshot.tenant.id
        self.services = services
        self.configuration = configuration
        directory = loaded.directory
        sessions = SessionTable(
            timeouts: loaded.sessionTimeouts ?? configuration.sessionTimeouts, openMax: configuration.openSessionsMax)
        keys = IdempotencyCache(capacity: configuration.recentKeysMax)
        guards = SpendGuards(limits: configuration.guards)
        credits = CreditBook(wallets: loaded.credits)
        for credential in directory.limitedCredentials { capLedger.setCap(Self.credentialCap(credential)!) }
        for credential in directory.credentials(ofAgent: nil) {
            if let parentId = credential.parentId { capLedger.delegate(credential.id, from: parentId) }
        }
        for cap in loaded.snapshot.caps { capLedger.setCap(cap) }
        for row in loaded.spend {
            capLedger.load(
                row.target,
                ScopeSpend(
                    lifetime: row.lifetime, month: row.month, day: row.day,
                    windows: loaded.spendWindows.of(row.customerId)))
        }
        for row in loaded.spend where row.target.scope == .credential {
            capLedger.loadDelegated(row.lifetime, of: row.target.id)
        }
        // Open sessions come back as they were; closed ones teach how long sessions last.
        for record in loaded.sessions {
            if record.closedAt != nil {
                sessions.learn(record)
            } else if sessions.adopt(record) {
                Self.loadSpend(of: record, into: &capLedger)
            }
        }
        // Holds come back as they were; expired ones are let go by the first sweep, and so are those whose
        // session is closed.
        for reservation in loaded.reservations {
            holds.insert(reservation)
            capLedger.hold(reservation.held, on: reservation.path.scopes)
            if sessions[reservation.path.sessionId] == nil { orphanedHolds.append(reservation) }
        }
    }

    /// An open session's spend so far, into the cap ledger (its session scope).
    static func loadSpend(of session: SessionRecord, into ledger: inout CapLedger) {
        guard session.totals.cost != .zero else { return }
        ledger.load(ScopeRef(.session, session.id), ScopeSpend(lifetime: session.totals.cost))
    }

    /// A credential's `spendLimit`, enforced as a lifetime cap on the credential scope; nil without one.
    static func credentialCap(_ credential: Credential) -> Cap? {
        guard let limit = credential.spendLimit else { return nil }
        return Cap(
            id: "caplimit_\(credential.id)", tenantId: credential.tenantId,
            target: ScopeRef(.credential, credential.id), limit: limit, period: .lifetime, warnAtPercent: nil)
    }

    var now: Date { services.clock.now() }

    /// Runs `body` when no other close or void of the tenant is running, and before the next one.
    func billingTurn<T>(_ body: () async throws(TollgateError) -> T) async throws(TollgateError) -> T {
        while billingBusy { await withCheckedContinuation { billingWaiters.append($0) } }
        billingBusy = true
        defer {
            billingBusy = false
            if !billingWaiters.isEmpty { billingWaiters.removeFirst().resume() }
        }
        return try await body()
    }

    /// The credential if it is still usable now (see `TenantDirectory.usableCredential`).
    public func usableCredential(_ id: String) throws(TollgateError) -> Credential {
        try directory.usableCredential(id, at: now)
    }

    /// A usable credential that may meter (`meter:write`).
    public func meterCredential(_ id: String) throws(TollgateError) -> Credential {
        try directory.meterCredential(id, at: now)
    }

    /// Runs one storage operation of this tenant (see `RuntimeServices.storage`).
    func storage<T>(_ what: String, _ body: () async throws(StorageError) -> T) async throws(TollgateError) -> T {
        try await services.storage(what, tenant: tenantId, body)
    }
}
