import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `tollgate credits grant | balance` and `tollgate customers update`, with the real binary: a prepaid customer is
/// refused once its credit is used, and its invoice shows the credit line.
@Suite struct CreditCommandsTests {
    @Test func grantDrawBlockAndInvoice_fromTheCommandLine() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let root = try await server.connect(token: TestServer.rootToken)
            let op = try await root.call("tenants.create", ["name": "Acme"])["operatorToken"]!.stringValue!
            let tollgate = TollgateCommand(address: server.address, token: op)
            func value(_ arguments: [String]) async throws -> String { try await tollgate.value(arguments) }
            let (customer, subscription, agent) = try await dailyCustomer(
                on: server, tollgate, ["Prepaid Ltd", "--block-at-zero-credit", "--tax-rate", "0.1"])

            let grantId = try await value([
                "credits", "grant", customer, "0.5", "--kind", "prepaid", "--description", "starter pack",
                "--idempotency-key", "g1", "--get", "grantId",
            ])
            #expect(grantId.hasPrefix("crg_"))
            let retried = try await value([
                "credits", "grant", customer, "0.5", "--kind", "prepaid",
                "--description", "starter pack", "--idempotency-key", "g1", "--get", "grantId",
            ])
            #expect(retried == grantId, "a retry grants nothing more")
            _ = try await tollgate(["credits", "grant", customer, "1", "--kind", "gift"], expecting: 64)
            _ = try await tollgate(["credits", "grant", customer, "0", "--kind", "prepaid"], expecting: 1)

            for call in 0..<2 {
                _ = try await agent.call("meter.verify", ["tool": "transform", "idempotencyKey": .string("t\(call)")])
            }
            do {
                _ = try await agent.call("meter.verify", ["tool": "transform", "idempotencyKey": "t2"])
                Issue.record("a call past the credit went through")
            } catch let error as RPCError {
                #expect(error.reason == "BUDGET_EXCEEDED" && error.data?["scope"] == "credit", "\(error)")
            }
            let balance = try await value(["credits", "balance", customer])
            #expect(balance.contains("grants:") && balance.contains("starter pack"), "\(balance)")
            #expect(balance.contains("used"), "\(balance)")
            let json = try JSONCodec.parse(Array(try await value(["credits", "balance", customer, "--json"]).utf8))
            #expect(json["balances"] == [["currency": "USD", "available": "0"]], "\(json)")

            // No longer blocking: charged past zero.
            let updated = try await value([
                "customers", "update", customer, "--block-at-zero-credit", "false", "--json",
            ])
            #expect(updated.contains(#""blockAtZeroCredit":false"#), "\(updated)")
            _ = try await agent.call("meter.verify", ["tool": "transform", "idempotencyKey": "t3"])
            _ = try await tollgate(["customers", "update", "cus_nope", "--name", "x"], expecting: 1)

            let discount = try await value([
                "discounts", "create", customer, "--amount-off", "0.05", "--description", "loyalty", "--get",
                "discountId",
            ])
            _ = try await tollgate(["discounts", "create", customer], expecting: 64)
            let discounts = try await value(["discounts", "list", customer])
            #expect(discounts.contains(discount) && discounts.contains("loyalty"), "\(discounts)")

            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let shown = try await value(["periods", "close", "--subscription", subscription])
            #expect(shown.contains("prepaid credit \(grantId) (starter pack)"), "\(shown)")
            #expect(shown.contains("-0.50"), "\(shown)")
            // 0.75 less 0.50 of credit and 0.05 off; 10 % tax on the 0.20 left.
            #expect(shown.contains("discount \(discount): 0.05 USD off (loyalty)"), "\(shown)")
            #expect(shown.contains("Subtotal: 0.20 USD") && shown.contains("Total: 0.22 USD"), "\(shown)")
            let ended = try await value(["discounts", "end", discount, "--get", "endsAt"])
            #expect(ended == "2026-12-02T00:00:01.000Z")
        }
    }
}
