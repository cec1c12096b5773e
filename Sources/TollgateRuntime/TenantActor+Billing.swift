import Foundation
import TollgateBilling
import TollgateCore
import TollgateJSON
import TollgatePricing
import TollgateStorage

/// Billing periods and invoices: `periods.list`, `periods.close`, `invoices.get`, `invoices.list`,
/// `invoices.trace`. Closing reads a period's charges once the period is over and every charge stamped inside it
/// is durable, runs the close stages (`InvoiceClose`), and stores the invoice with the receipts of its lines —
/// one per subscription and period, so closing again answers the same invoice.
extension TenantActor {
    /// A subscription's periods from its start to the current one, the latest first; at most `limit`.
    public func periods(subscriptionId: String, limit: Int) async throws(TollgateError) -> PeriodList {
        let subscription = try subscription(subscriptionId)
        let calendar = directory.calendar(for: subscription)
        let at = now
        let all = calendar.periods(from: subscription.startsAt, to: at.addingTimeInterval(0.001), limit: 100_000)
        let shown = Array(all.suffix(limit).reversed())
        let invoices = try await storage("listing invoices") { () async throws(StorageError) in
            try await services.store.invoices(
                tenantId: tenantId, customerId: nil, subscriptionId: subscriptionId, limit: shown.count)
        }
        let invoiceByStart = Dictionary(
            invoices.map { (Timestamp.millis($0.periodStart), $0.id) }, uniquingKeysWith: { first, _ in first })
        return PeriodList(
            subscriptionId: subscriptionId, calendar: calendar,
            periods: shown.map { period in
                let invoiceId = invoiceByStart[Timestamp.millis(period.start)]
                let state: PeriodList.State = invoiceId != nil ? .closed : period.contains(at) ? .open : .ended
                return (period, state, invoiceId)
            })
    }

    /// Closes the period of `subscriptionId` that starts at `start` — by default the latest that has ended — into
    /// its invoice. A period still open is `CONFLICT`; one closed already answers its invoice (the store keeps the
    /// first invoice of a period, whatever closes it again).
    public func closePeriod(subscriptionId: String, start: Date?) async throws(TollgateError) -> InvoiceView {
        let subscription = try subscription(subscriptionId)
        let calendar = directory.calendar(for: subscription)
        let at = now
        let period: BillingPeriod
        if let start {
            period = calendar.period(containing: start)
            guard Timestamp.millis(period.start) == Timestamp.millis(start) else {
                throw .validation(
                    field: "periodStart",
                    rule: "the start of one of the subscription's periods (\(Timestamp.format(period.start)) holds it)")
            }
        } else {
            period = calendar.period(containing: calendar.period(containing: at).start.addingTimeInterval(-0.001))
        }
        guard period.end <= at else {
            throw .conflict(
                "the period starting \(Timestamp.format(period.start)) is open until \(Timestamp.format(period.end))")
        }
        guard period.end > subscription.startsAt else {
            throw .conflict(
                "subscription \(subscriptionId) started after the period starting \(Timestamp.format(period.start))")
        }
        // One close or void at a time: each reads what invoices applied of the customer's credit.
        return try await billingTurn { () async throws(TollgateError) in
            var invoice = try await compose(subscription, period: period, at: at, finalizing: true)
            invoice.stripeConfigured = services.stripeConfigured
            var record = InvoiceRecord(
                tenantId: tenantId, id: invoice.id, customerId: invoice.customerId, subscriptionId: subscriptionId,
                periodStart: period.start, periodEnd: period.end, status: invoice.status.rawValue,
                document: JSONCodec.string(invoice.json), createdAt: at)
            record.creditApplications = invoice.creditApplications
            // Handed to Stripe by the outbox, enqueued in the invoice's own transaction: never lost, never twice.
            if services.stripeConfigured { record.stripeOutbox = .send }
            let receipts = invoice.lines.flatMap { line in
                line.receipts.map { InvoiceLineReceipt(line: line.number, receiptId: $0) }
            }
            let stored = try await storage("storing an invoice") { () async throws(StorageError) in
                try await services.store.insertInvoice(record, lineReceipts: receipts)
            }
            // The period's usage is on an invoice now: the credit it drew is what the invoice applied.
            if stored.id == record.id { await reloadCredit(subscription.customerId) }
            return try await view(stored)
        }
    }

