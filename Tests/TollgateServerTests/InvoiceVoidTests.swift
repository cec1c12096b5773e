import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `invoices.void`: a finalized invoice is voided once, keeps its lines and trace, and its period stays closed;
/// nothing else can be voided, and no tenant can void another's invoice.
@Suite struct InvoiceVoidTests {
    @Test(arguments: storageBackends("invoices-void"))
    func aFinalizedInvoiceIsVoidedOnce_keepsItsLines_andItsPeriodStaysClosed(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: ["cadence": "day"])
            let subscriptionId = world.subscription["subscriptionId"]!
            for key in ["a1", "a2", "a3"] { _ = try await BillingPeriodTests.call(world.agent, key) }
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            let invoiceId = invoice["invoiceId"]!

            clock.set(Timestamp.parse("2026-12-02T10:00:00Z")!)
            let voided = try await world.op.call(
                "invoices.void", ["invoiceId": invoiceId, "reason": "billed to the wrong customer"])
            #expect(voided["status"] == "void", "\(voided)")
            #expect(voided["voidedAt"] == "2026-12-02T10:00:00.000Z")
            #expect(voided["voidReason"] == "billed to the wrong customer")
            // Everything else is as it was issued.
            for field in ["lines", "subtotal", "tax", "total", "periodStart", "periodEnd", "createdAt", "events"] {
                #expect(voided[field] == invoice[field], "\(field)")
            }
            // Voiding again answers it as it is (not voided a second time, at another moment).
            clock.set(Timestamp.parse("2026-12-02T11:00:00Z")!)
            #expect(try await world.op.call("invoices.void", ["invoiceId": invoiceId, "reason": "again"]) == voided)
            // The period stays closed with this invoice; its lines still trace to their events.
            #expect(try await world.op.call("periods.close", ["subscriptionId": subscriptionId]) == voided)
            let trace = try await world.op.call("invoices.trace", ["invoiceId": invoiceId, "lineId": "L1"])
            #expect(trace["events"]?.arrayValue?.count == 2)
            let listed = try await world.op.call("invoices.list", ["subscriptionId": subscriptionId])
            #expect(listed["invoices"]?.arrayValue?.first?["status"] == "void")

            // Unknown, and another tenant's: NOT_FOUND; an agent may not void at all.
            #expect(await reason { try await world.op.call("invoices.void", ["invoiceId": "inv_nope"]) } == "NOT_FOUND")
            let other = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: ["cadence": "day"])
            #expect(await reason { try await other.op.call("invoices.void", ["invoiceId": invoiceId]) } == "NOT_FOUND")
            #expect(
                await reason { try await world.agent.call("invoices.void", ["invoiceId": invoiceId]) }
                    == "FORBIDDEN")
            #expect(
                await reason { try await world.op.call("invoices.void", ["invoiceId": invoiceId, "reason": 7]) }
                    == "code -32602", "not a string: invalid params")
            let long = String(repeating: "x", count: 501)
            #expect(
                await reason {
                    try await world.op.call("invoices.void", ["invoiceId": invoiceId, "reason": .string(long)])
                } == "VALIDATION_FAILED")

            guard !storage.hasPrefix("memory") else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock)
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("invoices.get", ["invoiceId": invoiceId]) == voided, "kept across a restart")
        }
    }

    /// Two voids racing on two connections write once: both answer the same voided invoice.
    @Test func twoVoidsRacing_writeOnce() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: ["cadence": "day"])
            let subscriptionId = world.subscription["subscriptionId"]!
            _ = try await BillingPeriodTests.call(world.agent, "a1")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoiceId = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])["invoiceId"]!
            let second = try await server.connect(token: world.operatorToken)
            async let first = world.op.call("invoices.void", ["invoiceId": invoiceId, "reason": "one"])
            async let other = second.call("invoices.void", ["invoiceId": invoiceId, "reason": "two"])
            let answers = try await [first, other]
            #expect(answers[0] == answers[1], "\(answers)")
            #expect(try await world.op.call("invoices.get", ["invoiceId": invoiceId]) == answers[0])
        }
    }
}
