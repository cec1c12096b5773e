import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// An operator of tenant A can neither see nor change anything of tenant B, through any method.
@Suite struct TenantIsolationTests {
    @Test func operatorOfAnotherTenant_canNeitherSeeNorChangeIt() async throws {
        try await TestServer.with { server in
            let a = try await Fixture.make(on: server, name: "a")
            let b = try await Fixture.make(on: server, name: "b")
            let bAgent = try await server.connect(token: b.agentToken)
            let bSession = try await bAgent.call("meter.verify", verifyParams("b-1"))["sessionId"]!.string!
            let bHold = try await bAgent.call("meter.authorize", ["tool": "search", "idempotencyKey": "b-hold"])[
                "reservationId"]!
            let opA = try await server.connect(token: a.operatorToken)
            // A's agent can neither commit nor release B's hold, nor charge to B's session.
            let aAgent = try await server.connect(token: a.agentToken)
            #expect(await reason { try await aAgent.call("meter.commit", ["reservationId": bHold]) } == "NOT_FOUND")
            #expect(await reason { try await aAgent.call("meter.release", ["reservationId": bHold]) } == "NOT_FOUND")
            #expect(
                await reason { try await aAgent.call("session.get", ["sessionId": .string(bSession)]) } == "NOT_FOUND")

            // Naming tenant B outright is forbidden, for every tenant-scoped method.
            let methods = [
                "customers.create", "teams.create", "agents.create", "credentials.issue", "credentials.revoke",
                "plans.put", "plans.get", "plans.list", "subscriptions.create", "subscriptions.swap", "caps.set",
                "caps.list", "usage.summary",
                "sessions.list", "sessions.configure", "session.get", "session.close", "alerts.subscribe",
                "alerts.list",
            ]
            for method in methods {
                #expect(
                    await reason { try await opA.call(method, ["tenantId": .string(b.tenantId), "name": "x"]) }
                        == "FORBIDDEN",
                    "\(method) with tenantId of B")
            }
            // B's objects, named by id from A's tenant, do not exist.
            let notFound: [(String, JSONValue)] = [
                ("teams.create", ["customerId": .string(b.customerId), "name": "x"]),
                ("agents.create", ["teamId": .string(b.teamId), "name": "x"]),
                ("credentials.issue", ["agentId": .string(b.agentId), "ttlSeconds": 60]),
                ("credentials.revoke", ["credentialId": .string(b.credentialId)]),
                ("plans.get", ["planId": .string(b.planId)]),
                ("subscriptions.create", ["customerId": .string(b.customerId), "planId": .string(a.planId)]),
                ("subscriptions.create", ["customerId": .string(a.customerId), "planId": .string(b.planId)]),
                ("subscriptions.swap", ["subscriptionId": .string(b.subscriptionId)]),
                ("subscriptions.swap", ["subscriptionId": .string(a.subscriptionId), "planId": .string(b.planId)]),
                ("caps.set", ["scope": "agent", "scopeId": .string(b.agentId), "limit": "0", "period": "day"]),
                ("caps.set", ["scope": "team", "scopeId": .string(b.teamId), "limit": "0", "period": "day"]),
                ("caps.set", ["scope": "customer", "scopeId": .string(b.customerId), "limit": "0", "period": "day"]),
                ("usage.summary", ["customerId": .string(b.customerId)]),
                ("session.get", ["sessionId": .string(bSession)]),
                ("session.close", ["sessionId": .string(bSession)]),
                ("usage.summary", ["agentId": .string(b.agentId)]),
            ]
            for (method, params) in notFound {
                #expect(await reason { try await opA.call(method, params) } == "NOT_FOUND", "\(method) \(params)")
            }
            // What A can list is only A's.
            let plans = try await opA.call("plans.list")
            #expect(
                plans["plans"] == [["planId": .string(a.planId), "name": "search", "version": 1, "currency": "USD"]])
            #expect(try await opA.call("usage.summary")["total"]?["calls"] == 0)
            #expect(try await opA.call("sessions.list", ["state": "all"])["sessions"] == [])
            #expect(try await opA.call("alerts.list")["alerts"] == [])
            #expect(try await opA.call("tenants.list")["tenants"] == [["tenantId": .string(a.tenantId)]])
            #expect(await reason { try await opA.call("tenants.create", ["name": "x"]) } == "FORBIDDEN")

            // B is untouched: its credential still works, and its cap-free spending goes on.
            _ = try await bAgent.call("meter.verify", verifyParams("b-2"))
            let opB = try await server.connect(token: b.operatorToken)
            #expect(try await opB.call("usage.summary")["total"]?["calls"] == 2)
        }
    }

    @Test func agentOfOneTenant_chargesOnlyItsOwnTenant() async throws {
        try await TestServer.with { server in
            let a = try await Fixture.make(on: server, name: "a")
            let b = try await Fixture.make(on: server, name: "b")
            let agentA = try await server.connect(token: a.agentToken)
            // The same idempotency key in two tenants never collides.
            let bAgent = try await server.connect(token: b.agentToken)
            let first = try await agentA.call("meter.verify", verifyParams("same-key"))
            let second = try await bAgent.call("meter.verify", verifyParams("same-key"))
            #expect(first["receiptId"] != second["receiptId"])
            #expect(second["replayed"] == nil)
            let opB = try await server.connect(token: b.operatorToken)
            #expect(try await opB.call("usage.summary")["total"]?["calls"] == 1)
        }
    }

    @Test func rootOperator_actsInATenantOnlyByNamingIt() async throws {
        try await TestServer.with { server in
            let a = try await Fixture.make(on: server, name: "a")
            let root = try await server.connect(token: TestServer.rootToken)
            #expect(await reason { try await root.call("customers.create", ["name": "x"]) } == "code -32602")
            let created = try await root.call("customers.create", ["tenantId": .string(a.tenantId), "name": "x"])
            #expect(created["tenantId"] == .string(a.tenantId))
            #expect(
                await reason { try await root.call("customers.create", ["tenantId": "ten_nope", "name": "x"]) }
                    == "NOT_FOUND")
        }
    }
}
