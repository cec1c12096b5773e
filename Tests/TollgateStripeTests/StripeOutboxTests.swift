import Foundation
import Logging
import Testing
import TollgateCore
import TollgateJSON
import TollgateStorage
import TollgateStripe
import TollgateTesting

@testable import TollgateBilling

/// The outbox against the local stand-in of Stripe's API, over real HTTP: the requests Stripe documents, in order,
/// each with its own idempotency key; retried after a failure or a lost answer without doing anything twice;
/// stopped by a refusal; a void carried to Stripe — or not needed.
@Suite(.serialized) struct StripeOutboxTests {
    static let start = Timestamp.parse("2026-12-01T00:00:00Z")!

    static func invoice(_ id: String, customer: String = "cus_1", lines: [(InvoiceLine.Kind, String)]) -> Invoice {
        var invoice = Invoice(
            id: id, tenantId: "ten_1", customerId: customer, subscriptionId: "sub_\(id)",
            period: BillingPeriod(start: start, end: start.addingTimeInterval(86_400)), currency: "USD",
            status: .finalized, createdAt: start.addingTimeInterval(86_401))
        invoice.billedTo = "Kiwi & Co"
        for (kind, amount) in lines {
            let money = try! Money(decimal: amount)
            invoice.lines.append(
                InvoiceLine(
                    number: invoice.lines.count + 1, kind: kind, description: "\(kind.rawValue) line", tool: "search",
                    unit: "calls", quantity: 3, unitPrice: nil, exact: money, amount: money, receipts: [],
                    eventCount: 3))
        }
        let total = invoice.lines.reduce(Int64(0)) { $0 + $1.amount.nanos }
        invoice.subtotal = Money(nanos: total)
        invoice.total = Money(nanos: total)
        invoice.stripeConfigured = true
        return invoice
    }

    static func store(_ invoice: Invoice, in store: any TollgateStore) async throws {
        var record = InvoiceRecord(
            tenantId: invoice.tenantId, id: invoice.id, customerId: invoice.customerId,
            subscriptionId: invoice.subscriptionId, periodStart: invoice.period.start, periodEnd: invoice.period.end,
            status: invoice.status.rawValue, document: JSONCodec.string(invoice.json), createdAt: invoice.createdAt)
        record.stripeOutbox = .send
        _ = try await store.insertInvoice(record, lineReceipts: [])
    }

    static func outbox(
        _ store: any TollgateStore, _ standIn: StripeStandIn, clock: ManualClock, timeoutMs: Int = 5_000
    ) -> StripeOutbox {
        StripeOutbox(
            store: store,
            transport: StripeHTTPTransport(
                apiBase: standIn.url, secretKey: StripeStandIn.secretKey, timeoutMs: timeoutMs),
            clock: clock, settings: .init(retryBaseMs: 1_000, retryMaxMs: 8_000), logger: Logger(label: "test"))
    }

    static func handoff(_ store: any TollgateStore, _ id: String, _ kind: OutboxRecord.Kind) async throws
        -> OutboxRecord?
    {
        try await store.outbox(tenantId: "ten_1", invoiceId: id).first { $0.kind == kind }
    }

    /// An invoice of usage, a credit and tax: the customer, a draft invoice taking no pending items, an item per
    /// line (the credit negative), finalized at the invoice's total; a second invoice of the customer reuses its
    /// Stripe customer.
    @Test func anInvoiceIsSentAsStripesOwnRequests_inOrder() async throws {
        let standIn = try await StripeStandIn.start()
        let store = InMemoryStore()
        let clock = ManualClock(Self.start.addingTimeInterval(90_000))
        let invoice = Self.invoice(
            "inv_1", lines: [(.usage, "12.5"), (.credit, "-2.5"), (.included, "0"), (.tax, "1")])
        try await Self.store(invoice, in: store)
        let outbox = Self.outbox(store, standIn, clock: clock)
        #expect(await outbox.runOnce() == 1)
        let paths = standIn.received.map(\.path)
        #expect(paths.count == 6, "\(paths)")
        #expect(paths.first == "/v1/customers" && paths[1] == "/v1/invoices")
        #expect(paths[2...4].allSatisfy { $0 == "/v1/invoiceitems" }, "no item for the zero line")
        #expect(paths[5].hasSuffix("/finalize"))
        #expect(Set(standIn.received.compactMap(\.idempotencyKey)).count == 6, "a key per step")
        #expect(standIn.received.allSatisfy { $0.status == 200 })
        let created = standIn.received[1].fields
        #expect(created["currency"] == "usd" && created["pending_invoice_items_behavior"] == "exclude")
        #expect(created["metadata[tollgate_invoice_id]"] == "inv_1")
        #expect(standIn.received[2...4].map { $0.fields["amount"] } == ["1250", "-250", "100"])
        #expect(standIn.received[0].fields["name"] == "Kiwi & Co")

        let sent = try #require(try await Self.handoff(store, "inv_1", .send))
        #expect(sent.state == .done && sent.attempts == 0)
        let progress = StripeProgress(json: try JSONCodec.parse(Array(sent.progress.utf8)))
        let stripeInvoice = try #require(standIn.invoices[progress.invoice ?? ""])
        #expect(stripeInvoice["status"] == "open" && stripeInvoice["total"] == 1100)
        #expect(await outbox.runOnce() == 0, "nothing is due any more")

        try await Self.store(Self.invoice("inv_2", lines: [(.usage, "3")]), in: store)
        #expect(await outbox.runOnce() == 1)
        #expect(try await Self.handoff(store, "inv_2", .send)?.state == .done)
        #expect(standIn.invoices.count == 2)
        #expect(standIn.received.filter { $0.path == "/v1/customers" }.count == 1, "the customer is made once")
        #expect(standIn.customers.count == 1)
        await standIn.stop()
    }

