import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `tollgate operators …`, `tollgate agents create | list` and `tollgate credentials issue | issue-credit | list |
/// revoke | rotate`, with the real binary: each secret printed once, with a warning on standard error to store it,
/// and never again.
@Suite struct CredentialCommandsTests {
    @Test func credentialsFromTheCommandLine() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let tollgate = TollgateCommand(address: server.address, token: world.operatorToken)
            let warning = "shown this once"

            // An operator credential for a billing system, listed, rotated and revoked.
            let issued = try await tollgate([
                "operators", "issue", "billing-export", "--scope", "billing:read", "--ttl", "3600", "--json",
            ])
            #expect(issued.error.contains(warning), "\(issued.error)")
            let operatorToken = try #require(try JSONCodec.parse(Array(issued.output.utf8))["token"]?.stringValue)
            let operatorId = try #require(try JSONCodec.parse(Array(issued.output.utf8))["credentialId"]?.stringValue)
            let reader = TollgateCommand(address: server.address, token: operatorToken)
            _ = try await reader(["invoices", "list"])
            _ = try await reader(["customers", "create", "Nope"], expecting: 1)
            _ = try await tollgate(["operators", "issue", "no-scope"], expecting: 1)
            let listed = try await tollgate(["operators", "list"])
            #expect(listed.output.contains("billing-export") && listed.output.contains("initial"))
            #expect(!listed.output.contains(operatorToken) && !listed.error.contains(warning))
            let rotated = try await tollgate(["operators", "rotate", operatorId, "--overlap", "0", "--get", "token"])
            #expect(rotated.error.contains(warning))
            let successor = rotated.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(successor.hasPrefix("TGO-") && successor != operatorToken)
            _ = try await reader(["invoices", "list"], expecting: 1)
            let next = TollgateCommand(address: server.address, token: successor)
            _ = try await next(["invoices", "list"])
            let nextId = try await tollgate.value(["operators", "list", "--json"])
            let rows = try #require(try JSONCodec.parse(Array(nextId.utf8))["operators"]?.arrayValue)
            let successorId = try #require(rows.first { $0["revokedAt"] == nil && $0["name"] == "billing-export" })
            _ = try await tollgate(["operators", "revoke", successorId["credentialId"]!.stringValue!])
            _ = try await next(["invoices", "list"], expecting: 1)

            // Agents and their credentials.
            let agent = try await tollgate(["agents", "create", "--team", world.teamId, "worker", "--json"])
            #expect(agent.error.contains(warning))
            let agentId = try #require(try JSONCodec.parse(Array(agent.output.utf8))["agentId"]?.stringValue)
            let agents = try await tollgate.value(["agents", "list", "--team", world.teamId])
            #expect(agents.contains("worker") && !agents.contains("TGS-"), "\(agents)")
            let token = try await tollgate([
                "credentials", "issue", "--agent", agentId, "--scope", "meter:write", "--ttl", "600", "--get", "token",
            ])
            #expect(token.error.contains(warning))
            let credentials = try await tollgate.value(["credentials", "list", "--agent", agentId])
            #expect(credentials.contains(String(token.output.prefix(8))), "the prefix tells it apart")
            #expect(!credentials.contains(token.output.trimmingCharacters(in: .whitespacesAndNewlines)))
            let secret = try await tollgate(["credentials", "rotate", "--agent", agentId, "--overlap", "60"])
            #expect(secret.output.contains("TGS-") && secret.output.contains("previousValidUntil"))
            #expect(secret.error.contains(warning))
            _ = try await tollgate(["credentials", "rotate", "--agent", "agt_nope"], expecting: 1)
            let credit = try await tollgate([
                "credentials", "issue-credit", "--agent", agentId, "--spend-limit", "1.5", "--ttl", "600", "--get",
                "token",
            ])
            #expect(credit.output.hasPrefix("eyJ") && credit.error.contains(warning), "\(credit.error)")
            _ = try await tollgate(
                ["credentials", "issue-credit", "--agent", agentId, "--spend-limit", "0"], expecting: 1)

            // An agent delegating to a sub-agent, the revocations, and the keys.
            let delegating = try await tollgate.value([
                "credentials", "issue", "--agent", agentId, "--scope", "meter:write", "--scope", "credentials:delegate",
                "--spend-limit", "2", "--get", "token",
            ])
            let asAgent = TollgateCommand(address: server.address, token: delegating)
            let child = try await asAgent([
                "credentials", "delegate", "--spend-limit", "0.5", "--ttl", "60", "--label", "researcher", "--json",
            ])
            #expect(child.error.contains(warning))
            let childJSON = try JSONCodec.parse(Array(child.output.utf8))
            #expect(childJSON["label"] == "researcher" && childJSON["token"]?.stringValue?.hasPrefix("AGT-") == true)
            _ = try await asAgent(["credentials", "delegate", "--spend-limit", "5"], expecting: 1)
            _ = try await tollgate(["credentials", "revoke", childJSON["credentialId"]!.stringValue!])
            let revocations = try await tollgate.value(["credentials", "revocations", "--json"])
            #expect(revocations.contains(childJSON["credentialId"]!.stringValue!), "\(revocations)")
            let keys = try await run(Products.path("tollgate"), ["keys", "show", "--address", server.address])
            #expect(keys.status == 0 && keys.output.contains("Ed25519"), "\(keys.error)")
            let root = TollgateCommand(address: server.address, token: TestServer.rootToken)
            #expect(try await root.value(["keys", "rotate", "--overlap", "60", "--get", "previousRetiresAt"]) != "")
            _ = try await tollgate(["keys", "rotate"], expecting: 1)
        }
    }
}
