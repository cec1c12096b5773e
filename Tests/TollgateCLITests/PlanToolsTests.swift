import Foundation
import Testing
import TollgateCore

/// `tollgate plans simulate`, `plans diff` and `subscriptions swap`, run as an operator would.
@Suite struct PlanToolsTests {
    @Test func simulate_printsTheInvoicePreviewLineByLine() throws {
        let plan = Products.repository.appendingPathComponent("Config/plans/pattern-2-session-bundle.json").path
        let events = Products.repository.appendingPathComponent("Config/events/pattern-2-sample.jsonl").path
        let result = try run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        // Session s1: 5.00 + 20 calls over the bundle × 0.05; session s2: 5.00. Output tokens: 121,000 × 0.000002.
        #expect(lines == ["invoice preview: session-bundle, 4 events, USD", "charges[0] session_bundle 11.00",
                          "charges[1] token_multiplier 0.24", "total 11.24"])
        let json = try run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events, "--json"])
        let parsed = try JSONCodec.parse(json.output.trimmingCharacters(in: .whitespacesAndNewlines))
        guard case .array(let previewLines)? = parsed["lines"] else { Issue.record("no lines in \(parsed)"); return }
        #expect(previewLines[1]["exact"] == "0.242")
        #expect(parsed["total"] == "11.24")
    }

    @Test func simulate_namesTheBadLineOrField() throws {
        let directory = try temporaryDirectory()
        let plan = Products.repository.appendingPathComponent("Config/plans/pattern-2-session-bundle.json").path
        let events = directory.appendingPathComponent("events.jsonl")
        try Data("{\"tool\":\"a\"}\n{\"tool\":\"a\",\"quantity\":0}\n".utf8).write(to: events)
        let result = try run(Products.path("tollgate"), ["plans", "simulate", plan, "--events", events.path])
        #expect(result.status != 0)
        #expect(result.error.contains("events.jsonl:2: quantity"))
        let badPlan = directory.appendingPathComponent("plan.json")
        try Data(#"{"name":"p","currency":"USD","charges":[{"strategy":"graduated","tiers":[{"upTo":5,"rate":"1"},{"upTo":5,"rate":"1"},{"rate":"1"}]}]}"#.utf8).write(to: badPlan)
        let refused = try run(Products.path("tollgate"), ["plans", "simulate", badPlan.path, "--events", events.path])
        #expect(refused.status != 0)
        #expect(refused.error.contains("charges[0].tiers[1].upTo"))
    }

    @Test func diffAndSwap_againstARunningServer() async throws {
        let directory = try temporaryDirectory()
        let server = try ServerProcess(directory: directory, environment: [
            "TOLLGATE_STORAGE_URL": "sqlite:cli.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token"])
        func tollgate(_ arguments: [String], token: String) throws -> String {
            let result = try run(Products.path("tollgate"), arguments + ["--token", token, "--address", server.address])
            #expect(result.status == 0, "\(arguments): \(result.error)")
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let op = try tollgate(["tenants", "create", "acme", "--get", "operatorToken"], token: "process-test-root-token")
        let customer = try tollgate(["customers", "create", "C", "--get", "customerId"], token: op)
        let v1 = directory.appendingPathComponent("v1.json"), v2 = directory.appendingPathComponent("v2.json")
        try Data(#"{"name":"search","currency":"USD","charges":[{"strategy":"per_tool","rates":{"search":"0.001","*":"0.002"}}]}"#.utf8).write(to: v1)
        try Data(#"{"name":"search","currency":"USD","charges":[{"strategy":"per_tool","rates":{"search":"0.0015","*":"0.002","new":"1"}}]}"#.utf8).write(to: v2)
        let planId = try tollgate(["plans", "put", v1.path, "--get", "planId"], token: op)
        #expect(try tollgate(["plans", "put", v2.path, "--get", "version"], token: op) == "2")
        let diff = try tollgate(["plans", "diff", planId, "1", "2"], token: op)
        #expect(diff == """
            charges[0].rates.new: (absent) → "1"
            charges[0].rates.search: "0.001" → "0.0015"
            """)
        let subscription = try tollgate(["subscriptions", "create", "--customer", customer, "--plan", planId, "--version", "1",
                                         "--get", "subscriptionId"], token: op)
        #expect(try tollgate(["subscriptions", "swap", "--subscription", subscription, "--get", "version"], token: op) == "2")
        let stopped = server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
    }
}