    /// A 500 on an item: the hand-off waits (1 s, then 2 s …) and goes on from that item — the items before it are
    /// not sent again; a lost answer (the invoice made, its answer never seen) is answered from the key, so Stripe
    /// has one invoice.
    @Test func failuresAreRetriedLater_fromWhereTheyStopped_andNothingIsDoneTwice() async throws {
        let standIn = try await StripeStandIn.start()
        let store = InMemoryStore()
        let clock = ManualClock(Self.start.addingTimeInterval(90_000))
        try await Self.store(Self.invoice("inv_1", lines: [(.usage, "1"), (.usage, "2"), (.tax, "0.3")]), in: store)
        standIn.schedule(.lostAnswer(seconds: 5), on: "/v1/invoices")
        standIn.schedule(.status(500), on: "/v1/invoiceitems")
        standIn.schedule(.status(503), on: "/v1/invoiceitems")
        let outbox = Self.outbox(store, standIn, clock: clock, timeoutMs: 2_000)

        await outbox.runOnce()
        var handoff = try #require(try await Self.handoff(store, "inv_1", .send))
        #expect(handoff.state == .pending && handoff.attempts >= 1, "\(handoff)")
        #expect(handoff.nextAttemptAt > clock.now())
        #expect(await outbox.runOnce() == 0, "not due before its back-off")
        // Each round after its back-off goes on from the step that failed (on a loaded machine a slow answer can
        // cost a round more; what counts is where it ends).
        var errors = [handoff.lastError ?? ""]
        for _ in 0..<20 where handoff.state == .pending {
            clock.advance(seconds: 600)
            await outbox.runOnce()
            handoff = try #require(try await Self.handoff(store, "inv_1", .send))
            errors.append(handoff.lastError ?? "")
        }
        #expect(handoff.state == .done, "\(handoff)")
        #expect(errors.first?.contains("no answer") == true, "\(errors)")
        // A fault met while the machine is slow can read as no answer (the client gave up first): at least one of
        // the two reads as Stripe's error.
        #expect(errors.contains { $0.contains("HTTP 500") || $0.contains("HTTP 503") }, "\(errors)")

        #expect(standIn.invoices.count == 1, "the invoice whose answer was lost was made once")
        let invoice = try #require(standIn.invoices.values.first)
        #expect(invoice["total"] == 330)
        #expect(invoice["lines"]?["data"]?.arrayValue?.count == 3, "each item once")
        await standIn.stop()
    }

