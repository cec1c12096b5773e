import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `meter.authorize` / `meter.commit` / `meter.release`: holds count against caps, the commit charges the
/// actual usage in place of the hold, and holds end exactly once — released, expired or across a restart.
@Suite struct TwoPhaseTests {
    static func setUp(_ server: TestServer, limit: String = "1") async throws -> (
        Fixture, TollgateConnection, TollgateConnection
    ) {
        let world = try await Fixture.make(on: server)
        let op = try await server.connect(token: world.operatorToken)
        _ = try await op.call(
            "caps.set",
            ["scope": "agent", "scopeId": .string(world.agentId), "limit": .string(limit), "period": "month"])
        return (world, op, try await server.connect(token: world.agentToken))
    }

    static func authorize(_ agent: TollgateConnection, _ key: String, quantity: Int64, ttlMs: Int64? = nil) async throws
        -> JSONValue
    {
        var params: [String: JSONValue] = [
            "tool": "transform", "idempotencyKey": .string(key), "quantity": .integer(quantity),
        ]
        if let ttlMs { params["ttlMs"] = .integer(ttlMs) }
        return try await agent.call("meter.authorize", .object(params))
    }

    @Test func holdsCountAgainstCaps_andTheCommitChargesTheActualUsageInstead() async throws {
        try await TestServer.with { server in
            let (_, op, agent) = try await Self.setUp(server)
            let hold = try await Self.authorize(agent, "a1", quantity: 3)  // 0.75 held
            #expect(hold["held"] == "0.75" && hold["currency"] == "USD")
            let id = try #require(hold["reservationId"]?.string)
            #expect(
                try await Self.authorize(agent, "a1", quantity: 3)["reservationId"]?.string == id, "same key, same hold"
            )
            _ = try await agent.call("meter.verify", verifyParams("v1"))  // 0.25: exactly at the cap
            #expect(await reason { try await agent.call("meter.verify", verifyParams("v2")) } == "BUDGET_EXCEEDED")
            // The work cost less than estimated: 0.25 is charged, 0.5 of the hold comes back.
            let commit = try await agent.call(
                "meter.commit", ["reservationId": .string(id), "quantity": 1, "usage": ["outputTokens": 10]])
            #expect(commit["cost"] == "0.25" && commit["reservationId"]?.string == id && commit["receiptId"] != nil)
            #expect(
                try await agent.call(
                    "meter.commit", ["reservationId": .string(id), "quantity": 1, "usage": ["outputTokens": 10]])[
                        "replayed"] == true)
            #expect(
                await reason { try await agent.call("meter.commit", ["reservationId": .string(id), "quantity": 2]) }
                    == "IDEMPOTENCY_MISMATCH")
            _ = try await agent.call("meter.verify", verifyParams("v3"))
            _ = try await agent.call("meter.verify", verifyParams("v4"))
            #expect(await reason { try await agent.call("meter.verify", verifyParams("v5")) } == "BUDGET_EXCEEDED")
            #expect(try await op.call("usage.summary")["total"]?["cost"] == "1")
            #expect(
                await reason { try await agent.call("meter.release", ["reservationId": .string(id)]) } == "CONFLICT")
        }
    }

    @Test func aCommitOverTheCapIsRefused_andTheHoldStands() async throws {
        try await TestServer.with { server in
            let (_, _, agent) = try await Self.setUp(server)
            let id = try #require(try await Self.authorize(agent, "a1", quantity: 2)["reservationId"]?.string)  // 0.5
            _ = try await agent.call("meter.verify", verifyParams("v1"))
            _ = try await agent.call("meter.verify", verifyParams("v2"))  // 0.5 spent
            #expect(
                await reason { try await agent.call("meter.commit", ["reservationId": .string(id), "quantity": 3]) }
                    == "BUDGET_EXCEEDED")
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("v3")) } == "BUDGET_EXCEEDED",
                "the hold still counts")
            #expect(
                try await agent.call("meter.commit", ["reservationId": .string(id), "quantity": 2])["cost"] == "0.5")
        }
    }

    @Test func releaseGivesTheHoldBack_once() async throws {
        try await TestServer.with { server in
            let (_, _, agent) = try await Self.setUp(server, limit: "0.5")
            let id = try #require(try await Self.authorize(agent, "a1", quantity: 2)["reservationId"]?.string)
            #expect(await reason { try await agent.call("meter.verify", verifyParams("v1")) } == "BUDGET_EXCEEDED")
            #expect(try await agent.call("meter.release", ["reservationId": .string(id)])["released"] == true)
            #expect(
                try await agent.call("meter.release", ["reservationId": .string(id)])["released"] == true,
                "a second release is a no-op")
            _ = try await agent.call("meter.verify", verifyParams("v2"))
            #expect(
                await reason { try await agent.call("meter.commit", ["reservationId": .string(id), "quantity": 1]) }
                    == "CONFLICT")
            #expect(
                await reason { try await agent.call("meter.release", ["reservationId": "rsv_nope"]) } == "NOT_FOUND")
        }
    }

    @Test func anExpiredHoldIsReleasedByTheSweeper() async throws {
        let clock = ManualClock()
        try await TestServer.with(clock: clock, configure: { $0.runtime.sessionSweepMs = 5 }) { server in
            let (_, _, agent) = try await Self.setUp(server, limit: "0.5")
            let hold = try await Self.authorize(agent, "a1", quantity: 2, ttlMs: 1000)
            #expect(hold["expiresAt"]?.string == Timestamp.format(clock.now().addingTimeInterval(1)))
            #expect(await reason { try await agent.call("meter.verify", verifyParams("v1")) } == "BUDGET_EXCEEDED")
            clock.advance(seconds: 2)
            try await Task.sleep(for: .milliseconds(100))
            _ = try await agent.call("meter.verify", verifyParams("v2"))
            #expect(
                await reason {
                    try await agent.call("meter.commit", ["reservationId": hold["reservationId"]!, "quantity": 1])
                } == "CONFLICT")
        }
    }

    @Test func holdsSurviveARestart() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            var server = try await servers.start(storageURL: "sqlite:" + path)
            let (world, _, first) = try await Self.setUp(server, limit: "0.5")
            let id = try #require(try await Self.authorize(first, "a1", quantity: 2)["reservationId"]?.string)
            try await server.stop()

            server = try await servers.start(storageURL: "sqlite:" + path)
            let agent = try await server.connect(token: world.agentToken)
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("v1")) } == "BUDGET_EXCEEDED",
                "held again after the restart")
            #expect(
                try await agent.call("meter.commit", ["reservationId": .string(id), "quantity": 1])["cost"] == "0.25")
            _ = try await agent.call("meter.verify", verifyParams("v2"))
            try await server.stop()
        }
    }

    @Test func onlyAMeteringCredentialMayCommitOrReleaseAHold() async throws {
        try await TestServer.with { server in
            let (world, op, agent) = try await Self.setUp(server)
            let id = try #require(try await Self.authorize(agent, "a1", quantity: 1)["reservationId"])
            let reader = try await op.call(
                "credentials.issue",
                [
                    "agentId": .string(world.agentId), "scopes": ["usage:read"],
                    "ttlSeconds": 3600,
                ])
            let readOnly = try await server.connect(token: reader["token"]!.string!)
            #expect(await reason { try await readOnly.call("meter.commit", ["reservationId": id]) } == "FORBIDDEN")
            #expect(await reason { try await readOnly.call("meter.release", ["reservationId": id]) } == "FORBIDDEN")
            #expect(try await agent.call("meter.release", ["reservationId": id])["released"] == true)
        }
    }
}

