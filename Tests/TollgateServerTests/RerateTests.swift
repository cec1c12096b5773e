import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `usage.rerate`: a period rated again under another plan version, line by line; nothing changes unless applied,
/// and then each difference is one adjustment, with its provenance, however often it is applied.
@Suite struct RerateTests {
    static let now = Timestamp.parse("2026-12-15T12:00:00.000Z")!

    @Test(arguments: storageBackends("rerate"))
    func aPeriod_ratedAgain_showsEachDifference_andAppliesItOnce(storageURL: String) async throws {
        let server = try await TestServer.start(storageURL: storageURL, clock: ManualClock(Self.now))
        do {
            let world = try await Fixture.make(on: server, name: "rerate-\(UUID().uuidString)")
            let agent = try await server.connect(token: world.agentToken)
            let occurred = JSONValue.string(Timestamp.format(Self.now))
            let events: [JSONValue] = (0..<3).map {
                [
                    "eventId": .string("r\($0)"), "type": "tool_invocation", "tool": "search", "occurredAt": occurred,
                    "sessionId": "job",
                ]
            }
            _ = try await agent.call("events.ingest", ["events": .array(events)])
            _ = try await agent.call(
                "meter.verify", ["tool": "transform", "idempotencyKey": "v1", "sessionId": "job"])
            let op = try await server.connect(token: world.operatorToken)
            // Version 2: search costs twice as much, transform the same.
            _ = try await op.call(
                "plans.put",
                [
                    "name": "search", "currency": "USD",
                    "charges": [
                        ["strategy": "per_tool", "rates": ["search": "0.002", "transform": "0.25", "*": "0.002"]]
                    ],
                ])
            let period: [String: JSONValue] = [
                "customerId": .string(world.customerId), "from": "2026-12-01T00:00:00Z", "to": "2027-01-01T00:00:00Z",
                "plan": "search@2",
            ]
            let preview = try await op.call("usage.rerate", .object(period))
            #expect(preview["events"] == 4 && preview["changed"] == 3, "\(preview)")
            #expect(preview["recorded"] == "0.253" && preview["rerated"] == "0.256" && preview["difference"] == "0.003")
            let lines = preview["lines"]?.arrayValue ?? []
            #expect(
                Set(lines.map { $0["eventId"] }) == ["r0", "r1", "r2"]
                    && lines.allSatisfy { $0["difference"] == "0.001" })
            #expect(try await op.call("usage.summary")["total"]?["cost"] == "0.253", "a preview changes nothing")

            var apply = period
            apply["apply"] = true
            await #expect(throws: RPCError.self, "the events' session is still open") {
                _ = try await op.call("usage.rerate", .object(apply))
            }
            _ = try await agent.call("session.close", ["sessionId": "job"])
            let applied = try await op.call("usage.rerate", .object(apply))
            #expect(applied["applied"] == true && applied["changed"] == 3)
            let usage = try await op.call("usage.summary")
            #expect(usage["total"]?["cost"] == "0.256" && usage["total"]?["calls"] == 4, "\(usage)")
            // Applied again, or previewed again: nothing is left to adjust.
            _ = try await op.call("usage.rerate", .object(apply))
            #expect(try await op.call("usage.summary")["total"]?["cost"] == "0.256")
            let again = try await op.call("usage.rerate", .object(period))
            #expect(again["changed"] == 0 && again["recorded"] == "0.256", "\(again)")
            // Each adjustment says what it adjusted, and why.
            let receipt = lines.first { $0["eventId"] == "r0" }?["receiptId"]?.stringValue ?? ""
            let adjustment = try await op.call(
                "events.get", ["eventId": .string("rerate:\(receipt):\(world.planId)@2")])
            #expect(adjustment["type"] == "adjustment" && adjustment["source"] == "rerate", "\(adjustment)")
            #expect(adjustment["context"]?["price"] == "0.001" && adjustment["context"]?["quantity"] == 0)

            // A plan in another currency cannot re-rate a period charged in USD.
            _ = try await op.call(
                "plans.put",
                ["name": "euro", "currency": "EUR", "charges": [["strategy": "per_tool", "rates": ["*": "1"]]]])
            var euro = period
            euro["plan"] = "euro@1"
            do {
                _ = try await op.call("usage.rerate", .object(euro))
                Issue.record("a plan in another currency re-rated the period")
            } catch let error as RPCError {
                #expect(error.reason == "VALIDATION_FAILED" && error.data?["field"] == "plan")
            }
            // Another tenant's operator cannot read this customer's period.
            let other = try await Fixture.make(on: server, name: "rerate-other-\(UUID().uuidString)")
            let stranger = try await server.connect(token: other.operatorToken)
            do {
                _ = try await stranger.call("usage.rerate", .object(period))
                Issue.record("another tenant re-rated the period")
            } catch let error as RPCError {
                #expect(error.reason == "NOT_FOUND", "\(error)")
            }
        } catch {
            Issue.record(error)
        }
        try await server.stop()
    }
}
