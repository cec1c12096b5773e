import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateRuntime
import TollgateTesting

@testable import TollgateServer

/// Guessing tokens and client secrets is slowed down, secrets are compared in constant time and carry well over
/// 128 bits of randomness, and no secret (nor its hash) ever reaches the log.
@Suite struct AuthAbuseTests {
    /// The window counts failures per key: the limit-th failure makes the key wait until the oldest that counts
    /// leaves the window; other keys are not affected.
    @Test func failuresAreCountedPerKeyInASlidingWindow() {
        var failures = AuthFailures(limit: 3, windowMs: 1000)
        for at in [0, 100, 200] as [Int64] {
            #expect(failures.retryAfterMs("a", now: at) == nil)
            failures.record("a", now: at)
        }
        #expect(failures.retryAfterMs("a", now: 300) == 700, "until the failure at 0 leaves the window")
        #expect(failures.retryAfterMs("b", now: 300) == nil)
        #expect(failures.retryAfterMs("a", now: 1000) == nil, "one has left: one more attempt")
        failures.record("a", now: 1000)
        #expect(failures.retryAfterMs("a", now: 1001) == 99)
    }

    /// Over the wire: after the connection's failures, every attempt on it is RATE_LIMITED — a right token too —
    /// and after the address's, a new connection from it is; once the window passes, the right token works.
    @Test func failedAuthenticationsAreLimited_perConnectionAndPerAddress() async throws {
        let limits: @Sendable (inout ServerConfiguration) -> Void = { configuration in
            configuration.listener.authFailuresPerConnection = 3
            configuration.listener.authFailuresPerAddress = 5
            configuration.listener.authFailureWindowMs = 60_000
        }
        // The window follows the server's clock: a loaded machine cannot let it pass unseen.
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        try await TestServer.with(clock: clock, configure: limits) { server in
            let first = try await server.connect()
            var answers: [String?] = []
            for guess in ["TGO-guess0", "TGO-guess1", "TGO-guess2"] {
                answers.append(await Self.hello(first, guess))
            }
            #expect(answers == ["UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED"])
            let limited = await Self.helloError(first, TestServer.rootToken)
            #expect(limited?.reason == "RATE_LIMITED", "\(String(describing: limited))")
            #expect((limited?.data?["retryAfterMs"]?.int64Value ?? 0) > 0)
            // Client secrets count the same way, on the same address.
            let second = try await server.connect()
            let exchanges = [await Self.exchange(second), await Self.exchange(second)]
            #expect(exchanges == ["UNAUTHENTICATED", "UNAUTHENTICATED"])
            let third = try await server.connect()
            let refused = await Self.hello(third, TestServer.rootToken)
            #expect(refused == "RATE_LIMITED", "five failures from this address")
            clock.advance(seconds: 60)
            let accepted = await Self.hello(third, TestServer.rootToken)
            #expect(accepted == nil, "the window has passed")
        }
    }

    static func helloError(_ connection: TollgateConnection, _ token: String) async -> RPCError? {
        await rpcError { try await connection.call("auth.hello", ["token": .string(token)]) }
    }

    static func hello(_ connection: TollgateConnection, _ token: String) async -> String? {
        await reason { try await connection.call("auth.hello", ["token": .string(token)]) }
    }

    static func exchange(_ connection: TollgateConnection) async -> String? {
        await reason { try await connection.call("auth.token", ["clientId": "cli_nope", "clientSecret": "TGS-guess"]) }
    }

    @Test func secretsHaveAtLeast128BitsAndCompareInConstantTime() {
        let secret = Secrets.make(prefix: Secrets.agentTokenPrefix)
        let random = secret.dropFirst(Secrets.agentTokenPrefix.count)
        // 32 characters from a 32-letter alphabet: 160 bits.
        #expect(random.count == 32 && Set(random).count > 8)
        #expect(Double(random.count) * log2(32) >= 128)
        #expect(Secrets.equal(Secrets.hash("a"), Secrets.hash("a")))
        #expect(!Secrets.equal(Secrets.hash("a"), Secrets.hash("b")))
        #expect(!Secrets.equal("abc", "abcd"))
    }

