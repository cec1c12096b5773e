import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateSQLite
import TollgateStorage
import TollgateTesting

/// Idempotency keys are one namespace per tenant: a key means one request, whatever method sends it again,
/// and its replay is its first answer, unchanged — in memory and after a restart, on every durable backend.
@Suite struct KeyNamespaceTests {
    static var backends: [String] { storageBackends("keys") }

    static func authorize(_ key: String, tool: String = "transform") -> JSONValue {
        ["tool": .string(tool), "idempotencyKey": .string(key), "sessionId": "s1"]
    }

    static func withoutReplayed(_ answer: JSONValue) -> JSONValue {
        var fields = answer.objectValue ?? [:]
        fields["replayed"] = nil
        return .object(fields)
    }

    static func mismatch(_ body: () async throws -> JSONValue) async -> [String]? {
        guard let error = await rpcError(body), error.reason == "IDEMPOTENCY_MISMATCH" else { return nil }
        return error.data?["fields"]?.arrayValue?.compactMap(\.stringValue)
    }

    @Test(arguments: backends)
    func aKeyMeansOneRequest_whateverMethodSendsItAgain(storageURL: String) async throws {
        try await TestServer.with(storageURL: storageURL) { server in
            let world = try await Fixture.make(on: server, name: "keys-\(UUID().uuidString)")
            let agent = try await server.connect(token: world.agentToken)

            let first = try await agent.call("meter.authorize", Self.authorize("k1", tool: "transform"))
            #expect(
                await Self.mismatch { try await agent.call("meter.authorize", Self.authorize("k1", tool: "search")) }
                    == [
                        "tool"
                    ])
            _ = try await agent.call("meter.verify", verifyParams("k2", extra: ["sessionId": "s1"]))
            #expect(await Self.mismatch { try await agent.call("meter.authorize", Self.authorize("k2")) } == ["method"])
            #expect(
                await Self.mismatch {
                    try await agent.call("meter.verify", verifyParams("k1", extra: ["sessionId": "s1"]))
                }
                    == ["method"])

