import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Calls are priced against the subscription's running totals for the month, those totals survive a
/// restart, and a refused call leaves no trace in them.
@Suite struct MarginalRatingTests {
    /// Graduated calls (the first 3 at 1.00, then 0.50) and a session bundle (5.00 including 2 calls, then 0.10).
    static let tieredPlan: JSONValue = [
        "name": "tiered", "currency": "USD",
        "charges": [
            ["strategy": "graduated", "tiers": [["upTo": 3, "rate": "1.00"], ["rate": "0.50"]]],
            ["strategy": "session_bundle", "fee": "5", "includedCalls": 2, "overageRate": "0.10"],
        ],
    ]

    func cost(_ agent: TollgateConnection, _ key: String, session: String = "s1") async throws -> String? {
        try await agent.call("meter.verify", verifyParams(key, tool: "search", extra: ["sessionId": .string(session)]))[
            "cost"]?.string
    }

    @Test func runningTotalsSurviveARestart() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            var server = try await servers.start(storageURL: "sqlite:" + path)
            let world = try await Fixture.make(on: server, plan: Self.tieredPlan)
            var agent = try await server.connect(token: world.agentToken)
            #expect(try await cost(agent, "k1") == "6")  // tier 1 + the session's fee
            #expect(try await cost(agent, "k2") == "1")  // tier 1, within the bundle
            try await server.stop()

            server = try await servers.start(storageURL: "sqlite:" + path)
            agent = try await server.connect(token: world.agentToken)
            #expect(try await cost(agent, "k3") == "1.1")  // tier 1 + the bundle's first overage call
            #expect(try await cost(agent, "k4") == "0.6")  // tier 2 + overage
            #expect(try await cost(agent, "k5", session: "s2") == "5.5")  // a new session pays its fee
            // A retry after the restart replays the first answer and does not count twice.
            #expect(try await cost(agent, "k2") == "1")
            #expect(try await cost(agent, "k6", session: "s2") == "0.5")
            try await server.stop()
        }
    }

    @Test func aRefusedCallLeavesNoTraceInTheTotals() async throws {
        try await TestServer.with { server in
            let plan: JSONValue = [
                "name": "tiered", "currency": "USD",
                "charges": [
                    ["strategy": "graduated", "tiers": [["upTo": 2, "rate": "1.00"], ["rate": "0.50"]]],
                    ["strategy": "session_bundle", "fee": "5", "includedCalls": 2, "overageRate": "0.10"],
                ],
            ]
            let world = try await Fixture.make(on: server, plan: plan)
            let op = try await server.connect(token: world.operatorToken)
            func cap(_ limit: String) async throws {
                _ = try await op.call(
                    "caps.set",
                    [
                        "scope": "agent", "scopeId": .string(world.agentId), "limit": .string(limit),
                        "period": "month",
                    ])
            }
            try await cap("10")
            let agent = try await server.connect(token: world.agentToken)
            #expect(try await cost(agent, "k1") == "6")
            // 1 + a new session's 5 would make 12, over the cap of 10.
            #expect(
                await reason {
                    try await agent.call("meter.verify", verifyParams("k2", tool: "search", extra: ["sessionId": "s2"]))
                }
                    == "BUDGET_EXCEEDED")
            // Had the refused call counted, this would be the third graduated unit (0.50).
            #expect(try await cost(agent, "k3") == "1")
            try await cap("100")
            // And session s2 would already have paid its fee.
            #expect(try await cost(agent, "k4", session: "s2") == "5.5")
        }
    }

    @Test func aVolumePlanWithCreditsAnswersANegativeCost_andCapsCountIt() async throws {
        try await TestServer.with { server in
            let plan: JSONValue = [
                "name": "volume", "currency": "USD", "creditsAllowed": true,
                "charges": [["strategy": "volume", "tiers": [["upTo": 2, "rate": "1"], ["rate": "0.5"]]]],
            ]
            let world = try await Fixture.make(on: server, plan: plan)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "2", "period": "month"])
            let agent = try await server.connect(token: world.agentToken)
            #expect(try await cost(agent, "k1") == "1")
            #expect(try await cost(agent, "k2") == "1")
            // The third call moves all three to 0.50: 1.50 in all, so it is priced -0.50, and it fits under the cap.
            #expect(try await cost(agent, "k3") == "-0.5")
            #expect(try await cost(agent, "k4") == "0.5")
            #expect(try await op.call("usage.summary")["total"]?["cost"] == "2")
        }
    }
}
