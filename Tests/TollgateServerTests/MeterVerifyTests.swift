import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

@Suite struct MeterVerifyTests {
    @Test func verify_pricesRecordsAndAnswersWithAReceipt() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let receipt = try await agent.call(
                "meter.verify", verifyParams("k1", tool: "search", extra: ["sessionId": "ses_mine"]))
            #expect(receipt["allowed"] == true)
            #expect(receipt["cost"] == "0.001")
            #expect(receipt["currency"] == "USD")
            #expect(receipt["sessionId"] == "ses_mine")
            #expect(receipt["receiptId"]?.string?.hasPrefix("rcp_") == true)
            #expect(receipt["remaining"] == .object([:]))
            // Without a sessionId the server names the session, and keeps naming the same one on this connection.
            let first = try await agent.call("meter.verify", verifyParams("k2", tool: "other", extra: ["quantity": 3]))
            let second = try await agent.call("meter.verify", verifyParams("k3"))
            #expect(first["cost"] == "0.006")
            #expect(first["sessionId"]?.string?.hasPrefix("ses_") == true, "\(first)")
            #expect(first["sessionId"] == second["sessionId"])
        }
    }

    @Test func verify_whenAgentCapWouldBeCrossed_refusesAndRecordsNothing() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.6", "period": "day"])
            let agent = try await server.connect(token: world.agentToken)
            let first = try await agent.call("meter.verify", verifyParams("a"))
            #expect(first["remaining"] == ["agent": "0.35"])
            _ = try await agent.call("meter.verify", verifyParams("b"))
            let refusal = try #require(await rpcError { try await agent.call("meter.verify", verifyParams("c")) })
            #expect(refusal.code == -32010)
            #expect(refusal.reason == "BUDGET_EXCEEDED")
            #expect(refusal.data?["scope"] == "agent")
            #expect(refusal.data?["scopeId"] == .string(world.agentId))
            #expect(refusal.data?["limit"] == "0.6")
            #expect(refusal.data?["spent"] == "0.5")
            #expect(refusal.data?["requested"] == "0.25")
            #expect(refusal.data?["hint"]?.string?.contains("resets at") == true)
            // A cheaper call still fits.
            _ = try await agent.call("meter.verify", verifyParams("d", tool: "search"))
            let usage = try await op.call("usage.summary", ["groupBy": ["tool"]])
            #expect(usage["total"]?["calls"] == 3)
            #expect(usage["total"]?["cost"] == "0.501")
            // The refused key stored nothing: retried after the cap is raised, it is charged afresh.
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "10", "period": "day"])
            let retried = try await agent.call("meter.verify", verifyParams("c"))
            #expect(retried["replayed"] == nil)
        }
    }

    @Test(arguments: ["customer", "team"])
    func capsOnHigherScopes_holdForEveryAgentBelow(scope: String) async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let scopeId = scope == "team" ? world.teamId : world.customerId
            _ = try await op.call(
                "caps.set",
                ["scope": .string(scope), "scopeId": .string(scopeId), "limit": "0.5", "period": "lifetime"])
            let second = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "second"])
            let token = try await op.call("credentials.issue", ["agentId": second["agentId"]!, "ttlSeconds": 600])[
                "token"]!
            let a = try await server.connect(token: world.agentToken)
            let b = try await server.connect(token: token.string!)
            _ = try await a.call("meter.verify", verifyParams("1"))
            _ = try await b.call("meter.verify", verifyParams("2"))
            let refusal = try #require(await rpcError { try await b.call("meter.verify", verifyParams("3")) })
            #expect(refusal.data?["scope"] == .string(scope))
            #expect(refusal.data?["hint"]?.string?.contains("never resets") == true)
        }
    }

    @Test func capSetAfterSpending_countsWhatWasAlreadySpent() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            for key in ["1", "2", "3"] { _ = try await agent.call("meter.verify", verifyParams(key)) }
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set",
                ["scope": "customer", "scopeId": .string(world.customerId), "limit": "1", "period": "month"])
            _ = try await agent.call("meter.verify", verifyParams("4"))
            #expect(await reason { try await agent.call("meter.verify", verifyParams("5")) } == "BUDGET_EXCEEDED")
        }
    }

    @Test func credentialSpendLimit_isEnforced() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let issued = try await op.call(
                "credentials.issue",
                [
                    "agentId": .string(world.agentId), "ttlSeconds": 600,
                    "spendLimit": "0.3",
                ])
            let agent = try await server.connect(token: issued["token"]!.string!)
            _ = try await agent.call("meter.verify", verifyParams("1"))
            let refusal = try #require(await rpcError { try await agent.call("meter.verify", verifyParams("2")) })
            #expect(refusal.data?["scope"] == "credential")
        }
    }

    static let badParams: [(params: [String: JSONValue], code: Int)] = {
        let long: JSONValue = .string(String(repeating: "k", count: 129))
        let float: JSONValue = .number(0.1)
        var cases: [(params: [String: JSONValue], code: Int)] = []
        cases.append((["idempotencyKey": "k"], -32602))
        cases.append((["tool": "x"], -32602))
        cases.append((["tool": "x", "idempotencyKey": ""], -32020))
        cases.append((["tool": "x", "idempotencyKey": "tab\there"], -32020))
        cases.append((["tool": "x", "idempotencyKey": long], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "quantity": 0], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "quantity": "1"], -32602))
        cases.append((["tool": "x", "idempotencyKey": "k", "usage": ["providerCost": float]], -32602))
        cases.append((["tool": "x", "idempotencyKey": "k", "usage": ["inputTokens": -1]], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "usage": ["model": ""]], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "usage": ["model": long]], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "usage": ["model": 4]], -32602))
        cases.append((["tool": "x", "idempotencyKey": "k", "parentInvocationId": "k"], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "parentInvocationId": ""], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "retryCount": 1_001], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "retryCount": -1], -32020))
        cases.append((["tool": "x", "idempotencyKey": "k", "parallel": "yes"], -32602))
        cases.append((["tool": 5, "idempotencyKey": "k"], -32602))
        return cases
    }()

    @Test(arguments: badParams)
    func badParams_areRefusedWithTheRightCodeAndRecordNothing(params: [String: JSONValue], code: Int) async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let error = try #require(await rpcError { try await agent.call("meter.verify", .object(params)) })
            #expect(error.code == code)
            #expect(error.data?["field"] != nil)
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 0)
        }
    }

    @Test func customerWithoutSubscription_isAConflict() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let customer = try await op.call("customers.create", ["name": "new"])["customerId"]!
            let team = try await op.call("teams.create", ["customerId": customer, "name": "t"])["teamId"]!
            let agentId = try await op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
            let token = try await op.call("credentials.issue", ["agentId": agentId, "ttlSeconds": 60])["token"]!
            let agent = try await server.connect(token: token.string!)
            #expect(await reason { try await agent.call("meter.verify", verifyParams("x")) } == "CONFLICT")
        }
    }

    @Test func usageSummary_groupsByToolAndAgent() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call(
                "meter.verify",
                verifyParams(
                    "1", tool: "search",
                    extra: ["usage": ["inputTokens": 100, "outputTokens": 7, "providerCost": "0.0004"]]))
            _ = try await agent.call("meter.verify", verifyParams("2", tool: "search"))
            _ = try await agent.call("meter.verify", verifyParams("3", tool: "transform"))
            let op = try await server.connect(token: world.operatorToken)
            let byTool = try await op.call("usage.summary", ["groupBy": ["tool"]])
            #expect(byTool["currency"] == "USD")
            #expect(
                byTool["rows"] == [
                    [
                        "tool": "search", "calls": 2, "quantity": 2, "inputTokens": 100, "outputTokens": 7,
                        "cost": "0.002",
                        "providerCost": "0.0004", "retries": 0,
                    ],
                    [
                        "tool": "transform", "calls": 1, "quantity": 1, "inputTokens": 0, "outputTokens": 0,
                        "cost": "0.25",
                        "providerCost": "0", "retries": 0,
                    ],
                ])
            #expect(byTool["total"]?["cost"] == "0.252")
            let byAgent = try await op.call(
                "usage.summary", ["groupBy": ["agent", "tool"], "agentId": .string(world.agentId)])
            #expect(byAgent["rows"].flatMap { if case .array(let rows) = $0 { rows.count } else { nil } } == 2)
            #expect(await reason { try await op.call("usage.summary", ["groupBy": ["colour"]]) } == "VALIDATION_FAILED")
        }
    }

    /// An agent's task fans out and retries: grouped by task, its cost is one row, with its retries counted as
    /// retries — whatever order the calls were charged in (children before their parents here).
    @Test func usageByTask_isOneRowPerAgentTask_withItsRetries() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let calls: [(key: String, extra: [String: JSONValue])] = [
                ("plan-1", ["parentInvocationId": "search-1"]),
                ("plan-1-retry", ["parentInvocationId": "search-1", "retryCount": 1]),
                ("plan-1-retry2", ["parentInvocationId": "search-1", "retryCount": 2]),
                ("search-1", ["parentInvocationId": "task-1", "parallel": true]),
                ("search-2", ["parentInvocationId": "task-1", "parallel": true]),
                ("task-1", [:]),
                ("alone", [:]),
            ]
            for call in calls {
                _ = try await agent.call("meter.verify", verifyParams(call.key, tool: "search", extra: call.extra))
            }
            let op = try await server.connect(token: world.operatorToken)
            let usage = try await op.call("usage.summary", ["groupBy": ["task"]])
            let rows = usage["rows"]?.arrayValue ?? []
            #expect(rows.map { $0["task"] } == ["alone", "task-1"], "\(rows)")
            #expect(rows.map { $0["calls"] } == [1, 6] && rows.map { $0["retries"] } == [0, 2], "\(rows)")
            #expect(usage["total"]?["retries"] == 2)
        }
    }

    /// A held call is placed in its task by `meter.authorize`, and its commit's charge keeps that place — across a
    /// restart between the two, on every durable backend.
    @Test(arguments: storageBackends("held-task", memory: false))
    func aHeldCall_keepsItsPlaceInTheTask_throughItsCommit(storageURL: String) async throws {
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storageURL)
            let world = try await Fixture.make(on: server, name: "held-task-\(UUID().uuidString)")
            var agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("root", tool: "search"))
            let hold = try await agent.call(
                "meter.authorize",
                ["tool": "search", "idempotencyKey": "child", "parentInvocationId": "root", "retryCount": 1])
            try await server.stop()
            server = try await servers.start(storageURL: storageURL)
            agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.commit", ["reservationId": hold["reservationId"]!])
            let op = try await server.connect(token: world.operatorToken)
            let rows = try await op.call("usage.summary", ["groupBy": ["task"]])["rows"]?.arrayValue ?? []
            #expect(rows.count == 1 && rows.first?["task"] == "root", "\(rows)")
            #expect(rows.first?["calls"] == 2 && rows.first?["retries"] == 1, "\(rows)")
            let child = try await op.call("events.get", ["eventId": "child"])
            #expect(child["context"]?["parentInvocationId"] == "root" && child["context"]?["retryCount"] == 1)
        }
    }

    @Test func theModelACallReports_isRecorded_andUsageReadsPerModel() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            for (key, model) in [("1", "claude-x"), ("2", "claude-x"), ("3", nil), ("4", "gpt-y")] {
                var usage: [String: JSONValue] = ["providerCost": "0.0001"]
                if let model { usage["model"] = .string(model) }
                _ = try await agent.call(
                    "meter.verify", verifyParams(key, tool: "search", extra: ["usage": .object(usage)]))
            }
            // Through a hold too: the commit's usage carries it.
            let hold = try await agent.call(
                "meter.authorize", ["tool": "search", "idempotencyKey": "5"])
            _ = try await agent.call(
                "meter.commit", ["reservationId": hold["reservationId"]!, "usage": ["model": "gpt-y"]])
            let op = try await server.connect(token: world.operatorToken)
            let rows = try await op.call("usage.summary", ["groupBy": ["model"]])["rows"]?.arrayValue ?? []
            #expect(rows.map { $0["model"] } == ["", "claude-x", "gpt-y"], "\(rows)")
            #expect(rows.map { $0["calls"] } == [1, 2, 2])
            #expect(rows.map { $0["providerCost"] } == ["0.0001", "0.0002", "0.0001"])
            #expect(await reason { try await op.call("usage.summary", ["from": "yesterday"]) } == "VALIDATION_FAILED")
        }
    }

    @Test func rolesAreKeptApart() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let agent = try await server.connect(token: world.agentToken)
            #expect(await reason { try await op.call("meter.verify", verifyParams("x")) } == "FORBIDDEN")
            #expect(await reason { try await agent.call("customers.create", ["name": "x"]) } == "FORBIDDEN")
            #expect(await reason { try await agent.call("tenants.create", ["name": "x"]) } == "FORBIDDEN")
            #expect(await reason { try await op.call("no.such.method") } == "code -32601")
        }
    }
}
