import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Sessions over the wire: opened, billed, idle, closed by timeout or explicitly, with a final record that
/// adds up to the receipts; kept across a restart; each agent sees only its own.
@Suite struct SessionTests {
    static func start(_ servers: TestServer.Scope, clock: ManualClock, storageURL: String = "memory:") async throws
        -> TestServer
    {
        try await servers.start(storageURL: storageURL, clock: clock) { $0.runtime.sessionSweepMs = 5 }
    }

    @Test func lifecycle_idle_timeout_andTheFinalRecordAddsUpToTheReceipts() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock()
            let server = try await Self.start(servers, clock: clock)
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let inbox = AlertInbox(op)
            _ = try await op.call("alerts.subscribe", ["kinds": ["session_closed"]])
            let agent = try await server.connect(token: world.agentToken)

            let opened = try await agent.call("session.open", ["sessionId": "ses_a", "metadata": ["task": "import"]])
            #expect(opened["state"] == "ACTIVE" && opened["sessionId"] == "ses_a")
            var receipts: [String] = []
            for (n, tool) in ["transform", "search", "transform"].enumerated() {
                let usage: JSONValue = [
                    "inputTokens": 100, "outputTokens": 10, "durationMs": 5, "providerCost": "0.01",
                    "status": n == 1 ? "FAILED" : "SUCCESS",
                ]
                let receipt = try await agent.call(
                    "meter.verify", verifyParams("k\(n)", tool: tool, extra: ["sessionId": "ses_a", "usage": usage]))
                receipts.append(receipt["cost"]!.string!)
            }
            var live = try await agent.call("session.get", ["sessionId": "ses_a"])
            #expect(live["state"] == "ACTIVE" && live["calls"] == 3 && live["cost"] == "0.501" && live["errors"] == 1)
            #expect(live["metadata"] == ["task": "import"])

            clock.advance(seconds: 61)
            live = try await agent.call("session.get", ["sessionId": "ses_a"])
            #expect(live["state"] == "IDLE")
            _ = try await agent.call(
                "meter.verify", verifyParams("k3", tool: "transform", extra: ["sessionId": "ses_a"]))
            receipts.append("0.25")
            let lastCall = clock.now()
            #expect(try await agent.call("session.get", ["sessionId": "ses_a"])["state"] == "ACTIVE")

            clock.advance(seconds: 3600)
            let closed = try await inbox.next("session_closed")
            let total = try receipts.reduce(Money.zero) { try $0.adding(Money(decimal: $1)) }
            #expect(closed["sessionId"] == "ses_a" && closed["outcome"] == "TIMED_OUT" && closed["state"] == "CLOSED")
            #expect(closed["calls"] == 4 && closed["cost"]?.string == total.decimalString && closed["errors"] == 1)
            #expect(closed["inputTokens"] == 300 && closed["providerCost"] == "0.03" && closed["currency"] == "USD")
            #expect(closed["closedAt"]?.string == Timestamp.format(lastCall.addingTimeInterval(3600)))

