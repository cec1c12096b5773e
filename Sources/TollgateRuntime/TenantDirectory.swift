import Foundation
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// The tenant's own records as its actor holds them: the hierarchy (customers → teams → agents →
/// credentials), plans by id and version, subscriptions and their plan swaps. Look-ups answer with the
/// domain's error (`NOT_FOUND`, `UNAUTHENTICATED`, …), so the actor never spells one out.
///
/// Operator writes change this only once storage has the change, so it never shows what a restart would lose;
/// a plan version and a swap are the exceptions, taken back if their write fails (see `TenantActor+Directory`).
struct TenantDirectory {
    /// Who a call is charged to, and the plan version that prices it.
    struct Pricing {
        var agent: Agent
        var team: Team
        var subscription: SubscriptionRecord
        var plan: Plan
        /// The product subscribed to, if the subscription is to one.
        var product: Product?

        /// Refuses a tool a closed catalog does not list.
        func check(tool: String) throws(TollgateError) {
            guard let product, !product.admits(tool) else { return }
            let names = product.tools.map(\.name).sorted().joined(separator: ", ")
            throw .validation(field: "tool", rule: "one of the tools of product \(product.name) (\(names))")
        }

        /// The scopes a call by this agent in `sessionId`, with `credentialId`, is charged and capped on.
        func path(sessionId: String, credentialId: String) -> ChargePath {
            ChargePath(
                customerId: team.customerId, teamId: team.id, agentId: agent.id, sessionId: sessionId,
                credentialId: credentialId)
        }
    }

    private(set) var tenant: TenantRecord
    private var customers: [String: Customer] = [:]
    private var teams: [String: Team] = [:]
    private var agents: [String: Agent] = [:]
    private var credentials: [String: Credential] = [:]
    private var operators: [String: OperatorCredential] = [:]
    /// Plans by id, then version.
    private var plans: [String: [Int: Plan]] = [:]
    private var planIdsByName: [String: String] = [:]
    /// Subscriptions by customer.
    private var subscriptions: [String: [SubscriptionRecord]] = [:]
    /// Plan swaps per subscription id, in the order they take effect (by millisecond, then id).
    private var planSwaps: [String: [PlanSwapRecord]] = [:]
    /// Each subscription's billing calendar (its cadence in its customer's time zone), made once: a calendar
    /// holds a Foundation `Calendar`, which costs more to make than to ask.
    private var calendars: [String: BillingCalendar] = [:]
    /// Products by id.
    private var products: [String: Product] = [:]
    /// Discounts by customer, the oldest first.
    private var discounts: [String: [Discount]] = [:]
    /// Each customer's cap windows as last worked out, and until when they hold (`capWindows`).
    private var windows: [String: (windows: CapWindows, until: Date)] = [:]

    /// Builds the directory from a storage snapshot, compiling every stored plan version.
    init(snapshot: TenantSnapshot, registry: StrategyRegistry) throws {
        tenant = snapshot.tenant
        for customer in snapshot.customers { customers[customer.id] = customer }
        for team in snapshot.teams { teams[team.id] = team }
        for agent in snapshot.agents { agents[agent.id] = agent }
        for credential in snapshot.credentials { credentials[credential.id] = credential }
        for credential in snapshot.operatorCredentials { operators[credential.id] = credential }
        for record in snapshot.plans {
            let document = try PlanDocument(json: JSONCodec.parse(record.document))
            add(try document.compile(id: record.planId, version: record.version, registry: registry))
        }
        for subscription in snapshot.subscriptions { add(subscription) }
        for swap in snapshot.planSwaps { add(swap) }
        for discount in snapshot.discounts { add(discount) }
        for product in snapshot.products { add(product) }
    }

    // MARK: look-ups

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

    func credential(_ id: String) -> Credential? { credentials[id] }

    /// The agents of the tenant, or of one team, oldest first.
    func agents(ofTeam teamId: String?) -> [Agent] {
        agents.values.filter { teamId == nil || $0.teamId == teamId }.sorted { $0.id < $1.id }
    }

