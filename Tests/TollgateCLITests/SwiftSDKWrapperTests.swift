import Foundation
import Testing
import TollgateJSON
import TollgateTesting

/// `TollgateMCPSwift`: an MCP server built on the official Swift SDK (`Integration/MeteredSwiftServer`), its
/// CallTool handler wrapped with one call, driven over stdio by the official Python client. Needs
/// `TOLLGATE_TEST_MCP_PYTHON`; skipped without it.
@Suite(.enabled(if: mcpPython != nil, "set TOLLGATE_TEST_MCP_PYTHON to run the MCP scenarios"))
struct SwiftSDKWrapperTests {
    @Test func everyCallIsHeldRunAndCharged_aCapRefusalIsAToolResult_andTheSessionIsClosed() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            // Room for four calls at 0.002: the fifth is refused.
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.008", "period": "day"])
            let spool = MCPProxyScenarioTests.temporarySpool()
            let result = try await run(
                mcpPython!,
                [
                    Products.repository.appendingPathComponent("Integration/MCP/swift_sdk_scenario.py").path,
                    Products.path("MeteredSwiftServer"),
                ],
                environment: [
                    "TOLLGATE_TOKEN": world.agentToken, "TOLLGATE_ADDRESS": server.address, "TOLLGATE_SPOOL": spool,
                ], timeoutSeconds: 120)
            #expect(result.status == 0, "\(result.error)")
            #expect(!result.error.contains(world.agentToken), "the token never appears in a log")
            let lines = result.output.split(separator: "\n").compactMap { try? JSONCodec.parse(Array($0.utf8)) }
            #expect(lines.first?["tools"] == ["fail", "lookup", "slow", "summarize"], "\(lines)")
            let calls = lines.filter { $0["tool"] != nil }
            #expect(calls.map { $0["isError"] } == [false, false, false, true, true], "\(lines)")
            #expect(calls.first?["text"] == "found: a")
            // The refusal: a tool result the agent reads, the same the proxy gives.
            #expect(calls.last?["text"]?.stringValue?.contains("BUDGET_EXCEEDED") == true, "\(lines)")
            #expect(calls.last?["structuredContent"]?["dev.tollgate/refusal"]?["reason"] == "BUDGET_EXCEEDED")

            let usage = try await op.call("usage.summary", ["groupBy": ["tool", "model"]])
            let rows = usage["rows"]?.arrayValue ?? []
            #expect(usage["total"]?["calls"] == 4, "\(usage)")
            #expect(rows.first { $0["tool"] == "lookup" }?["calls"] == 2)
            let summarize = rows.first { $0["tool"] == "summarize" }
            #expect(summarize?["model"] == "example-model-1" && summarize?["providerCost"] == "0.0003", "\(rows)")
            #expect(summarize?["inputTokens"] == 12)
            // The failed call is charged as failed: the session counts it among its errors.
            let sessions = try await op.call("sessions.list", ["state": "all"])["sessions"]?.arrayValue ?? []
            #expect(sessions.count == 1 && sessions.first?["state"] == "CLOSED", "\(sessions)")
            let session = try await op.call("session.get", ["sessionId": sessions.first?["sessionId"] ?? .null])
            #expect(session["calls"] == 4 && session["errors"] == 1, "\(session)")
        }
    }

    /// The SDK cancels a handler when its client sends `notifications/cancelled`: the call's hold goes back at once
    /// (not when the server stops), and nothing is charged for it.
    @Test func aCancelledCallGivesItsHoldBack() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await capAgentAtOnePerDay(world, on: server)
            let spool = MCPProxyScenarioTests.temporarySpool()
            let scenario = Task {
                try await run(
                    mcpPython!,
                    [
                        Products.repository.appendingPathComponent("Integration/MCP/cancel_scenario.py").path, "none",
                        server.address, "--", Products.path("MeteredSwiftServer"),
                    ],
                    environment: ["TOLLGATE_TOKEN": world.agentToken, "TOLLGATE_SPOOL": spool], timeoutSeconds: 120)
            }
            // While the client is still connected (it lingers 3 s after the quick call): once the quick call is
            // charged, its price is all the cap counts.
            var spent: [JSONValue] = []
            for _ in 0..<200 {
                let calls = try await op.call("usage.summary")["total"]?["calls"]
                spent.append(try await TollgateCLITests.spent(op) ?? .null)
                if calls == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(spent.last == "0.002", "\(spent)")
            let result = try await scenario.value
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output.contains(#""id": 3"#), "\(result.output)")
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 1)
        }
    }
}