    /// Stripe refuses a step (a 400): the hand-off stops, failed, with Stripe's message, and is not tried again.
    @Test func aRefusalStopsTheHandoffForAnOperator() async throws {
        let standIn = try await StripeStandIn.start()
        let store = InMemoryStore()
        let clock = ManualClock(Self.start.addingTimeInterval(90_000))
        try await Self.store(Self.invoice("inv_1", lines: [(.usage, "1")]), in: store)
        standIn.schedule(.status(402), on: "/v1/invoices")
        let outbox = Self.outbox(store, standIn, clock: clock)
        await outbox.runOnce()
        let handoff = try #require(try await Self.handoff(store, "inv_1", .send))
        #expect(handoff.state == .failed && handoff.lastError?.contains("HTTP 402 card_error") == true, "\(handoff)")
        let count = standIn.received.count
        clock.advance(seconds: 3_600)
        #expect(await outbox.runOnce() == 0)
        #expect(standIn.received.count == count)

        // A wrong key is a refusal too, and the key is in no error.
        let wrong = StripeOutbox(
            store: store, transport: StripeHTTPTransport(apiBase: standIn.url, secretKey: "sk_test_wrong"),
            clock: clock, logger: Logger(label: "test"))
        try await Self.store(Self.invoice("inv_2", lines: [(.usage, "1")]), in: store)
        await wrong.runOnce()
        let refused = try #require(try await Self.handoff(store, "inv_2", .send))
        #expect(refused.state == .failed && refused.lastError?.contains("HTTP 401") == true)
        #expect(refused.lastError?.contains("sk_test") == false)
        await standIn.stop()
    }

    /// A void: carried to Stripe once the invoice was sent; not needed for one voided before any of it was sent
    /// (its send is cancelled), nor for one Stripe marked paid with nothing due.
    @Test func voidsFollowTheSend() async throws {
        let standIn = try await StripeStandIn.start()
        let store = InMemoryStore()
        let clock = ManualClock(Self.start.addingTimeInterval(90_000))
        let outbox = Self.outbox(store, standIn, clock: clock)

        let sent = Self.invoice("inv_sent", lines: [(.usage, "4")])
        try await Self.store(sent, in: store)
        await outbox.runOnce()
        try await Self.void(sent, in: store, at: clock.now())
        await outbox.runOnce()
        #expect(try await Self.handoff(store, "inv_sent", .void)?.state == .done)
        #expect(standIn.invoices.values.first?["status"] == "void")

        let early = Self.invoice("inv_early", customer: "cus_2", lines: [(.usage, "4")])
        try await Self.store(early, in: store)
        try await Self.void(early, in: store, at: clock.now())
        let before = standIn.received.count
        await outbox.runOnce()
        #expect(try await Self.handoff(store, "inv_early", .send)?.state == .cancelled)
        #expect(try await Self.handoff(store, "inv_early", .void)?.state == .done)
        #expect(standIn.received.count == before, "nothing of it reached Stripe")

        let free = Self.invoice("inv_free", lines: [(.usage, "4"), (.credit, "-4")])
        try await Self.store(free, in: store)
        await outbox.runOnce()
        try await Self.void(free, in: store, at: clock.now())
        await outbox.runOnce()
        #expect(try await Self.handoff(store, "inv_free", .void)?.state == .done)
        #expect(standIn.received.last?.path.hasSuffix("/finalize") == true, "a paid invoice is not voided there")
        await standIn.stop()
    }

    static func void(_ invoice: Invoice, in store: any TollgateStore, at date: Date) async throws {
        let voided = try #require(invoice.voided(at: date, reason: "test"))
        var record = InvoiceRecord(
            tenantId: voided.tenantId, id: voided.id, customerId: voided.customerId,
            subscriptionId: voided.subscriptionId, periodStart: voided.period.start, periodEnd: voided.period.end,
            status: voided.status.rawValue, document: JSONCodec.string(voided.json), createdAt: date)
        record.stripeOutbox = .void
        #expect(try await store.updateInvoice(record, expecting: "finalized"))
    }

    @Test func theBackoffDoublesUpToItsLimit() {
        let settings = StripeOutbox.Settings(retryBaseMs: 1_000, retryMaxMs: 8_000)
        #expect(
            (1...6).map { StripeOutbox.backoffMs(attempts: $0, settings: settings) } == [
                1_000, 2_000, 4_000, 8_000, 8_000, 8_000,
            ])
        #expect(StripeOutbox.backoffMs(attempts: 500, settings: settings) == 8_000)
    }

    @Test func formsAreEncodedAsStripeReadsThem() {
        let body = StripeForm.encode([("metadata[tollgate_invoice_id]", "inv_1"), ("name", "Kiwi & Co ü")])
        #expect(body == "metadata%5Btollgate_invoice_id%5D=inv_1&name=Kiwi%20%26%20Co%20%C3%BC")
        let back = StripeForm.decode(body)
        #expect(back?.map(\.0) == ["metadata[tollgate_invoice_id]", "name"])
        #expect(back?.map(\.1) == ["inv_1", "Kiwi & Co ü"])
        #expect(StripeForm.decode("a=%ZZ") == nil)
    }
}