    /// The agent credentials of the tenant, or of one agent, oldest first.
    func credentials(ofAgent agentId: String?) -> [Credential] {
        credentials.values.filter { agentId == nil || $0.agentId == agentId }.sorted { $0.id < $1.id }
    }

    func operatorCredential(_ id: String) -> OperatorCredential? { operators[id] }

    /// The operator credentials of the tenant, oldest first.
    var operatorCredentials: [OperatorCredential] { operators.values.sorted { $0.id < $1.id } }

    /// The operator credential if it is still usable at `now`: checked on every operator request, as an agent's
    /// is, so a revocation takes effect at the next request of a connection already open.
    func usableOperator(_ id: String, at now: Date) throws(TollgateError) -> OperatorCredential {
        guard let credential = operators[id], credential.isUsable(at: now) else {
            throw .unauthenticated("credential expired or revoked")
        }
        return credential
    }

    /// The credential if it is still usable at `now`. Checked on every agent request, so a revocation or an
    /// expiry takes effect at the very next request of an open connection.
    func usableCredential(_ id: String, at now: Date) throws(TollgateError) -> Credential {
        guard let credential = credentials[id], credential.isUsable(at: now) else {
            throw .unauthenticated("credential expired or revoked")
        }
        // A delegated credential works only while every credential above it does.
        var parentId = credential.parentId
        while let id = parentId {
            guard let parent = credentials[id], parent.isUsable(at: now) else {
                throw .unauthenticated("credential expired or revoked")
            }
            parentId = parent.parentId
        }
        return credential
    }

    /// The credentials with a spend limit, which is enforced as a cap (`credentialCap`).
    var limitedCredentials: [Credential] { credentials.values.filter { $0.spendLimit != nil } }

    /// The credentials delegated from `id`, directly.
    func children(of id: String) -> [Credential] { credentials.values.filter { $0.parentId == id } }

    /// A usable credential that may meter (`meter:write`): what every agent method of metering and sessions
    /// needs.
    func meterCredential(_ id: String, at now: Date) throws(TollgateError) -> Credential {
        let credential = try usableCredential(id, at: now)
        guard credential.scopes.contains(AgentScope.meterWrite) else {
            throw .forbidden("credential lacks scope \(AgentScope.meterWrite)")
        }
        return credential
    }

    func plan(id: String, version: Int?) throws(TollgateError) -> Plan {
        guard let versions = plans[id] else { throw .notFound("no plan \(id) in this tenant") }
        if let version {
            guard let plan = versions[version] else { throw .notFound("plan \(id) has no version \(version)") }
            return plan
        }
        return versions[versions.keys.max()!]!
    }

    var allPlans: [Plan] { plans.values.flatMap(\.values).sorted { ($0.name, $0.version) < ($1.name, $1.version) } }

    /// The id a plan name has, or nil for a name never put.
    func planId(named name: String) -> String? { planIdsByName[name] }

    /// The version the next put of `planId` takes.
    func nextVersion(of planId: String) -> Int { (plans[planId]?.keys.max() ?? 0) + 1 }

    func subscription(id: String) -> SubscriptionRecord? {
        subscriptions.values.lazy.flatMap { $0 }.first { $0.id == id }
    }

    /// Every customer of the tenant, by id.
    var allCustomers: [Customer] { customers.values.sorted { $0.id < $1.id } }

    /// Every subscription's calendar, by subscription id.
    var subscriptionCalendars: [String: BillingCalendar] { calendars }

    /// When `subscription`'s billing periods turn over.
    func calendar(for subscription: SubscriptionRecord) -> BillingCalendar {
        calendars[subscription.id] ?? .monthlyUTC
    }

