import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateSQLite
import TollgateTesting

/// On a plan whose price depends on what came before (graduated tiers), a call that is admitted and then not
/// recorded — its group commit failed, or its key turned out to be recorded already — must not leave its
/// units in the price of the calls admitted after it: the month's recorded charges add up to the plan's price
/// of the recorded usage, exactly. (The same for a failed group commit is in `TenantActorTests`, in process.)
@Suite struct RatingExactnessTests {
    /// The first 3 calls of the month at 1.00, every later one at 0.50.
    static let graduated: JSONValue = [
        "name": "graduated", "currency": "USD",
        "charges": [["strategy": "graduated", "tiers": [["upTo": 3, "rate": "1.00"], ["rate": "0.50"]]]],
    ]

    /// The plan's price of `calls` calls in one month.
    static func price(calls: Int64) -> Money {
        let first = min(calls, 3)
        return Money(nanos: first * 1_000_000_000 + (calls - first) * 500_000_000)
    }

    /// The month so far: recorded calls and what they were charged in total.
    func month(_ server: TestServer, _ world: Fixture) async throws -> (calls: Int64, charged: Money) {
        let op = try await server.connect(token: world.operatorToken)
        defer { Task { await op.close() } }
        let total = try await op.call("usage.summary")["total"]
        return (total?["calls"]?.int64Value ?? -1, try Money(decimal: total?["cost"]?.stringValue ?? "x"))
    }

    /// Sends `keys` pipelined on one connection while the first is held at the commit gate, so that the
    /// others are admitted (and priced) behind it and wait in the ledger writer; then lets commits through.
    func queuedBehindTheFirst(
        _ keys: [String], _ agent: TollgateConnection, _ store: GatedStore, _ server: TestServer,
        beforeOpening: () -> Void
    ) async -> [Result<JSONValue, any Error>] {
        let atCommit = store.entriesAtCommit
        store.closeGate()
        let first = Task { try await agent.call("meter.verify", verifyParams(keys[0], tool: "search")) }
        await eventually("the first call at the gate") { store.entriesAtCommit == atCommit + 1 }
        var rest: [Task<JSONValue, any Error>] = []
        for key in keys.dropFirst() {
            rest.append(Task { try await agent.call("meter.verify", verifyParams(key, tool: "search")) })
        }
        await eventually("the others queued behind it") { server.app.ledger.queuedCount == keys.count - 1 }
        beforeOpening()
        store.openGate()
        var results = [await first.result]
        for task in rest { results.append(await task.result) }
        return results
    }

    @Test func aRetryFoundRecordedAtCommit_leavesNoUnitsInTheCallsQueuedBehindIt() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("tollgate-exact-\(UUID().uuidString).sqlite").path
            var server = try await servers.start(storageURL: "sqlite:" + path)
            let world: Fixture
            do {
                world = try await Fixture.make(on: server, plan: Self.graduated)
                let agent = try await server.connect(token: world.agentToken)
                _ = try await agent.call("meter.verify", verifyParams("a", tool: "search"))
            } catch {
                try await server.stop()
                throw error
            }
            try await server.stop()

            // After a restart the key `a` is known only to storage: its retry is admitted, priced as a second
            // call, and found recorded inside the commit.
            let store = try GatedStore(wrapping: SQLiteStore(path: path))
            server = try await servers.start(store: store)
            do {
                let agent = try await server.connect(token: world.agentToken)
                // Builds the month's totals from storage before the gate closes.
                _ = try await agent.call("meter.verify", verifyParams("b", tool: "search"))
                let results = await queuedBehindTheFirst(["a", "c", "d"], agent, store, server) {}
                #expect(try results[0].get()["replayed"] == true)
                #expect(try results[0].get()["cost"]?.stringValue == "1")
                let costs = results.dropFirst().compactMap { try? $0.get()["cost"]?.stringValue }
                // c and d are the third and fourth calls (1.00 and 0.50): the replay counts nothing.
                #expect(costs.sorted() == ["0.5", "1"])
                let (calls, charged) = try await month(server, world)
                #expect(calls == 4)
                #expect(charged == Self.price(calls: calls))
            } catch {
                Issue.record(error)
            }
            try await server.stop()
        }
    }
}
