import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `day` and `month` caps count in the customer's own windows: its local day, and its billing period (monthly on
/// its anchor day), in its time zone — not in UTC days and months.
@Suite struct CapWindowTests {
    static let flat: JSONValue = [
        "name": "flat", "currency": "USD", "charges": [["strategy": "graduated", "tiers": [["rate": "1.00"]]]],
    ]

    /// A customer in Auckland (13 hours ahead of UTC in December) billed monthly from the 15th, with a day cap of 2
    /// on its agent and a month cap of 3 on itself. Its 15 December starts at 11:00 UTC on the 14th — a new local
    /// day and a new billing period, while the UTC day and month go on — and a call then is let through by both
    /// caps. After a restart (SQLite, PostgreSQL) the spend is counted again in the same windows.
    @Test(arguments: storageBackends("cap-windows"))
    func dayAndMonthCaps_rollOverAtTheCustomersMidnightAndAnchorDay(storageURL: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-13T10:00:00Z")!)  // 23:00 on 13 December in Auckland
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storageURL, clock: clock)
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "Pacific/Auckland", period: ["cadence": "month", "anchorDay": 15],
                plan: Self.flat)
            let customerId = try #require(world.subscription["customerId"])
            let hello = try await TollgateConnection.connect(address: server.address)
            let agent = try #require(
                try await hello.call("auth.hello", ["token": .string(world.agentToken)])["principal"]?["agentId"])
            _ = try await world.op.call(
                "caps.set", ["scope": "agent", "scopeId": agent, "limit": "2", "period": "day"])
            _ = try await world.op.call(
                "caps.set", ["scope": "customer", "scopeId": customerId, "limit": "3", "period": "month"])

            #expect(try await Self.call(world.agent, "x1") == "1")
            clock.set(Timestamp.parse("2026-12-14T10:58:00Z")!)  // 23:58 on 14 December in Auckland
            #expect(try await Self.call(world.agent, "c1") == "1")
            #expect(try await Self.call(world.agent, "c2") == "1")
            let refused = await rpcError {
                try await world.agent.call(
                    "meter.verify", verifyParams("c3", tool: "search", extra: ["sessionId": "ses_c3"]))
            }
            #expect(refused?.reason == "BUDGET_EXCEEDED", "\(String(describing: refused))")
            // The tightest scope's cap refuses first: the agent's day, which ends at Auckland's midnight.
            #expect(refused?.data?["resetsAt"] == "2026-12-14T11:00:00.000Z", "\(String(describing: refused?.data))")
            #expect(try await spent(world.op) == ["agent/day": "2", "customer/month": "3"])

            clock.set(Timestamp.parse("2026-12-14T11:00:00Z")!)  // midnight, 15 December, in Auckland
            #expect(try await spent(world.op) == ["agent/day": "0", "customer/month": "0"])
            #expect(try await Self.call(world.agent, "d1") == "1")
            #expect(try await spent(world.op) == ["agent/day": "1", "customer/month": "1"])

            guard storageURL != "memory:" else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storageURL, clock: clock)
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await spent(op) == ["agent/day": "1", "customer/month": "1"], "counted again in its windows")
            let agentAgain = try await server.connect(token: world.agentToken)
            #expect(try await Self.call(agentAgain, "d2") == "1")
            let refusedAgain = await reason {
                try await agentAgain.call(
                    "meter.verify", verifyParams("d3", tool: "search", extra: ["sessionId": "ses_d3"]))
            }
            #expect(refusedAgain == "BUDGET_EXCEEDED")
            #expect(try await spent(op) == ["agent/day": "2", "customer/month": "2"])
        }
    }

    /// A call in a session of its own: the days between calls here are longer than a session stays open idle.
    static func call(_ agent: TollgateConnection, _ key: String) async throws -> String {
        try await agent.call(
            "meter.verify", verifyParams(key, tool: "search", extra: ["sessionId": .string("ses_\(key)")]))[
                "cost"]!.string!
    }

    /// Each cap's spend now, keyed `scope/period`.
    func spent(_ op: TollgateConnection) async throws -> [String: String] {
        var spent: [String: String] = [:]
        for cap in try await op.call("caps.list")["caps"]?.arrayValue ?? [] {
            spent["\(cap["scope"]?.string ?? "")/\(cap["period"]?.string ?? "")"] = cap["spent"]?.string
        }
        return spent
    }
}
