import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Invoices at the edges issue 14 names, through `periods.close`: a commitment not reached and one exceeded (per
/// agent where it allocates), a plan swapped mid-period, and a year of one customer's usage.
@Suite struct InvoiceBoundaryTests {
    /// A customer with two agents; the plan is made from the agents' ids (a commitment allocates by agent).
    static func world(
        on server: TestServer, timeZone: String = "UTC", period: JSONValue = ["cadence": "month"],
        plan: (String, String) -> JSONValue
    ) async throws -> (op: TollgateConnection, subscriptionId: JSONValue, tokens: [String], planId: JSONValue) {
        let root = try await server.connect(token: TestServer.rootToken)
        let tenant = try await root.call("tenants.create", ["name": "edges"])
        let op = try await server.connect(token: tenant["operatorToken"]!.string!)
        let customer = try await op.call("customers.create", ["name": "C", "timeZone": .string(timeZone)])
        let team = try await op.call("teams.create", ["customerId": customer["customerId"]!, "name": "t"])
        var agents: [String] = []
        var tokens: [String] = []
        for name in ["a", "b"] {
            let agent = try await op.call("agents.create", ["teamId": team["teamId"]!, "name": .string(name)])
            agents.append(agent["agentId"]!.string!)
            let credential = try await op.call(
                "credentials.issue",
                ["agentId": agent["agentId"]!, "scopes": ["meter:write"], "ttlSeconds": 31_622_400])
            tokens.append(credential["token"]!.string!)
        }
        let planId = try await op.call("plans.put", plan(agents[0], agents[1]))["planId"]!
        let subscription = try await op.call(
            "subscriptions.create", ["customerId": customer["customerId"]!, "planId": planId, "period": period])
        return (op, subscription["subscriptionId"]!, tokens, planId)
    }

    static func calls(_ server: TestServer, token: String, keys: [String], tool: String = "search") async throws {
        let agent = try await server.connect(token: token)
        for key in keys {
            _ = try await agent.call("meter.verify", ["tool": .string(tool), "idempotencyKey": .string(key)])
        }
        await agent.close()
    }

    /// Each line as `kind quantity unitPrice amount`.
    static func summary(_ invoice: JSONValue) -> [String] {
        (invoice["lines"]?.arrayValue ?? []).map { line in
            [
                line["kind"]!.string!, "\(line["quantity"]!.int64Value!)", line["unitPrice"]?.string ?? "-",
                line["amount"]!.string!,
            ].joined(separator: " ")
        }
    }

    static func agents(_ invoice: JSONValue) -> [String] {
        (invoice["lines"]?.arrayValue ?? []).map { $0["agentId"]?.string ?? "-" }
    }

    static func committed(amount: String, included: Int, allocations: [String: Int]) -> JSONValue {
        [
            "name": "committed", "currency": "USD",
            "charges": [
                [
                    "strategy": "committed", "amount": .string(amount), "includedCalls": .integer(Int64(included)),
                    "overageRate": "0.05",
                    "allocations": .object(allocations.mapValues { JSONValue.integer(Int64($0)) }),
                ]
            ],
        ]
    }

    /// 10.00 committed for 1,000 calls (0.01 each), 600 for agent a and 400 for agent b: 3 + 2 calls leave 9.95
    /// to true up; each agent's calls are lines of their own.
    @Test func aCommitmentNotReached_isTrueUpToItsMinimum_perAgent() async throws {
        let clock = ManualClock(Timestamp.parse("2026-11-15T12:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(on: server) { a, b in
                Self.committed(amount: "10", included: 1000, allocations: [a: 600, b: 400])
            }
            try await Self.calls(server, token: world.tokens[0], keys: ["a1", "a2", "a3"])
            try await Self.calls(server, token: world.tokens[1], keys: ["b1", "b2"])
            clock.set(Timestamp.parse("2026-12-01T00:00:00Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            let agents = Self.agents(invoice)
            #expect(agents.count == 3 && agents[0] != agents[1] && agents[0] != "-" && agents[2] == "-")
            #expect(
                Self.summary(invoice) == ["usage 3 0.01 0.03", "usage 2 0.01 0.02", "true_up 1 9.95 9.95"],
                "\(Self.summary(invoice))")
            #expect(invoice["total"] == "10")
        }
    }

    /// 1.00 committed for 2 calls (0.50 each), one per agent; each agent makes 2: one within its allocation and
    /// one at the overage rate. Usage passes the minimum: no true-up.
    @Test func aCommitmentExceeded_billsOverageAndNoTrueUp() async throws {
        let clock = ManualClock(Timestamp.parse("2026-11-15T12:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Self.world(on: server) { a, b in
                Self.committed(amount: "1", included: 2, allocations: [a: 1, b: 1])
            }
            try await Self.calls(server, token: world.tokens[0], keys: ["a1", "a2"])
            try await Self.calls(server, token: world.tokens[1], keys: ["b1", "b2"])
            clock.set(Timestamp.parse("2026-12-01T00:00:00Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            #expect(
                Self.summary(invoice) == [
                    "usage 1 0.5 0.5", "usage 1 0.05 0.05", "usage 1 0.5 0.5", "usage 1 0.05 0.05",
                ],
                "\(Self.summary(invoice))")
            #expect(Set(Self.agents(invoice)).count == 2)
            #expect(invoice["total"] == "1.1")
        }
    }

    /// A swap mid-period: the calls before it at the old price, those after at the new, each on its own line.
    @Test func aPlanSwappedMidPeriod_billsEachCallAtItsVersionsPrice() async throws {
        let clock = ManualClock(Timestamp.parse("2026-11-10T12:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            func perTool(_ rate: String) -> JSONValue {
                [
                    "name": "swap", "currency": "USD",
                    "charges": [["strategy": "per_tool", "rates": ["*": .string(rate)]]],
                ]
            }
            let world = try await Self.world(on: server) { _, _ in perTool("1") }
            try await Self.calls(server, token: world.tokens[0], keys: ["v1-a", "v1-b"])
            _ = try await world.op.call("plans.put", perTool("2"))
            _ = try await world.op.call("subscriptions.swap", ["subscriptionId": world.subscriptionId])
            clock.advance(seconds: 60)
            try await Self.calls(server, token: world.tokens[1], keys: ["v2-a"])
            clock.set(Timestamp.parse("2026-12-01T00:00:00Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            #expect(Self.summary(invoice) == ["usage 1 2 2", "usage 2 1 2"], "\(Self.summary(invoice))")
            #expect(invoice["total"] == "4")
        }
    }

    /// A year of one customer in Paris, billed monthly on the 31st (28/29 February, 30 April …) on a graduated
    /// plan, with late events each month: the twelve invoices' exact lines add up to every price charged, to the
    /// nano-unit, and each invoice's total to its rounded lines.
    @Test(arguments: ["memory:", "sqlite"])
    func aYearOfInvoices_addsUpToEveryPriceCharged(storage: String) async throws {
        let url =
            storage == "sqlite"
            ? "sqlite:"
                + FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-year-\(UUID()).sqlite").path
            : storage
        let clock = ManualClock(Timestamp.parse("2026-01-01T09:00:00Z")!)
        var generator = SplitMix64(seed: 2026)
        try await TestServer.with(storageURL: url, clock: clock) { server in
            let plan: JSONValue = [
                "name": "tiers", "currency": "EUR",
                "charges": [
                    [
                        "strategy": "graduated",
                        "tiers": [["upTo": 5, "rate": "0.123"], ["upTo": 12, "rate": "0.0777"], ["rate": "0.015"]],
                    ]
                ],
            ]
            let world = try await Self.world(
                on: server, timeZone: "Europe/Paris", period: ["cadence": "month", "anchorDay": 31]
            ) { _, _ in plan }
            let periods = try BillingCalendar(cadence: .month(anchorDay: 31), timeZone: "Europe/Paris").periods(
                from: Timestamp.parse("2026-01-01T09:00:00Z")!, to: Timestamp.parse("2026-12-30T12:00:00Z")!)
            var invoices: [JSONValue] = []
            var late = 0
            for (index, period) in periods.enumerated() {
                let start = max(period.start, Timestamp.parse("2026-01-01T09:00:00Z")!)
                clock.set(start.addingTimeInterval(3600))
                let agent = try await server.connect(token: world.tokens[Int(generator.next() % 2)])
                for call in 0..<Int(3 + generator.next() % 18) {
                    clock.advance(seconds: 600)
                    _ = try await agent.call(
                        "meter.verify", ["tool": "search", "idempotencyKey": .string("m\(index)-\(call)")])
                }
                // A late event from the period before, now and then.
                if index > 0, generator.next() % 2 == 0 {
                    let occurred = periods[index - 1].end.addingTimeInterval(-7200)
                    _ = try await agent.call(
                        "events.ingest",
                        [
                            "events": [
                                [
                                    "eventId": .string("late-\(index)"), "type": "tool_invocation", "tool": "search",
                                    "occurredAt": .string(Timestamp.format(occurred)),
                                ]
                            ]
                        ])
                    late += 1
                }
                await agent.close()
                clock.set(period.end.addingTimeInterval(1))
                invoices.append(try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId]))
            }
            #expect(invoices.count == 12 && late > 0)
            var exact = Money.zero
            for invoice in invoices {
                var rounded = Money.zero
                for line in invoice["lines"]?.arrayValue ?? [] {
                    exact = try exact.adding(try Money(decimal: line["exact"]!.string!))
                    rounded = try rounded.adding(try Money(decimal: line["amount"]!.string!))
                }
                #expect(invoice["total"]?.string == rounded.decimalString, "\(invoice["invoiceId"]!)")
            }
            let charged = try await world.op.call("usage.summary")
            #expect(exact.decimalString == charged["total"]?["cost"]?.string, "\(charged)")
            let adjustments = invoices.flatMap { $0["lines"]?.arrayValue ?? [] }.filter { $0["kind"] == "adjustment" }
            #expect(adjustments.reduce(0) { $0 + Int($1["events"]!.int64Value!) } == late)
            #expect(
                invoices.map { $0["periodStart"]!.string! }.prefix(3) == [
                    "2025-12-30T23:00:00.000Z", "2026-01-30T23:00:00.000Z", "2026-02-27T23:00:00.000Z",
                ])
        }
    }
}