    /// The windows `customerId`'s month and day caps count in at `date`: the billing period of its subscription in
    /// force then and its local day, in its time zone; without a subscription, calendar months from the 1st.
    /// Asked on every call's path, so they are kept until the first of their ends or the start of the customer's
    /// next subscription, whichever comes first.
    mutating func capWindows(_ customerId: String, at date: Date) -> CapWindows {
        if let kept = windows[customerId], kept.windows.contain(date), date < kept.until { return kept.windows }
        let billing =
            subscription(for: customerId, at: date).map { self.calendar(for: $0) }
            ?? BillingCalendar(stored: .month(anchorDay: 1), timeZone: customers[customerId]?.timeZone ?? "UTC")
        let fresh = CapWindows(date, calendar: billing)
        let nextStart = subscriptions[customerId]?.map(\.startsAt).filter { $0 > date }.min()
        let until = min(fresh.month.end, fresh.day.end, nextStart ?? .distantFuture)
        // Only the latest windows are kept: a late commit asking about an earlier moment does not push them out.
        if windows[customerId].map({ until >= $0.until }) ?? true { windows[customerId] = (fresh, until) }
        return fresh
    }

    /// The customer a scope belongs to (nil for a session, which the directory does not hold, or an unknown id).
    func customerId(of target: ScopeRef) -> String? {
        switch target.scope {
        case .customer: return target.id
        case .team: return teams[target.id]?.customerId
        case .agent: return agents[target.id].flatMap { teams[$0.teamId]?.customerId }
        case .credential:
            return credentials[target.id].flatMap { agents[$0.agentId] }.flatMap { teams[$0.teamId]?.customerId }
        case .session: return nil
        }
    }

    /// The subscriptions in force for `customerId` at `date`: per product (no product counting as one), the latest
    /// that has started; the earliest started first.
    func subscriptionsInForce(for customerId: String, at date: Date) -> [SubscriptionRecord] {
        var latest: [String: SubscriptionRecord] = [:]
        for subscription in subscriptions[customerId] ?? [] where subscription.startsAt <= date {
            let key = subscription.productId ?? ""
            if let kept = latest[key], (kept.startsAt, kept.id) > (subscription.startsAt, subscription.id) { continue }
            latest[key] = subscription
        }
        return latest.values.sorted { ($0.startsAt, $0.id) < ($1.startsAt, $1.id) }
    }

