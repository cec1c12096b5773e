import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Discounts over the wire: created, listed and ended by an operator, taken off the invoice of each period they are
/// in force at the end of, kept across a restart, and seen by no other tenant.
@Suite struct DiscountTests {
    @Test(arguments: storageBackends("discounts"))
    func aDiscountIsTakenOffThePeriodsItIsInForceFor(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await CreditTests.world(on: server)
            let percent = try await world.op.call(
                "discounts.create",
                [
                    "customerId": world.customerId, "percentOff": "20", "description": "launch",
                    "idempotencyKey": "d1",
                ])
            #expect(percent["percentOff"] == "20" && percent["startsAt"] == "2026-12-01T09:00:00.000Z", "\(percent)")
            let replay = try await world.op.call(
                "discounts.create",
                [
                    "customerId": world.customerId, "percentOff": "20", "description": "launch",
                    "idempotencyKey": "d1",
                ])
            #expect(replay["replayed"] == true && replay["discountId"] == percent["discountId"])
            clock.set(Timestamp.parse("2026-12-01T09:00:01Z")!)  // the percentage is the older
            let fixed = try await world.op.call(
                "discounts.create", ["customerId": world.customerId, "amountOff": "0.1"])
            #expect(fixed["currency"] == "USD", "the plan's")
            for key in ["a1", "a2", "a3", "a4"] { _ = try await CreditTests.search(world.agent, key) }

            // The open day so far: 1.00, 20 % off (0.20), then 0.10 off.
            let revenue = try await world.op.call("reports.revenue", ["customerId": world.customerId])
            #expect(revenue["customers"]?.arrayValue?.first?["revenue"] == "0.7", "\(revenue)")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            let discounts = (invoice["lines"]?.arrayValue ?? []).filter { $0["kind"] == "discount" }
            #expect(discounts.map { $0["amount"] } == ["-0.2", "-0.1"], "\(invoice)")
            #expect(discounts.first?["discountId"] == percent["discountId"])
            #expect(invoice["total"] == "0.7")

            // Ended now: the day that ends after this has no discount; ending it again later changes nothing.
            let ended = try await world.op.call("discounts.end", ["discountId": percent["discountId"]!])
            #expect(ended["endsAt"] == "2026-12-02T00:00:01.000Z")
            let again = try await world.op.call(
                "discounts.end", ["discountId": percent["discountId"]!, "endsAt": "2027-01-01T00:00:00Z"])
            #expect(again["endsAt"] == ended["endsAt"])
            _ = try await CreditTests.search(world.agent, "b1", session: "s2")
            clock.set(Timestamp.parse("2026-12-03T00:00:01Z")!)
            let next = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            #expect(
                (next["lines"]?.arrayValue ?? []).filter { $0["kind"] == "discount" }.map { $0["amount"] } == ["-0.1"],
                "\(next)")
            let listed = try await world.op.call("discounts.list", ["customerId": world.customerId])
            #expect(listed["discounts"]?.arrayValue?.count == 2)

            // Bad discounts, and another tenant's view.
            func create(_ extra: [String: JSONValue]) async -> String? {
                var params: [String: JSONValue] = ["customerId": world.customerId]
                for (key, value) in extra { params[key] = value }
                return await reason { try await world.op.call("discounts.create", .object(params)) }
            }
            #expect(await create([:]) == "VALIDATION_FAILED", "neither percent nor amount")
            #expect(await create(["percentOff": "10", "amountOff": "1"]) == "VALIDATION_FAILED")
            #expect(await create(["percentOff": "0"]) == "VALIDATION_FAILED")
            #expect(await create(["percentOff": "100.5"]) == "VALIDATION_FAILED")
            #expect(await create(["amountOff": "0"]) == "VALIDATION_FAILED")
            #expect(await create(["amountOff": "1", "currency": "us"]) == "VALIDATION_FAILED")
            #expect(
                await create(["percentOff": "5", "startsAt": "2027-01-01T00:00:00Z", "endsAt": "2026-12-31T00:00:00Z"])
                    == "VALIDATION_FAILED")
            #expect(
                await reason {
                    try await world.op.call(
                        "discounts.end", ["discountId": fixed["discountId"]!, "endsAt": "2026-11-01T00:00:00Z"])
                } == "VALIDATION_FAILED", "before it starts")
            let other = try await CreditTests.world(on: server)
            #expect(
                await reason { try await other.op.call("discounts.list", ["customerId": world.customerId]) }
                    == "NOT_FOUND")
            #expect(
                await reason { try await other.op.call("discounts.end", ["discountId": fixed["discountId"]!]) }
                    == "NOT_FOUND")
            #expect(
                await reason {
                    try await other.op.call("discounts.create", ["customerId": world.customerId, "percentOff": "5"])
                } == "NOT_FOUND")
            #expect(
                await reason { try await world.agent.call("discounts.list", ["customerId": world.customerId]) }
                    == "FORBIDDEN")

            guard !storage.hasPrefix("memory") else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock)
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("discounts.list", ["customerId": world.customerId]) == listed, "after a restart")
        }
    }
}
