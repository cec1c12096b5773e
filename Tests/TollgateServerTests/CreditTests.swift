import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Credit: grants drawn by usage as it is charged (by priority, then the soonest expiry), a live balance, a customer
/// that blocks at zero credit refused in the turn that checks its caps, and the close's credit lines.
@Suite struct CreditTests {
    static let plan: JSONValue = [
        "name": "credit", "currency": "USD",
        "charges": [["strategy": "per_tool", "rates": ["search": "0.25", "*": "0.1"]]],
    ]

    static func world(on server: TestServer, period: JSONValue = ["cadence": "day"], block: Bool = false)
        async throws -> (
            op: TollgateConnection, operatorToken: String, agent: TollgateConnection, agentToken: String,
            customerId: JSONValue, subscriptionId: JSONValue
        )
    {
        let world = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: period, plan: plan)
        let customerId = world.subscription["customerId"]!
        if block {
            let updated = try await world.op.call(
                "customers.update", ["customerId": customerId, "blockAtZeroCredit": true])
            #expect(updated["blockAtZeroCredit"] == true)
        }
        return (
            world.op, world.operatorToken, world.agent, world.agentToken, customerId,
            world.subscription["subscriptionId"]!
        )
    }

    static func search(_ agent: TollgateConnection, _ key: String, session: String = "s1") async throws -> JSONValue {
        try await agent.call(
            "meter.verify", ["tool": "search", "idempotencyKey": .string(key), "sessionId": .string(session)])
    }

    static func grant(_ balance: JSONValue, _ grantId: JSONValue) -> JSONValue? {
        balance["grants"]?.arrayValue?.first { $0["grantId"] == grantId }
    }

    /// Two grants: a promotional one drawn first (priority 0), then a prepaid one. Three calls of 0.25 take the
    /// promotional 0.60 and 0.15 of the prepaid 1.00; the balance says so live, the close turns the draws into two
    /// credit lines that leave nothing to pay, the balance is the same after it and after a restart, and a credit
    /// line traces to the calls it paid for.
    @Test(arguments: storageBackends("credits-draw"))
    func grantsAreDrawnInOrder_liveAndAtTheClose(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await Self.world(on: server)
            let prepaid = try await world.op.call(
                "credits.grant",
                [
                    "customerId": world.customerId, "amount": "1", "kind": "prepaid", "priority": 1,
                    "description": "top-up", "idempotencyKey": "grant-1",
                ])
            #expect(prepaid["currency"] == "USD", "taken from the subscription's plan")
            #expect(prepaid["kind"] == "prepaid")
            #expect(prepaid["grantedAt"] == "2026-12-01T09:00:00.000Z")
            let promo = try await world.op.call(
                "credits.grant",
                [
                    "customerId": world.customerId, "amount": "0.6", "kind": "promotional",
                    "expiresAt": "2027-01-01T00:00:00Z",
                ])
            // A retry of a keyed grant grants nothing more.
            let retried = try await world.op.call(
                "credits.grant",
                [
                    "customerId": world.customerId, "amount": "1", "kind": "prepaid", "priority": 1,
                    "description": "top-up", "idempotencyKey": "grant-1",
                ])
            #expect(retried["replayed"] == true)
            #expect(retried["grantId"] == prepaid["grantId"])

            clock.set(Timestamp.parse("2026-12-01T10:00:00Z")!)
            for key in ["a1", "a2", "a3"] { #expect(try await Self.search(world.agent, key)["cost"] == "0.25") }
            let live = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(live["balances"] == [["currency": "USD", "available": "0.85"]], "\(live)")
            #expect(Self.grant(live, promo["grantId"]!)?["drawn"] == "0.6")
            #expect(Self.grant(live, promo["grantId"]!)?["state"] == "used")
            #expect(Self.grant(live, prepaid["grantId"]!)?["drawn"] == "0.15")
            #expect(Self.grant(live, prepaid["grantId"]!)?["remaining"] == "0.85")
            #expect(live["grants"]?.arrayValue?.count == 2)

            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            let lines = invoice["lines"]?.arrayValue ?? []
            #expect(lines.map { $0["kind"] } == ["usage", "credit", "credit"], "\(invoice)")
            #expect(lines[1]["creditGrantId"] == promo["grantId"])
            #expect(lines[1]["amount"] == "-0.6")
            #expect(lines[2]["creditGrantId"] == prepaid["grantId"])
            #expect(lines[2]["amount"] == "-0.15")
            #expect(invoice["total"] == "0")
            #expect(invoice["events"] == 3, "the credit lines' events are the usage line's")
            #expect(invoice["stages"]?.arrayValue?.contains("credits") == true)
            let after = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(after["balances"] == live["balances"])
            #expect(Self.grant(after, prepaid["grantId"]!)?["invoiced"] == "0.15")
            #expect(Self.grant(after, prepaid["grantId"]!)?["drawn"] == "0")
            let trace = try await world.op.call(
                "invoices.trace", ["invoiceId": invoice["invoiceId"]!, "lineId": "L3"])
            #expect(trace["events"]?.arrayValue?.count == 1, "the prepaid grant paid for one call")

            guard !storage.hasPrefix("memory") else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock)
            let op = try await server.connect(token: world.operatorToken)
            let restarted = try await op.call("credits.balance", ["customerId": world.customerId])
            #expect(restarted["balances"] == live["balances"], "\(restarted)")
            #expect(restarted["grants"] == after["grants"])
            // Usage in the new period draws what is left.
            let agent = try await server.connect(token: world.agentToken)
            _ = try await Self.search(agent, "b1", session: "s2")
            let drawn = try await op.call("credits.balance", ["customerId": world.customerId])
            #expect(drawn["balances"] == [["currency": "USD", "available": "0.6"]], "\(drawn)")
        }
    }

    /// A customer that blocks at zero credit: calls go through while credit pays for them, the next is refused with
    /// BUDGET_EXCEEDED on the credit scope and records nothing; a grant lets calls through again; a hold larger than
    /// the credit is refused; a customer that does not block is charged past zero.
    @Test(arguments: storageBackends("credits-block"))
    func aCustomerThatBlocksAtZeroCredit_isRefusedWhenItsCreditCannotPay(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Self.world(on: server, block: true)
            // No credit at all: refused from the first call.
            let first = await rpcError { try await Self.search(world.agent, "none") }
            #expect(first?.reason == "BUDGET_EXCEEDED")
            #expect(first?.data?["scope"] == "credit")
            _ = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "0.5", "kind": "prepaid"])
            _ = try await Self.search(world.agent, "a1")
            _ = try await Self.search(world.agent, "a2")
            let refused = await rpcError { try await Self.search(world.agent, "a3") }
            #expect(refused?.reason == "BUDGET_EXCEEDED", "\(String(describing: refused))")
            #expect(refused?.data?["scope"] == "credit")
            #expect(refused?.data?["scopeId"] == world.customerId)
            #expect(refused?.data?["remaining"] == "0")
            #expect(refused?.data?["requested"] == "0.25")
            #expect(refused?.data?["hint"]?.string?.contains("credit") == true)
            // A cheaper tool is refused too: nothing is left.
            #expect(
                await reason {
                    try await world.agent.call("meter.verify", ["tool": "other", "idempotencyKey": "a4"])
                } == "BUDGET_EXCEEDED")
            let usage = try await world.op.call("usage.summary", ["customerId": world.customerId])
            #expect(usage["total"]?["calls"] == 2, "refused calls record nothing")

            // More credit: calls go through again. A hold the credit cannot cover is refused.
            _ = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "0.3", "kind": "promotional"])
            let held = try await world.agent.call(
                "meter.authorize",
                ["tool": "search", "idempotencyKey": "h1", "sessionId": "s1", "estimate": ["inputTokens": 0]])
            #expect(held["held"] == "0.25")
            // The hold takes 0.25 of the 0.30: a call of 0.25 does not fit beside it, one of 0.10 does not either.
            #expect(await reason { try await Self.search(world.agent, "b1") } == "BUDGET_EXCEEDED")
            _ = try await world.agent.call("meter.release", ["reservationId": held["reservationId"]!])
            _ = try await Self.search(world.agent, "b2")
            let balance = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(balance["balances"] == [["currency": "USD", "available": "0.05"]], "\(balance)")

            // Not blocking: the same customer is charged past zero, and owes the rest.
            _ = try await world.op.call(
                "customers.update", ["customerId": world.customerId, "blockAtZeroCredit": false])
            _ = try await Self.search(world.agent, "c1")
            _ = try await Self.search(world.agent, "c2")
            let spent = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(spent["balances"] == [["currency": "USD", "available": "0"]])
            #expect(spent["blockAtZeroCredit"] == false)
        }
    }

    /// Calls racing on many connections never draw more credit than there is: with 1.00 of credit and calls of
    /// 0.25, exactly four of twenty go through.
    @Test func callsRacingForTheLastCredit_neverOverdrawIt() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(on: server, block: true)
            _ = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "1", "kind": "prepaid"])
            var agents: [TollgateConnection] = []
            for _ in 0..<4 { agents.append(try await server.connect(token: world.agentToken)) }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for index in 0..<20 {
                    let agent = agents[index % agents.count]
                    group.addTask {
                        await reason { try await Self.search(agent, "race-\(index)", session: "s\(index % 4)") } ?? "ok"
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == "ok" }.count == 4, "\(outcomes)")
            #expect(outcomes.filter { $0 == "BUDGET_EXCEEDED" }.count == 16)
        }
    }

    /// A promotional grant that expires in the middle of a monthly period pays for the calls charged before its
    /// expiry only; a prepaid one pays for the rest. The balance says the promotional grant expired with what it had
    /// left, and the invoice applies each grant for its own calls.
    @Test(arguments: storageBackends("credits-expiry"))
    func aCreditExpiringMidPeriod_paysOnlyForWhatCameBefore(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Self.world(on: server, period: ["cadence": "month", "anchorDay": 1])
            let promo = try await world.op.call(
                "credits.grant",
                [
                    "customerId": world.customerId, "amount": "5", "kind": "promotional",
                    "expiresAt": "2026-12-15T00:00:00Z",
                ])
            let prepaid = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "0.3", "kind": "prepaid", "priority": 5])
            clock.set(Timestamp.parse("2026-12-10T09:00:00Z")!)
            _ = try await Self.search(world.agent, "a1", session: "early")
            _ = try await Self.search(world.agent, "a2", session: "early")
            clock.set(Timestamp.parse("2026-12-15T00:00:00Z")!)  // the moment it expires: no longer drawn
            _ = try await Self.search(world.agent, "b1", session: "late")
            _ = try await Self.search(world.agent, "b2", session: "late")
            let balance = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(Self.grant(balance, promo["grantId"]!)?["state"] == "expired", "\(balance)")
            #expect(Self.grant(balance, promo["grantId"]!)?["drawn"] == "0.5")
            #expect(Self.grant(balance, promo["grantId"]!)?["remaining"] == "4.5", "what it had left, lost")
            #expect(Self.grant(balance, prepaid["grantId"]!)?["drawn"] == "0.3")
            #expect(balance["balances"] == [["currency": "USD", "available": "0"]])

            clock.set(Timestamp.parse("2027-01-01T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            let credits = (invoice["lines"]?.arrayValue ?? []).filter { $0["kind"] == "credit" }
            #expect(credits.map { $0["amount"] } == ["-0.5", "-0.3"], "\(invoice)")
            #expect(credits.map { $0["events"] } == [2, 2], "the second grant paid 0.25 and 0.05 of two late calls")
            #expect(invoice["subtotal"] == "0.2")
            #expect(invoice["total"] == "0.2")
        }
    }

    /// Voiding an invoice gives back the credit it applied; its usage stays on the (void) invoice, so it draws
    /// nothing again.
    @Test(arguments: storageBackends("credits-void", memory: false))
    func voidingAnInvoice_givesBackTheCreditItApplied(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Self.world(on: server)
            _ = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "2", "kind": "prepaid"])
            _ = try await Self.search(world.agent, "a1")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            let closed = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(closed["balances"] == [["currency": "USD", "available": "1.75"]])
            _ = try await world.op.call("invoices.void", ["invoiceId": invoice["invoiceId"]!, "reason": "goodwill"])
            let voided = try await world.op.call("credits.balance", ["customerId": world.customerId])
            #expect(voided["balances"] == [["currency": "USD", "available": "2"]], "\(voided)")
        }
    }

    /// Bad grants are refused and grant nothing; another tenant's customer is not found; agents may not grant or
    /// read credit.
    @Test func badGrants_areRefused() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(on: server)
            let customerId = world.customerId
            func grant(_ extra: [String: JSONValue]) async -> String? {
                var params: [String: JSONValue] = ["customerId": customerId, "amount": "1", "kind": "prepaid"]
                for (key, value) in extra { params[key] = value }
                return await reason { try await world.op.call("credits.grant", .object(params)) }
            }
            #expect(await grant(["amount": "0"]) == "VALIDATION_FAILED")
            #expect(await grant(["amount": "-1"]) == "VALIDATION_FAILED")
            #expect(await grant(["amount": "0.0000000001"]) == "VALIDATION_FAILED")
            #expect(await grant(["amount": 1]) == "code -32602")
            #expect(await grant(["kind": "gift"]) == "VALIDATION_FAILED")
            #expect(await grant(["currency": "usd"]) == "VALIDATION_FAILED")
            #expect(await grant(["priority": -1]) == "VALIDATION_FAILED")
            #expect(await grant(["expiresAt": "2026-12-01T08:59:59Z"]) == "VALIDATION_FAILED")
            #expect(await grant(["expiresAt": "tomorrow"]) == "VALIDATION_FAILED")
            #expect(await grant(["customerId": "cus_nope"]) == "NOT_FOUND")
            let balance = try await world.op.call("credits.balance", ["customerId": customerId])
            #expect(balance["grants"] == [], "nothing was granted")

            // A customer without a subscription needs its currency named.
            let bare = try await world.op.call("customers.create", ["name": "bare"])
            #expect(
                await reason {
                    try await world.op.call(
                        "credits.grant", ["customerId": bare["customerId"]!, "amount": "1", "kind": "prepaid"])
                } == "VALIDATION_FAILED")
            let euro = try await world.op.call(
                "credits.grant",
                ["customerId": bare["customerId"]!, "amount": "1", "kind": "prepaid", "currency": "EUR"])
            #expect(euro["currency"] == "EUR")

            // Another tenant sees none of it.
            let other = try await Self.world(on: server)
            #expect(
                await reason {
                    try await other.op.call(
                        "credits.grant", ["customerId": customerId, "amount": "1", "kind": "prepaid"])
                } == "NOT_FOUND")
            #expect(
                await reason { try await other.op.call("credits.balance", ["customerId": customerId]) } == "NOT_FOUND")
            #expect(
                await reason {
                    try await other.op.call("customers.update", ["customerId": customerId, "blockAtZeroCredit": true])
                } == "NOT_FOUND")
            #expect(
                await reason { try await world.agent.call("credits.balance", ["customerId": customerId]) }
                    == "FORBIDDEN")
            #expect(
                await reason {
                    try await world.op.call("customers.update", ["customerId": customerId, "taxRate": "1.5"])
                } == "VALIDATION_FAILED")
            #expect(
                await reason {
                    try await world.op.call("customers.update", ["customerId": customerId, "blockAtZeroCredit": "yes"])
                } == "code -32602")
        }
    }
}
