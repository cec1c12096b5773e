import Foundation
import TollgateCore
import TollgatePricing
import TollgateStorage

/// The operator methods of a tenant. Each writes to storage first and changes the cache only once the write
/// is durable, so the cache never shows something a restart would lose.
extension TenantActor {
    public func createCustomer(name: String, externalId: String?) async throws(TollgateError) -> Customer {
        let customer = Customer(id: Identifiers.make(.customer), tenantId: tenantId, name: name, externalId: externalId)
        try await write { () async throws(StorageError) in try await services.store.insertCustomer(customer) }
        customers[customer.id] = customer
        return customer
    }

    public func createTeam(customerId: String, name: String) async throws(TollgateError) -> Team {
        _ = try customer(customerId)
        let team = Team(id: Identifiers.make(.team), tenantId: tenantId, customerId: customerId, name: name)
        try await write { () async throws(StorageError) in try await services.store.insertTeam(team) }
        teams[team.id] = team
        return team
    }

    /// Creates an agent and its client credentials; the secret is returned once and stored only as a hash.
    public func createAgent(teamId: String, name: String, agentType: String?) async throws(TollgateError)
        -> (agent: Agent, clientSecret: String)
    {
        _ = try team(teamId)
        let agent = Agent(
            id: Identifiers.make(.agent), tenantId: tenantId, teamId: teamId, name: name,
            agentType: agentType, clientId: Identifiers.make(.client))
        let secret = Secrets.make(prefix: Secrets.clientSecretPrefix)
        try await write { () async throws(StorageError) in
            try await services.store.insertAgent(agent, clientSecretHash: Secrets.hash(secret))
        }
        agents[agent.id] = agent
        return (agent, secret)
    }

    /// Issues an `AGT-` token for an agent. The token is returned once and stored only as a hash.
    public func issueCredential(agentId: String, scopes: [String], ttlSeconds: Int64, spendLimit: Money?)
        async throws(TollgateError) -> (credential: Credential, token: String)
    {
        _ = try agent(agentId)
        for (index, scope) in scopes.enumerated() where !AgentScope.all.contains(scope) {
            throw .validation(
                field: "scopes[\(index)]", rule: "one of \(AgentScope.all.sorted().joined(separator: ", "))")
        }
        guard !scopes.isEmpty else { throw .validation(field: "scopes", rule: "at least one scope") }
        guard (1...limits.credentialTTLSecondsMax).contains(ttlSeconds) else {
            throw .validation(field: "ttlSeconds", rule: "from 1 to \(limits.credentialTTLSecondsMax)")
        }
        let token = Secrets.make(prefix: Secrets.agentTokenPrefix)
        let credential = Credential(
            id: Identifiers.make(.credential), tenantId: tenantId, agentId: agentId,
            scopes: Array(Set(scopes)).sorted(),
            expiresAt: services.clock.now().addingTimeInterval(TimeInterval(ttlSeconds)),
            revokedAt: nil, spendLimit: spendLimit)
        try await write { () async throws(StorageError) in
            try await services.store.insertCredential(credential, tokenHash: Secrets.hash(token))
        }
        credentials[credential.id] = credential
        if let spendLimit { capLedger.setCap(Self.credentialCap(credential, spendLimit)) }
        return (credential, token)
    }

    public func revokeCredential(_ credentialId: String) async throws(TollgateError) {
        guard let credential = credentials[credentialId] else {
            throw .notFound("no credential \(credentialId) in this tenant")
        }
        if credential.revokedAt != nil { return }
        let now = services.clock.now()
        try await write { () async throws(StorageError) in
            try await services.store.revokeCredential(tenantId: tenantId, credentialId: credentialId, at: now)
        }
        credentials[credentialId]?.revokedAt = now
    }

    /// Validates a plan document completely and stores it as the next version of its name.
    public func putPlan(_ json: JSONValue) async throws(TollgateError) -> Plan {
        let document: PlanDocument
        do { document = try PlanDocument(json: json) } catch { throw .validation(field: error.field, rule: error.rule) }
        let planId = planIdsByName[document.name] ?? Identifiers.make(.plan)
        // The version is claimed before the await so that two puts of one name cannot take the same number.
        let version = (plans[planId]?.keys.max() ?? 0) + 1
        let plan: Plan
        do { plan = try document.compile(id: planId, version: version, registry: services.registry) } catch {
            throw .validation(field: error.field, rule: error.rule)
        }
        planIdsByName[document.name] = planId
        plans[planId, default: [:]][version] = plan
        let record = PlanRecord(
            tenantId: tenantId, planId: planId, name: document.name, version: version,
            document: JSONCodec.string(document.json), createdAt: services.clock.now())
        do {
            try await write { () async throws(StorageError) in try await services.store.insertPlan(record) }
        } catch {
            plans[planId]?[version] = nil
            if plans[planId]?.isEmpty ?? false {
                plans[planId] = nil
                planIdsByName[document.name] = nil
            }
            throw error
        }
        return plan
    }

