import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `reports.revenue`: each customer's running total for the open period is what closing the period would
/// invoice — shown over random usage, then closing it.
@Suite struct ReportsRevenueTests {
    static let plans: [JSONValue] = [
        [
            "name": "tiers", "currency": "USD",
            "charges": [
                [
                    "strategy": "graduated",
                    "tiers": [["upTo": 4, "rate": "0.333"], ["upTo": 9, "rate": "0.1275"], ["rate": "0.0101"]],
                ]
            ],
        ],
        [
            "name": "committed", "currency": "USD",
            "charges": [["strategy": "committed", "amount": "5", "includedCalls": 20, "overageRate": "0.37"]],
        ],
        [
            "name": "tools", "currency": "JPY",
            "charges": [["strategy": "per_tool", "rates": ["search": "3.5", "*": "12.25"]]],
        ],
    ]

    @Test(arguments: 1...8)
    func theOpenPeriodsRevenue_isWhatClosingItInvoices(seed: Int) async throws {
        var random = SplitMix64(seed: UInt64(seed))
        let clock = ManualClock(Timestamp.parse("2026-12-01T08:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], plan: Self.plans[seed % 3],
                taxRate: ["0", "0.19", "0.075"][seed % 3])
            let customerId = world.subscription["customerId"]!
            // Credit on even seeds (a promotional grant that expires mid-day, drawn first, then a prepaid one) and a
            // discount on every third: the draft goes through the same credits and discounts stages as the close.
            if seed % 2 == 0 {
                _ = try await world.op.call(
                    "credits.grant",
                    [
                        "customerId": customerId, "amount": "2.5", "kind": "promotional",
                        "expiresAt": "2026-12-01T12:00:00Z",
                    ])
                _ = try await world.op.call(
                    "credits.grant", ["customerId": customerId, "amount": "1.5", "kind": "prepaid", "priority": 1])
            }
            if seed % 3 == 1 {
                _ = try await world.op.call("discounts.create", ["customerId": customerId, "percentOff": "12.5"])
            }
            let calls = Int(random.next() % 40)
            for call in 0..<calls {
                clock.advance(seconds: Double(1 + random.next() % 600))
                let tool = ["search", "fetch", "transform"][Int(random.next() % 3)]
                _ = try await world.agent.call(
                    "meter.verify", ["tool": .string(tool), "idempotencyKey": .string("c\(call)")])
            }
            let report = try await world.op.call("reports.revenue", ["customerId": customerId])
            let running = try #require(report["customers"]?.arrayValue?.first, "\(report)")
            #expect(running["periodStart"] == "2026-12-01T00:00:00.000Z")
            clock.set(Timestamp.parse("2026-12-02T00:00:00Z")!)
            let invoice = try await world.op.call(
                "periods.close", ["subscriptionId": world.subscription["subscriptionId"]!])
            #expect(running["revenue"] == invoice["total"], "seed \(seed): \(running) vs \(invoice)")
            #expect(running["subtotal"] == invoice["subtotal"] && running["tax"] == invoice["tax"])
            #expect(running["events"]?.int64Value == Int64(calls) && invoice["events"]?.int64Value == Int64(calls))
            #expect(running["lines"] == invoice["lines"], "seed \(seed)")
            let kinds = Set((invoice["lines"]?.arrayValue ?? []).compactMap { $0["kind"]?.string })
            if seed % 2 == 0, calls > 0 { #expect(kinds.contains("credit"), "seed \(seed): \(invoice)") }
            if seed % 3 == 1, invoice["subtotal"] != "0" { #expect(kinds.contains("discount"), "seed \(seed)") }
        }
    }

    @Test func everyCustomerWithASubscriptionIsListed_andAnUnknownOneIsRefused() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T08:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], plan: Self.plans[0])
            _ = try await world.op.call("customers.create", ["name": "No subscription yet"])
            _ = try await BillingPeriodTests.call(world.agent, "one")
            let report = try await world.op.call("reports.revenue")
            #expect(report["customers"]?.arrayValue?.map { $0["revenue"]! } == ["0.33"], "\(report)")
            do {
                _ = try await world.op.call("reports.revenue", ["customerId": "cus_nobody"])
                Issue.record("an unknown customer was reported")
            } catch let error as RPCError {
                #expect(error.reason == "NOT_FOUND")
            }
        }
    }
}
