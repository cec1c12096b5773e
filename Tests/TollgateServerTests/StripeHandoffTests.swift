import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateServer
import TollgateTesting

/// The hand-off to Stripe through a running server, against the local stand-in of Stripe's API: a closed period's
/// invoice reaches Stripe with its totals, a void follows it, a failure is retried — after a restart too — and
/// without a key the invoice says `stripeConfigured: false`.
@Suite struct StripeHandoffTests {
    static func configure(_ standIn: StripeStandIn) -> @Sendable (inout ServerConfiguration) -> Void {
        { configuration in
            configuration.stripe.secretKey = StripeStandIn.secretKey
            configuration.stripe.apiBase = standIn.url
            configuration.stripe.pollMs = 20
            configuration.stripe.retryBaseMs = 1_000
        }
    }

    static func handoff(_ op: TollgateConnection, _ invoiceId: JSONValue, _ kind: String, is state: String) async
        -> JSONValue?
    {
        var last: JSONValue?
        await eventually("the \(kind) hand-off to be \(state)") {
            last = try? await op.call("invoices.get", ["invoiceId": invoiceId])
            return last?["stripe"]?[kind]?["state"] == .string(state)
        }
        return last
    }

    @Test(arguments: storageBackends("stripe-handoff", memory: false))
    func aClosedInvoiceReachesStripe_aFailureIsRetriedAfterARestart_andAVoidFollows(storage: String) async throws {
        let standIn = try await StripeStandIn.start()
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock, configure: Self.configure(standIn))
            let world = try await CreditTests.world(on: server)
            _ = try await world.op.call("customers.update", ["customerId": world.customerId, "taxRate": "0.1"])
            for key in ["a1", "a2", "a3"] { _ = try await CreditTests.search(world.agent, key) }
            // The first item is refused with a 503: retried a second later.
            standIn.schedule(.status(503), on: "/v1/invoiceitems")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            #expect(invoice["stripeConfigured"] == true, "\(invoice)")
            let invoiceId = invoice["invoiceId"]!
            var shown: JSONValue?
            await eventually("the 503 to be stored with the hand-off") {
                shown = try? await world.op.call("invoices.get", ["invoiceId": invoiceId])
                return shown?["stripe"]?["send"]?["lastError"]?.string?.contains("503") == true
            }
            #expect(shown?["stripe"]?["send"]?["state"] == "pending", "\(shown ?? [:])")

            // Restarted before the retry is due: the hand-off goes on from where it stopped.
            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock, configure: Self.configure(standIn))
            let op = try await server.connect(token: world.operatorToken)
            clock.set(Timestamp.parse("2026-12-02T00:00:05Z")!)
            shown = await Self.handoff(op, invoiceId, "send", is: "done")
            let stripeInvoiceId = try #require(shown?["stripe"]?["send"]?["invoiceId"]?.string)
            let stripeInvoice = try #require(standIn.invoices[stripeInvoiceId])
            // 0.75 and 10 % tax (0.075, half-even 0.08): 83 cents.
            #expect(invoice["total"] == "0.83")
            #expect(stripeInvoice["total"] == 83 && stripeInvoice["status"] == "open", "\(stripeInvoice)")
            #expect(stripeInvoice["lines"]?["data"]?.arrayValue?.count == 2, "usage and tax, each once")
            #expect(standIn.invoices.count == 1 && standIn.customers.count == 1)

            let voided = try await op.call("invoices.void", ["invoiceId": invoiceId, "reason": "duplicate"])
            #expect(voided["status"] == "void")
            _ = await Self.handoff(op, invoiceId, "void", is: "done")
            #expect(standIn.invoices[stripeInvoiceId]?["status"] == "void")
        }
        await standIn.stop()
    }

    /// Without a Stripe key, closing works as before and the invoice says it is not handed to Stripe.
    @Test func withoutAKey_theInvoiceSaysSo() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await CreditTests.world(on: server)
            _ = try await CreditTests.search(world.agent, "a1")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            #expect(invoice["stripeConfigured"] == false && invoice["total"] == "0.25", "\(invoice)")
            #expect(invoice["stripe"] == nil)
        }
    }
}
