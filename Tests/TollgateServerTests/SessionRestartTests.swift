import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// An open session across a restart, on every durable backend: its record equals its ledger, its cap is not
/// crossed, and its amounts keep their currency. The clock moves on at every reading, as a busy server's
/// does, which is what once let a session's first call be stamped before the session's own opening.
@Suite struct SessionRestartTests {
    static var backends: [String] { storageBackends("restart", memory: false) }

    /// `t` costs 0.01 a call; `s` 0.001.
    static let plan: JSONValue = [
        "name": "restart", "currency": "EUR",
        "charges": [["strategy": "per_tool", "rates": ["t": "0.01", "s": "0.001", "*": "0.002"]]],
    ]

    static func start(_ servers: TestServer.Scope, _ storageURL: String, clock: ManualClock) async throws -> TestServer
    {
        try await servers.start(storageURL: storageURL, clock: clock) { $0.runtime.sessionSweepMs = 5 }
    }

    @Test(arguments: backends)
    func openSession_afterARestart_equalsItsLedger_andKeepsItsCurrency(storageURL: String) async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock(Date(), stepPerReadMs: 1)
            var server = try await Self.start(servers, storageURL, clock: clock)
            let world = try await Fixture.make(on: server, name: "restart-\(UUID().uuidString)", plan: Self.plan)
            var agent = try await server.connect(token: world.agentToken)
            for n in 1...5 {
                _ = try await agent.call("meter.verify", verifyParams("v\(n)", tool: "s", extra: ["sessionId": "s1"]))
            }
            _ = try await agent.call("session.open", ["sessionId": "quiet"])
            try await server.stop()

            server = try await Self.start(servers, storageURL, clock: clock)
            do {
                agent = try await server.connect(token: world.agentToken)
                let op = try await server.connect(token: world.operatorToken)
                let live = try await agent.call("session.get", ["sessionId": "s1"])
                #expect(live["calls"] == 5 && live["cost"] == "0.005" && live["currency"] == "EUR")
                let quiet = try await agent.call("session.get", ["sessionId": "quiet"])
                #expect(
                    quiet["cost"] == "0" && quiet["currency"] == "EUR",
                    "money comes with its currency, even before a call")
                let listed = try await op.call("sessions.list")["sessions"]?.arrayValue ?? []
                #expect(listed.count == 2 && listed.allSatisfy { $0["currency"] == "EUR" })
                let usage = try await op.call("usage.summary", ["sessionId": "s1"])
                #expect(usage["total"]?["calls"] == 5 && usage["total"]?["cost"] == "0.005")
                let closed = try await agent.call("session.close", ["sessionId": "s1"])
                #expect(closed["calls"] == 5 && closed["cost"] == "0.005" && closed["currency"] == "EUR")
                // s1's alert, not the idle `quiet` session's, which the sweep may close at any moment. Alerts are
                // stored after the answer, off the tenant's turn: under load that can take a moment.
                var s1: JSONValue?
                await eventually("s1's session_closed alert is stored") {
                    let alerts =
                        (try? await op.call("alerts.list", ["kinds": ["session_closed"]]))?["alerts"]?.arrayValue ?? []
                    s1 = alerts.first { $0["sessionId"] == "s1" }
                    return s1 != nil
                }
                #expect(s1?["calls"] == 5 && s1?["cost"] == "0.005", "\(String(describing: s1))")
                let stored = try await agent.call("session.get", ["sessionId": "s1"])
                #expect(stored["calls"] == 5 && stored["currency"] == "EUR", "a closed session keeps its currency")
            } catch {
                Issue.record(error)
            }
            try await server.stop()
        }
    }

    @Test(arguments: backends)
    func sessionCap_isNotCrossedByARestart(storageURL: String) async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock(Date(), stepPerReadMs: 1)
            var server = try await Self.start(servers, storageURL, clock: clock)
            let world = try await Fixture.make(on: server, name: "restart-cap-\(UUID().uuidString)", plan: Self.plan)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "session", "scopeId": "capped", "limit": "0.05", "period": "lifetime"])
            _ = try await op.call(
                "caps.set",
                [
                    "scope": "agent", "scopeId": .string(world.agentId), "limit": "0.08",
                    "period": "session",
                ])
            var agent = try await server.connect(token: world.agentToken)
            for n in 1...5 {
                _ = try await agent.call(
                    "meter.verify", verifyParams("c\(n)", tool: "t", extra: ["sessionId": "capped"]))
            }
            for n in 1...8 {
                _ = try await agent.call(
                    "meter.verify", verifyParams("p\(n)", tool: "t", extra: ["sessionId": "per-session"]))
            }
            #expect(
                await reason {
                    try await agent.call("meter.verify", verifyParams("c6", tool: "t", extra: ["sessionId": "capped"]))
                }
                    == "BUDGET_EXCEEDED")
            try await server.stop()

            server = try await Self.start(servers, storageURL, clock: clock)
            do {
                agent = try await server.connect(token: world.agentToken)
                #expect(
                    await reason {
                        try await agent.call(
                            "meter.verify", verifyParams("c7", tool: "t", extra: ["sessionId": "capped"]))
                    }
                        == "BUDGET_EXCEEDED", "the session cap still counts all five calls")
                #expect(
                    await reason {
                        try await agent.call(
                            "meter.verify", verifyParams("p9", tool: "t", extra: ["sessionId": "per-session"]))
                    }
                        == "BUDGET_EXCEEDED", "so does the agent's per-session cap")
                // Holds count too: two holds fill what is left of a fresh session's cap, across a restart.
                let hold = try await agent.call(
                    "meter.authorize",
                    [
                        "tool": "t", "idempotencyKey": "h1", "sessionId": "fresh",
                        "quantity": 8,
                    ])
                #expect(hold["held"] == "0.08")
            } catch {
                Issue.record(error)
            }
            try await server.stop()

            server = try await Self.start(servers, storageURL, clock: clock)
            do {
                agent = try await server.connect(token: world.agentToken)
                #expect(
                    await reason {
                        try await agent.call(
                            "meter.verify", verifyParams("f1", tool: "t", extra: ["sessionId": "fresh"]))
                    }
                        == "BUDGET_EXCEEDED", "the hold is held again after the restart")
            } catch {
                Issue.record(error)
            }
            try await server.stop()
        }
    }
}