            let after = try await agent.call("session.get", ["sessionId": "ses_a"])
            #expect(after["state"] == "CLOSED" && after["cost"]?.string == total.decimalString)
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("k4", extra: ["sessionId": "ses_a"])) }
                    == "CONFLICT")
            #expect(await reason { try await agent.call("session.close", ["sessionId": "ses_a"]) } == "CONFLICT")
            let listed = try await op.call("alerts.list", ["kinds": ["session_closed"]])
            #expect(listed["alerts"] == .array([closed]))
            try await server.stop()
        }
    }

    @Test func explicitClose_waitsForCallsInFlight_soTheRecordIsComplete() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store, configure: { $0.runtime.sessionSweepMs = 5 }) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("k0", extra: ["sessionId": "ses_b"]))
            store.closeGate()
            let inFlight = Task {
                try await agent.call("meter.verify", verifyParams("k1", extra: ["sessionId": "ses_b"]))
            }
            await eventually("the call to reach the ledger") { store.commitsStarted >= 2 }
            let closing = Task {
                try await agent.call("session.close", ["sessionId": "ses_b", "outcome": "COMPLETED"])
            }
            try await Task.sleep(for: .milliseconds(100))
            // No new call gets in once the close has begun.
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("k2", extra: ["sessionId": "ses_b"])) }
                    == "CONFLICT")
            store.openGate()
            #expect(try await inFlight.value["cost"] == "0.25")
            let record = try await closing.value
            #expect(
                record["state"] == "CLOSED" && record["outcome"] == "COMPLETED" && record["calls"] == 2
                    && record["cost"] == "0.5")
        }
    }

    @Test func theServerNamesASessionForCallsWithoutOne_andAgentsSeeOnlyTheirOwn() async throws {
        try await TestServer.scope { servers in
            let server = try await Self.start(servers, clock: ManualClock())
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let other = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "other"])
            let credential = try await op.call("credentials.issue", ["agentId": other["agentId"]!, "ttlSeconds": 3600])
            let agent = try await server.connect(token: world.agentToken)
            let stranger = try await server.connect(token: credential["token"]!.string!)

            let receipt = try await agent.call("meter.verify", verifyParams("k1"))
            let session = try #require(receipt["sessionId"]?.string)
            #expect(session.hasPrefix("ses_"))
            #expect(try await agent.call("session.get", ["sessionId": .string(session)])["calls"] == 1)
            #expect(try await op.call("session.get", ["sessionId": .string(session)])["calls"] == 1)
            #expect(
                await reason { try await stranger.call("session.get", ["sessionId": .string(session)]) } == "NOT_FOUND")
            #expect(
                await reason { try await stranger.call("session.close", ["sessionId": .string(session)]) }
                    == "NOT_FOUND")
            #expect(
                await reason {
                    try await stranger.call("meter.verify", verifyParams("s1", extra: ["sessionId": .string(session)]))
                } == "FORBIDDEN")
            #expect(await reason { try await agent.call("session.get", ["sessionId": "ses_none"]) } == "NOT_FOUND")
            let listed = try await op.call("sessions.list")
            #expect(
                listed["sessions"].map { value -> Bool in
                    guard case .array(let rows) = value else { return false }
                    return rows.contains { $0["sessionId"]?.string == session }
                } == true)
            try await server.stop()
        }
    }

    @Test func openSessionsSurviveARestart() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock()
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            var server = try await Self.start(servers, clock: clock, storageURL: "sqlite:" + path)
            let world = try await Fixture.make(on: server)
            var agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("k1", extra: ["sessionId": "ses_r"]))
            _ = try await agent.call("meter.verify", verifyParams("k2", extra: ["sessionId": "ses_r"]))
            try await server.stop()

            server = try await Self.start(servers, clock: clock, storageURL: "sqlite:" + path)
            agent = try await server.connect(token: world.agentToken)
            let live = try await agent.call("session.get", ["sessionId": "ses_r"])
            #expect(live["state"] == "ACTIVE" && live["calls"] == 2 && live["cost"] == "0.5")
            _ = try await agent.call("meter.verify", verifyParams("k3", extra: ["sessionId": "ses_r"]))
            let record = try await agent.call("session.close", ["sessionId": "ses_r", "outcome": "FAILED"])
            #expect(record["calls"] == 3 && record["cost"] == "0.75" && record["outcome"] == "FAILED")
            try await server.stop()
        }
    }

    @Test func tenantsSetTheirOwnTimeouts() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock()
            let server = try await Self.start(servers, clock: clock)
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let set = try await op.call("sessions.configure", ["idleAfterMs": 5000, "sessionTimeoutMs": 20000])
            #expect(set == ["idleAfterMs": 5000, "sessionTimeoutMs": 20000])
            #expect(
                await rpcError { try await op.call("sessions.configure", ["idleAfterMs": 30000]) }?.data?["field"]
                    == "idleAfterMs")
            let inbox = AlertInbox(op)
            _ = try await op.call("alerts.subscribe", ["kinds": ["session_closed"]])
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("k1", extra: ["sessionId": "ses_t"]))
            clock.advance(seconds: 6)
            #expect(try await agent.call("session.get", ["sessionId": "ses_t"])["state"] == "IDLE")
            clock.advance(seconds: 15)
            #expect(try await inbox.next("session_closed")["sessionId"] == "ses_t")
            try await server.stop()
        }
    }

    @Test func projectedCost_scalesTheCostSoFarToTheAgentsTypicalSessionLength() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock()
            let server = try await Self.start(servers, clock: clock)
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("session.open", ["sessionId": "ses_first"])
            _ = try await agent.call("meter.verify", verifyParams("k0", extra: ["sessionId": "ses_first"]))
            #expect(
                try await agent.call("session.get", ["sessionId": "ses_first"])["projectedCost"] == nil,
                "nothing to learn from yet")
            clock.advance(seconds: 100)
            _ = try await agent.call("session.close", ["sessionId": "ses_first"])  // this agent's sessions last 100 s
            _ = try await agent.call("session.open", ["sessionId": "ses_next"])
            _ = try await agent.call("meter.verify", verifyParams("k1", extra: ["sessionId": "ses_next"]))
            clock.advance(seconds: 25)
            // 0.25 in 25 s, at that rate for 100 s: 1.00.
            #expect(try await agent.call("session.get", ["sessionId": "ses_next"])["projectedCost"] == "1")
            clock.advance(seconds: 100)
            #expect(
                try await agent.call("session.get", ["sessionId": "ses_next"])["projectedCost"] == "0.25",
                "longer than typical: what it cost")
            // Usage by session, as the operator sees it.
            let op = try await server.connect(token: world.operatorToken)
            let bySession = try await op.call("usage.summary", ["groupBy": ["session"]])
            #expect(
                bySession["rows"] == [
                    [
                        "session": "ses_first", "calls": 1, "quantity": 1, "inputTokens": 0, "outputTokens": 0,
                        "cost": "0.25", "providerCost": "0", "retries": 0,
                    ],
                    [
                        "session": "ses_next", "calls": 1, "quantity": 1, "inputTokens": 0, "outputTokens": 0,
                        "cost": "0.25", "providerCost": "0", "retries": 0,
                    ],
                ])
            try await server.stop()
        }
    }
}
