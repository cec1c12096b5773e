import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON

/// `tollgated` as a real process: first-start token, signals, and durability across `kill -9`.
@Suite struct ServerProcessTests {
    @Test func firstStartWithoutAdminToken_printsARootTokenOnce_thatThenWorks() async throws {
        let directory = try temporaryDirectory()
        let environment = ["TOLLGATE_STORAGE_URL": "sqlite:first.sqlite", "TOLLGATE_ADMIN_TOKEN": ""]
        let first = try await ServerProcess.start(directory: directory, environment: environment)
        let stopped = await first.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
        let printed = first.standardOutput()
        let token = try #require(
            printed.split(separator: " ").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(token.hasPrefix("TGR-"))

        let second = try await ServerProcess.start(directory: directory, environment: environment)
        let connection = try await TollgateConnection.connect(address: second.address)
        let hello = try await connection.call("auth.hello", ["token": .string(token)])
        #expect(hello["principal"]?["kind"] == "operator")
        await connection.close()
        let secondStop = await second.stop(with: SIGINT)
        #expect(secondStop.status == 0, "\(secondStop.log)")
        #expect(!second.standardOutput().contains("TGR-"), "the root token was printed twice")
    }

    /// A database that cannot be reached does not leave `tollgated` waiting in silence: each attempt is
    /// logged with its reason (never the password), and after the start-up timeout it exits non-zero.
    @Test func unreachablePostgres_isLoggedAttemptByAttempt_thenTheServerExitsWithTheReason() async throws {
        let nothingListens = try ClosedPort()
        var urls = ["postgres://tollgate:s3cret-pw@\(nothingListens.address)/tollgate"]
        if let live = ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"],
            let slash = live.lastIndex(of: "/")
        {
            // A server that answers but refuses: no such database.
            urls.append(live[..<slash] + "/no_such_database_\(UInt32.random(in: 0...UInt32.max))")
        }
        for url in urls {
            let started = Date()
            let result = try await run(
                Products.path("tollgated"), [],
                environment: [
                    "TOLLGATE_STORAGE_URL": url, "TOLLGATE_ADMIN_TOKEN": "root",
                    "TOLLGATE_LIMITS_STORAGE_STARTUP_TIMEOUT_MS": "2500",
                    "TOLLGATE_LISTEN": "127.0.0.1:\(try freePort())",
                ], directory: try temporaryDirectory(), timeoutSeconds: 30)
            let log = result.output + result.error
            #expect(result.status != 0, "\(log)")
            #expect(Date().timeIntervalSince(started) < 20)
            #expect(
                log.components(separatedBy: "cannot reach PostgreSQL").count - 1 >= 2, "each attempt is logged: \(log)")
            #expect(log.contains("could not reach PostgreSQL"), "the exit says why: \(log)")
            #expect(!log.contains("s3cret") && !log.contains(":tollgate@"), "no password in the log: \(log)")
            #expect(!log.contains("listening"))
        }
        withExtendedLifetime(nothingListens) {}
    }

    @Test func answeredCalls_surviveKillDashNine() async throws {
        let directory = try temporaryDirectory()
        let environment = [
            "TOLLGATE_STORAGE_URL": "sqlite:durable.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
        ]
        var server = try await ServerProcess.start(directory: directory, environment: environment)
        let setup = try await setUpAgent(address: server.address)
        let agent = try await TollgateConnection.connect(address: server.address)
        _ = try await agent.call("auth.hello", ["token": .string(setup.agentToken)])
        var receipts: [String: JSONValue] = [:]
        // Pipeline a burst, so that answers come from group commits of several entries. 1,100 keys: more than
        // the SQLite store keeps pending (1,024), so at the kill some keys are in the key index, some pending.
        try await withThrowingTaskGroup(of: (String, JSONValue).self) { group in
            for n in 0..<1100 {
                group.addTask {
                    (
                        "k\(n)",
                        try await agent.call("meter.verify", ["tool": "search", "idempotencyKey": .string("k\(n)")])
                    )
                }
            }
            for try await (key, receipt) in group { receipts[key] = receipt }
        }
        server.signal(SIGKILL)
        _ = await server.wait()
        await agent.close()

        server = try await ServerProcess.start(directory: directory, environment: environment)
        let again = try await TollgateConnection.connect(address: server.address)
        _ = try await again.call("auth.hello", ["token": .string(setup.agentToken)])
        for (key, receipt) in receipts {
            let replay = try await again.call("meter.verify", ["tool": "search", "idempotencyKey": .string(key)])
            #expect(replay["receiptId"] == receipt["receiptId"])
            #expect(replay["replayed"] == true)
        }
        let op = try await TollgateConnection.connect(address: server.address)
        _ = try await op.call("auth.hello", ["token": .string(setup.operatorToken)])
        let usage = try await op.call("usage.summary")
        #expect(usage["total"]?["calls"] == 1100)
        #expect(usage["total"]?["cost"] == "1.1")
        let stopped = await server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
    }

    @Test func cliErrors_printTheReasonAndExitNonZero() async throws {
        let port = try freePort()
        let unreachable = try await run(
            Products.path("tollgate"), ["tenants", "list", "--token", "x", "--address", "127.0.0.1:\(port)"])
        #expect(unreachable.status != 0)
        #expect(unreachable.error.contains("cannot connect"))
        let noToken = try await run(
            Products.path("tollgate"), ["tenants", "list"], environment: ["TOLLGATE_TOKEN": ""])
        #expect(noToken.status != 0)
        #expect(noToken.error.contains("no token"))
    }

    @Test func cliErrorsFromTheServer_showTheReason() async throws {
        let directory = try temporaryDirectory()
        let server = try await ServerProcess.start(
            directory: directory,
            environment: [
                "TOLLGATE_STORAGE_URL": "sqlite:cli.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
            ])
        let denied = try await run(
            Products.path("tollgate"), ["tenants", "list", "--token", "TGO-nope", "--address", server.address])
        #expect(denied.status != 0)
        #expect(denied.error.contains("UNAUTHENTICATED"))
        #expect(!denied.error.contains("TGO-nope"), "the token was echoed")
        let created = try await run(
            Products.path("tollgate"),
            [
                "tenants", "create", "acme", "--token", "process-test-root-token",
                "--address", server.address, "--json",
            ])
        #expect(created.status == 0)
        let json = try JSONCodec.parse(created.output.trimmingCharacters(in: .whitespacesAndNewlines))
        let operatorToken = try #require(json["operatorToken"]?.stringValue)
        let badPlan = directory.appendingPathComponent("bad.json")
        try Data(#"{"name":"p","currency":"USD","charges":[{"strategy":"per_tool","rates":{"x":"-1","*":"1"}}]}"#.utf8)
            .write(to: badPlan)
        let refused = try await run(
            Products.path("tollgate"),
            ["plans", "put", badPlan.path, "--token", operatorToken, "--address", server.address])
        #expect(refused.status != 0)
        #expect(refused.error.contains("VALIDATION_FAILED"))
        #expect(refused.error.contains("charges[0].rates.x"))
        let stopped = await server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
    }

    struct Setup {
        var operatorToken: String
        var agentToken: String
    }

    /// 64 connections race for one session's cap across a `kill -9`: the session's spend, rebuilt from the
    /// ledger after the restart, still holds every call answered before it, so the cap is never crossed.
    @Test func aSessionCapRace_acrossKillDashNine_neverCrossesTheCap() async throws {
        let directory = try temporaryDirectory()
        let environment = [
            "TOLLGATE_STORAGE_URL": "sqlite:race.sqlite", "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
        ]
        var server = try await ServerProcess.start(directory: directory, environment: environment)
        let setup = try await setUpAgent(address: server.address)
        let op = try await TollgateConnection.connect(address: server.address)
        _ = try await op.call("auth.hello", ["token": .string(setup.operatorToken)])
        // 0.001 a call: 150 calls fit under the session's cap.
        _ = try await op.call(
            "caps.set", ["scope": "session", "scopeId": "raced", "limit": "0.15", "period": "lifetime"])
        await op.close()

        /// Every connection calls until refused (or cut off); returns the calls answered with a receipt.
        func race(_ address: String, _ round: String, callsMax: Int) async throws -> Int {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<64 {
                    group.addTask {
                        let agent = try await TollgateConnection.connect(address: address)
                        _ = try await agent.call("auth.hello", ["token": .string(setup.agentToken)])
                        var accepted = 0
                        for n in 0..<callsMax {
                            guard
                                let receipt = try? await agent.call(
                                    "meter.verify",
                                    [
                                        "tool": "search", "idempotencyKey": .string("\(round)-\(c)-\(n)"),
                                        "sessionId": "raced",
                                    ]), receipt["allowed"] == true
                            else { break }
                            accepted += 1
                        }
                        await agent.close()
                        return accepted
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        // Up to 128 calls before the kill: the session is opened by 64 racing first calls.
        let first = try await race(server.address, "a", callsMax: 2)
        server.signal(SIGKILL)
        _ = await server.wait()

        server = try await ServerProcess.start(directory: directory, environment: environment)
        let second = try await race(server.address, "b", callsMax: 10)
        let check = try await TollgateConnection.connect(address: server.address)
        _ = try await check.call("auth.hello", ["token": .string(setup.operatorToken)])
        let usage = try await check.call("usage.summary", ["sessionId": "raced"])
        let session = try await check.call("session.get", ["sessionId": "raced"])
        #expect(first + second == 150, "\(first) before the kill, \(second) after")
        #expect(usage["total"]?["cost"] == "0.15" && usage["total"]?["calls"] == 150)
        #expect(session["calls"] == 150 && session["cost"] == "0.15", "the session's record equals its ledger")
        await check.close()
        #expect(await server.stop().status == 0)
    }

    func setUpAgent(address: String, tenant: String = "t") async throws -> Setup {
        let root = try await TollgateConnection.connect(address: address)
        _ = try await root.call("auth.hello", ["token": "process-test-root-token"])
        let operatorToken = try await root.call("tenants.create", ["name": .string(tenant)])["operatorToken"]!
        await root.close()
        let op = try await TollgateConnection.connect(address: address)
        _ = try await op.call("auth.hello", ["token": operatorToken])
        let customer = try await op.call("customers.create", ["name": "c"])["customerId"]!
        let team = try await op.call("teams.create", ["customerId": customer, "name": "t"])["teamId"]!
        let agent = try await op.call("agents.create", ["teamId": team, "name": "a"])["agentId"]!
        let plan = try await op.call(
            "plans.put",
            [
                "name": "p", "currency": "USD",
                "charges": [["strategy": "per_tool", "rates": ["search": "0.001", "*": "1"]]],
            ])
        _ = try await op.call("subscriptions.create", ["customerId": customer, "planId": plan["planId"]!])
        let token = try await op.call("credentials.issue", ["agentId": agent, "ttlSeconds": 3600])["token"]!
        await op.close()
        return Setup(operatorToken: operatorToken.stringValue!, agentToken: token.stringValue!)
    }
}
