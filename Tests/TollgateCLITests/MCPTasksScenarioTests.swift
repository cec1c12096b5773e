import Foundation
import Testing
import TollgateJSON
import TollgateTesting

/// Tool calls answered as tasks (the tasks extension of the 2026-07-28 revision) through the stdio proxy, in front
/// of `Integration/MCP/tasks_server.py` (written to the extension's specification: the official SDK has no server
/// side for tasks yet). Needs `TOLLGATE_TEST_MCP_PYTHON`; skipped without it.
@Suite(.enabled(if: mcpPython != nil, "set TOLLGATE_TEST_MCP_PYTHON to run the MCP scenarios"))
struct MCPTasksScenarioTests {
    static func integration(_ file: String) -> String {
        Products.repository.appendingPathComponent("Integration/MCP/\(file)").path
    }

    @Test func aTaskIsChargedOnceWhenItCompletes_andTheHoldsOfCancelledAndExpiredTasksGoBack() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await capAgentAtOnePerDay(world, on: server)
            // The client stays connected until this file exists.
            let release = try temporaryDirectory().appendingPathComponent("seen")
            let scenario = Task {
                try await MCPProxyScenarioTests.scenario(
                    server, token: world.agentToken, calls: 0, script: Self.integration("tasks_scenario.py"),
                    upstream: [mcpPython!, Self.integration("tasks_server.py")],
                    environment: ["SCENARIO_LINGER_SECONDS": "60", "SCENARIO_UNTIL_FILE": release.path])
            }
            // While the connection is still open: the completed task is charged, and of the three holds only its
            // price is spent — the cancelled task's hold went back when a poll showed it cancelled, the third
            // task's when its TTL (1.5 s) passed without anyone asking.
            var seen: (calls: JSONValue?, spent: JSONValue?) = (nil, nil)
            for _ in 0..<300 {
                let calls = try await op.call("usage.summary")["total"]?["calls"]
                let spent = try await TollgateCLITests.spent(op)
                seen = (calls, spent)
                if calls == 1, spent == "0.002" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(seen.calls == 1 && seen.spent == "0.002", "\(seen)")
            _ = FileManager.default.createFile(atPath: release.path, contents: nil)

            let lines = try await scenario.value
            let statuses = lines.compactMap { $0["result"]?["status"]?.stringValue }
            #expect(statuses.contains("completed") && statuses.contains("cancelled"), "\(lines)")
            #expect(lines.filter { $0["result"]?["resultType"] == "task" }.count == 3, "\(lines)")
            let usage = try await op.call("usage.summary", ["groupBy": ["tool", "model"]])
            #expect(usage["total"]?["calls"] == 1 && usage["total"]?["providerCost"] == "0.0004", "\(usage)")
            #expect(usage["total"]?["outputTokens"] == 120)
            // What the task's result reported, model included, is recorded with the charge.
            #expect(usage["rows"]?.arrayValue?.first?["model"] == "report-model-1", "\(usage)")
            let caps = try await op.call("caps.list")["caps"]?.arrayValue ?? []
            #expect(caps.first?["spent"] == "0.002")
        }
    }
}