    /// `reports.revenue`: each customer's open period so far — the invoice closing it now would make, a draft —
    /// for one customer or all with a subscription in force.
    public func revenue(customerId: String?) async throws(TollgateError) -> RevenueReport {
        let at = now
        let customers =
            try customerId.map { id throws(TollgateError) in [try directory.customer(id)] }
            ?? directory.allCustomers
        var drafts: [Invoice] = []
        for customer in customers {
            // One draft per subscription in force: per product, when the customer subscribes to several.
            for subscription in directory.subscriptionsInForce(for: customer.id, at: at) {
                let period = directory.calendar(for: subscription).period(containing: at)
                drafts.append(try await compose(subscription, period: period, at: at, finalizing: false))
            }
        }
        return RevenueReport(asOf: at, drafts: drafts)
    }

    /// The invoice of `subscription`'s `period` as its charges stand: finalized when closing it, a draft for the
    /// open period. Every charge stamped before `at` is durable first (`LedgerWriter.flushed`), so a period that
    /// has ended is read whole — a charge made from here on is stamped after its end.
    private func compose(_ subscription: SubscriptionRecord, period: BillingPeriod, at: Date, finalizing: Bool)
        async throws(TollgateError) -> Invoice
    {
        await services.ledger.flushed()
        let customer = try directory.customer(subscription.customerId)
        let charges = try await storage("reading a period's charges") { () async throws(StorageError) in
            try await services.store.charges(
                tenantId: tenantId, customerId: subscription.customerId, from: period.start, to: period.end)
        }.filter { $0.subscriptionId == subscription.id }
        // The plan in force as the period ends decides its commitment and whether lines are per agent.
        let inForce = directory.planInForce(subscription, at: period.end.addingTimeInterval(-0.001))
        let plan = try directory.plan(id: inForce.planId, version: inForce.version)
        let rating = PlanRating(plan: plan, period: period.start)
        let credit = try await credit(of: customer.id, before: period.start)
        do {
            for charge in charges where charge.planId == plan.id && charge.planVersion == plan.version {
                try rating.rate(RatedEvent(charge))
            }
            let facts = PeriodFacts(
                calendar: directory.calendar(for: subscription), perAgent: plan.allocatesPerAgent,
                trueUp: try rating.closingAdjustment(), taxRate: customer.taxRate, credit: credit,
                discounts: directory.discounts(of: customer.id))
            var draft = Invoice(
                id: finalizing ? Identifiers.make(.invoice, at: at) : "draft", tenantId: tenantId,
                customerId: customer.id, subscriptionId: subscription.id, period: period, currency: plan.currency,
                taxRate: customer.taxRate, createdAt: at)
            draft.seller = directory.tenant.name
            draft.billedTo = customer.name
            if let product = directory.product(id: subscription.productId) {
                draft.productId = product.id
                draft.productName = product.name
            }
            return try InvoiceClose.close(draft, charges: charges, facts: facts, finalizing: finalizing)
        } catch {
            throw .unavailable("the period's charges could not be totalled (\(error))")
        }
    }

    public func invoice(_ id: String) async throws(TollgateError) -> InvoiceView {
        guard
            let record = try await storage(
                "reading an invoice",
                { () async throws(StorageError) in
                    try await services.store.invoice(tenantId: tenantId, id: id)
                })
        else { throw .notFound("no invoice \(id)") }
        return try await view(record)
    }

    /// A stored invoice as answered: with how its hand-off to Stripe stands, when it has one.
    private func view(_ record: InvoiceRecord) async throws(TollgateError) -> InvoiceView {
        var view = try InvoiceView(record)
        guard view.invoice.stripeConfigured == true else { return view }
        view.handoff = try await storage("reading an invoice's hand-off to Stripe") { () async throws(StorageError) in
            try await services.store.outbox(tenantId: tenantId, invoiceId: record.id)
        }
        return view
    }

