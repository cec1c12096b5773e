import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `periods.close` turns a period that has ended into an invoice whose every line traces to its events; closing
/// again answers the same invoice, an open period cannot be closed, and late usage lands on the next invoice as
/// an adjustment naming its period.
@Suite struct InvoiceCloseTests {
    static func refusal(_ op: TollgateConnection, _ method: String, _ params: JSONValue) async -> String? {
        do {
            _ = try await op.call(method, params)
            return nil
        } catch let error as RPCError {
            return error.reason ?? "\(error.code)"
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: storageBackends("invoices-close"))
    func aClosedDaysInvoice_linesTraceToTheirEvents_andClosingAgainChangesNothing(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], taxRate: "0.1")
            let subscriptionId = world.subscription["subscriptionId"]!
            for key in ["a1", "a2", "a3"] { _ = try await BillingPeriodTests.call(world.agent, key) }
            #expect(
                await Self.refusal(world.op, "periods.close", ["subscriptionId": subscriptionId]) == "CONFLICT",
                "the day before the subscription started has nothing to close, and today is open")
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let periods = try await world.op.call("periods.list", ["subscriptionId": subscriptionId])
            #expect(periods["periods"]?.arrayValue?.map { $0["state"]!.string! } == ["open", "ended"], "\(periods)")

            let invoice = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            #expect(invoice["status"] == "finalized" && invoice["periodStart"] == "2026-12-01T00:00:00.000Z")
            let lines = invoice["lines"]!.arrayValue!
            #expect(
                lines.map { line in
                    [
                        line["lineId"]!.string!, line["kind"]!.string!, "\(line["quantity"]!.int64Value!)",
                        line["amount"]!.string!,
                    ].joined(separator: " ")
                } == ["L1 usage 2 2", "L2 usage 1 0.5", "L3 tax 1 0.25"], "\(lines)")
            #expect(invoice["subtotal"] == "2.5" && invoice["tax"] == "0.25" && invoice["total"] == "2.75")
            #expect(invoice["events"] == 3)

            // Every line's events, paged, with their provenance; their prices add up to the line.
            var events: [JSONValue] = []
            var after: JSONValue = .null
            repeat {
                let page = try await world.op.call(
                    "invoices.trace",
                    ["invoiceId": invoice["invoiceId"]!, "lineId": "L1", "limit": 1, "after": after])
                events += page["events"]!.arrayValue!
                after = page["next"] ?? .null
            } while after != .null
            #expect(Set(events.map { $0["eventId"]!.string! }) == ["a1", "a2"], "\(events)")
            #expect(events.allSatisfy { $0["context"]?["price"] == "1" && $0["method"] == "meter.verify" })

            // Closing again — and after a restart, on storage that keeps it — answers the same invoice.
            let again = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            #expect(again == invoice)
            if !storage.hasPrefix("memory") {
                try await server.stop()
                server = try await servers.start(storageURL: storage, clock: clock)
                let op = try await server.connect(token: world.operatorToken)
                #expect(try await op.call("invoices.get", ["invoiceId": invoice["invoiceId"]!]) == invoice)
                #expect(
                    try await op.call(
                        "periods.close",
                        ["subscriptionId": subscriptionId, "periodStart": "2026-12-01T00:00:00Z"]) == invoice)
                let listed = try await op.call("invoices.list", ["subscriptionId": subscriptionId])
                #expect(listed["invoices"]?.arrayValue?.map { $0["invoiceId"]! } == [invoice["invoiceId"]!])
                #expect(
                    await Self.refusal(
                        op, "periods.close", ["subscriptionId": subscriptionId, "periodStart": "2026-12-01T05:00:00Z"])
                        == "VALIDATION_FAILED")
                #expect(
                    await Self.refusal(op, "invoices.trace", ["invoiceId": invoice["invoiceId"]!, "lineId": "L9"])
                        == "NOT_FOUND")
            }
        }
    }

    /// An event that occurred in a closed period and arrives in the next is charged in the next, on a line of its
    /// own naming the period it belongs to; the closed period's invoice does not change.
    @Test(arguments: storageBackends("invoices-late"))
    func lateUsageLandsOnTheNextInvoiceAsAnAdjustment(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], plan: Fixture.searchPlan)
            let subscriptionId = world.subscription["subscriptionId"]!
            _ = try await BillingPeriodTests.call(world.agent, "d1")
            clock.set(Timestamp.parse("2026-12-02T10:00:00Z")!)
            let first = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            let agent = try await server.connect(token: world.agentToken)
            let late = try await agent.call(
                "events.ingest",
                [
                    "events": [
                        [
                            "eventId": "late-1", "type": "tool_invocation", "tool": "search",
                            "occurredAt": "2026-12-01T20:00:00Z",
                        ]
                    ]
                ])
            #expect(late["results"]?.arrayValue?.first?["adjustment"] == true, "\(late)")
            _ = try await BillingPeriodTests.call(agent, "d2")
            clock.set(Timestamp.parse("2026-12-03T00:00:00Z")!)
            let second = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            let lines = second["lines"]!.arrayValue!
            #expect(lines.map { $0["kind"]!.string! } == ["usage", "adjustment"], "\(lines)")
            #expect(lines[1]["adjustsPeriod"]?["start"] == "2026-12-01T00:00:00.000Z")
            #expect(lines[1]["amount"] == "0" && lines[1]["exact"] == "0.001")
            let trace = try await world.op.call(
                "invoices.trace", ["invoiceId": second["invoiceId"]!, "lineId": "L2"])
            #expect(
                trace["events"]?.arrayValue?.first?["eventId"] == "late-1"
                    && trace["events"]?.arrayValue?.first?["adjustment"] == true)
            // The first day's invoice is as it was.
            #expect(try await world.op.call("invoices.get", ["invoiceId": first["invoiceId"]!]) == first)
        }
    }

    /// Calls racing the period's end: the close waits for every charge stamped inside the period to be durable,
    /// so the invoice holds exactly the period's charges as storage has them afterwards — none left out.
    @Test(arguments: storageBackends("invoices-race", memory: false))
    func closingRightAtTheEnd_missesNoChargeOfThePeriod(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T23:59:59.000Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], plan: Fixture.searchPlan)
            let subscriptionId = world.subscription["subscriptionId"]!
            let agents = try await (0..<8).asyncMap { _ in try await server.connect(token: world.agentToken) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, agent) in agents.enumerated() {
                    group.addTask {
                        for call in 0..<40 {
                            _ = try await agent.call("meter.verify", verifyParams("r\(index)-\(call)"))
                        }
                    }
                }
                // The day ends while the calls are being made, and the period is closed at once.
                try await Task.sleep(for: .milliseconds(20))
                clock.set(Timestamp.parse("2026-12-02T00:00:00.000Z")!)
                let invoice = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
                try await group.waitForAll()
                let usage = try await world.op.call(
                    "usage.summary", ["from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"])
                #expect(invoice["events"]?.int64Value == usage["total"]?["calls"]?.int64Value, "\(invoice) \(usage)")
                let all = try await world.op.call("usage.summary")
                #expect(all["total"]?["calls"] == 320)
            }
        }
    }

    /// A call that arrived before the period's end but had to wait on storage for its pricing state is stamped
    /// when it is priced and queued — after the end — so it is charged in the next period, never in one already
    /// closed without it.
    @Test func aCallWaitingOnStorageAcrossTheEnd_isChargedInTheNextPeriod() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T23:59:00Z")!)
        let store = GatedStore()
        try await TestServer.with(clock: clock, store: store) { server in
            let world = try await BillingPeriodTests.world(
                on: server, timeZone: "UTC", period: ["cadence": "day"], plan: Fixture.searchPlan)
            let subscriptionId = world.subscription["subscriptionId"]!
            store.closeRatingGate()
            let call = Task { try await BillingPeriodTests.call(world.agent, "waiting") }
            await eventually("the call waits for its pricing state") { store.ratingRebuilds == 1 }
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            store.openRatingGate()
            #expect(try await call.value == "0.001")
            #expect(invoice["events"] == 0)
            let closedDay = try await world.op.call(
                "usage.summary", ["from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"])
            #expect(closedDay["total"]?["calls"] == 0, "\(closedDay)")
            #expect(try await world.op.call("usage.summary")["total"]?["calls"] == 1)
        }
    }

    /// Another tenant's operator cannot read, list, trace or close this tenant's invoices and periods.
    @Test func invoicesAreTheirTenantsOnly() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: ["cadence": "day"])
            _ = try await BillingPeriodTests.call(world.agent, "x1")
            clock.set(Timestamp.parse("2026-12-02T00:00:00Z")!)
            let subscriptionId = world.subscription["subscriptionId"]!
            let invoice = try await world.op.call("periods.close", ["subscriptionId": subscriptionId])
            let stranger = try await BillingPeriodTests.world(on: server, timeZone: "UTC", period: ["cadence": "day"])
            let invoiceId = invoice["invoiceId"]!
            #expect(await Self.refusal(stranger.op, "invoices.get", ["invoiceId": invoiceId]) == "NOT_FOUND")
            #expect(
                await Self.refusal(stranger.op, "invoices.trace", ["invoiceId": invoiceId, "lineId": "L1"])
                    == "NOT_FOUND")
            #expect(await Self.refusal(stranger.op, "periods.close", ["subscriptionId": subscriptionId]) == "NOT_FOUND")
            #expect(await Self.refusal(stranger.op, "periods.list", ["subscriptionId": subscriptionId]) == "NOT_FOUND")
            #expect(
                try await stranger.op.call("invoices.list")["invoices"]?.arrayValue?.isEmpty == true)
            #expect(
                await Self.refusal(world.agent, "invoices.get", ["invoiceId": invoiceId]) == "FORBIDDEN",
                "an agent is not an operator")
        }
    }
}