/// A session closed while it holds a reservation releases the hold exactly once: the sweeper that runs after
/// the close must find nothing left to release (it once found the session's hold gone and trapped).
@Suite struct SessionCloseWithHoldsTests {
    @Test func closingASessionReleasesItsHoldsOnce_andTheServerLivesOn() async throws {
        let clock = ManualClock()
        try await TestServer.with(clock: clock, configure: { $0.runtime.sessionSweepMs = 5 }) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.5", "period": "day"])
            let agent = try await server.connect(token: world.agentToken)
            let hold = try await agent.call(
                "meter.authorize",
                [
                    "tool": "transform", "idempotencyKey": "h1", "sessionId": "s1",
                    "quantity": 2,
                ])
            #expect(hold["state"] == "held" && hold["held"] == "0.5")
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("v0", extra: ["sessionId": "s2"])) }
                    == "BUDGET_EXCEEDED", "the hold counts against the agent's cap")
            let closed = try await agent.call("session.close", ["sessionId": "s1"])
            #expect(closed["state"] == "CLOSED" && closed["calls"] == 0)
            // Sweeps run (every 5 ms), holds' time passes: nothing is released twice, nothing traps.
            try await Task.sleep(for: .milliseconds(100))
            clock.advance(seconds: 600)
            try await Task.sleep(for: .milliseconds(100))
            let released = try await agent.call("meter.release", ["reservationId": hold["reservationId"]!])
            #expect(released["state"] == "released", "released by the close, not expired later")
            #expect(
                await reason { try await agent.call("meter.commit", ["reservationId": hold["reservationId"]!]) }
                    == "CONFLICT")
            // The whole cap is free again, once: two calls at 0.25 fit, a third does not.
            _ = try await agent.call("meter.verify", verifyParams("v1", extra: ["sessionId": "s2"]))
            _ = try await agent.call("meter.verify", verifyParams("v2", extra: ["sessionId": "s2"]))
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("v3", extra: ["sessionId": "s2"])) }
                    == "BUDGET_EXCEEDED")
        }
    }

    /// A close that comes while a hold in its session is still being stored waits for it, then releases it with
    /// the session's other holds: no hold outlives its session (one that did was released later on a session
    /// scope already forgotten, and trapped).
    @Test func aCloseRacingAHoldBeingStored_releasesItToo() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store, configure: { $0.runtime.sessionSweepMs = 5 }) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            store.closeHoldGate()
            let holding = Task {
                try await agent.call(
                    "meter.authorize", ["tool": "transform", "idempotencyKey": "h1", "sessionId": "s1"])
            }
            await eventually("the hold to reach storage") { store.holdsAtInsert == 1 }
            let closing = Task { try await agent.call("session.close", ["sessionId": "s1"]) }
            try await Task.sleep(for: .milliseconds(50))
            store.openHoldGate()
            let hold = try await holding.value
            #expect(try await closing.value["state"] == "CLOSED")
            try await Task.sleep(for: .milliseconds(100))  // sweeps run: nothing is released twice
            #expect(
                try await agent.call("meter.release", ["reservationId": hold["reservationId"]!])["state"] == "released")
            _ = try await agent.call("meter.verify", verifyParams("after", extra: ["sessionId": "s2"]))
        }
    }
}