            // A replay after the hold was committed answers what the first call did: held.
            _ = try await agent.call("meter.commit", ["reservationId": first["reservationId"]!, "quantity": 1])
            let replay = try await agent.call("meter.authorize", Self.authorize("k1", tool: "transform"))
            #expect(replay["replayed"] == true)
            #expect(Self.withoutReplayed(replay) == first && first["state"] == "held")
            // Nothing of the above made a second hold or a second charge.
            let usage = try await agent.call("session.get", ["sessionId": "s1"])
            #expect(usage["calls"] == 2 && usage["cost"] == "0.5")
        }
    }

    @Test(arguments: backends.filter { $0 != "memory:" })
    func theNamespaceAndTheFirstAnswer_surviveARestart(storageURL: String) async throws {
        try await TestServer.scope { servers in
            var server = try await servers.start(storageURL: storageURL)
            let world = try await Fixture.make(on: server, name: "keys-restart-\(UUID().uuidString)")
            var agent = try await server.connect(token: world.agentToken)
            let hold = try await agent.call("meter.authorize", Self.authorize("h1"))
            _ = try await agent.call("meter.verify", verifyParams("v1", extra: ["sessionId": "s1"]))
            try await server.stop()

            server = try await servers.start(storageURL: storageURL)
            do {
                agent = try await server.connect(token: world.agentToken)
                let replay = try await agent.call("meter.authorize", Self.authorize("h1"))
                #expect(replay["replayed"] == true)
                #expect(Self.withoutReplayed(replay) == hold)
                #expect(
                    await Self.mismatch {
                        try await agent.call("meter.verify", verifyParams("h1", extra: ["sessionId": "s1"]))
                    }
                        == ["method"])
                #expect(
                    await Self.mismatch { try await agent.call("meter.authorize", Self.authorize("v1")) } == ["method"])
                #expect(
                    await Self.mismatch {
                        try await agent.call("meter.authorize", Self.authorize("h1", tool: "search"))
                    }
                        == ["tool"])
                let session = try await agent.call("session.get", ["sessionId": "s1"])
                #expect(session["calls"] == 1 && session["cost"] == "0.25")
            } catch {
                Issue.record(error)
            }
            try await server.stop()
        }
    }

    /// After a restart every client retries at once. A retried key is answered from the key index; it does
    /// not make the next call rebuild the subscription's pricing state from the month's charges, which is
    /// what made each retry slower as charges accumulated.
    @Test func retriesAfterARestart_doNotRebuildThePricingState() async throws {
        try await TestServer.scope { servers in
            let path =
                "sqlite:"
                + FileManager.default.temporaryDirectory
                .appendingPathComponent("tollgate-retry-\(UUID().uuidString).sqlite").path
            var server = try await servers.start(storageURL: path)
            let world = try await Fixture.make(on: server)
            var agent = try await server.connect(token: world.agentToken)
            for n in 0..<50 { _ = try await agent.call("meter.verify", verifyParams("r\(n)", tool: "search")) }
            try await server.stop()

            let store = try GatedStore(wrapping: SQLiteStore(path: String(path.dropFirst("sqlite:".count))))
            server = try await servers.start(store: store)
            do {
                agent = try await server.connect(token: world.agentToken)
                for n in 0..<50 {
                    let replay = try await agent.call("meter.verify", verifyParams("r\(n)", tool: "search"))
                    #expect(replay["replayed"] == true)
                }
                _ = try await agent.call("meter.verify", verifyParams("new", tool: "search"))
                #expect(store.ratingRebuilds == 1, "built once after the start, never again")
                let usage = try await server.connect(token: world.operatorToken).call("usage.summary")
                #expect(usage["total"]?["calls"] == 51)
            } catch {
                Issue.record(error)
            }
            try await server.stop()
        }
    }

    /// A commit recorded before commits had a method of their own was stored as `meter.verify`: retried after
    /// the upgrade, it still replays its receipt instead of being refused as another method's key.
    @Test func aCommitRecordedBeforeTheUpgrade_stillReplays() async throws {
        let store = InMemoryStore()
        try await TestServer.with(store: store) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let session = "ses_legacy"
            _ = try await agent.call("session.open", ["sessionId": .string(session)])
            // The hold and its commit as the earlier version stored them.
            let path = ChargePath(
                customerId: world.customerId, teamId: world.teamId, agentId: world.agentId,
                sessionId: session, credentialId: world.credentialId)
            let now = Date()
            let reservationId = Identifiers.make(.reservation)
            let hold = ReservationRecord(
                tenantId: world.tenantId, id: reservationId, idempotencyKey: "legacy-hold", path: path,
                tool: "search", held: Money(nanos: 1_000_000), currency: "USD", createdAt: now,
                expiresAt: now.addingTimeInterval(300))
            _ = try await store.insertReservation(
                hold,
                idempotency: IdempotencyRecord(
                    tenantId: world.tenantId, key: "legacy-hold", method: "meter.authorize", params: "", result: "",
                    createdAt: now))
            let params: JSONValue = ["reservationId": .string(reservationId), "quantity": 1]
            let receipt: JSONValue = ["allowed": true, "receiptId": "rcp_legacy", "cost": "0.001", "currency": "USD"]
            let charge = ChargeRecord(
                receiptId: "rcp_legacy", tenantId: world.tenantId, path: path,
                subscriptionId: world.subscriptionId, planId: world.planId, planVersion: 1, tool: "search",
                quantity: 1, cost: Money(nanos: 1_000_000), currency: "USD",
                idempotencyKey: "commit:\(reservationId)", at: now)
            // The fingerprint's documented shape: the agent and the params, canonical JSON.
            let fingerprint = JSONCodec.string(["agentId": .string(world.agentId), "params": params])
            _ = try await store.commit([
                LedgerEntry(
                    charge: charge,
                    idempotency: IdempotencyRecord(
                        tenantId: world.tenantId, key: "commit:\(reservationId)", method: "meter.verify",
                        params: fingerprint,
                        result: JSONCodec.string(receipt), createdAt: now))
            ])
            try await store.write(
                .finishReservation(
                    tenantId: world.tenantId, id: reservationId, state: .committed, receiptId: "rcp_legacy"))

            let replay = try await agent.call("meter.commit", params)
            #expect(replay["receiptId"] == "rcp_legacy" && replay["replayed"] == true)
            let usage = try await server.connect(token: world.operatorToken).call("usage.summary")
            #expect(usage["total"]?["calls"] == 1, "replayed, not charged again")
        }
    }
}
