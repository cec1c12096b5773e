import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateSQLite
import TollgateTesting

@Suite struct IdempotencyTests {
    @Test func sameKeySameParams_replaysTheFirstAnswerUnchanged() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let first = try await agent.call("meter.verify", verifyParams("k", extra: ["sessionId": "s1"]))
            let again = try await agent.call("meter.verify", verifyParams("k", extra: ["sessionId": "s1"]))
            guard case .object(var replayed) = again else {
                Issue.record("not an object")
                return
            }
            #expect(replayed.removeValue(forKey: "replayed") == true)
            #expect(JSONValue.object(replayed) == first)
            // Charged once.
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 1)
        }
    }

    @Test func sameKeyDifferentParams_isAMismatchNamingTheFields() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            _ = try await agent.call("meter.verify", verifyParams("k", tool: "search"))
            let error = try #require(
                await rpcError {
                    try await agent.call("meter.verify", verifyParams("k", tool: "transform", extra: ["quantity": 2]))
                })
            #expect(error.code == -32011)
            #expect(error.data?["fields"] == ["quantity", "tool"])
        }
    }

    @Test func sameKeyFromAnotherAgent_isAMismatchNotSomeoneElsesReceipt() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            let other = try await op.call("agents.create", ["teamId": .string(world.teamId), "name": "other"])[
                "agentId"]!
            let token = try await op.call("credentials.issue", ["agentId": other, "ttlSeconds": 60])["token"]!
            let a = try await server.connect(token: world.agentToken)
            let b = try await server.connect(token: token.string!)
            _ = try await a.call("meter.verify", verifyParams("shared"))
            let error = try #require(await rpcError { try await b.call("meter.verify", verifyParams("shared")) })
            #expect(error.reason == "IDEMPOTENCY_MISMATCH")
            #expect(error.data?["fields"] == ["agentId"])
        }
    }

    @Test func sameKeyWhileTheFirstIsInFlight_isInProgress_thenReplays() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            store.closeGate()
            let first = Task { try await agent.call("meter.verify", verifyParams("slow")) }
            await eventually("the first call to reach the ledger") { store.commitsStarted == 1 }
            let error = try #require(await rpcError { try await agent.call("meter.verify", verifyParams("slow")) })
            #expect(error.code == -32012)
            #expect(error.data?["retryable"] == true)
            store.openGate()
            let answer = try await first.value
            let replay = try await agent.call("meter.verify", verifyParams("slow"))
            #expect(replay["receiptId"] == answer["receiptId"])
            #expect(replay["replayed"] == true)
        }
    }

    @Test func failedWrite_recordsNothing_andTheRetryIsChargedAfresh() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store) { server in
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.25", "period": "day"])
            let agent = try await server.connect(token: world.agentToken)
            store.failCommits(true)
            let error = try #require(await rpcError { try await agent.call("meter.verify", verifyParams("k")) })
            #expect(error.code == -32050)
            #expect(error.data?["retryable"] == true)
            store.failCommits(false)
            // The hold was released: the whole cap is still available to the retry.
            let retry = try await agent.call("meter.verify", verifyParams("k"))
            #expect(retry["replayed"] == nil)
            #expect(retry["remaining"] == ["agent": "0"])
        }
    }

    @Test func replayAndSpend_surviveARestart() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            var server = try await servers.start(storageURL: "sqlite:\(path)")
            let world = try await Fixture.make(on: server)
            let op = try await server.connect(token: world.operatorToken)
            _ = try await op.call(
                "caps.set", ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.5", "period": "month"])
            var agent = try await server.connect(token: world.agentToken)
            let first = try await agent.call("meter.verify", verifyParams("before-restart"))
            _ = try await agent.call("meter.verify", verifyParams("second"))
            try await server.stop()

            server = try await servers.start(storageURL: "sqlite:\(path)")
            agent = try await server.connect(token: world.agentToken)
            let replay = try await agent.call("meter.verify", verifyParams("before-restart"))
            #expect(replay["receiptId"] == first["receiptId"])
            #expect(replay["replayed"] == true)
            #expect(
                await reason { try await agent.call("meter.verify", verifyParams("before-restart", tool: "search")) }
                    == "IDEMPOTENCY_MISMATCH")
            // The cap's spend was rebuilt from storage: nothing more fits.
            #expect(await reason { try await agent.call("meter.verify", verifyParams("third")) } == "BUDGET_EXCEEDED")
            try await server.stop()
        }
    }
}
