import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Session caps and the cap alerts an operator sees as they happen.
@Suite struct SpendDefenseTests {
    @Test func aSessionPeriodCapGivesEverySessionItsOwnBudget() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.5", "period": "session"])
            _ = try await op.call(
                "caps.set", ["scope": "session", "scopeId": "ses_small", "limit": "0.25", "period": "lifetime"])
            let agent = try await server.connect(token: world.agentToken)
            func call(_ key: String, _ session: String) async throws -> JSONValue {
                try await agent.call("meter.verify", verifyParams(key, extra: ["sessionId": .string(session)]))
            }
            #expect(try await call("a1", "ses_1")["remaining"]?["agent"] == "0.25")
            _ = try await call("a2", "ses_1")
            let refusal = try #require(await rpcError { try await call("a3", "ses_1") })
            #expect(refusal.reason == "BUDGET_EXCEEDED")
            #expect(
                refusal.data?["scope"] == "agent" && refusal.data?["spent"] == "0.5"
                    && refusal.data?["requested"] == "0.25"
            )
            #expect(refusal.data?["hint"]?.string?.isEmpty == false)
            // A new session starts from zero.
            #expect(try await call("b1", "ses_2")["cost"] == "0.25")
            // A cap on one session by its id.
            _ = try await call("c1", "ses_small")
            #expect(await reason { try await call("c2", "ses_small") } == "BUDGET_EXCEEDED")
            let caps = try await op.call("caps.list")
            guard case .array(let rows)? = caps["caps"] else {
                Issue.record("no caps")
                return
            }
            #expect(rows.count == 2)
        }
    }

    @Test func capWarningAndCapReached_fireOncePerCrossing_onlyForTheirTenant() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server, name: "a")
            let other = try await Fixture.make(on: server, name: "b")
            let op = try await server.connect(token: world.operatorToken)
            let otherOp = try await server.connect(token: other.operatorToken)
            let inbox = AlertInbox(op)
            let otherInbox = AlertInbox(otherOp)
            _ = try await op.call("alerts.subscribe", ["kinds": ["cap_warning", "cap_reached"]])
            _ = try await otherOp.call("alerts.subscribe")
            _ = try await op.call(
                "caps.set",
                [
                    "scope": "agent", "scopeId": .string(world.agentId), "limit": "1", "period": "month",
                    "warnAtPercent": 50,
                ])
            let agent = try await server.connect(token: world.agentToken)
            for n in 0..<4 { _ = try await agent.call("meter.verify", verifyParams("k\(n)")) }  // 0.25 … 1.00
            for n in 4..<7 {
                #expect(
                    await reason { try await agent.call("meter.verify", verifyParams("k\(n)")) } == "BUDGET_EXCEEDED")
            }

            let warning = try await inbox.next("cap_warning")
            #expect(warning["spent"] == "0.5" && warning["warnAtPercent"] == 50 && warning["scope"] == "agent")
            let reached = try await inbox.next("cap_reached")
            #expect(reached["limit"] == "1" && reached["spent"] == "1")
            // Stored, once each, however many calls were refused.
            try await Task.sleep(for: .milliseconds(100))
            let listed = try await op.call("alerts.list")
            guard case .array(let alerts)? = listed["alerts"] else {
                Issue.record("no alerts")
                return
            }
            #expect(alerts.compactMap { $0["kind"]?.string }.sorted() == ["cap_reached", "cap_warning"])
            // Raising the cap re-arms it.
            _ = try await op.call(
                "caps.set",
                [
                    "scope": "agent", "scopeId": .string(world.agentId), "limit": "2", "period": "month",
                    "warnAtPercent": 85,
                ])
            for n in 10..<13 { _ = try await agent.call("meter.verify", verifyParams("k\(n)")) }  // 1.75
            let again = try await inbox.next("cap_warning")
            #expect(again["spent"] == "1.75" && again["warnAtPercent"] == 85)
            // The other tenant's operator heard nothing.
            let otherList = try await otherOp.call("alerts.list")
            #expect(otherList["alerts"] == [])
            #expect(otherInbox.all.isEmpty)
            #expect(inbox.all.isEmpty, "no second warning or reached alert for the first crossing")
            #expect(
                await rpcError { try await op.call("alerts.subscribe", ["kinds": ["nope"]]) }?.data?["field"] == "kinds"
            )
        }
    }
}