    /// The customer's first subscription in force at `date` (the earliest started): its only one, unless it
    /// subscribes to several products. Its calendar is the customer's — the windows its caps count in — and its
    /// plan's currency the one its credit and discounts are in by default.
    func subscription(for customerId: String, at date: Date) -> SubscriptionRecord? {
        subscriptionsInForce(for: customerId, at: date).first
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

    /// Who a credential's call is charged to and the plan version that prices it at `date`: the subscription to
    /// `product` (an id or a name), or, without one, the customer's only subscription in force.
    func pricing(for credential: Credential, product: String? = nil, at date: Date) throws(TollgateError) -> Pricing {
        let agent = try agent(credential.agentId)
        let team = try team(agent.teamId)
        let subscriptions = subscriptionsInForce(for: team.customerId, at: date)
        let subscription: SubscriptionRecord
        if let product {
            let named = try self.product(product)
            guard let found = subscriptions.first(where: { $0.productId == named.id }) else {
                throw .conflict("customer \(team.customerId) has no active subscription to product \(named.name)")
            }
            subscription = found
        } else {
            guard let only = subscriptions.first else {
                throw .conflict("customer \(team.customerId) has no active subscription to a plan")
            }
            guard subscriptions.count == 1 else {
                let names = subscriptions.map { self.product(id: $0.productId)?.name ?? "(none)" }.joined(
                    separator: ", ")
                throw .validation(
                    field: "product",
                    rule: "named: customer \(team.customerId) subscribes to several products (\(names))")
            }
            subscription = only
        }
        let inForce = planInForce(subscription, at: date)
        guard let plan = plans[inForce.planId]?[inForce.version] else {
            throw .conflict("subscription \(subscription.id) names a plan this tenant does not have")
        }
        return Pricing(
            agent: agent, team: team, subscription: subscription, plan: plan,
            product: self.product(id: subscription.productId))
    }

    /// The currency of the plan `customerId` is subscribed to at `date`, if any.
    func currency(ofCustomer customerId: String, at date: Date) -> String? {
        guard let subscription = subscription(for: customerId, at: date) else { return nil }
        let inForce = planInForce(subscription, at: date)
        return plans[inForce.planId]?[inForce.version]?.currency
    }

    // MARK: changes

    mutating func add(_ customer: Customer) {
        customers[customer.id] = customer
        windows[customer.id] = nil
    }
    mutating func add(_ team: Team) { teams[team.id] = team }
    mutating func add(_ agent: Agent) { agents[agent.id] = agent }
    mutating func add(_ credential: Credential) { credentials[credential.id] = credential }

    mutating func add(_ credential: OperatorCredential) { operators[credential.id] = credential }

    /// Ends an operator credential at `date`, unless it ends sooner already.
    mutating func revokeOperator(_ id: String, at date: Date) {
        if operators[id]?.revokedAt.map({ $0 > date }) ?? true { operators[id]?.revokedAt = date }
    }

    /// Notes when a credential, of either kind, last authenticated.
    mutating func noteUse(_ id: String, at date: Date) {
        credentials[id]?.lastUsedAt = date
        operators[id]?.lastUsedAt = date
    }

    /// Revokes a credential and every credential delegated from it, at any depth (as storage does).
    mutating func revoke(_ credentialId: String, at date: Date) {
        var line = [credentialId]
        while let id = line.popLast() {
            if credentials[id]?.revokedAt == nil { credentials[id]?.revokedAt = date }
            line += children(of: id).map(\.id)
        }
    }

    mutating func add(_ plan: Plan) {
        plans[plan.id, default: [:]][plan.version] = plan
        planIdsByName[plan.name] = plan.id
    }

    /// Takes back a plan version whose write failed (and its name, if it was the plan's only version).
    mutating func remove(_ plan: Plan) {
        plans[plan.id]?[plan.version] = nil
        if plans[plan.id]?.isEmpty ?? false {
            plans[plan.id] = nil
            planIdsByName[plan.name] = nil
        }
    }

    /// A product by its id or its name.
    func product(_ idOrName: String) throws(TollgateError) -> Product {
        if let product = products[idOrName] ?? products.values.first(where: { $0.name == idOrName }) {
            return product
        }
        throw .notFound("no product \(idOrName) in this tenant")
    }

    func product(id: String?) -> Product? { id.flatMap { products[$0] } }

    var allProducts: [Product] { products.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }

    /// Adds a product, or replaces it with its changed catalog.
    mutating func add(_ product: Product) { products[product.id] = product }

    /// A customer's discounts, the oldest first.
    func discounts(of customerId: String) -> [Discount] { discounts[customerId] ?? [] }

    func discount(id: String) -> Discount? { discounts.values.lazy.flatMap { $0 }.first { $0.id == id } }

    mutating func add(_ discount: Discount) {
        discounts[discount.customerId, default: []].append(discount)
        discounts[discount.customerId]!.sort(by: Discount.appliesBefore)
    }

    mutating func end(_ discount: Discount, at endsAt: Date) {
        guard let index = discounts[discount.customerId]?.firstIndex(where: { $0.id == discount.id }) else { return }
        discounts[discount.customerId]![index].endsAt = endsAt
    }

    /// A customer's name, tax rate and credit blocking changed (its time zone never changes).
    mutating func update(_ customer: Customer) { customers[customer.id] = customer }

    mutating func add(_ subscription: SubscriptionRecord) {
        subscriptions[subscription.customerId, default: []].append(subscription)
        windows[subscription.customerId] = nil
        let zone = customers[subscription.customerId]?.timeZone ?? "UTC"
        calendars[subscription.id] = BillingCalendar(stored: subscription.period, timeZone: zone)
    }

    /// Adds a swap, keeping each subscription's swaps in the order they take effect (by millisecond, then id).
    mutating func add(_ swap: PlanSwapRecord) {
        planSwaps[swap.subscriptionId, default: []].append(swap)
        planSwaps[swap.subscriptionId]!.sort {
            (Timestamp.millis($0.effectiveAt), $0.id) < (Timestamp.millis($1.effectiveAt), $1.id)
        }
    }

    /// Takes back a swap whose write failed.
    mutating func remove(_ swap: PlanSwapRecord) {
        planSwaps[swap.subscriptionId]?.removeAll { $0.id == swap.id }
    }
}
