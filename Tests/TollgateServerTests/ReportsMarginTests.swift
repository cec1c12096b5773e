import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `reports.margin`: revenue, provider cost and margin per customer, agent or tool over a window, negative margins
/// flagged, within the tenant only.
@Suite struct ReportsMarginTests {
    func call(_ agent: TollgateConnection, _ key: String, tool: String = "transform", providerCost: String)
        async throws
    {
        _ = try await agent.call(
            "meter.verify",
            verifyParams(
                key, tool: tool,
                extra: ["sessionId": .string("ses_\(key)"), "usage": ["providerCost": .string(providerCost)]]))
    }

    /// Each row's figures, keyed by the row's `key` field: `revenue providerCost margin marginPercent negative`.
    func figures(_ report: JSONValue, by key: String) -> [String: String] {
        var figures: [String: String] = [:]
        for row in report["rows"]?.arrayValue ?? [] {
            figures[row[key]?.stringValue ?? "?"] = [
                row["revenue"]?.stringValue ?? "-", row["providerCost"]?.stringValue ?? "-",
                row["margin"]?.stringValue ?? "-", row["marginPercent"]?.stringValue ?? "-",
                row["negative"] == .bool(true) ? "negative" : "positive",
            ].joined(separator: " ")
        }
        return figures
    }

    @Test(arguments: storageBackends("reports-margin"))
    func marginPerCustomerAgentAndTool_flagsTheNegative_withinAWindowAndTheTenant(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            // A second customer of the same tenant, on the same plan.
            let other = try await op.call("customers.create", ["name": "Thin margins"])["customerId"]!
            let team = try await op.call("teams.create", ["customerId": other, "name": "t"])["teamId"]!
            let agentB = try await op.call("agents.create", ["teamId": team, "name": "b"])["agentId"]!
            _ = try await op.call(
                "subscriptions.create", ["customerId": other, "planId": .string(world.planId)])
            let token = try await op.call(
                "credentials.issue", ["agentId": agentB, "scopes": ["meter:write"], "ttlSeconds": 86_400])["token"]!
            let a = try await server.connect(token: world.agentToken)
            let b = try await server.connect(token: token.stringValue!)

            // A: 2 × transform at 0.25 costing 0.05 each, 1 × search at 0.001 costing nothing.
            try await call(a, "a1", providerCost: "0.05")
            try await call(a, "a2", providerCost: "0.05")
            try await call(a, "a3", tool: "search", providerCost: "0")
            // B: 2 × transform at 0.25 costing 0.28 each — below the margin guard's throttle (125 %).
            try await call(b, "b1", providerCost: "0.28")
            try await call(b, "b2", providerCost: "0.28")

            let byCustomer = try await op.call("reports.margin")
            #expect(byCustomer["groupBy"] == ["customer"])
            #expect(
                figures(byCustomer, by: "customer") == [
                    world.customerId: "0.501 0.1 0.401 80.04 positive",
                    other.stringValue!: "0.5 0.56 -0.06 -12.00 negative",
                ], "\(byCustomer)")
            let total = byCustomer["totals"]?.arrayValue?.first
            #expect(total?["currency"] == "USD" && total?["revenue"] == "1.001" && total?["margin"] == "0.341")
            #expect(total?["marginPercent"] == "34.07" && total?["negative"] == .bool(false))

            let byTool = try await op.call("reports.margin", ["groupBy": ["tool"]])
            #expect(
                figures(byTool, by: "tool") == [
                    "transform": "1 0.66 0.34 34.00 positive", "search": "0.001 0 0.001 100.00 positive",
                ], "\(byTool)")
            let agentsOfB = try await op.call("reports.margin", ["groupBy": ["agent"], "customerId": other])
            #expect(figures(agentsOfB, by: "agent") == [agentB.stringValue!: "0.5 0.56 -0.06 -12.00 negative"])

            // A window after every call: nothing.
            clock.advance(seconds: 60)
            let later = try await op.call("reports.margin", ["from": .string(Timestamp.format(clock.now()))])
            #expect(later["rows"]?.arrayValue?.isEmpty == true && later["totals"]?.arrayValue?.isEmpty == true)

            // Another tenant sees none of it; an agent may not ask; a group that does not exist is refused.
            let stranger = try await Fixture.make(on: server, name: "stranger")
            let strangerOp = try await server.connect(token: stranger.operatorToken)
            #expect(try await strangerOp.call("reports.margin")["rows"]?.arrayValue?.isEmpty == true)
            #expect(await reason { try await a.call("reports.margin") } == "FORBIDDEN")
            #expect(
                await reason { try await op.call("reports.margin", ["groupBy": ["planet"]]) } == "VALIDATION_FAILED")
        }
    }
}
