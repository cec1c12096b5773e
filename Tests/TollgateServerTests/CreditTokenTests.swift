import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateTesting

/// Credit tokens: a JWT signed with the server's Ed25519 key, accepted by `auth.hello`, its spend limit enforced on
/// the server's ledger; refused once tampered with, expired or revoked (and then listed by `auth.revocations`);
/// verifying through a key rotation's overlap and not after; signed by keys that survive a restart.
@Suite struct CreditTokenTests {
    static func issue(_ op: TollgateConnection, _ world: Fixture, limit: String = "0.5", ttl: Int64 = 3600)
        async throws -> JSONValue
    {
        try await op.call(
            "credentials.issueCredit",
            ["agentId": .string(world.agentId), "spendLimit": .string(limit), "ttlSeconds": .integer(ttl)])
    }

    @Test(arguments: storageBackends("credit-tokens", memory: false))
    func aCreditTokenAuthenticates_spendsWithinItsLimit_andSurvivesARestart(storage: String) async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storage, clock: clock)
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let issued = try await Self.issue(op, world)
            let token = try #require(issued["token"]?.stringValue)
            #expect(token.hasPrefix("eyJ") && token.split(separator: ".").count == 3)
            #expect(issued["spendLimit"] == "0.5" && issued["expiresAt"] == "2026-12-02T10:00:00.000Z")
            let keys = try await server.connect().call("auth.keys", [:])
            #expect(keys["keys"]?.arrayValue?.map { $0["kid"] } == [issued["keyId"]], "published before any hello")

            let agent = try await server.connect(token: token)
            let hello = try await agent.call("auth.hello", ["token": .string(token)])
            #expect(hello["principal"]?["credentialId"] == issued["credentialId"])
            #expect(hello["principal"]?["agentId"] == .string(world.agentId))
            // transform costs 0.25: two calls fit in 0.5, the third is refused on the credential's own cap.
            _ = try await agent.call("meter.verify", verifyParams("t-1"))
            _ = try await agent.call("meter.verify", verifyParams("t-2"))
            let refused = await rpcError { try await agent.call("meter.verify", verifyParams("t-3")) }
            #expect(refused?.reason == "BUDGET_EXCEEDED" && refused?.data?["scope"] == "credential")

            try await server.stop()
            server = try await servers.start(storageURL: storage, clock: clock)
            let again = try await server.connect(token: token)
            #expect(
                await reason { try await again.call("meter.verify", verifyParams("t-4")) } == "BUDGET_EXCEEDED",
                "the spend came back with the same key")
            let keysAfter = try await server.connect().call("auth.keys", [:])
            #expect(keysAfter == keys)
        }
    }

    @Test func tamperedExpiredAndRevokedTokens_areRefused_andRevocationsArePublished() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let other = try await Fixture.make(on: server, name: "other")
            let op = try await server.connect(token: world.operatorToken)
            let token = try #require(try await Self.issue(op, world)["token"]?.stringValue)
            let parts = token.split(separator: ".").map(String.init)
            let richer = String(decoding: Base64URL.decode(parts[1]) ?? Data(), as: UTF8.self)
                .replacingOccurrences(of: "\"0.5\"", with: "\"500\"")
            let forged = [parts[0], Base64URL.encode(Data(richer.utf8)), parts[2]].joined(separator: ".")
            #expect(await OperatorCredentialTests.refusesHello(server, .string(forged)))
            #expect(await OperatorCredentialTests.refusesHello(server, .string(parts[0] + "." + parts[1] + ".AAAA")))

            let brief = try #require(try await Self.issue(op, world, ttl: 60)["token"]?.stringValue)
            let briefly = try await server.connect(token: brief)
            clock.advance(seconds: 60)
            #expect(await reason { try await briefly.call("meter.verify", verifyParams("b-1")) } == "UNAUTHENTICATED")
            #expect(await OperatorCredentialTests.refusesHello(server, .string(brief)))

            let revoked = try await Self.issue(op, world)
            let holder = try await server.connect(token: revoked["token"]!.stringValue!)
            let before = try await op.call("auth.revocations", [:])
            #expect(before["revocations"] == [] && before["pollSeconds"] == 30)
            clock.advance(seconds: 5)
            _ = try await op.call("credentials.revoke", ["credentialId": revoked["credentialId"]!])
            #expect(await reason { try await holder.call("meter.verify", verifyParams("r-1")) } == "UNAUTHENTICATED")
            let after = try await op.call("auth.revocations", ["since": "2026-12-02T09:01:00Z"])
            #expect(after["revocations"]?.arrayValue?.map { $0["credentialId"] } == [revoked["credentialId"]])
            #expect(try await op.call("auth.revocations", ["since": "2026-12-02T09:02:00Z"])["revocations"] == [])
            // Another tenant sees none of it, and cannot sign for this tenant's agent.
            let otherOp = try await server.connect(token: other.operatorToken)
            #expect(try await otherOp.call("auth.revocations", [:])["revocations"] == [])
            #expect(
                await reason {
                    try await otherOp.call(
                        "credentials.issueCredit",
                        ["agentId": .string(world.agentId), "spendLimit": "1", "ttlSeconds": 60])
                } == "NOT_FOUND")
            for (params, field) in [
                (["agentId": .string(world.agentId), "ttlSeconds": 60], "spendLimit"),
                (["agentId": .string(world.agentId), "spendLimit": "0", "ttlSeconds": 60], "spendLimit"),
                (["agentId": .string(world.agentId), "spendLimit": "1", "ttlSeconds": 0], "ttlSeconds"),
                (
                    ["agentId": .string(world.agentId), "spendLimit": "1", "ttlSeconds": 60, "scopes": ["operator"]],
                    "scopes[0]"
                ),
            ] as [([String: JSONValue], String)] {
                let error = await rpcError { try await op.call("credentials.issueCredit", .object(params)) }
                #expect(error?.data?["field"]?.stringValue == field, "\(params): \(String(describing: error))")
            }
        }
    }

    @Test func aKeyRotation_keepsOldTokensThroughTheOverlapOnly() async throws {
        let clock = ManualClock(Timestamp.parse("2026-12-02T09:00:00Z")!)
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let old = try await Self.issue(op, world, ttl: 7200)
            let root = try await server.connect(token: TestServer.rootToken)
            #expect(await reason { try await op.call("keys.rotate", [:]) } == "FORBIDDEN", "root only")
            let rotated = try await root.call("keys.rotate", ["overlapSeconds": 600])
            #expect(rotated["previousKeyId"] == old["keyId"] && rotated["keyId"] != old["keyId"])
            #expect(rotated["previousRetiresAt"] == "2026-12-02T09:10:00.000Z")
            let new = try await Self.issue(op, world)
            #expect(new["keyId"] == rotated["keyId"])
            let published = try await server.connect().call("auth.keys", [:])
            #expect(
                Set(published["keys"]?.arrayValue?.compactMap { $0["kid"] } ?? []) == [old["keyId"]!, new["keyId"]!])
            _ = try await server.connect(token: old["token"]!.stringValue!)
            clock.advance(seconds: 600)
            #expect(await OperatorCredentialTests.refusesHello(server, old["token"]!))
            _ = try await server.connect(token: new["token"]!.stringValue!)
            let later = try await server.connect().call("auth.keys", [:])
            #expect(later["keys"]?.arrayValue?.map { $0["kid"] } == [new["keyId"]])
        }
    }
}
