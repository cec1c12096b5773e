import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// Budget delegation: an agent whose credential may delegate mints child credentials for sub-agents, never broader,
/// longer-lived or richer than itself; a child's spend counts against its own limit and its parent's; revoking the
/// parent revokes its children; usage groups by credential; all of it holds across a restart.
@Suite struct DelegationTests {
    /// `transform` costs 0.25 in the fixture's plan.
    static func transform(_ agent: TollgateConnection, _ key: String) async -> String {
        await reason { try await agent.call("meter.verify", verifyParams(key, tool: "transform")) } ?? "ok"
    }

    static func orchestrator(on server: TestServer, _ world: Fixture, limit: String = "2.5") async throws
        -> (op: TollgateConnection, token: JSONValue, connection: TollgateConnection)
    {
        let op = try await server.connect(token: world.operatorToken)
        let issued = try await op.call(
            "credentials.issue",
            [
                "agentId": .string(world.agentId), "scopes": ["meter:write", "credentials:delegate"],
                "ttlSeconds": 3600, "spendLimit": .string(limit),
            ])
        return (op, issued["token"]!, try await server.connect(token: issued["token"]!.stringValue!))
    }

    /// An orchestrator with 2.50 left gives three sub-agents 1.00 each; they race 8 calls of 0.25 each: none
    /// passes 1.00, and together they stop at 2.50 exactly.
    @Test(arguments: storageBackends("delegation-race"))
    func subAgentsRacing_neverPassTheirOwnLimitNorTheirParents(storage: String) async throws {
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage)
            let world = try await Fixture.make(on: server)
            let (op, parentToken, parent) = try await Self.orchestrator(on: server, world)
            var children: [(id: String, connection: TollgateConnection)] = []
            for name in ["researcher", "writer", "checker"] {
                let child = try await parent.call(
                    "credentials.delegate",
                    ["spendLimit": "1", "ttlSeconds": 600, "scopes": ["meter:write"], "label": .string(name)])
                #expect(child["delegatedFrom"] != nil && child["label"] == .string(name) && child["spendLimit"] == "1")
                children.append(
                    (child["credentialId"]!.stringValue!, try await server.connect(token: child["token"]!.stringValue!))
                )
            }
            let outcomes = await withTaskGroup(of: String.self) { group in
                for (index, child) in children.enumerated() {
                    for call in 0..<8 {
                        group.addTask { await Self.transform(child.connection, "race-\(index)-\(call)") }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == "ok" }.count == 10, "2.50 of calls at 0.25: \(outcomes)")
            #expect(outcomes.filter { $0 == "BUDGET_EXCEEDED" }.count == 14)
            let usage = try await op.call("usage.summary", ["groupBy": ["credential"]])
            var spent: [String: String] = [:]
            for row in usage["rows"]?.arrayValue ?? [] {
                spent[row["credential"]?.stringValue ?? "?"] = row["cost"]?.stringValue
            }
            var total: Int64 = 0
            for child in children {
                let cost = try Money(decimal: spent[child.id] ?? "0")
                #expect(cost <= Money(nanos: 1_000_000_000), "\(child.id) spent \(cost.decimalString)")
                total += cost.nanos
            }
            #expect(spent.count == 3 && total == 2_500_000_000, "\(usage)")

            // The parent has nothing left: its own call and a new delegation are refused; after a restart too.
            let refusal = await rpcError { try await parent.call("meter.verify", verifyParams("parent-1")) }
            #expect(refusal?.reason == "BUDGET_EXCEEDED" && refusal?.data?["scope"] == "credential")
            guard !storage.hasPrefix("memory") else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storage)
            let again = try await server.connect(token: parentToken.stringValue!)
            let denied = await rpcError {
                try await again.call(
                    "credentials.delegate", ["spendLimit": "0.25", "ttlSeconds": 60, "scopes": ["meter:write"]])
            }
            #expect(
                denied?.data?["field"] == "spendLimit",
                "the children's spend counted again: \(String(describing: denied))")
            #expect(await Self.transform(again, "after-restart") == "BUDGET_EXCEEDED")
        }
    }

    @Test func aChildIsNeverBroaderLongerLivedOrRicher_andOnlyADelegatingCredentialMintsOne() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let (_, _, parent) = try await Self.orchestrator(on: server, world, limit: "2")
            #expect(await Self.transform(parent, "own-1") == "ok")
            for (params, field) in [
                (["spendLimit": "1", "ttlSeconds": 60, "scopes": ["usage:read"]], "scopes[0]"),
                (["spendLimit": "1", "ttlSeconds": 60, "scopes": []], "scopes"),
                (["spendLimit": "1", "ttlSeconds": 3601, "scopes": ["meter:write"]], "ttlSeconds"),
                (["spendLimit": "1.76", "ttlSeconds": 60, "scopes": ["meter:write"]], "spendLimit"),
                (["spendLimit": "0", "ttlSeconds": 60, "scopes": ["meter:write"]], "spendLimit"),
                (["ttlSeconds": 60, "scopes": ["meter:write"]], "spendLimit"),
            ] as [(JSONValue, String)] {
                let error = await rpcError { try await parent.call("credentials.delegate", params) }
                #expect(error?.data?["field"]?.stringValue == field, "\(params): \(String(describing: error))")
            }
            // 2 - 0.25 = 1.75 is left: exactly that is allowed.
            let child = try await parent.call(
                "credentials.delegate", ["spendLimit": "1.75", "ttlSeconds": 3600, "scopes": ["meter:write"]])
            // A child without credentials:delegate cannot delegate further; a plain agent credential neither.
            let childConnection = try await server.connect(token: child["token"]!.stringValue!)
            #expect(
                await reason {
                    try await childConnection.call(
                        "credentials.delegate", ["spendLimit": "0.1", "ttlSeconds": 60, "scopes": ["meter:write"]])
                } == "FORBIDDEN")
            let plain = try await server.connect(token: world.agentToken)
            #expect(
                await reason {
                    try await plain.call(
                        "credentials.delegate", ["spendLimit": "0.1", "ttlSeconds": 60, "scopes": ["meter:write"]])
                } == "FORBIDDEN")
            // The child ends with its parent's lifetime at the latest, and stops when the parent expires.
            clock.advance(seconds: 3600)
            #expect(await Self.transform(childConnection, "late") == "UNAUTHENTICATED")
        }
    }

    @Test(arguments: storageBackends("delegation-revoke", memory: false))
    func revokingTheParent_revokesItsChildrenAtOnce(storage: String) async throws {
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage)
            let world = try await Fixture.make(on: server)
            let (op, _, parent) = try await Self.orchestrator(on: server, world)
            let child = try await parent.call(
                "credentials.delegate",
                ["spendLimit": "1", "ttlSeconds": 600, "scopes": ["meter:write", "credentials:delegate"]])
            let childConnection = try await server.connect(token: child["token"]!.stringValue!)
            let grandchild = try await childConnection.call(
                "credentials.delegate", ["spendLimit": "0.5", "ttlSeconds": 60, "scopes": ["meter:write"]])
            let grandchildConnection = try await server.connect(token: grandchild["token"]!.stringValue!)
            #expect(await Self.transform(grandchildConnection, "g-1") == "ok")
            let parentId = try #require(child["delegatedFrom"])
            _ = try await op.call("credentials.revoke", ["credentialId": parentId])
            #expect(await Self.transform(childConnection, "c-1") == "UNAUTHENTICATED")
            #expect(await Self.transform(grandchildConnection, "g-2") == "UNAUTHENTICATED")
            try await server.stop()
            server = try await servers.start(storageURL: storage)
            let listed = try await server.connect(token: world.operatorToken).call("credentials.list", [:])
            let rows = try #require(listed["credentials"]?.arrayValue)
            for id in [parentId, child["credentialId"]!, grandchild["credentialId"]!] {
                #expect(rows.first { $0["credentialId"] == id }?["revokedAt"] != nil, "\(id) is stored revoked")
            }
            #expect(rows.first { $0["credentialId"] == .string(world.credentialId) }?["revokedAt"] == nil)
            #expect(await OperatorCredentialTests.refusesHello(server, grandchild["token"]!))
        }
    }
}
