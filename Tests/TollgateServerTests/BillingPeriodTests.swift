import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// A subscription's billing periods are its own — a cadence and an anchor — in its customer's time zone, and the
/// running totals of its plan start again where its period does, not at the first of a UTC month.
@Suite struct BillingPeriodTests {
    /// Two calls at 1.00, then 0.50 each, for the period.
    static let graduated: JSONValue = [
        "name": "g", "currency": "USD",
        "charges": [["strategy": "graduated", "tiers": [["upTo": 2, "rate": "1.00"], ["rate": "0.50"]]]],
    ]

    /// An operator connection, and an agent of a customer in `timeZone` subscribed to `plan` with `period`.
    static func world(
        on server: TestServer, timeZone: String, period: JSONValue, plan: JSONValue = graduated, taxRate: String = "0"
    ) async throws -> (
        op: TollgateConnection, operatorToken: String, agent: TollgateConnection, agentToken: String,
        subscription: JSONValue
    ) {
        let root = try await server.connect(token: TestServer.rootToken)
        let tenant = try await root.call("tenants.create", ["name": "periods"])
        let operatorToken = tenant["operatorToken"]!.string!
        let op = try await server.connect(token: operatorToken)
        let customer = try await op.call(
            "customers.create", ["name": "Kiwi", "timeZone": .string(timeZone), "taxRate": .string(taxRate)])
        #expect(customer["timeZone"]?.string == timeZone)
        let team = try await op.call("teams.create", ["customerId": customer["customerId"]!, "name": "t"])
        let agent = try await op.call("agents.create", ["teamId": team["teamId"]!, "name": "a"])
        let planId = try await op.call("plans.put", plan)["planId"]!
        let subscription = try await op.call(
            "subscriptions.create", ["customerId": customer["customerId"]!, "planId": planId, "period": period])
        let credential = try await op.call(
            "credentials.issue", ["agentId": agent["agentId"]!, "scopes": ["meter:write"], "ttlSeconds": 31_622_400])
        let token = credential["token"]!.string!
        return (op, operatorToken, try await server.connect(token: token), token, subscription)
    }

    static func call(_ agent: TollgateConnection, _ key: String) async throws -> String {
        try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": .string(key)])["cost"]!.string!
    }

    /// Auckland is 13 hours ahead of UTC in December: its day starts at 11:00 UTC the day before. Daily periods
    /// there restart the tiers at that moment — on SQLite, after a restart too.
    @Test(arguments: ["memory:", "sqlite"])
    func theTiersStartAgainAtTheCustomersMidnight(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T10:58:00Z")!)  // 23:58 on 1 December in Auckland
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID()).sqlite").path
        let url = storage == "sqlite" ? "sqlite:" + path : storage
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: url, clock: clock)
            let world = try await Self.world(on: server, timeZone: "Pacific/Auckland", period: ["cadence": "day"])
            #expect(
                world.subscription["period"]
                    == ["cadence": "day", "timeZone": "Pacific/Auckland"], "\(world.subscription)")
            #expect(try await Self.call(world.agent, "a1") == "1")
            #expect(try await Self.call(world.agent, "a2") == "1")
            #expect(try await Self.call(world.agent, "a3") == "0.5")
            clock.set(Timestamp.parse("2026-12-01T11:00:00Z")!)  // midnight, 2 December, in Auckland
            #expect(try await Self.call(world.agent, "b1") == "1")
            #expect(try await Self.call(world.agent, "b2") == "1")
            guard storage == "sqlite" else { return }
            // After a restart the period's totals are rebuilt from its own charges only.
            try await server.stop()
            server = try await servers.start(storageURL: url, clock: clock)
            let agent = try await server.connect(token: world.agentToken)
            #expect(try await Self.call(agent, "b3") == "0.5")
        }
    }

    /// A month anchored on the 31st in Paris: the period holding 1 March 2026 started on 28 February at
    /// midnight in Paris (23:00 UTC on the 27th), and the next starts on 31 March at midnight in Paris.
    @Test func aMonthlyAnchorPastTheMonthsEnd_fallsOnItsLastDay() async throws {
        let clock = ManualClock(Timestamp.parse("2026-02-27T22:59:00Z")!)  // 23:59 on the 27th in Paris
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(
                on: server, timeZone: "Europe/Paris", period: ["cadence": "month", "anchorDay": 31])
            #expect(world.subscription["period"]?["anchorDay"] == 31)
            for key in ["a1", "a2", "a3"] { _ = try await Self.call(world.agent, key) }
            clock.set(Timestamp.parse("2026-02-27T23:00:00Z")!)  // the 28th: a new period
            #expect(try await Self.call(world.agent, "b1") == "1")
            #expect(try await Self.call(world.agent, "b2") == "1")
            #expect(try await Self.call(world.agent, "b3") == "0.5")
            // A month on, the connection's session has timed out: a new connection opens a new one.
            clock.set(Timestamp.parse("2026-03-30T21:59:59Z")!)  // 23:59:59 on 30 March in Paris (UTC+2)
            let agent = try await server.connect(token: world.agentToken)
            #expect(try await Self.call(agent, "b4") == "0.5")
            clock.set(Timestamp.parse("2026-03-30T22:00:00Z")!)  // 31 March
            #expect(try await Self.call(agent, "c1") == "1")
        }
    }

    @Test func aBadTimeZoneOrPeriodIsRefusedNamingTheField() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            func refusal(_ method: String, _ params: JSONValue) async -> String? {
                do {
                    _ = try await op.call(method, params)
                    return nil
                } catch let error as RPCError {
                    return error.data?["field"]?.string
                } catch {
                    return "\(error)"
                }
            }
            #expect(await refusal("customers.create", ["name": "x", "timeZone": "Mars/Olympus_Mons"]) == "timeZone")
            #expect(await refusal("customers.create", ["name": "x", "timeZone": "+02:00"]) == "timeZone")
            let subscribe: (JSONValue) -> JSONValue = { period in
                ["customerId": .string(world.customerId), "planId": .string(world.planId), "period": period]
            }
            #expect(await refusal("subscriptions.create", subscribe(["cadence": "year"])) == "period.cadence")
            #expect(await refusal("subscriptions.create", subscribe(["anchorDay": 0])) == "period.anchorDay")
            #expect(await refusal("subscriptions.create", subscribe(["anchorDay": 32])) == "period.anchorDay")
            #expect(
                await refusal("subscriptions.create", subscribe(["cadence": "week", "anchorWeekday": "funday"]))
                    == "period.anchorWeekday")
            #expect(
                await refusal("subscriptions.create", subscribe(["cadence": "week", "anchorDay": 3]))
                    == "period.anchorDay")
            #expect(await refusal("subscriptions.create", subscribe(["cadence": "day", "every": 2])) == "period.every")
            #expect(await refusal("subscriptions.create", subscribe("monthly")) == "period")
            // The default: calendar months in the customer's zone (UTC unless given), anchored on the 1st.
            let plain = try await op.call(
                "subscriptions.create", ["customerId": .string(world.customerId), "planId": .string(world.planId)])
            #expect(plain["period"] == ["cadence": "month", "anchorDay": 1, "timeZone": "UTC"])
            let weekly = try await op.call("subscriptions.create", subscribe(["cadence": "week"]))
            #expect(weekly["period"]?["anchorWeekday"] == "monday")
        }
    }

}
