import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The velocity alert and the margin guard's three levels.
@Suite struct GuardTests {
    func call(_ agent: TollgateConnection, _ key: String, session: String = "ses_g", providerCost: String = "0")
        async throws -> JSONValue
    {
        try await agent.call(
            "meter.verify",
            verifyParams(
                key,
                extra: [
                    "sessionId": .string(session),
                    "usage": ["providerCost": .string(providerCost)],
                ]))
    }

    @Test func velocity_firesOnceWhenAnAgentRunsAtTripleItsTrailingAverage() async throws {
        try await TestServer.scope { servers in
            let clock = ManualClock(Date(timeIntervalSince1970: 1_795_000_020))
            let server = try await servers.start(clock: clock) {
                $0.runtime.guards.velocityWindowMinutes = 10
                $0.runtime.guards.velocityMinCallsPerMinute = 5
            }
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let inbox = AlertInbox(op)
            _ = try await op.call("alerts.subscribe", ["kinds": ["velocity"]])
            let agent = try await server.connect(token: world.agentToken)
            // Ten quiet minutes at 2 calls each: an average of 2 a minute.
            for minute in 0..<10 {
                for n in 0..<2 { _ = try await call(agent, "q\(minute)-\(n)") }
                clock.advance(seconds: 60)
            }
            // Then a runaway minute: the 7th call is above 3 × 2.
            for n in 0..<12 { _ = try await call(agent, "r\(n)") }
            let alert = try await inbox.next("velocity")
            #expect(
                alert["agentId"]?.string == world.agentId && alert["callsThisMinute"] == 7
                    && alert["averagePerMinute"] == "2.00")
            try await Task.sleep(for: .milliseconds(100))
            #expect(inbox.all.isEmpty, "once per crossing, not per call")
            try await server.stop()
        }
    }

    @Test func marginGuard_alertsThenThrottlesThenBlocks() async throws {
        let clock = ManualClock()
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let inbox = AlertInbox(op)
            _ = try await op.call("alerts.subscribe", ["kinds": ["margin_guard"]])
            let agent = try await server.connect(token: world.agentToken)

            _ = try await call(agent, "k1", providerCost: "0.30")  // earned 0.25, spent 0.30: 120 % → L1
            let first = try await inbox.next("margin_guard")
            #expect(
                first["level"] == 1 && first["action"] == "alert" && first["revenue"] == "0.25"
                    && first["providerCost"] == "0.3")
            _ = try await call(agent, "k2", providerCost: "0.35")  // 0.50 vs 0.65: 130 % → L2
            // At L2 the first call of the second passes: 0.75 vs 1.00.
            _ = try await call(agent, "k3", providerCost: "0.35")
            let limited = try #require(await rpcError { try await call(agent, "k4") })
            #expect(limited.reason == "RATE_LIMITED" && limited.data?["retryAfterMs"] == 1000)
            clock.advance(seconds: 1)
            _ = try await call(agent, "k5", providerCost: "0.60")  // 1.00 vs 1.60: 160 % → L3
            #expect(await reason { try await call(agent, "k6") } == "CONFLICT")
            // The customer's month is at L3 too: a fresh session of the same customer is blocked as well.
            #expect(await reason { try await call(agent, "k7", session: "ses_other") } == "CONFLICT")
            // One alert per level and scope, as each was first reached.
            try await Task.sleep(for: .milliseconds(100))
            var seen = [first]
            while let next = try? await inbox.next("margin_guard", withinMs: 200) { seen.append(next) }
            let levels = seen.compactMap { alert -> String? in
                guard let level = alert["level"]?.int64Value, let scope = alert["scope"]?.string else { return nil }
                return "\(scope) L\(level)"
            }.sorted()
            #expect(levels == ["customer L1", "customer L2", "customer L3", "session L1", "session L2", "session L3"])
        }
    }
}
