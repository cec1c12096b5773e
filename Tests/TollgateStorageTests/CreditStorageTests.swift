import Foundation
import Testing
import TollgateCore
import TollgateStorage

/// Credit in every backend: grants come back with the tenant, a customer's credit blocking and tax rate can be
/// changed, and what invoices applied is summed per grant while the invoice is not void — within one tenant only.
@Suite struct CreditStorageTests {
    let conformance = StoreConformanceTests()

    @Test(arguments: StoreKind.available)
    func grantsLoad_customersUpdate_andAppliedCreditCountsUntilAVoid(kind: StoreKind) async throws {
        let store = try await kind.open()
        let world = try await conformance.makeWorld(store)
        let other = try await conformance.makeWorld(store, name: "other")
        let grant = CreditGrant(
            id: Identifiers.make(.creditGrant), tenantId: world.tenant.id, customerId: world.customer.id,
            currency: "USD", amount: try Money(decimal: "12.5"), kind: .promotional, priority: 3,
            grantedAt: Timestamp.parse("2026-11-01T10:00:00.123Z")!,
            expiresAt: Timestamp.parse("2027-01-01T00:00:00Z")!, description: "launch")
        let forever = CreditGrant(
            id: Identifiers.make(.creditGrant), tenantId: world.tenant.id, customerId: world.customer.id,
            currency: "EUR", amount: try Money(decimal: "1"), kind: .prepaid, priority: 0,
            grantedAt: Timestamp.parse("2026-11-02T00:00:00Z")!, expiresAt: nil)
        #expect(try await store.write(.insertCreditGrant(grant)) == .written)
        #expect(try await store.write(.insertCreditGrant(forever)) == .written)
        await #expect(throws: StorageError.self) { try await store.write(.insertCreditGrant(grant)) }
        let loaded = try #require(try await store.loadTenant(world.tenant.id))
        #expect(Set(loaded.creditGrants) == [grant, forever])
        #expect(try await store.loadTenant(other.tenant.id)?.creditGrants == [])

        var customer = world.customer
        customer.blockAtZeroCredit = true
        customer.taxRate = try Money(decimal: "0.2")
        customer.name = "renamed"
        #expect(try await store.write(.updateCustomer(customer)) == .written)
        #expect(try await store.loadTenant(world.tenant.id)?.customers == [customer])
        var stranger = customer
        stranger.tenantId = other.tenant.id
        #expect(try await store.write(.updateCustomer(stranger)) == .unchanged, "not that tenant's customer")
        #expect(try await store.loadTenant(other.tenant.id)?.customers == [other.customer])

        func invoice(_ id: String, _ start: String, _ applied: [CreditDraw]) -> InvoiceRecord {
            var record = InvoiceRecord(
                tenantId: world.tenant.id, id: id, customerId: world.customer.id,
                subscriptionId: world.subscription.id, periodStart: Timestamp.parse(start)!,
                periodEnd: Timestamp.parse(start)!.addingTimeInterval(86_400), status: "finalized", document: "{}",
                createdAt: conformance.now)
            record.creditApplications = applied
            return record
        }
        let first = invoice(
            "inv_1", "2026-11-03T00:00:00Z", [.init(grantId: grant.id, amount: try Money(decimal: "2"))])
        let second = invoice(
            "inv_2", "2026-11-04T00:00:00Z",
            [
                .init(grantId: grant.id, amount: try Money(decimal: "0.25")),
                .init(grantId: forever.id, amount: try Money(decimal: "1")),
            ])
        _ = try await store.insertInvoice(first, lineReceipts: [])
        _ = try await store.insertInvoice(second, lineReceipts: [])
        // Closing the first period again writes none of its applications a second time.
        _ = try await store.insertInvoice(
            invoice("inv_3", "2026-11-03T00:00:00Z", [.init(grantId: grant.id, amount: try Money(decimal: "9"))]),
            lineReceipts: [])
        let applied = try await store.creditApplied(tenantId: world.tenant.id, customerId: world.customer.id)
        #expect(applied == [grant.id: try Money(decimal: "2.25"), forever.id: try Money(decimal: "1")])
        #expect(try await store.creditApplied(tenantId: world.tenant.id, customerId: nil) == applied)
        #expect(try await store.creditApplied(tenantId: world.tenant.id, customerId: other.customer.id).isEmpty)
        #expect(try await store.creditApplied(tenantId: other.tenant.id, customerId: nil).isEmpty)

        var voided = second
        voided.status = "void"
        #expect(try await store.updateInvoice(voided, expecting: "finalized"))
        #expect(
            try await store.creditApplied(tenantId: world.tenant.id, customerId: world.customer.id)
                == [grant.id: try Money(decimal: "2")])
    }
}
