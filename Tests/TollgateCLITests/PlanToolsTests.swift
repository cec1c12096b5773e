import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON

/// `tollgate plans simulate`, `plans diff` and `subscriptions swap`, run as an operator would.
@Suite struct PlanToolsTests {
    @Test func simulate_printsTheInvoicePreviewLineByLine() async throws {
        let plan = Products.repository.appendingPathComponent("Config/plans/pattern-2-session-bundle.json").path
        let events = Products.repository.appendingPathComponent("Config/events/pattern-2-sample.jsonl").path
        let result = try await run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        }
        // Session s1: 5.00 + 20 calls over the bundle × 0.05; session s2: 5.00. Output tokens: 121,000 × 0.000002.
        #expect(
            lines == [
                "invoice preview: session-bundle, 4 events, USD", "charges[0] session_bundle 11.00",
                "charges[1] token_multiplier 0.24", "total 11.24",
            ])
        let json = try await run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events, "--json"])
        let parsed = try JSONCodec.parse(json.output.trimmingCharacters(in: .whitespacesAndNewlines))
        guard case .array(let previewLines)? = parsed["lines"] else {
            Issue.record("no lines in \(parsed)")
            return
        }
        #expect(previewLines[1]["exact"] == "0.242")
        #expect(parsed["total"] == "11.24")
    }

    @Test func simulate_namesTheBadLineOrField() async throws {
        let directory = try temporaryDirectory()
        let plan = Products.repository.appendingPathComponent("Config/plans/pattern-2-session-bundle.json").path
        let events = directory.appendingPathComponent("events.jsonl")
        try Data("{\"tool\":\"a\"}\n{\"tool\":\"a\",\"quantity\":0}\n".utf8).write(to: events)
        let result = try await run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events.path])
        #expect(result.status != 0)
        #expect(result.error.contains("events.jsonl:2: quantity"))
        let badPlan = directory.appendingPathComponent("plan.json")
        try Data(
            (#"{"name":"p","currency":"USD","charges":[{"strategy":"graduated","tiers":[{"upTo":5,"rate":"1"},"#
                + #"{"upTo":5,"rate":"1"},{"rate":"1"}]}]}"#).utf8
        ).write(to: badPlan)
        let refused = try await run(
            Products.path("tollgate"), ["plans", "simulate", badPlan.path, "--events", events.path])
        #expect(refused.status != 0)
        #expect(refused.error.contains("charges[0].tiers[1].upTo"))
    }

    @Test func diffAndSwap_againstARunningServer() async throws {
        let directory = try temporaryDirectory()
        let server = try await ServerProcess.start(
            directory: directory,
            environment: [
                "TOLLGATE_STORAGE_URL": "sqlite:cli.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
            ])
        func tollgate(_ arguments: [String], token: String) async throws -> String {
            let result = try await run(
                Products.path("tollgate"), arguments + ["--token", token, "--address", server.address])
            #expect(result.status == 0, "\(arguments): \(result.error)")
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let op = try await tollgate(
            ["tenants", "create", "acme", "--get", "operatorToken"], token: "process-test-root-token")
        let customer = try await tollgate(["customers", "create", "C", "--get", "customerId"], token: op)
        let v1 = directory.appendingPathComponent("v1.json")
        let v2 = directory.appendingPathComponent("v2.json")
        try Data(
            (#"{"name":"search","currency":"USD","charges":[{"strategy":"per_tool","rates":{"search":"0.001","#
                + #""*":"0.002"}}]}"#).utf8
        ).write(to: v1)
        try Data(
            (#"{"name":"search","currency":"USD","charges":[{"strategy":"per_tool","rates":{"search":"0.0015","#
                + #""*":"0.002","new":"1"}}]}"#).utf8
        ).write(to: v2)
        let planId = try await tollgate(["plans", "put", v1.path, "--get", "planId"], token: op)
        #expect(try await tollgate(["plans", "put", v2.path, "--get", "version"], token: op) == "2")
        let diff = try await tollgate(["plans", "diff", planId, "1", "2"], token: op)
        #expect(
            diff == """
                charges[0].rates.new: (absent) → "1"
                charges[0].rates.search: "0.001" → "0.0015"
                """)
        let subscription = try await tollgate(
            [
                "subscriptions", "create", "--customer", customer, "--plan", planId, "--version", "1",
                "--get", "subscriptionId",
            ], token: op)
        #expect(
            try await tollgate(
                ["subscriptions", "swap", "--subscription", subscription, "--get", "version"], token: op)
                == "2")
        // As an agent: the prices of the plan now in force, and nothing recorded by asking.
        let team = try await tollgate(["teams", "create", "--customer", customer, "T", "--get", "teamId"], token: op)
        let agent = try await tollgate(["agents", "create", "--team", team, "a", "--get", "agentId"], token: op)
        let agentToken = try await tollgate(["credentials", "issue", "--agent", agent, "--get", "token"], token: op)
        let quote = try JSONCodec.parse(
            Array(
                try await tollgate(
                    ["meter", "quote", "--tool", "search", "--tool", "new", "--json"], token: agentToken
                )
                .utf8))
        #expect(quote["prices"]?.arrayValue?.map { $0["amount"] } == ["0.0015", "1"], "\(quote)")
        #expect(try await tollgate(["usage", "summary", "--json"], token: op).contains(#""calls":0"#))
        // A customer in Paris billed weekly from Fridays, and a bad zone refused naming the field.
        let parisian = try await tollgate(
            ["customers", "create", "P", "--time-zone", "Europe/Paris", "--get", "customerId"], token: op)
        let weekly = try JSONCodec.parse(
            Array(
                try await tollgate(
                    [
                        "subscriptions", "create", "--customer", parisian, "--plan", planId, "--period", "week",
                        "--anchor-weekday", "friday", "--json",
                    ], token: op
                ).utf8))
        #expect(weekly["period"] == ["cadence": "week", "anchorWeekday": "friday", "timeZone": "Europe/Paris"])
        let refused = try await run(
            Products.path("tollgate"),
            ["customers", "create", "X", "--time-zone", "Paris", "--token", op, "--address", server.address])
        #expect(refused.status != 0 && refused.error.contains("timeZone"), "\(refused.error)")
        let stopped = await server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
    }
}

