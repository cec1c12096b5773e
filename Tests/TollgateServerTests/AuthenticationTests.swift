import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

@Suite struct AuthenticationTests {
    @Test func everyMethodButHello_needsHelloFirst() async throws {
        try await TestServer.with { server in
            let connection = try await server.connect()
            for method in ["tenants.create", "customers.create", "meter.verify", "usage.summary", "caps.set"] {
                #expect(await reason { try await connection.call(method, ["name": "x"]) } == "UNAUTHENTICATED")
            }
            #expect(
                await reason { try await connection.call("auth.hello", ["token": "TGO-wrong"]) } == "UNAUTHENTICATED")
            #expect(
                await reason { try await connection.call("auth.hello", ["token": "AGT-wrong"]) } == "UNAUTHENTICATED")
            #expect(
                await reason { try await connection.call("auth.hello", ["token": "nonsense"]) } == "UNAUTHENTICATED")
            #expect(await reason { try await connection.call("auth.hello", [:]) } == "code -32602")
            let hello = try await connection.call("auth.hello", ["token": .string(TestServer.rootToken)])
            #expect(hello["principal"]?["kind"] == "operator")
            #expect(hello["server"]?["name"] == "tollgate")
            #expect(hello["limits"]?["inFlightMax"] == 1024)
        }
    }

    @Test func revokedCredential_failsTheVeryNextRequestOfAnOpenConnection() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("1"))
            let op = try await server.connect(token: world.operatorToken)
            #expect(
                try await op.call("credentials.revoke", ["credentialId": .string(world.credentialId)])["revoked"]
                    == true)
            #expect(await reason { try await agent.call("meter.verify", verifyParams("2")) } == "UNAUTHENTICATED")
            let fresh = try await server.connect()
            #expect(
                await reason { try await fresh.call("auth.hello", ["token": .string(world.agentToken)]) }
                    == "UNAUTHENTICATED")
        }
    }

    @Test func expiredCredential_failsTheNextRequest() async throws {
        let clock = ManualClock()
        try await TestServer.with(clock: clock) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let token = try await op.call("credentials.issue", ["agentId": .string(world.agentId), "ttlSeconds": 60])[
                "token"]!
            let agent = try await server.connect(token: token.string!)
            _ = try await agent.call("meter.verify", verifyParams("1"))
            clock.advance(seconds: 60)
            #expect(await reason { try await agent.call("meter.verify", verifyParams("2")) } == "UNAUTHENTICATED")
        }
    }

    @Test func clientCredentialsExchange_issuesAShortLivedAgentToken() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let created = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "svc"])
            let anonymous = try await server.connect()
            let issued = try await anonymous.call(
                "auth.token",
                [
                    "clientId": created["clientId"]!,
                    "clientSecret": created["clientSecret"]!, "ttlSeconds": 120,
                ])
            #expect(issued["token"]?.string?.hasPrefix("AGT-") == true)
            #expect(issued["scopes"] == ["meter:write"])
            let agent = try await server.connect(token: issued["token"]!.string!)
            _ = try await agent.call("meter.verify", verifyParams("x"))
            #expect(
                await reason {
                    try await anonymous.call(
                        "auth.token", ["clientId": created["clientId"]!, "clientSecret": "TGS-wrong"])
                } == "UNAUTHENTICATED")
        }
    }

    @Test func credentialsIssue_validatesScopesAndLifetime() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let agentId = JSONValue.string(world.agentId)
            #expect(
                await reason { try await op.call("credentials.issue", ["agentId": agentId, "ttlSeconds": 0]) }
                    == "VALIDATION_FAILED")
            #expect(
                await reason {
                    try await op.call("credentials.issue", ["agentId": agentId, "ttlSeconds": 60, "scopes": ["root"]])
                }
                    == "VALIDATION_FAILED")
            #expect(
                await reason {
                    try await op.call("credentials.issue", ["agentId": agentId, "ttlSeconds": 60, "spendLimit": "-1"])
                }
                    == "VALIDATION_FAILED")
            let forbidden = try await op.call(
                "credentials.issue", ["agentId": agentId, "ttlSeconds": 60, "scopes": ["usage:read"]])
            let agent = try await server.connect(token: forbidden["token"]!.string!)
            #expect(await reason { try await agent.call("meter.verify", verifyParams("x")) } == "FORBIDDEN")
        }
    }

    @Test func secretsAreStoredOnlyAsHashes() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            let server = try await servers.start(storageURL: "sqlite:\(path)")
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let agent = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "x"])
            try await server.stop()
            var bytes = Data()
            for suffix in ["", "-wal"] {
                if let data = FileManager.default.contents(atPath: path + suffix) { bytes.append(data) }
            }
            #expect(!bytes.isEmpty)
            for secret in [world.agentToken, world.operatorToken, agent["clientSecret"]!.string!, TestServer.rootToken]
            {
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "a secret was stored in plain text")
            }
        }
    }
}
