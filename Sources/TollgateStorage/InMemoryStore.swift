import Foundation
import TollgateCore

/// A store that keeps everything in memory: for unit tests only. It keeps every rule of the protocol
/// (tenant scoping, uniqueness, all-or-nothing commits) so that the conformance suite holds for it too.
public actor InMemoryStore: TollgateStore {
    private var settings: [String: String] = [:]
    private var tenantsById: [String: TenantRecord] = [:]
    private var customers: [String: Customer] = [:]
    private var teams: [String: Team] = [:]
    private var agents: [String: (agent: Agent, secrets: ClientSecrets)] = [:]
    private var credentials: [String: (credential: Credential, tokenHash: String)] = [:]
    private var operatorCredentials: [String: (credential: OperatorCredential, tokenHash: String)] = [:]
    private var plans: [PlanRecord] = []
    private var subscriptions: [String: SubscriptionRecord] = [:]
    private var planSwaps: [PlanSwapRecord] = []
    private var sessionRows: [String: SessionRecord] = [:]
    private var alertRows: [AlertRecord] = []
    private var reservationRows: [String: ReservationRecord] = [:]
    private var caps: [String: Cap] = [:]
    private var charges: [ChargeRecord] = []
    private var invoiceRows: [String: InvoiceRecord] = [:]
    private var invoiceReceipts: [String: [InvoiceLineReceipt]] = [:]
    private var creditGrants: [String: CreditGrant] = [:]
    private var discounts: [String: Discount] = [:]
    private var products: [String: Product] = [:]
    private var outboxRows: [String: OutboxRecord] = [:]
    private var stripeCustomers: [String: String] = [:]
    private var idempotency: [String: IdempotencyRecord] = [:]
    private var closed = false

    public init() {}

    public func close() async throws { closed = true }

    private func open() throws(StorageError) {
        if closed { throw .backend("store is closed") }
    }

    public func setting(_ key: String) async throws(StorageError) -> String? {
        try open()
        return settings[key]
    }
    public func putSetting(_ key: String, _ value: String) async throws(StorageError) {
        try open()
        settings[key] = value
    }

    public func insertTenant(_ tenant: TenantRecord, firstOperator: OperatorCredential, tokenHash: String)
        async throws(StorageError)
    {
        try open()
        guard tenantsById[tenant.id] == nil else { throw .duplicate("tenant") }
        try checkNewOperator(firstOperator, tokenHash: tokenHash)
        tenantsById[tenant.id] = tenant
        operatorCredentials[firstOperator.id] = (firstOperator, tokenHash)
    }

    private func checkNewOperator(_ credential: OperatorCredential, tokenHash: String) throws(StorageError) {
        guard operatorCredentials[credential.id] == nil,
            !operatorCredentials.values.contains(where: { $0.tokenHash == tokenHash })
        else { throw .duplicate("operator credential") }
    }

    public func tenant(id: String) async throws(StorageError) -> TenantRecord? {
        try open()
        return tenantsById[id]
    }

    public func operatorCredential(tokenHash: String) async throws(StorageError) -> OperatorCredential? {
        try open()
        return operatorCredentials.values.first { $0.tokenHash == tokenHash }?.credential
    }

    public func tenants() async throws(StorageError) -> [TenantRecord] {
        try open()
        return tenantsById.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func loadTenant(_ tenantId: String) async throws(StorageError) -> TenantSnapshot? {
        try open()
        guard let tenant = tenantsById[tenantId] else { return nil }
        var snapshot = TenantSnapshot(tenant: tenant)
        snapshot.customers = customers.values.filter { $0.tenantId == tenantId }
        snapshot.teams = teams.values.filter { $0.tenantId == tenantId }
        snapshot.agents = agents.values.map(\.agent).filter { $0.tenantId == tenantId }
        snapshot.credentials = credentials.values.map(\.credential).filter { $0.tenantId == tenantId }
        snapshot.operatorCredentials = operatorCredentials.values.map(\.credential).filter { $0.tenantId == tenantId }
        snapshot.caps = caps.values.filter { $0.tenantId == tenantId }
        snapshot.plans = plans.filter { $0.tenantId == tenantId }
        snapshot.subscriptions = subscriptions.values.filter { $0.tenantId == tenantId }
        snapshot.planSwaps = planSwaps.filter { $0.tenantId == tenantId }
        snapshot.creditGrants = creditGrants.values.filter { $0.tenantId == tenantId }
        snapshot.discounts = discounts.values.filter { $0.tenantId == tenantId }
        snapshot.products = products.values.filter { $0.tenantId == tenantId }
        return snapshot
    }

    public func insertAgent(_ agent: Agent, clientSecretHash: String) async throws(StorageError) {
        try open()
        guard agents[agent.id] == nil, !agents.values.contains(where: { $0.agent.clientId == agent.clientId }) else {
            throw .duplicate("agent")
        }
        agents[agent.id] = (agent, ClientSecrets(hash: clientSecretHash))
    }

    public func agent(clientId: String) async throws(StorageError) -> (agent: Agent, secrets: ClientSecrets)? {
        try open()
        return agents.values.first { $0.agent.clientId == clientId }.map { ($0.agent, $0.secrets) }
    }

    public func insertCredential(_ credential: Credential, tokenHash: String) async throws(StorageError) {
        try open()
        guard credentials[credential.id] == nil, !credentials.values.contains(where: { $0.tokenHash == tokenHash })
        else { throw .duplicate("credential") }
        credentials[credential.id] = (credential, tokenHash)
    }

    public func credential(tokenHash: String) async throws(StorageError) -> Credential? {
        try open()
        return credentials.values.first { $0.tokenHash == tokenHash }?.credential
    }

    public func write(_ change: TenantWrite, answer: IdempotencyRecord?) async throws(StorageError) -> WriteOutcome {
        try open()
        if let answer, let stored = idempotency[answer.tenantId + "\u{0}" + answer.key] { return .keyTaken(stored) }
        guard try apply(change) else { return .unchanged }
        if let answer { idempotency[answer.tenantId + "\u{0}" + answer.key] = answer }
        return .written
    }

    /// Makes `change`; false if it had nothing to change. Checks everything before changing anything, so a
    /// refused change leaves no trace.
    private func apply(_ change: TenantWrite) throws(StorageError) -> Bool {
        switch change {
        case .insertCustomer(let customer):
            guard customers[customer.id] == nil else { throw .duplicate("customer") }
            customers[customer.id] = customer
        case .updateCustomer(let customer):
            guard customers[customer.id]?.tenantId == customer.tenantId else { return false }
            customers[customer.id]?.name = customer.name
            customers[customer.id]?.taxRate = customer.taxRate
            customers[customer.id]?.blockAtZeroCredit = customer.blockAtZeroCredit
        case .insertCreditGrant(let grant):
            guard customers[grant.customerId]?.tenantId == grant.tenantId else {
                throw .backend("credit grant for a customer the tenant does not have")
            }
            guard creditGrants[grant.id] == nil else { throw .duplicate("credit grant") }
            creditGrants[grant.id] = grant
        case .insertProduct(let product):
            guard products[product.id] == nil,
                !products.values.contains(where: { $0.tenantId == product.tenantId && $0.name == product.name })
            else { throw .duplicate("product") }
            products[product.id] = product
        case .updateProduct(let product):
            guard products[product.id]?.tenantId == product.tenantId else { return false }
            products[product.id]?.tools = product.tools
            products[product.id]?.closed = product.closed
        case .insertDiscount(let discount):
            guard customers[discount.customerId]?.tenantId == discount.tenantId else {
                throw .backend("discount for a customer the tenant does not have")
            }
            guard discounts[discount.id] == nil else { throw .duplicate("discount") }
            discounts[discount.id] = discount
        case .endDiscount(let tenantId, let id, let endsAt):
            guard let discount = discounts[id], discount.tenantId == tenantId,
                discount.endsAt.map({ $0 > endsAt }) ?? true
            else { return false }
            discounts[id]?.endsAt = endsAt
        case .insertTeam(let team):
            guard teams[team.id] == nil else { throw .duplicate("team") }
            teams[team.id] = team
        case .insertPlan(let plan):
            guard
                !plans.contains(where: {
                    $0.tenantId == plan.tenantId && $0.name == plan.name && $0.version == plan.version
                })
            else { throw .duplicate("plan version") }
            plans.append(plan)
        case .insertSubscription(let subscription):
            guard subscriptions[subscription.id] == nil else { throw .duplicate("subscription") }
            subscriptions[subscription.id] = subscription
        case .insertPlanSwap(let swap):
            guard subscriptions[swap.subscriptionId]?.tenantId == swap.tenantId else {
                throw .backend("no such subscription")
            }
            guard !planSwaps.contains(where: { $0.id == swap.id }) else { throw .duplicate("plan swap") }
            planSwaps.append(swap)
        case .upsertCap(let cap):
            if let existing = caps.values.first(where: {
                $0.tenantId == cap.tenantId && $0.target == cap.target && $0.period == cap.period
            }) {
                caps[existing.id] = nil
            }
            caps[cap.id] = cap
        case .revokeCredential(let tenantId, let credentialId, let at):
            // The credential and every one delegated from it, at any depth.
            var line = [credentialId]
            var ending: [String] = []
            while let id = line.popLast() {
                guard let entry = credentials[id], entry.credential.tenantId == tenantId else { continue }
                if entry.credential.revokedAt == nil { ending.append(id) }
                line += credentials.values.filter { $0.credential.parentId == id }.map(\.credential.id)
            }
            guard !ending.isEmpty else { return false }
            for id in ending { credentials[id]!.credential.revokedAt = at }
        case .insertOperatorCredential(let credential, let tokenHash):
            guard tenantsById[credential.tenantId] != nil else { throw .backend("no tenant \(credential.tenantId)") }
            try checkNewOperator(credential, tokenHash: tokenHash)
            operatorCredentials[credential.id] = (credential, tokenHash)
        case .revokeOperatorCredential(let tenantId, let credentialId, let at):
            guard let entry = operatorCredentials[credentialId], entry.credential.tenantId == tenantId,
                entry.credential.revokedAt.map({ $0 > at }) ?? true
            else { return false }
            operatorCredentials[credentialId]!.credential.revokedAt = at
        case .noteCredentialUse(let tenantId, let credentialId, let at):
            if let entry = credentials[credentialId], entry.credential.tenantId == tenantId {
                credentials[credentialId]!.credential.lastUsedAt = at
            } else if let entry = operatorCredentials[credentialId], entry.credential.tenantId == tenantId {
                operatorCredentials[credentialId]!.credential.lastUsedAt = at
            } else {
                return false
            }
        case .rotateClientSecret(let tenantId, let agentId, let secretHash, let previousUntil):
            guard let entry = agents[agentId], entry.agent.tenantId == tenantId else { return false }
            agents[agentId]!.secrets = ClientSecrets(
                hash: secretHash, previousHash: previousUntil == nil ? nil : entry.secrets.hash,
                previousUntil: previousUntil)
        case .setSessionTimeouts(let tenantId, let idleAfterMs, let sessionTimeoutMs):
            settings[SessionTimeoutsSetting.key(tenantId)] = SessionTimeoutsSetting.text(
                idleAfterMs: idleAfterMs, sessionTimeoutMs: sessionTimeoutMs)
        case .openSession(let session):
            let key = session.tenantId + "\u{0}" + session.id
            guard sessionRows[key] == nil else { return false }
            sessionRows[key] = session
        case .closeSession(let tenantId, let id, let closedAt, let outcome, let totals):
            let key = tenantId + "\u{0}" + id
            guard var live = sessionRows[key], live.closedAt == nil else { return false }
            try withCharges(&live)
            sessionRows[key]!.lastCallAt = live.lastCallAt
            sessionRows[key]!.closedAt = closedAt
            sessionRows[key]!.outcome = outcome
            sessionRows[key]!.totals = totals
        case .finishReservation(let tenantId, let id, let state, let receiptId):
            let key = tenantId + "\u{0}" + id
            guard reservationRows[key]?.state == .held else { return false }
            reservationRows[key]!.state = state
            reservationRows[key]!.receiptId = receiptId
        case .answerOnly:
            break
        }
        return true
    }

    public func commit(_ entries: [LedgerEntry]) async throws(StorageError) -> [CommitOutcome] {
        try open()
        return entries.map { entry in
            let key = entry.idempotency.tenantId + "\u{0}" + entry.idempotency.key
            if let stored = idempotency[key] {
                entry.notRecorded()
                return .duplicate(stored)
            }
            if entry.isStale { return .stale }
            charges.append(entry.charge)
            idempotency[key] = entry.idempotency
            if let settles = entry.settles {
                let reservation = entry.charge.tenantId + "\u{0}" + settles
                if reservationRows[reservation]?.state == .held {
                    reservationRows[reservation]!.state = .committed
                    reservationRows[reservation]!.receiptId = entry.charge.receiptId
                }
            }
            return .recorded
        }
    }

    public func idempotencyRecord(tenantId: String, key: String) async throws(StorageError) -> IdempotencyRecord? {
        try open()
        return idempotency[tenantId + "\u{0}" + key]
    }

    public func session(tenantId: String, id: String) async throws(StorageError) -> SessionRecord? {
        try open()
        guard var session = sessionRows[tenantId + "\u{0}" + id] else { return nil }
        if session.closedAt == nil { try withCharges(&session) }
        return session
    }

    public func sessions(tenantId: String, _ selection: SessionSelection, limit: Int) async throws(StorageError)
        -> [SessionRecord]
    {
        try open()
        var found = sessionRows.values.filter {
            $0.tenantId == tenantId && ($0.closedAt == nil ? selection.includesOpen : selection.includesClosed)
        }
        .sorted { ($0.openedAt, $0.id) > ($1.openedAt, $1.id) }.prefix(limit).map { $0 }
        for index in found.indices where found[index].closedAt == nil { try withCharges(&found[index]) }
        return found
    }

    private func withCharges(_ session: inout SessionRecord) throws(StorageError) {
        var totals = SessionTotals()
        // From the opening on, as the SQL stores sum them (their index runs by time).
        let openedAt = Timestamp.millis(session.openedAt)
        for charge in charges
        where charge.tenantId == session.tenantId && charge.sessionId == session.id
            && Timestamp.millis(charge.at) >= openedAt
        {
            do { try totals.add(charge) } catch { throw .backend("session total out of range") }
            session.lastCallAt = max(session.lastCallAt ?? charge.at, charge.at)
        }
        session.totals = totals
    }

    public func insertReservation(_ reservation: ReservationRecord, idempotency record: IdempotencyRecord)
        async throws(StorageError) -> IdempotencyRecord?
    {
        try open()
        let key = record.tenantId + "\u{0}" + record.key
        if let stored = idempotency[key] { return stored }
        idempotency[key] = record
        reservationRows[reservation.tenantId + "\u{0}" + reservation.id] = reservation
        return nil
    }

    public func reservation(tenantId: String, id: String) async throws(StorageError) -> ReservationRecord? {
        try open()
        return reservationRows[tenantId + "\u{0}" + id]
    }

    public func heldReservations(tenantId: String) async throws(StorageError) -> [ReservationRecord] {
        try open()
        return reservationRows.values.filter { $0.tenantId == tenantId && $0.state == .held }.sorted { $0.id < $1.id }
    }

    public func insertAlert(_ alert: AlertRecord) async throws(StorageError) {
        try open()
        alertRows.append(alert)
    }

    public func alerts(tenantId: String, kinds: [String]?, limit: Int) async throws(StorageError) -> [AlertRecord] {
        try open()
        return alertRows.filter { $0.tenantId == tenantId && (kinds?.contains($0.kind) ?? true) }
            .sorted { ($0.at, $0.id) > ($1.at, $1.id) }.prefix(limit).map { $0 }
    }

    public func charges(tenantId: String, customerId: String, from: Date, to: Date) async throws(StorageError)
        -> [ChargeRecord]
    {
        try open()
        return charges.filter {
            $0.tenantId == tenantId && $0.customerId == customerId && $0.at >= from && $0.at < to
        }
    }

    public func charges(tenantId: String, receiptIds: [String]) async throws(StorageError) -> [ChargeRecord] {
        try open()
        let wanted = Set(receiptIds)
        let found = Dictionary(
            charges.filter { $0.tenantId == tenantId && wanted.contains($0.receiptId) }.map { ($0.receiptId, $0) },
            uniquingKeysWith: { first, _ in first })
        return receiptIds.compactMap { found[$0] }
    }

    public func insertInvoice(_ invoice: InvoiceRecord, lineReceipts: [InvoiceLineReceipt])
        async throws(StorageError) -> InvoiceRecord
    {
        try open()
        if let existing = invoiceRows.values.first(where: {
            $0.tenantId == invoice.tenantId && $0.subscriptionId == invoice.subscriptionId
                && $0.periodStart == invoice.periodStart
        }) {
            return existing
        }
        invoiceRows[invoice.tenantId + "/" + invoice.id] = invoice
        invoiceReceipts[invoice.tenantId + "/" + invoice.id] = lineReceipts
        if let kind = invoice.stripeOutbox { enqueue(kind, of: invoice) }
        return invoice
    }

    public func updateInvoice(_ invoice: InvoiceRecord, expecting expected: String) async throws(StorageError) -> Bool {
        try open()
        let key = invoice.tenantId + "/" + invoice.id
        guard var stored = invoiceRows[key], stored.status == expected else { return false }
        stored.status = invoice.status
        stored.document = invoice.document
        invoiceRows[key] = stored
        if let kind = invoice.stripeOutbox { enqueue(kind, of: invoice) }
        return true
    }

    public func invoice(tenantId: String, id: String) async throws(StorageError) -> InvoiceRecord? {
        try open()
        return invoiceRows[tenantId + "/" + id]
    }

    public func invoices(tenantId: String, customerId: String?, subscriptionId: String?, limit: Int)
        async throws(StorageError) -> [InvoiceRecord]
    {
        try open()
        return Array(
            invoiceRows.values.filter {
                $0.tenantId == tenantId && (customerId == nil || $0.customerId == customerId)
                    && (subscriptionId == nil || $0.subscriptionId == subscriptionId)
            }
            .sorted { ($0.periodStart, $0.id) > ($1.periodStart, $1.id) }.prefix(limit))
    }

    private func enqueue(_ kind: OutboxRecord.Kind, of invoice: InvoiceRecord) {
        let key = "\(invoice.tenantId)/\(invoice.id)/\(kind.rawValue)"
        guard outboxRows[key] == nil else { return }
        outboxRows[key] = OutboxRecord(
            tenantId: invoice.tenantId, invoiceId: invoice.id, kind: kind, nextAttemptAt: invoice.createdAt,
            createdAt: invoice.createdAt, updatedAt: invoice.createdAt)
    }

    public func outbox(tenantId: String, invoiceId: String) async throws(StorageError) -> [OutboxRecord] {
        try open()
        return OutboxRecord.Kind.allCases.compactMap { outboxRows["\(tenantId)/\(invoiceId)/\($0.rawValue)"] }
    }

    public func dueOutbox(at date: Date, limit: Int) async throws(StorageError) -> [OutboxRecord] {
        try open()
        return Array(
            outboxRows.values.filter { $0.state == .pending && $0.nextAttemptAt <= date }
                .sorted {
                    ($0.nextAttemptAt, $0.createdAt, $0.invoiceId) < ($1.nextAttemptAt, $1.createdAt, $1.invoiceId)
                }
                .prefix(limit))
    }

    public func updateOutbox(_ record: OutboxRecord) async throws(StorageError) {
        try open()
        let key = "\(record.tenantId)/\(record.invoiceId)/\(record.kind.rawValue)"
        guard var row = outboxRows[key] else { return }
        row.state = record.state
        row.progress = record.progress
        row.attempts = record.attempts
        row.nextAttemptAt = record.nextAttemptAt
        row.lastError = record.lastError
        row.updatedAt = record.updatedAt
        outboxRows[key] = row
    }

    public func stripeCustomer(tenantId: String, customerId: String) async throws(StorageError) -> String? {
        try open()
        return stripeCustomers[tenantId + "/" + customerId]
    }

    public func putStripeCustomer(tenantId: String, customerId: String, stripeCustomerId: String)
        async throws(StorageError)
    {
        try open()
        if stripeCustomers[tenantId + "/" + customerId] == nil {
            stripeCustomers[tenantId + "/" + customerId] = stripeCustomerId
        }
    }

    public func creditApplied(tenantId: String, customerId: String?) async throws(StorageError) -> [String: Money] {
        try open()
        var applied: [String: Money] = [:]
        for invoice in invoiceRows.values
        where invoice.tenantId == tenantId && invoice.status != "void"
            && (customerId == nil || invoice.customerId == customerId)
        {
            for draw in invoice.creditApplications {
                applied[draw.grantId] = Money(nanos: (applied[draw.grantId]?.nanos ?? 0) + draw.amount.nanos)
            }
        }
        return applied
    }

    public func invoiceLineReceipts(tenantId: String, invoiceId: String, line: Int, after: String?, limit: Int)
        async throws(StorageError) -> [String]
    {
        try open()
        let receipts = (invoiceReceipts[tenantId + "/" + invoiceId] ?? []).filter { $0.line == line }.map(\.receiptId)
        return Array(receipts.sorted().filter { after == nil || $0 > after! }.prefix(limit))
    }

    public func charge(tenantId: String, receiptId: String) async throws(StorageError) -> ChargeRecord? {
        try open()
        return charges.first { $0.tenantId == tenantId && $0.receiptId == receiptId }
    }

    public func charges(tenantId: String, subscriptionId: String, from: Date) async throws(StorageError) -> [RatingRow]
    {
        try open()
        // Stable sort: charges recorded in the same millisecond keep the order they were committed in.
        return charges.filter { $0.tenantId == tenantId && $0.subscriptionId == subscriptionId && $0.at >= from }
            .enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map {
                RatingRow($0.element)
            }
    }

    public func spend(tenantId: String, windows: SpendWindows) async throws(StorageError) -> [SpendRow] {
        try open()
        var rows: [ScopeRef: SpendRow] = [:]
        for charge in charges where charge.tenantId == tenantId {
            let windows = windows.of(charge.customerId)
            for (scope, id) in [
                (CapScope.credential, charge.credentialId), (.agent, charge.agentId), (.team, charge.teamId),
                (.customer, charge.customerId),
            ] {
                let target = ScopeRef(scope, id)
                var row =
                    rows[target]
                    ?? SpendRow(
                        target: target, customerId: charge.customerId, lifetime: .zero, month: .zero, day: .zero)
                do {
                    row.lifetime = try row.lifetime.adding(charge.cost)
                    if charge.at >= windows.month.start { row.month = try row.month.adding(charge.cost) }
                    if charge.at >= windows.day.start { row.day = try row.day.adding(charge.cost) }
                } catch {
                    throw .backend("spend total out of range")
                }
                rows[target] = row
            }
        }
        return Array(rows.values)
    }

    public func usage(tenantId: String, filter: UsageFilter, groupBy: [UsageGroup]) async throws(StorageError)
        -> [UsageRow]
    {
        try open()
        var rows: [[String]: UsageRow] = [:]
        let roots = groupBy.contains(.task) ? UsageQuery.taskRoots(charges.filter { $0.tenantId == tenantId }) : [:]
        var products: [String: String] = [:]
        for subscription in subscriptions.values where subscription.tenantId == tenantId {
            products[subscription.id] = subscription.productId
        }
        for charge in charges
        where charge.tenantId == tenantId && UsageQuery.matches(charge, filter, products: products) {
            let keys = groupBy.map { UsageQuery.key(of: charge, $0, roots: roots, products: products) }
            var row =
                rows[keys]
                ?? UsageRow(
                    keys: keys, currency: charge.currency, calls: 0, quantity: 0,
                    inputTokens: 0, outputTokens: 0, cost: .zero, providerCost: .zero)
            if charge.quantity > 0 { row.calls += 1 }
            row.quantity += charge.quantity
            row.inputTokens += charge.inputTokens
            row.outputTokens += charge.outputTokens
            if charge.retryCount > 0 { row.retries += 1 }
            do {
                row.cost = try row.cost.adding(charge.cost)
                row.providerCost = try row.providerCost.adding(charge.providerCost)
            } catch { throw .backend("usage total out of range") }
            rows[keys] = row
        }
        return rows.values.sorted { $0.keys.lexicographicallyPrecedes($1.keys) }
    }
}