    /// A whole scenario — tenant, agent, credentials, client-credentials exchange, bad tokens and secrets, a
    /// refusal, a revocation, an invoice handed to Stripe — logged at trace level: no line holds any secret the
    /// test saw, nor its hash.
    @Test func noSecretReachesTheLog() async throws {
        let log = CapturedLog()
        let standIn = try await StripeStandIn.start()
        let clock = ManualClock(Timestamp.parse("2026-12-01T09:00:00Z")!)
        var secrets = [TestServer.rootToken, StripeStandIn.secretKey]
        try await TestServer.with(clock: clock, log: log, configure: StripeHandoffTests.configure(standIn)) {
            server in
            let world = try await CreditTests.world(on: server, block: true)
            secrets += [world.operatorToken, world.agentToken]
            let team = try await world.op.call("teams.create", ["customerId": world.customerId, "name": "t2"])
            let agent = try await world.op.call("agents.create", ["teamId": team["teamId"]!, "name": "a2"])
            secrets.append(agent["clientSecret"]!.string!)
            let exchanged = try await world.op.call(
                "auth.token", ["clientId": agent["clientId"]!, "clientSecret": agent["clientSecret"]!])
            secrets.append(exchanged["token"]!.string!)
            let guessed = "AGT-" + String(world.agentToken.dropFirst(4).reversed())
            secrets.append(guessed)
            let stranger = try await server.connect()
            _ = await reason { try await stranger.call("auth.hello", ["token": .string(guessed)]) }
            _ = await reason {
                try await stranger.call(
                    "auth.token", ["clientId": agent["clientId"]!, "clientSecret": .string(secrets.last! + "x")])
            }
            // A refusal (no credit), a charge, a revocation and the revoked token used again.
            _ = await reason { try await CreditTests.search(world.agent, "r1") }
            _ = try await world.op.call(
                "credits.grant", ["customerId": world.customerId, "amount": "1", "kind": "prepaid"])
            _ = try await CreditTests.search(world.agent, "r2")
            let revoked = try await world.op.call(
                "credentials.revoke", ["credentialId": exchanged["credentialId"]!])
            #expect(revoked["revoked"] == true)
            let late = try await server.connect()
            _ = await reason { try await late.call("auth.hello", ["token": exchanged["token"]!]) }
            // Operator credentials, a rotated client secret, a credit token and a delegated one.
            let issued = try await world.op.call("operators.issue", ["name": "ci", "scopes": ["billing:read"]])
            let rotatedOperator = try await world.op.call(
                "operators.rotate", ["credentialId": issued["credentialId"]!, "overlapSeconds": 0])
            secrets += [issued["token"]!.string!, rotatedOperator["token"]!.string!]
            _ = await reason { try await server.connect(token: issued["token"]!.string!).call("usage.summary") }
            let secret = try await world.op.call("credentials.rotate", ["agentId": agent["agentId"]!])
            secrets.append(secret["clientSecret"]!.string!)
            let credit = try await world.op.call(
                "credentials.issueCredit", ["agentId": agent["agentId"]!, "spendLimit": "1", "ttlSeconds": 600])
            secrets.append(credit["token"]!.string!)
            let delegating = try await world.op.call(
                "credentials.issue",
                [
                    "agentId": agent["agentId"]!, "scopes": ["meter:write", "credentials:delegate"], "ttlSeconds": 600,
                    "spendLimit": "1",
                ])
            secrets.append(delegating["token"]!.string!)
            let child = try await server.connect(token: delegating["token"]!.string!).call(
                "credentials.delegate", ["spendLimit": "0.5", "ttlSeconds": 60, "scopes": ["meter:write"]])
            secrets.append(child["token"]!.string!)
            _ = try await server.connect(token: child["token"]!.string!)
            _ = try await server.connect(token: credit["token"]!.string!)
            let forged = String(credit["token"]!.string!.dropLast(4)) + "AAAA"
            secrets.append(forged)
            _ = await reason { try await server.connect().call("auth.hello", ["token": .string(forged)]) }
            let root = try await server.connect(token: TestServer.rootToken)
            _ = try await root.call("keys.rotate", ["overlapSeconds": 60])
            clock.set(Timestamp.parse("2026-12-02T00:00:01Z")!)
            let invoice = try await world.op.call("periods.close", ["subscriptionId": world.subscriptionId])
            _ = await StripeHandoffTests.handoff(world.op, invoice["invoiceId"]!, "send", is: "done")
            // The signing keys' private halves, as storage keeps them.
            let ring = try await server.app.supervisor.signingKeys()
            secrets += ring.keys.map { Base64URL.encode($0.privateKey.rawRepresentation) }
        }
        await standIn.stop()
        let lines = log.all
        #expect(lines.count > 5, "the scenario was logged: \(lines.count) lines")
        for secret in secrets {
            for text in [secret, Secrets.hash(secret)] {
                let leaked = lines.filter { $0.contains(text) }
                #expect(leaked.isEmpty, "\(text.prefix(6))… is in the log: \(leaked)")
            }
        }
    }
}
