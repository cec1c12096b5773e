import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateTesting

/// Operator credentials: any number per tenant, each with a name, scopes, an optional expiry and its last use;
/// revoked, the connections already open with it are refused from their next request; rotated, the old token
/// works through the overlap and not after; all of it kept across a restart. Agent credentials list without
/// their secrets, and a client secret rotates with or without an overlap.
@Suite struct OperatorCredentialTests {
    @Test(arguments: storageBackends("operators"))
    func issueListRevokeRotate_andRestart(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let root = try await server.connect(token: TestServer.rootToken)
            let tenant = try await root.call("tenants.create", ["name": "ops"])
            let firstId = try #require(tenant["operatorCredentialId"]?.stringValue)
            let admin = try await server.connect(token: tenant["operatorToken"]!.stringValue!)
            let hello = try await admin.call("auth.hello", ["token": tenant["operatorToken"]!])
            #expect(hello["principal"]?["credentialId"]?.stringValue == firstId)
            #expect(hello["principal"]?["scopes"] == ["operator"])
            clock.advance(seconds: 1)

            let reader = try await admin.call(
                "operators.issue", ["name": "finance", "scopes": ["billing:read"], "ttlSeconds": 86_400])
            let readerToken = try #require(reader["token"]?.stringValue)
            #expect(readerToken.hasPrefix("TGO-") && reader["prefix"]?.stringValue == String(readerToken.prefix(8)))
            #expect(reader["expiresAt"] == "2026-12-03T09:00:01.000Z" && reader["scopes"] == ["billing:read"])
            let finance = try await server.connect(token: readerToken)
            _ = try await finance.call("usage.summary", [:])
            let refused = await rpcError { try await finance.call("customers.create", ["name": "x"]) }
            #expect(refused?.reason == "FORBIDDEN" && refused?.message.contains("billing:write") == true)
            // Only a credential with every scope makes or ends operator credentials: no way up from a narrow one.
            #expect(
                await reason { try await finance.call("operators.issue", ["name": "up", "scopes": ["operator"]]) }
                    == "FORBIDDEN")

            clock.advance(seconds: 120)
            let list = try await admin.call("operators.list", [:])
            let rows = try #require(list["operators"]?.arrayValue)
            #expect(rows.map { $0["name"] } == ["initial", "finance"])
            #expect(rows[1]["lastUsedAt"] == "2026-12-02T09:00:01.000Z", "noted when it authenticated")
            for row in rows {
                #expect(row["token"] == nil && row["tokenHash"] == nil)
                #expect(!JSONCodec.string(row).contains(Secrets.hash(readerToken)))
            }

            // Rotation with an overlap: both work until it ends, then only the new one.
            let rotated = try await admin.call(
                "operators.rotate", ["credentialId": reader["credentialId"]!, "overlapSeconds": 60])
            #expect(rotated["replaces"] == reader["credentialId"] && rotated["name"] == "finance")
            #expect(rotated["replacedEndsAt"] == "2026-12-02T09:03:01.000Z")
            #expect(rotated["expiresAt"] == "2026-12-03T09:02:01.000Z", "the same lifetime, from now")
            _ = try await finance.call("usage.summary", [:])
            let successor = try await server.connect(token: rotated["token"]!.stringValue!)
            clock.advance(seconds: 61)
            #expect(await reason { try await finance.call("usage.summary", [:]) } == "UNAUTHENTICATED")
            _ = try await successor.call("usage.summary", [:])

