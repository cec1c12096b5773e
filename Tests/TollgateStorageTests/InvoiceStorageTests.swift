import Foundation
import Testing
import TollgateCore
import TollgateStorage

/// Invoices in every backend: one per subscription and period (closing twice stores nothing new), read back by
/// id, listed by customer or subscription, and the receipts of each line paged through — within one tenant only.
@Suite struct InvoiceStorageTests {
    let conformance = StoreConformanceTests()

    func invoice(_ world: StoreConformanceTests.World, id: String, periodStart: String, document: String = "{}")
        -> InvoiceRecord
    {
        InvoiceRecord(
            tenantId: world.tenant.id, id: id, customerId: world.customer.id, subscriptionId: world.subscription.id,
            periodStart: Timestamp.parse(periodStart)!,
            periodEnd: Timestamp.parse(periodStart)!.addingTimeInterval(86_400), status: "finalized",
            document: document, createdAt: conformance.now)
    }

    @Test(arguments: StoreKind.available)
    func anInvoicePerPeriod_itsLinesReceiptsPaged_andOnlyInItsTenant(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        let receipts = (0..<25).map {
            InvoiceLineReceipt(line: $0 < 20 ? 1 : 2, receiptId: String(format: "rcp_%03d", $0))
        }
        let first = invoice(world, id: "inv_a", periodStart: "2026-11-01T00:00:00Z", document: #"{"n":1}"#)
        #expect(try await store.insertInvoice(first, lineReceipts: receipts) == first)
        // Closing the same period again: the first invoice stands, nothing of the second is written.
        let again = invoice(world, id: "inv_b", periodStart: "2026-11-01T00:00:00Z", document: #"{"n":2}"#)
        #expect(
            try await store.insertInvoice(again, lineReceipts: [InvoiceLineReceipt(line: 1, receiptId: "x")]) == first)
        #expect(try await store.invoice(tenantId: world.tenant.id, id: "inv_b") == nil)
        let second = invoice(world, id: "inv_c", periodStart: "2026-11-02T00:00:00Z")
        _ = try await store.insertInvoice(second, lineReceipts: [])

        #expect(try await store.invoice(tenantId: world.tenant.id, id: "inv_a") == first)
        #expect(try await store.invoice(tenantId: other.tenant.id, id: "inv_a") == nil)
        #expect(
            try await store.invoices(tenantId: world.tenant.id, customerId: nil, subscriptionId: nil, limit: 10)
                .map(\.id) == ["inv_c", "inv_a"])
        #expect(
            try await store.invoices(
                tenantId: world.tenant.id, customerId: world.customer.id, subscriptionId: nil, limit: 1
            ).map(\.id) == ["inv_c"])
        #expect(
            try await store.invoices(
                tenantId: world.tenant.id, customerId: nil, subscriptionId: other.subscription.id, limit: 10
            ).isEmpty)
        #expect(
            try await store.invoices(tenantId: other.tenant.id, customerId: nil, subscriptionId: nil, limit: 10).isEmpty
        )

        var paged: [String] = []
        var after: String?
        while true {
            let page = try await store.invoiceLineReceipts(
                tenantId: world.tenant.id, invoiceId: "inv_a", line: 1, after: after, limit: 7)
            if page.isEmpty { break }
            paged += page
            after = page.last
        }
        #expect(paged == (0..<20).map { String(format: "rcp_%03d", $0) })
        #expect(
            try await store.invoiceLineReceipts(
                tenantId: world.tenant.id, invoiceId: "inv_a", line: 2, after: nil, limit: 100
            ).count == 5)
        #expect(
            try await store.invoiceLineReceipts(
                tenantId: other.tenant.id, invoiceId: "inv_a", line: 1, after: nil, limit: 100
            ).isEmpty)
        try await store.close()
    }

    /// Charges by receipt, in the order asked, never another tenant's; and when an event occurred, if earlier.
    @Test(arguments: StoreKind.available)
    func chargesByReceipt_keepTheirOrderTheirTenantAndWhenTheirEventOccurred(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        var late = try conformance.entry(world, key: "late", cost: "0.5")
        late.charge.occurredAt = conformance.now.addingTimeInterval(-86_400 * 40)
        let onTime = try conformance.entry(world, key: "on-time", cost: "0.25")
        let theirs = try conformance.entry(other, key: "theirs", cost: "1")
        #expect(try await store.commit([late, onTime, theirs]) == [.recorded, .recorded, .recorded])
        let read = try await store.charges(
            tenantId: world.tenant.id,
            receiptIds: [onTime.charge.receiptId, theirs.charge.receiptId, late.charge.receiptId, "rcp_none"])
        #expect(read.map(\.receiptId) == [onTime.charge.receiptId, late.charge.receiptId])
        #expect(read[0].occurredAt == nil)
        #expect(read[1].occurredAt.map(Timestamp.millis) == late.charge.occurredAt.map(Timestamp.millis))
        try await store.close()
    }
}
