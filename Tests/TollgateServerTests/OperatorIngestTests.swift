import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// An operator with `events:write` sends an agent's usage: charged on the agent's path under its caps, recorded as
/// by the operator's credential, deduplicated with the agent's own events by id, its session events limited to the
/// agent's sessions; without `agentId`, or for another tenant's agent, refused.
@Suite struct OperatorIngestTests {
    static func event(_ id: String, tool: String = "transform", session: String? = nil, at: Date) -> JSONValue {
        var fields: [String: JSONValue] = [
            "eventId": .string(id), "type": "tool_invocation", "tool": .string(tool),
            "occurredAt": .string(Timestamp.format(at)),
        ]
        if let session { fields["sessionId"] = .string(session) }
        return .object(fields)
    }

    @Test(arguments: storageBackends("operator-ingest"))
    func anOperatorSendsAnAgentsUsage_underTheAgentsCaps(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let other = try await Fixture.make(on: server, name: "other")
            let op = try await server.connect(token: world.operatorToken)
            // transform costs 0.25; the agent may spend 0.5 a day.
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.5", "period": "day"])
            let issued = try await op.call("operators.issue", ["name": "pipeline", "scopes": ["events:write"]])
            let pipeline = try await server.connect(token: issued["token"]!.stringValue!)
            let now = clock.now()
            let answer = try await pipeline.call(
                "events.ingest",
                [
                    "agentId": .string(world.agentId), "source": "upload",
                    "events": [Self.event("e-1", at: now), Self.event("e-2", at: now), Self.event("e-3", at: now)],
                ])
            #expect(answer["results"]?.arrayValue?.map { $0["status"] } == ["accepted", "accepted", "rejected"])
            #expect(answer["results"]?.arrayValue?.last?["reason"] == "BUDGET_EXCEEDED", "\(answer)")
            // The agent's own retry of one of them is a duplicate: one namespace of ids.
            let agent = try await server.connect(token: world.agentToken)
            let retried = try await agent.call("events.ingest", ["events": [Self.event("e-1", at: now)]])
            #expect(retried["results"]?.arrayValue?.first?["status"] == "duplicate", "\(retried)")

            let usage = try await op.call("usage.summary", ["groupBy": ["agent", "credential"]])
            let rows = try #require(usage["rows"]?.arrayValue)
            #expect(rows.count == 1 && rows.first?["agent"] == .string(world.agentId), "\(usage)")
            #expect(rows.first?["credential"] == issued["credentialId"] && rows.first?["cost"] == "0.5")

            // Session events reach the agent's sessions only.
            _ = try await agent.call("session.open", ["sessionId": "agent-own"])
            let otherAgent = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "second"])
            let closing = try await pipeline.call(
                "events.ingest",
                [
                    "agentId": otherAgent["agentId"]!,
                    "events": [
                        [
                            "eventId": "close-1", "type": "session", "sessionId": "agent-own",
                            "occurredAt": .string(Timestamp.format(now)), "properties": ["action": "close"],
                        ]
                    ],
                ])
            #expect(closing["results"]?.arrayValue?.first?["status"] == "rejected", "\(closing)")
            #expect(try await op.call("session.get", ["sessionId": "agent-own"])["state"] != "CLOSED")

            // What an operator's batch must say, and what it cannot reach.
            let missing = await rpcError {
                try await pipeline.call("events.ingest", ["events": [Self.event("x-1", at: now)]])
            }
            #expect(missing?.data?["field"] == "agentId", "\(String(describing: missing))")
            #expect(
                await reason {
                    try await pipeline.call(
                        "events.ingest", ["agentId": .string(other.agentId), "events": [Self.event("x-2", at: now)]])
                } == "NOT_FOUND")
            let reader = try await op.call("operators.issue", ["name": "reader", "scopes": ["billing:read"]])
            let refused = await rpcError {
                try await server.connect(token: reader["token"]!.stringValue!).call(
                    "events.ingest", ["agentId": .string(world.agentId), "events": [Self.event("x-3", at: now)]])
            }
            #expect(refused?.reason == "FORBIDDEN" && refused?.message.contains("events:write") == true)
            let otherUsage = try await server.connect(token: other.operatorToken).call("usage.summary", [:])
            #expect(otherUsage["total"]?["calls"] == 0)
        }
    }
}