            // Revocation reaches a connection already open at its next request, and a new hello.
            #expect(
                try await admin.call("operators.revoke", ["credentialId": rotated["credentialId"]!])["revoked"] == true)
            #expect(await reason { try await successor.call("usage.summary", [:]) } == "UNAUTHENTICATED")
            #expect(await Self.refusesHello(server, rotated["token"]!))
            // Expiry too.
            let brief = try await admin.call(
                "operators.issue", ["name": "brief", "scopes": ["caps:write"], "ttlSeconds": 5])
            let briefly = try await server.connect(token: brief["token"]!.stringValue!)
            _ = try await briefly.call("caps.list", [:])
            clock.advance(seconds: 5)
            #expect(await reason { try await briefly.call("caps.list", [:]) } == "UNAUTHENTICATED")

            guard !storage.hasPrefix("memory") else { return }
            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock)
            let again = try await server.connect(token: tenant["operatorToken"]!.stringValue!)
            let stored = try #require(try await again.call("operators.list", [:])["operators"]?.arrayValue)
            #expect(stored.count == 4 && stored.filter { $0["revokedAt"] != nil }.count == 2)
            #expect(await Self.refusesHello(server, rotated["token"]!))
            #expect(await Self.refusesHello(server, .string(readerToken)))
        }
    }

    /// Whether `auth.hello` with `token` is refused `UNAUTHENTICATED`.
    static func refusesHello(_ server: TestServer, _ token: JSONValue) async -> Bool {
        guard let connection = try? await server.connect() else { return false }
        return await reason { try await connection.call("auth.hello", ["token": token]) } == "UNAUTHENTICATED"
    }

    @Test func badRequests_areRefusedWithTheField() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            for (params, field) in [
                (["name": "x"], "scopes"),
                (["name": "x", "scopes": []], "scopes"),
                (["name": "x", "scopes": ["root"]], "scopes[0]"),
                (["name": "x", "scopes": ["meter:write"]], "scopes[0]"),
                (["name": "", "scopes": ["caps:write"]], "name"),
                (["name": "x", "scopes": ["caps:write"], "ttlSeconds": 0], "ttlSeconds"),
            ] as [(JSONValue, String)] {
                let error = await rpcError { try await op.call("operators.issue", params) }
                #expect(error?.data?["field"]?.stringValue == field, "\(params): \(String(describing: error))")
            }
            let unknown = await reason { try await op.call("operators.revoke", ["credentialId": "opc_nope"]) }
            #expect(unknown == "NOT_FOUND")
            #expect(await reason { try await op.call("operators.rotate", ["credentialId": "opc_nope"]) } == "NOT_FOUND")
            let ended = try await op.call("operators.issue", ["name": "ended", "scopes": ["caps:write"]])
            _ = try await op.call("operators.revoke", ["credentialId": ended["credentialId"]!])
            #expect(
                await reason { try await op.call("operators.rotate", ["credentialId": ended["credentialId"]!]) }
                    == "CONFLICT", "a revoked credential has nothing to hand over")
            let overlap = await rpcError {
                try await op.call("credentials.rotate", ["agentId": .string(world.agentId), "overlapSeconds": -1])
            }
            #expect(overlap?.data?["field"] == "overlapSeconds")
        }
    }

    /// Tenant A's operator can neither list, end nor rotate tenant B's operator credentials or agents' secrets.
    @Test func anotherTenantsCredentials_areOutOfReach() async throws {
        try await TestServer.with { server in
            let a = try await Fixture.make(on: server, name: "a")
            let b = try await Fixture.make(on: server, name: "b")
            let opA = try await server.connect(token: a.operatorToken)
            let opB = try await server.connect(token: b.operatorToken)
            let bFirst = try #require(
                try await opB.call("operators.list", [:])["operators"]?.arrayValue?.first?["credentialId"])
            #expect(await reason { try await opA.call("operators.revoke", ["credentialId": bFirst]) } == "NOT_FOUND")
            #expect(await reason { try await opA.call("operators.rotate", ["credentialId": bFirst]) } == "NOT_FOUND")
            #expect(
                await reason { try await opA.call("credentials.rotate", ["agentId": .string(b.agentId)]) }
                    == "NOT_FOUND")
            #expect(
                await reason { try await opA.call("credentials.list", ["agentId": .string(b.agentId)]) } == "NOT_FOUND")
            let listed = try await opA.call("operators.list", [:])
            #expect(!JSONCodec.string(listed).contains(bFirst.stringValue!))
            _ = try await opB.call("usage.summary", [:])
        }
    }

    @Test(arguments: storageBackends("client-secrets", memory: false))
    func clientSecretRotation_andTheCredentialsList(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(storageURL: storage, clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let agent = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "rotating"])
            let anonymous = try await server.connect()
            func exchange(_ secret: JSONValue) async -> String? {
                await reason {
                    try await anonymous.call("auth.token", ["clientId": agent["clientId"]!, "clientSecret": secret])
                }
            }
            #expect(await exchange(agent["clientSecret"]!) == nil)
            let second = try await op.call("credentials.rotate", ["agentId": agent["agentId"]!, "overlapSeconds": 300])
            #expect(second["previousValidUntil"] == "2026-12-02T09:05:00.000Z")
            #expect(second["clientSecret"] != agent["clientSecret"])
            #expect(await exchange(agent["clientSecret"]!) == nil, "the old secret works through the overlap")
            #expect(await exchange(second["clientSecret"]!) == nil)
            clock.advance(seconds: 300)
            #expect(await exchange(agent["clientSecret"]!) == "UNAUTHENTICATED", "and not after")
            let third = try await op.call("credentials.rotate", ["agentId": agent["agentId"]!])
            #expect(third["previousValidUntil"] == nil)
            #expect(await exchange(second["clientSecret"]!) == "UNAUTHENTICATED", "no overlap: gone at once")
            #expect(await exchange(third["clientSecret"]!) == nil)

            let listed = try await op.call("credentials.list", ["agentId": agent["agentId"]!])
            let rows = try #require(listed["credentials"]?.arrayValue)
            #expect(rows.count == 4, "one token per exchange")
            for row in rows {
                #expect(row["prefix"]?.stringValue?.hasPrefix("AGT-") == true && row["token"] == nil)
                #expect(row["agentId"] == agent["agentId"] && row["expiresAt"] != nil)
            }
            let all = try #require(try await op.call("credentials.list", [:])["credentials"]?.arrayValue)
            #expect(all.count == 5, "the fixture's credential too")
            let used = all.first { $0["credentialId"]?.stringValue == world.credentialId }
            #expect(used?["lastUsedAt"] == nil, "the fixture's token never said hello")
            _ = try await server.connect(token: world.agentToken)
            let after = try #require(try await op.call("credentials.list", [:])["credentials"]?.arrayValue)
            #expect(after.first { $0["credentialId"]?.stringValue == world.credentialId }?["lastUsedAt"] != nil)
        }
    }

    /// An alert push is not a request: a revoked operator's open subscription stops receiving at once, and a
    /// rotated one's when its overlap ends, while other subscribers go on.
    @Test func aRevokedOrRotatedOperatorsSubscription_receivesNothingMore() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            var watchers: [(id: JSONValue, inbox: AlertInbox)] = []
            for name in ["revoked", "rotated", "kept"] {
                let issued = try await op.call("operators.issue", ["name": .string(name), "scopes": ["alerts:read"]])
                let connection = try await server.connect(token: issued["token"]!.stringValue!)
                let inbox = AlertInbox(connection)
                _ = try await connection.call("alerts.subscribe", ["kinds": ["session_closed"]])
                watchers.append((issued["credentialId"]!, inbox))
            }
            let agent = try await server.connect(token: world.agentToken)
            func closeASession(_ id: String) async throws {
                _ = try await agent.call("session.open", ["sessionId": .string(id)])
                _ = try await agent.call("session.close", ["sessionId": .string(id)])
            }
            _ = try await op.call("operators.revoke", ["credentialId": watchers[0].id])
            _ = try await op.call("operators.rotate", ["credentialId": watchers[1].id, "overlapSeconds": 60])
            try await closeASession("s-1")
            _ = try await watchers[2].inbox.next("session_closed")
            _ = try await watchers[1].inbox.next("session_closed")
            clock.advance(seconds: 60)
            try await closeASession("s-2")
            _ = try await watchers[2].inbox.next("session_closed")
            try await Task.sleep(for: .milliseconds(200))
            #expect(watchers[0].inbox.all.isEmpty, "revoked: nothing after the revocation")
            #expect(watchers[1].inbox.all.isEmpty, "rotated: nothing once its overlap ended")
        }
    }
}
