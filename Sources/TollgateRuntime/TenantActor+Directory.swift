import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// The operator methods of a tenant: the hierarchy, credentials, plans, subscriptions, caps and usage. Each
/// writes to storage first (with its answer, when it carries an idempotency key) and changes memory only once
/// the write is durable, so memory never shows something a restart would lose.
///
/// `agents.create` and `credentials.issue` take no key: their answers carry a secret that is shown once and
/// never stored, so there is nothing a retry could be answered with.
extension TenantActor {
    /// A customer; its billing periods follow `timeZone` (an IANA name, UTC by default), and its invoices add
    /// `taxRate` (0 to 1).
    public func createCustomer(
        name: String, externalId: String?, timeZone: String = "UTC", taxRate: Money = .zero,
        blockAtZeroCredit: Bool = false, call: KeyedCall?
    ) async throws(TollgateError) -> Answer<CustomerCreated> {
        try await keyed(call) { () async throws(TollgateError) in
            _ = try BillingCalendar(cadence: .day, timeZone: timeZone)
            guard taxRate <= Money(nanos: 1_000_000_000) else {
                throw .validation(field: "taxRate", rule: "a rate from 0 to 1 (0.2 is 20 %)")
            }
            let customer = Customer(
                id: Identifiers.make(.customer), tenantId: tenantId, name: name, externalId: externalId,
                timeZone: timeZone, taxRate: taxRate, blockAtZeroCredit: blockAtZeroCredit)
            let answer = Answer(CustomerCreated(customer: customer))
            let written = try await write(
                .insertCustomer(customer), answering: answer, for: call, "creating a customer")
            if written == .written { directory.add(customer) }
            return written.answer(answer)
        }
    }

    public func createTeam(customerId: String, name: String, call: KeyedCall?) async throws(TollgateError)
        -> Answer<TeamCreated>
    {
        try await keyed(call) { () async throws(TollgateError) in
            _ = try directory.customer(customerId)
            let team = Team(id: Identifiers.make(.team), tenantId: tenantId, customerId: customerId, name: name)
            let answer = Answer(TeamCreated(team: team))
            let written = try await write(.insertTeam(team), answering: answer, for: call, "creating a team")
            if written == .written { directory.add(team) }
            return written.answer(answer)
        }
    }

    /// Creates an agent and its client credentials; the secret is returned once and stored only as a hash.
    public func createAgent(teamId: String, name: String, agentType: String?) async throws(TollgateError)
        -> AgentCreated
    {
        _ = try directory.team(teamId)
        let agent = Agent(
            id: Identifiers.make(.agent), tenantId: tenantId, teamId: teamId, name: name, agentType: agentType,
            clientId: Identifiers.make(.client))
        let secret = Secrets.make(prefix: Secrets.clientSecretPrefix)
        try await storage("creating an agent") { () async throws(StorageError) in
            try await services.store.insertAgent(agent, clientSecretHash: Secrets.hash(secret))
        }
        directory.add(agent)
        return AgentCreated(agent: agent, clientSecret: secret)
    }

    /// Issues an `AGT-` token for an agent. The token is returned once and stored only as a hash.
    public func issueCredential(agentId: String, scopes: [String], ttlSeconds: Int64, spendLimit: Money?)
        async throws(TollgateError) -> CredentialIssued
    {
        try checkNewCredential(agentId: agentId, scopes: scopes, ttlSeconds: ttlSeconds)
        return try await store(
            Credential(
                id: Identifiers.make(.credential), tenantId: tenantId, agentId: agentId,
                scopes: Array(Set(scopes)).sorted(), expiresAt: now.addingTimeInterval(TimeInterval(ttlSeconds)),
                revokedAt: nil, spendLimit: spendLimit))
    }

    /// What every new agent credential must be: for an agent of the tenant, with known scopes, for a lifetime
    /// within `credentialTTLSecondsMax`.
    func checkNewCredential(agentId: String, scopes: [String], ttlSeconds: Int64) throws(TollgateError) {
        _ = try directory.agent(agentId)
        for (index, scope) in scopes.enumerated() where !AgentScope.all.contains(scope) {
            throw .validation(
                field: "scopes[\(index)]", rule: "one of \(AgentScope.all.sorted().joined(separator: ", "))")
        }
        guard !scopes.isEmpty else { throw .validation(field: "scopes", rule: "at least one scope") }
        let ttlMax = Int64(configuration.credentialTTLSecondsMax)
        guard (1...ttlMax).contains(ttlSeconds) else {
            throw .validation(field: "ttlSeconds", rule: "from 1 to \(ttlMax)")
        }
    }