    public func plan(id: String, version: Int?) throws(TollgateError) -> Plan {
        guard let versions = plans[id] else { throw .notFound("no plan \(id) in this tenant") }
        if let version {
            guard let plan = versions[version] else { throw .notFound("plan \(id) has no version \(version)") }
            return plan
        }
        return versions[versions.keys.max()!]!
    }

    public func allPlans() -> [Plan] {
        plans.values.flatMap(\.values).sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    }

    public func createSubscription(customerId: String, planId: String, version: Int?, startsAt: Date?)
        async throws(TollgateError) -> SubscriptionRecord
    {
        _ = try customer(customerId)
        let plan = try plan(id: planId, version: version)
        let subscription = SubscriptionRecord(
            id: Identifiers.make(.subscription), tenantId: tenantId, customerId: customerId,
            planId: planId, version: plan.version, startsAt: startsAt ?? services.clock.now())
        try await write { () async throws(StorageError) in try await services.store.insertSubscription(subscription) }
        subscriptions[customerId, default: []].append(subscription)
        return subscription
    }

    /// Swaps the plan of a subscription from `effectiveAt` (now when nil; never in the past, since calls
    /// before it were already rated). Without `planId` the subscription's current plan is kept and moved to
    /// `version` (its latest by default). "Now" is the next whole millisecond, so every call the actor has
    /// already rated falls before it and every later one after it.
    public func swapPlan(subscriptionId: String, planId: String?, version: Int?, effectiveAt: Date?)
        async throws(TollgateError) -> PlanSwapRecord
    {
        guard let subscription = subscriptions.values.lazy.flatMap({ $0 }).first(where: { $0.id == subscriptionId })
        else {
            throw .notFound("no subscription \(subscriptionId) in this tenant")
        }
        let now = services.clock.now()
        let current = planInForce(subscription, at: now)
        let plan = try plan(id: planId ?? current.planId, version: version)
        guard let currentPlan = plans[current.planId]?[current.version], currentPlan.currency == plan.currency else {
            throw .validation(field: "planId", rule: "a plan in the subscription's currency")
        }
        let nextMillis = Timestamp.date(millis: Timestamp.millis(now) + 1)
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
            id: Identifiers.make(.planSwap), tenantId: tenantId, subscriptionId: subscriptionId,
            planId: plan.id, version: plan.version, effectiveAt: effective)
        // In force in memory before the write: calls rated while the write is under way, at or after
        // `effective`, must already see it. If the write fails the swap is taken back; calls in that window
        // keep the version they were rated (and recorded) with.
        Self.add(swap, to: &planSwaps)
        do {
            try await write { () async throws(StorageError) in try await services.store.insertPlanSwap(swap) }
        } catch {
            planSwaps[subscriptionId]?.removeAll { $0.id == swap.id }
            throw error
        }
        return swap
    }

    /// Sets (or replaces) the cap of one scope for one period. Spend already recorded in the period counts.
    public func setCap(target: ScopeRef, limit: Money, period: CapPeriod, warnAtPercent: Int?)
        async throws(TollgateError) -> Cap
    {
        switch target.scope {
        case .customer: _ = try customer(target.id)
        case .team: _ = try team(target.id)
        case .agent: _ = try agent(target.id)
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
        try await write { () async throws(StorageError) in try await services.store.upsertCap(cap) }
        capLedger.setCap(cap)
        clearMarks(of: cap.id)
        return cap
    }

    public func usage(filter: UsageFilter, groupBy: [UsageGroup]) async throws(TollgateError) -> [UsageRow] {
        if let id = filter.customerId { _ = try customer(id) }
        if let id = filter.teamId { _ = try team(id) }
        if let id = filter.agentId { _ = try agent(id) }
        do { return try await services.store.usage(tenantId: tenantId, filter: filter, groupBy: groupBy) } catch {
            services.logger.error("usage query failed", metadata: ["tenant": "\(tenantId)", "error": "\(error)"])
            throw .unavailable("storage is unavailable")
        }
    }
}