/// `tollgate alerts tail` stays connected and prints alerts as they happen; `sessions` and `caps list` show
/// what the server holds.
@Suite struct SessionCommandsTests {
    @Test func alertsTail_printsAlertsAsTheyHappen_andSessionCommandsWork() async throws {
        let directory = try temporaryDirectory()
        let server = try await ServerProcess.start(
            directory: directory,
            environment: [
                "TOLLGATE_STORAGE_URL": "sqlite:cli.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
            ])
        let setup = try await ServerProcessTests().setUpAgent(address: server.address)
        func tollgate(_ arguments: [String]) async throws -> String {
            let result = try await run(
                Products.path("tollgate"), arguments + ["--token", setup.operatorToken, "--address", server.address])
            #expect(result.status == 0, "\(arguments): \(result.error)")
            return result.output
        }
        let hello = try await TollgateConnection.connect(address: server.address)
        _ = try await hello.call("auth.hello", ["token": .string(setup.operatorToken)])

        // Start tailing, then make the agent cross a warning threshold.
        let tail = try await ChildProcess.start(
            Products.path("tollgate"),
            [
                "alerts", "tail", "--kinds", "cap_warning", "session_closed", "--json",
                "--token", setup.operatorToken, "--address", server.address,
            ])
        try await Task.sleep(for: .milliseconds(500))

        let agent = try await TollgateConnection.connect(address: server.address)
        _ = try await agent.call("auth.hello", ["token": .string(setup.agentToken)])
        let receipt = try await agent.call(
            "meter.verify", ["tool": "x", "idempotencyKey": "t1", "sessionId": "ses_cli"])
        let agentOfCall = try await hello.call("session.get", ["sessionId": "ses_cli"])["agentId"]!.stringValue!
        _ = try await tollgate([
            "caps", "set", "--scope", "agent", "--id", agentOfCall, "--limit", "3", "--period", "month",
            "--warn-at", "50",
        ])
        _ = try await agent.call("meter.verify", ["tool": "x", "idempotencyKey": "t2", "sessionId": "ses_cli"])
        #expect(receipt["cost"] == "1")

        // One line per alert, as it happens.
        var line = ""
        for _ in 0..<100 where !line.contains("\n") {
            try await Task.sleep(for: .milliseconds(100))
            line = tail.output
        }
        let alert = try JSONCodec.parse(String(line.prefix { $0 != "\n" }))
        #expect(alert["kind"] == "cap_warning" && alert["spent"] == "2" && alert["scope"] == "agent")

        #expect(try await tollgate(["sessions", "list"]).contains("ses_cli"))
        #expect(try await tollgate(["caps", "list", "--json"]).contains("\"spent\":\"2\""))
        let closed = try await tollgate(["sessions", "close", "ses_cli", "--json"])
        #expect(try JSONCodec.parse(closed.trimmingCharacters(in: .whitespacesAndNewlines))["calls"] == 2)
        #expect(
            try await tollgate(["sessions", "show", "ses_cli", "--get", "state"]).trimmingCharacters(
                in: .whitespacesAndNewlines) == "CLOSED")
        tail.signal(SIGTERM)
        let stopped = await server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
    }
}