    /// Stores `credential` with a fresh token (or `given`, a credit token signed for it), and enforces its spend
    /// limit (with the limits above it, for a delegated one) from now on.
    func store(_ credential: Credential, token given: String? = nil) async throws(TollgateError) -> CredentialIssued {
        let token = given ?? Secrets.make(prefix: Secrets.agentTokenPrefix)
        var credential = credential
        if given == nil { credential.tokenPrefix = Secrets.shownPrefix(token) }
        try await storage("issuing a credential") { [credential] () async throws(StorageError) in
            try await services.store.insertCredential(credential, tokenHash: Secrets.hash(token))
        }
        directory.add(credential)
        if let cap = Self.credentialCap(credential) { capLedger.setCap(cap) }
        if let parentId = credential.parentId { capLedger.delegate(credential.id, from: parentId) }
        return CredentialIssued(credential: credential, token: token)
    }

    public func revokeCredential(_ credentialId: String, call: KeyedCall?) async throws(TollgateError)
        -> Answer<CredentialRevoked>
    {
        try await keyed(call) { () async throws(TollgateError) in
            guard directory.credential(credentialId) != nil else {
                throw .notFound("no credential \(credentialId) in this tenant")
            }
            let at = now
            return try await revoke(
                .revokeCredential(tenantId: tenantId, credentialId: credentialId, at: at), for: call,
                "revoking a credential"
            ) { $0.directory.revoke(credentialId, at: at) }
        }
    }

    /// Writes a revocation with its answer under `call`'s key, and on success `revoked` updates memory. One
    /// revoked already answers the same (stored for the key all the same), and a taken key replays.
    func revoke(
        _ change: TenantWrite, for call: KeyedCall?, _ what: String, revoked: (isolated TenantActor) -> Void
    ) async throws(TollgateError) -> Answer<CredentialRevoked> {
        let answer = Answer(CredentialRevoked())
        switch try await write(change, answering: answer, for: call, what) {
        case .replay(let replay): return Answer(replay: replay)
        case .written: revoked(self)
        case .unchanged:
            guard call != nil else { break }
            return try await write(.answerOnly, answering: answer, for: call, what).answer(answer)
        }
        return answer
    }

    /// Validates a plan document completely and stores it as the next version of its name.
    public func putPlan(_ json: JSONValue, call: KeyedCall?) async throws(TollgateError) -> Answer<PlanVersion> {
        try await keyed(call) { () async throws(TollgateError) in
            let document: PlanDocument
            do throws(PlanValidationError) { document = try PlanDocument(json: json) } catch {
                throw .validation(field: error.field, rule: error.rule)
            }
            let planId = directory.planId(named: document.name) ?? Identifiers.make(.plan)
            // The version is claimed before the await, so that two puts of one name cannot take the same number.
            let version = directory.nextVersion(of: planId)
            let plan: Plan
            do throws(PlanValidationError) {
                plan = try document.compile(id: planId, version: version, registry: services.registry)
            } catch {
                throw .validation(field: error.field, rule: error.rule)
            }
            directory.add(plan)
            let record = PlanRecord(
                tenantId: tenantId, planId: planId, name: document.name, version: version,
                document: JSONCodec.string(document.json), createdAt: now)
            let answer = Answer(PlanVersion(planId: plan.id, name: plan.name, version: plan.version))
            let written: Written
            do throws(TollgateError) {
                written = try await write(.insertPlan(record), answering: answer, for: call, "storing a plan")
            } catch {
                directory.remove(plan)
                throw error
            }
            if case .replay = written { directory.remove(plan) }
            return written.answer(answer)
        }
    }

    public func plan(id: String, version: Int?) throws(TollgateError) -> Plan {
        try directory.plan(id: id, version: version)
    }

    public func allPlans() -> [Plan] { directory.allPlans }

    /// A subscription whose billing periods turn over every `period` (calendar months by default) in its
    /// customer's time zone.
    public func createSubscription(
        customerId: String, planId: String, version: Int?, startsAt: Date?,
        period: BillingCalendar.Cadence = .month(anchorDay: 1), product: String? = nil, call: KeyedCall?
    ) async throws(TollgateError) -> Answer<SubscriptionView> {
        try await keyed(call) { () async throws(TollgateError) in
            let customer = try directory.customer(customerId)
            let calendar = try BillingCalendar(cadence: period, timeZone: customer.timeZone)
            let plan = try directory.plan(id: planId, version: version)
            let productId = try product.map { name throws(TollgateError) in try directory.product(name).id }
            let subscription = SubscriptionRecord(
                id: Identifiers.make(.subscription), tenantId: tenantId, customerId: customerId, planId: planId,
                version: plan.version, startsAt: startsAt ?? now, period: period, productId: productId)
            let answer = Answer(SubscriptionView(subscription: subscription, calendar: calendar))
            let written = try await write(
                .insertSubscription(subscription), answering: answer, for: call, "creating a subscription")
            if written == .written { directory.add(subscription) }
            return written.answer(answer)
        }
    }

