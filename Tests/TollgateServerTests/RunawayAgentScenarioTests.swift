import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The weekend retry loop, end to end over the wire on SQLite: an agent keeps retrying a failing expensive
/// tool; its session cap stops it at exactly the cap; the operator watching sees the warning and the block as
/// they happen; and the closed session's final record adds up to the receipts the agent was given.
@Suite struct RunawayAgentScenarioTests {
    @Test func aRetryLoopIsStoppedAtExactlyItsSessionCap() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString).sqlite")
            .path
        try await TestServer.with(storageURL: "sqlite:" + path) { server in
            let plan: JSONValue = [
                "name": "toolkit", "currency": "USD",
                "charges": [
                    [
                        "strategy": "per_tool",
                        "rates": ["transform_schema": "0.10", "validate_credentials": "0.001", "*": "0.002"],
                    ]
                ],
            ]
            let world = try await Fixture.make(on: server, plan: plan)
            let op = try await server.connect(token: world.operatorToken)
            let inbox = AlertInbox(op)
            _ = try await op.call("alerts.subscribe", ["kinds": ["cap_warning", "cap_reached", "session_closed"]])
            _ = try await op.call(
                "caps.set",
                [
                    "scope": "agent", "scopeId": .string(world.agentId), "limit": "5",
                    "period": "session", "warnAtPercent": 80,
                ])

            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call(
                "session.open", ["sessionId": "ses_weekend", "metadata": ["job": "schema import"]])
            var receipts: [Money] = []
            var refusal: RPCError?
            var attempt = 0
            while refusal == nil, attempt < 1000 {
                attempt += 1
                do {
                    let receipt = try await agent.call(
                        "meter.verify",
                        verifyParams(
                            "retry-\(attempt)", tool: "transform_schema",
                            extra: ["sessionId": "ses_weekend", "usage": ["status": "FAILED", "durationMs": 840]]))
                    receipts.append(try Money(decimal: receipt["cost"]!.string!))
                    if receipts.count == 40 {
                        // 4.00 of 5.00: the operator hears about it now, while the agent is still running.
                        let warning = try await inbox.next("cap_warning")
                        #expect(
                            warning["spent"] == "4" && warning["limit"] == "5" && warning["sessionId"] == "ses_weekend")
                    }
                } catch let error as RPCError {
                    refusal = error
                }
            }
            // Stopped at exactly the cap: 50 calls of 0.10, the 51st refused.
            #expect(receipts.count == 50)
            let spent = try receipts.reduce(Money.zero) { try $0.adding($1) }
            #expect(spent == (try Money(decimal: "5")))
            let refused = try #require(refusal)
            #expect(refused.reason == "BUDGET_EXCEEDED")
            #expect(
                refused.data?["spent"] == "5" && refused.data?["requested"] == "0.1" && refused.data?["limit"] == "5")
            #expect(refused.data?["hint"]?.string?.isEmpty == false)
            let reached = try await inbox.next("cap_reached")
            #expect(reached["spent"] == "5" && reached["sessionId"] == "ses_weekend")
            // More retries stay refused and raise nothing new.
            for n in 0..<5 {
                #expect(
                    await reason {
                        try await agent.call(
                            "meter.verify",
                            verifyParams(
                                "again-\(n)", tool: "transform_schema",
                                extra: ["sessionId": "ses_weekend"]))
                    } == "BUDGET_EXCEEDED")
            }

            let record = try await op.call("session.close", ["sessionId": "ses_weekend", "outcome": "FAILED"])
            #expect(record["calls"] == 50 && record["errors"] == 50 && record["durationMs"] == 42_000)
            #expect(record["cost"]?.string == spent.decimalString && record["outcome"] == "FAILED")
            let closed = try await inbox.next("session_closed")
            #expect(closed["cost"] == record["cost"] && closed["calls"] == 50)
            let usage = try await op.call("usage.summary", ["sessionId": "ses_weekend"])
            #expect(usage["total"]?["cost"]?.string == spent.decimalString)
            #expect(inbox.all.isEmpty, "one warning, one block, one closed session: nothing twice")
        }
    }
}
