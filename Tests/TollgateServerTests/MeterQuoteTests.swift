import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `meter.quote`: each tool's marginal price for the calling agent, now, in its session — and nothing recorded,
/// held or opened by asking.
@Suite struct MeterQuoteTests {
    func prices(_ answer: JSONValue) -> [String: String] {
        var prices: [String: String] = [:]
        for entry in answer["prices"]?.arrayValue ?? [] {
            prices[entry["tool"]?.stringValue ?? ""] = entry["amount"]?.stringValue
        }
        return prices
    }

    @Test(arguments: storageBackends("quote"))
    func aQuoteIsEachToolsPrice_andRecordsHoldsAndOpensNothing(storageURL: String) async throws {
        try await TestServer.with(storageURL: storageURL) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "1", "period": "day"])
            let answer = try await agent.call(
                "meter.quote", ["tools": ["search", "transform", "anything-else"], "sessionId": "s-quote"])
            #expect(prices(answer) == ["search": "0.001", "transform": "0.25", "anything-else": "0.002"], "\(answer)")
            #expect(answer["currency"] == "USD")
            #expect(answer["prices"]?.arrayValue?.first?["unit"] == "call")
            #expect(answer["prices"]?.arrayValue?.map { $0["tool"] } == ["search", "transform", "anything-else"])
            // Nothing recorded, nothing held, no session opened.
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 0)
            #expect(try await op.call("caps.list")["caps"]?.arrayValue?.first?["spent"] == "0")
            #expect(await reason { try await agent.call("session.get", ["sessionId": "s-quote"]) } == "NOT_FOUND")
            // The typed call agrees.
            let list = try await agent.quote(tools: ["transform"], quantity: 3)
            let threeCalls = try Money(decimal: "0.75")
            #expect(list.prices == ["transform": threeCalls] && list.currency == "USD")
        }
    }

    @Test func aQuoteFollowsTheRunningTotals_andTheSession() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server, plan: MarginalRatingTests.tieredPlan)
            let agent = try await server.connect(token: world.agentToken)
            func quoted(_ session: String) async throws -> String? {
                prices(try await agent.call("meter.quote", ["tools": ["search"], "sessionId": .string(session)]))[
                    "search"]
            }
            // A new session's first call pays the bundle's fee: 1 (tier 1) + 5.
            #expect(try await quoted("s1") == "6")
            #expect(try await quoted("s1") == "6", "asking again changes nothing")
            for key in ["k1", "k2", "k3"] {
                _ = try await agent.call("meter.verify", verifyParams(key, tool: "search", extra: ["sessionId": "s1"]))
            }
            // Past the 3 graduated units (0.50) and the bundle's 2 included calls (0.10 overage).
            #expect(try await quoted("s1") == "0.6")
            // Another session would pay the fee again.
            #expect(try await quoted("s2") == "5.5")
        }
    }

    @Test func badQuestions_getClearErrors_andAnotherAgentsSessionIsForbidden() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            for params: JSONValue in [
                [:], ["tools": []], ["tools": "search"], ["tools": [1]], ["tools": [""]],
                ["tools": .array(Array(repeating: "search", count: 101))], ["tools": ["search"], "quantity": 0],
                ["tools": ["search"], "usage": ["inputTokens": -1]],
            ] {
                let error = await rpcError { try await agent.call("meter.quote", params) }
                #expect(error?.code == -32020 || error?.code == -32602, "\(params) → \(String(describing: error))")
            }
            // Another agent of the tenant cannot quote in this agent's session.
            _ = try await agent.call("session.open", ["sessionId": "mine"])
            let op = try await server.connect(token: world.operatorToken)
            let other = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "Other"])
            let token = try await op.call(
                "credentials.issue", ["agentId": other["agentId"] ?? .null, "ttlSeconds": 3600])["token"]
            let otherAgent = try await server.connect(token: token?.stringValue)
            #expect(
                await reason { try await otherAgent.call("meter.quote", ["tools": ["search"], "sessionId": "mine"]) }
                    == "FORBIDDEN")
            // An operator is not an agent: it has no price.
            #expect(await reason { try await op.call("meter.quote", ["tools": ["search"]]) } == "FORBIDDEN")
        }
    }

    @Test func eachTenantIsQuotedItsOwnPlan() async throws {
        try await TestServer.with { server in
            let cheap = try await Fixture.make(on: server, name: "cheap")
            let dear = try await Fixture.make(
                on: server, name: "dear",
                plan: ["name": "dear", "currency": "EUR", "charges": [["strategy": "per_tool", "rates": ["*": "3"]]]])
            let a = try await server.connect(token: cheap.agentToken)
            let b = try await server.connect(token: dear.agentToken)
            let (cheapPrice, dearPrice) = (try Money(decimal: "0.001"), try Money(decimal: "3"))
            #expect(try await a.quote(tools: ["search"]).prices["search"] == cheapPrice)
            let quote = try await b.quote(tools: ["search"])
            #expect(quote.currency == "EUR" && quote.prices["search"] == dearPrice)
        }
    }
}