    /// Swaps the plan of a subscription from `effectiveAt` (now when nil; never in the past, since calls
    /// before it were already rated). Without `planId` the subscription's current plan is kept and moved to
    /// `version` (its latest by default). "Now" is the next whole millisecond, so every call the actor has
    /// already rated falls before it and every later one after it.
    public func swapPlan(
        subscriptionId: String, planId: String?, version: Int?, effectiveAt: Date?, call: KeyedCall?
    ) async throws(TollgateError) -> Answer<PlanSwapView> {
        try await keyed(call) { () async throws(TollgateError) in
            guard let subscription = directory.subscription(id: subscriptionId) else {
                throw .notFound("no subscription \(subscriptionId) in this tenant")
            }
            let at = now
            let current = directory.planInForce(subscription, at: at)
            let plan = try directory.plan(id: planId ?? current.planId, version: version)
            guard let currentPlan = try? directory.plan(id: current.planId, version: current.version),
                currentPlan.currency == plan.currency
            else {
                throw .validation(field: "planId", rule: "a plan in the subscription's currency")
            }
            let nextMillis = Timestamp.date(millis: Timestamp.millis(at) + 1)
            let effective: Date
            if let effectiveAt {
                guard Timestamp.millis(effectiveAt) >= Timestamp.millis(nextMillis) else {
                    throw .validation(
                        field: "effectiveAt", rule: "in the future (omit it for now): earlier calls are already rated")
                }
                effective = effectiveAt
            } else {
                effective = nextMillis
            }
            let swap = PlanSwapRecord(
                id: Identifiers.make(.planSwap), tenantId: tenantId, subscriptionId: subscriptionId, planId: plan.id,
                version: plan.version, effectiveAt: effective)
            let answer = Answer(PlanSwapView(swap: swap))
            // In force in memory before the write: calls rated while the write is under way, at or after
            // `effective`, must already see it. If the write fails the swap is taken back; calls in that window
            // keep the version they were rated (and recorded) with.
            directory.add(swap)
            let written: Written
            do throws(TollgateError) {
                written = try await write(.insertPlanSwap(swap), answering: answer, for: call, "storing a plan swap")
            } catch {
                directory.remove(swap)
                throw error
            }
            if case .replay = written { directory.remove(swap) }
            return written.answer(answer)
        }
    }

    /// Sets (or replaces) the cap of one scope for one period. Spend already recorded in the period counts.
    public func setCap(target: ScopeRef, limit: Money, period: CapPeriod, warnAtPercent: Int?, call: KeyedCall?)
        async throws(TollgateError) -> Answer<CapView>
    {
        try await keyed(call) { () async throws(TollgateError) in
            switch target.scope {
            case .customer: _ = try directory.customer(target.id)
            case .team: _ = try directory.team(target.id)
            case .agent: _ = try directory.agent(target.id)
            case .session:
                // A session may be capped before its first call, so it need not exist yet; one that is open must
                // not belong to another tenant's agent, which it cannot (ids are per tenant).
                guard period == .session || period == .lifetime else {
                    throw .validation(field: "period", rule: "session or lifetime for a session-scope cap")
                }
            case .credential:
                throw .validation(field: "scope", rule: "one of customer, team, agent, session")
            }
            let existing = capLedger.caps(on: target).first { $0.period == period }
            let cap = Cap(
                id: existing?.id ?? Identifiers.make(.cap), tenantId: tenantId, target: target, limit: limit,
                period: period, warnAtPercent: warnAtPercent)
            let answer = Answer(CapView(cap: cap))
            let written = try await write(.upsertCap(cap), answering: answer, for: call, "setting a cap")
            if written == .written {
                capLedger.setCap(cap)
                marks.clear(capId: cap.id)
            }
            return written.answer(answer)
        }
    }

    public func usage(filter: UsageFilter, groupBy: [UsageGroup]) async throws(TollgateError) -> [UsageRow] {
        if let id = filter.customerId { _ = try directory.customer(id) }
        if let id = filter.teamId { _ = try directory.team(id) }
        if let id = filter.agentId { _ = try directory.agent(id) }
        return try await storage("summing usage") { () async throws(StorageError) in
            try await services.store.usage(tenantId: tenantId, filter: filter, groupBy: groupBy)
        }
    }
}
