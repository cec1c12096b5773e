import Foundation
import Logging
import TollgateCore
import TollgatePricing
import TollgateStorage

/// Owns one tenant: its hierarchy (customers → teams → agents → credentials), plans, subscriptions, caps and
/// the spend behind them. Every request for the tenant passes through this actor, which is what makes cap
/// checks exact: admission (check + hold) happens within one actor turn, before any suspension point.
///
/// Re-entrancy rule, relied on throughout: state read before an `await` may have changed after it, so each
/// method checks and reserves synchronously, then awaits storage, then re-reads what it needs.
public actor TenantActor {
    public struct Limits: Sendable {
        /// Recent idempotency keys kept in memory (older ones are looked up in storage).
        public var recentKeysMax: Int
        /// Longest credential lifetime an operator may issue, in seconds.
        public var credentialTTLSecondsMax: Int64
        /// Open sessions a tenant may have at once.
        public var openSessionsMax: Int
        /// Session idleness and timeout unless the tenant sets its own (`sessions.configure`).
        public var sessionTimeouts: SessionTimeouts
        /// Longest a `meter.authorize` hold lasts before it expires, in milliseconds.
        public var reservationTTLMs: Int64
        /// The velocity alert's and the margin guard's thresholds.
        public var guards: GuardLimits
        public init(
            recentKeysMax: Int = 100_000, credentialTTLSecondsMax: Int64 = 366 * 86_400,
            openSessionsMax: Int = 100_000, sessionTimeouts: SessionTimeouts = SessionTimeouts(),
            reservationTTLMs: Int64 = 300_000, guards: GuardLimits = GuardLimits()
        ) {
            self.recentKeysMax = recentKeysMax
            self.credentialTTLSecondsMax = credentialTTLSecondsMax
            self.openSessionsMax = openSessionsMax
            self.sessionTimeouts = sessionTimeouts
            self.reservationTTLMs = reservationTTLMs
            self.guards = guards
        }
    }

    public nonisolated let tenantId: String
    let services: RuntimeServices
    let limits: Limits

    var tenant: TenantRecord
    var customers: [String: Customer] = [:]
    var teams: [String: Team] = [:]
    var agents: [String: Agent] = [:]
    var credentials: [String: Credential] = [:]
    /// Plans by id, then version.
    var plans: [String: [Int: Plan]] = [:]
    var planIdsByName: [String: String] = [:]
    var subscriptions: [String: [SubscriptionRecord]] = [:]
    /// Plan swaps per subscription id, in the order they take effect.
    var planSwaps: [String: [PlanSwapRecord]] = [:]
    var capLedger = CapLedger()
    /// Running pricing totals per subscription for the current month (see `TenantActor+Rating`).
    var ratings: [String: SubscriptionRating] = [:]
    var recentKeys: RecentKeys
    /// Open sessions by id (see `TenantActor+Sessions`).
    var sessions: [String: OpenSession] = [:]
    /// When each open session times out, soonest first: the sweep looks at these, not at every session.
    var sessionDeadlines = DeadlineHeap()
    /// Sessions closed in memory whose final record is not written yet.
    var closedSessions: Set<String> = []
    /// Open sessions, oldest first, for `sessions.list`.
    var sessionOrder = SessionOrder()
    var sessionTimeouts: SessionTimeouts
    var sessionLengths = SessionLengths()
    /// Calls per minute per agent, customers' month margins and the margin throttle (see `TenantActor+Guards`).
    var callRates: [String: CallRate] = [:]
    var customerMargins: [String: CustomerMargin] = [:]
    var marginThrottle: [String: Date] = [:]
    var guards: GuardLimits { limits.guards }
    /// `meter.authorize` holds still held (see `TenantActor+TwoPhase`).
    var holds = ReservationBook()
    /// Holds loaded at start whose session is not open any more (closed before its holds were released, by a
    /// version that did not release them): the first sweep releases them.
    var orphanedHolds: [ReservationRecord] = []
    /// Alerts already raised for the current crossing (cap, period, session), so each fires once.
    var alertMarks: Set<String> = []

    init(
        snapshot: TenantSnapshot, spend: [SpendRow], sessions stored: [SessionRecord],
        sessionTimeouts: SessionTimeouts?,
        reservations held: [ReservationRecord], services: RuntimeServices, limits: Limits
    ) throws {
        tenantId = snapshot.tenant.id
        tenant = snapshot.tenant
        self.services = services
        self.limits = limits
        self.sessionTimeouts = sessionTimeouts ?? limits.sessionTimeouts
        recentKeys = RecentKeys(capacity: limits.recentKeysMax)
        for customer in snapshot.customers { customers[customer.id] = customer }
        for team in snapshot.teams { teams[team.id] = team }
        for agent in snapshot.agents { agents[agent.id] = agent }
        for credential in snapshot.credentials {
            credentials[credential.id] = credential
            if let limit = credential.spendLimit { capLedger.setCap(Self.credentialCap(credential, limit)) }
        }
        for record in snapshot.plans {
            let document = try PlanDocument(json: JSONCodec.parse(record.document))
            let plan = try document.compile(id: record.planId, version: record.version, registry: services.registry)
            plans[record.planId, default: [:]][record.version] = plan
            planIdsByName[record.name] = record.planId
        }
        for subscription in snapshot.subscriptions {
            subscriptions[subscription.customerId, default: []].append(subscription)
        }
        for swap in snapshot.planSwaps { Self.add(swap, to: &planSwaps) }
        for cap in snapshot.caps { capLedger.setCap(cap) }
        let current = PeriodIndex(services.clock.now())
        for row in spend {
            capLedger.load(
                row.target, ScopeSpend(lifetime: row.lifetime, month: row.month, day: row.day, current: current))
        }
        // Open sessions come back as they were; closed ones teach how long sessions last.
        for record in stored {
            if let closedAt = record.closedAt {
                sessionLengths.record(agentId: record.agentId, seconds: closedAt.timeIntervalSince(record.openedAt))
            } else {
                Self.adopt(record, into: &sessions, ledger: &capLedger)
            }
        }
        for (id, open) in sessions {
            sessionOrder.insert(id, openedAt: open.record.openedAt)
            if let deadline = open.lifecycle.timesOutAt(self.sessionTimeouts) { sessionDeadlines.push(deadline, id) }
        }
        // Holds come back as they were; expired ones are let go by the first sweep, and so are those whose
        // session is closed.
        for reservation in held {
            holds.insert(reservation)
            capLedger.hold(reservation.held, on: reservation.path.scopes)
            if sessions[reservation.path.sessionId] == nil { orphanedHolds.append(reservation) }
        }
    }

    /// A credential's `spendLimit` is enforced as a lifetime cap on the credential scope.
    static func credentialCap(_ credential: Credential, _ limit: Money) -> Cap {
        Cap(
            id: "caplimit_\(credential.id)", tenantId: credential.tenantId,
            target: ScopeRef(.credential, credential.id),
            limit: limit, period: .lifetime, warnAtPercent: nil)
    }

    // MARK: lookups shared by the operations

    func customer(_ id: String) throws(TollgateError) -> Customer {
        guard let customer = customers[id] else { throw .notFound("no customer \(id) in this tenant") }
        return customer
    }

    func team(_ id: String) throws(TollgateError) -> Team {
        guard let team = teams[id] else { throw .notFound("no team \(id) in this tenant") }
        return team
    }

    func agent(_ id: String) throws(TollgateError) -> Agent {
        guard let agent = agents[id] else { throw .notFound("no agent \(id) in this tenant") }
        return agent
    }

    /// The credential if it is still usable now. Checked on every agent request, so a revocation or expiry
    /// takes effect at the very next request of an open connection.
    public func usableCredential(_ id: String) throws(TollgateError) -> Credential {
        guard let credential = credentials[id], credential.isUsable(at: services.clock.now()) else {
            throw .unauthenticated("credential expired or revoked")
        }
        return credential
    }

    /// A usable credential that may meter (`meter:write`): what every agent method of metering and sessions needs.
    public func meterCredential(_ id: String) throws(TollgateError) -> Credential {
        let credential = try usableCredential(id)
        guard credential.scopes.contains(AgentScope.meterWrite) else {
            throw .forbidden("credential lacks scope \(AgentScope.meterWrite)")
        }
        return credential
    }

    /// The plan version rating `subscription`'s calls at `date`: the latest swap effective at or before that
    /// millisecond, else the subscription's own. Compared in whole milliseconds, as times are stored, so the
    /// answer is the same before and after a restart.
    func planInForce(_ subscription: SubscriptionRecord, at date: Date) -> (planId: String, version: Int) {
        let millis = Timestamp.millis(date)
        if let swap = planSwaps[subscription.id]?.last(where: { Timestamp.millis($0.effectiveAt) <= millis }) {
            return (swap.planId, swap.version)
        }
        return (subscription.planId, subscription.version)
    }

    /// Who a credential's call is charged to and the plan version that prices it at `date`.
    func pricing(for credential: Credential, at date: Date) throws(TollgateError)
        -> (agent: Agent, team: Team, subscription: SubscriptionRecord, plan: Plan)
    {
        let agent = try agent(credential.agentId)
        let team = try team(agent.teamId)
        guard let subscription = subscription(for: team.customerId, at: date) else {
            throw .conflict("customer \(team.customerId) has no active subscription to a plan")
        }
        let inForce = planInForce(subscription, at: date)
        guard let plan = plans[inForce.planId]?[inForce.version] else {
            throw .conflict("subscription \(subscription.id) names a plan this tenant does not have")
        }
        return (agent, team, subscription, plan)
    }

    /// Adds a swap, keeping each subscription's swaps in the order they take effect (by millisecond, then id).
    static func add(_ swap: PlanSwapRecord, to swaps: inout [String: [PlanSwapRecord]]) {
        swaps[swap.subscriptionId, default: []].append(swap)
        swaps[swap.subscriptionId]!.sort {
            (Timestamp.millis($0.effectiveAt), $0.id) < (Timestamp.millis($1.effectiveAt), $1.id)
        }
    }

    /// The subscription in force for `customerId` at `date`: the latest one that has started.
    func subscription(for customerId: String, at date: Date) -> SubscriptionRecord? {
        subscriptions[customerId]?.filter { $0.startsAt <= date }.max { ($0.startsAt, $0.id) < ($1.startsAt, $1.id) }
    }

    func write(_ body: () async throws(StorageError) -> Void) async throws(TollgateError) {
        do { try await body() } catch {
            services.logger.error("storage write failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
            if case .duplicate = error { throw .conflict("an object with this identity already exists") }
            throw .unavailable("storage is unavailable; nothing was recorded")
        }
    }
}
