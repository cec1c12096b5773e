import Foundation
import Testing
import TollgateJSON
import TollgateRuntime
import TollgateTesting

/// A credit token checked offline by somebody else's code: PyJWT (from PyPI), with the keys `auth.keys` published
/// and the revocations `auth.revocations` listed, as an MCP server would — without asking the server about the
/// token. Needs `TOLLGATE_TEST_MCP_PYTHON` (its Python has PyJWT with `cryptography`); skipped without it.
@Suite(.enabled(if: mcpPython != nil, "set TOLLGATE_TEST_MCP_PYTHON to run the Python scenarios"))
struct CreditTokenPythonTests {
    @Test func pyJWTVerifiesACreditTokenAgainstAuthKeys_andRefusesForgedAndRevokedOnes() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            func issue() async throws -> JSONValue {
                try await op.call(
                    "credentials.issueCredit",
                    [
                        "agentId": .string(world.agentId), "spendLimit": "2.5", "ttlSeconds": 600,
                        "scopes": ["meter:write", "usage:read"],
                    ])
            }
            let good = try await issue()
            let revoked = try await issue()
            _ = try await op.call("credentials.revoke", ["credentialId": revoked["credentialId"]!])
            let token = good["token"]!.stringValue!
            let parts = token.split(separator: ".").map(String.init)
            let richer = String(decoding: Base64URL.decode(parts[1]) ?? Data(), as: UTF8.self)
                .replacingOccurrences(of: "\"2.5\"", with: "\"2500\"")
            let forged = [parts[0], Base64URL.encode(Data(richer.utf8)), parts[2]].joined(separator: ".")
            // Another server's key signs nothing this one published.
            let stranger = try await TestServer.with { other in
                let otherWorld = try await Fixture.make(on: other)
                return try await other.connect(token: otherWorld.operatorToken).call(
                    "credentials.issueCredit",
                    ["agentId": .string(otherWorld.agentId), "spendLimit": "1", "ttlSeconds": 600])["token"]!
                    .stringValue!
            }

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let keys = directory.appendingPathComponent("jwks.json")
            let revocations = directory.appendingPathComponent("revocations.json")
            try JSONCodec.string(try await server.connect().call("auth.keys", [:])).write(
                to: keys, atomically: true, encoding: .utf8)
            try JSONCodec.string(try await op.call("auth.revocations", [:])).write(
                to: revocations, atomically: true, encoding: .utf8)
            let result = try await run(
                mcpPython!,
                [
                    Products.repository.appendingPathComponent("Integration/MCP/verify_credit_token.py").path,
                    keys.path, revocations.path, token, forged, revoked["token"]!.stringValue!, stranger,
                ], timeoutSeconds: 60)
            #expect(result.status == 0, "\(result.error)")
            let lines = result.output.split(separator: "\n").compactMap { try? JSONCodec.parse(Array($0.utf8)) }
            #expect(lines.count == 4, "\(result.output)")
            let claims = lines.first?["claims"]
            #expect(lines.first?["ok"] == true, "\(lines)")
            #expect(claims?["jti"] == good["credentialId"] && claims?["sub"] == .string(world.agentId))
            #expect(claims?["tid"] == .string(world.tenantId) && claims?["spend_limit"] == "2.5")
            #expect(claims?["scope"] == "meter:write usage:read" && claims?["iss"] == "tollgate")
            #expect(lines.dropFirst().map { $0["ok"] } == [false, false, false], "\(lines)")
            #expect(lines.count == 4 && lines[1]["error"] == "InvalidSignatureError" && lines[2]["error"] == "revoked")
            #expect(lines.count == 4 && lines[3]["error"] == "unknown key")
        }
    }
}