    /// `invoices.void`: a finalized invoice is voided — nothing is owed on it any more — with its lines and trace
    /// kept as they were. Voiding a void invoice answers it as it is; a period whose invoice is void stays closed
    /// (a closed period never changes). The change is a compare-and-set on the stored status, so two voids racing
    /// (here or in another process sharing the store) write once.
    public func voidInvoice(_ id: String, reason: String) async throws(TollgateError) -> InvoiceView {
        try await billingTurn { () async throws(TollgateError) in try await voidTurn(id, reason: reason) }
    }

    private func voidTurn(_ id: String, reason: String) async throws(TollgateError) -> InvoiceView {
        let current = try await invoice(id).invoice
        if current.status == .void { return try await invoice(id) }
        guard let voided = current.voided(at: now, reason: reason) else {
            throw .conflict("invoice \(id) is \(current.status.rawValue); only a finalized invoice can be voided")
        }
        var record = InvoiceRecord(
            tenantId: tenantId, id: id, customerId: voided.customerId, subscriptionId: voided.subscriptionId,
            periodStart: voided.period.start, periodEnd: voided.period.end, status: voided.status.rawValue,
            document: JSONCodec.string(voided.json), createdAt: now)
        // Sent (or being sent) to Stripe: it is voided there too, once its send has ended.
        if voided.stripeConfigured == true { record.stripeOutbox = .void }
        let written = try await storage("voiding an invoice") { () async throws(StorageError) in
            try await services.store.updateInvoice(record, expecting: Invoice.Status.finalized.rawValue)
        }
        // Not written: voided meanwhile by another call, whose answer stands.
        guard written else { return try await invoice(id) }
        // What the invoice applied of the customer's credit is the customer's again.
        await reloadCredit(voided.customerId)
        return try await invoice(id)
    }

    /// Invoices, the latest period first: of one customer or subscription, if given.
    public func invoices(customerId: String?, subscriptionId: String?, limit: Int) async throws(TollgateError)
        -> InvoiceList
    {
        if let customerId { _ = try directory.customer(customerId) }
        if let subscriptionId { _ = try subscription(subscriptionId) }
        let records = try await storage("listing invoices") { () async throws(StorageError) in
            try await services.store.invoices(
                tenantId: tenantId, customerId: customerId, subscriptionId: subscriptionId, limit: limit)
        }
        var invoices: [InvoiceView] = []
        for record in records { invoices.append(try InvoiceView(record)) }
        return InvoiceList(invoices: invoices)
    }

    /// A page of the events an invoice line sums, each with its provenance, in receipt order after `after`.
    public func trace(invoiceId: String, lineId: String, after: String?, limit: Int) async throws(TollgateError)
        -> TracePage
    {
        let invoice = try await invoice(invoiceId).invoice
        guard let line = invoice.line(lineId) else { throw .notFound("invoice \(invoiceId) has no line \(lineId)") }
        let receipts = try await storage("reading an invoice line's events") { () async throws(StorageError) in
            try await services.store.invoiceLineReceipts(
                tenantId: tenantId, invoiceId: invoiceId, line: line.number, after: after, limit: limit)
        }
        let charges = try await storage("reading an invoice line's charges") { () async throws(StorageError) in
            try await services.store.charges(tenantId: tenantId, receiptIds: receipts)
        }
        var events: [JSONValue] = []
        for charge in charges {
            events.append(try await event(charge.idempotencyKey, as: .tenantOperator, known: charge).json)
        }
        return TracePage(
            invoiceId: invoiceId, line: line, events: events,
            next: receipts.count == limit ? receipts.last : nil)
    }

    private func subscription(_ id: String) throws(TollgateError) -> SubscriptionRecord {
        guard let subscription = directory.subscription(id: id) else {
            throw .notFound("no subscription \(id) in this tenant")
        }
        return subscription
    }
}
