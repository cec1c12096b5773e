import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// `events.ingest` across `kill -9`: a server killed while batches are between arriving and being answered, then
/// started again and sent every batch once more, has recorded each event exactly once — on SQLite and PostgreSQL.
@Suite struct EventKillTests {
    static var backends: [String] {
        ["sqlite:events.sqlite"]
            + (ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"].map { [$0] } ?? [])
    }

    /// Batches of the largest size, all sent at once: when the first is answered the others are still being read,
    /// priced or committed — a batch takes the server tens of milliseconds — unless the machine is slow enough for
    /// all of them to be answered first. Either way each event must be recorded once; where the kill lands varies.
    static let batches = 6
    static let perBatch = 1000

    /// When the events occurred: the same in every sending, or they would be other events under the same ids.
    static let occurredAt = JSONValue.string(Timestamp.format(Date()))

    static func batch(_ number: Int) -> JSONValue {
        .array(
            (0..<perBatch).map { n in
                [
                    "eventId": .string("kill-\(number)-\(n)"), "type": "tool_invocation", "tool": "search",
                    "occurredAt": occurredAt,
                ]
            })
    }

    @Test(arguments: backends)
    func aServerKilledMidBatch_hasEachEventOnce_whenTheBatchesAreSentAgain(storageURL: String) async throws {
        let directory = try temporaryDirectory()
        // PostgreSQL gets a minute per request, as test servers do: 6,000 events land on a database the whole suite
        // shares on two cores, and a slow commit there is not a lost one.
        let environment = [
            "TOLLGATE_STORAGE_URL": storageURL, "TOLLGATE_ADMIN_TOKEN": "process-test-root-token",
            "TOLLGATE_LIMITS_STORAGE_TIMEOUT_MS": "60000",
        ]
        var server = try await ServerProcess.start(directory: directory, environment: environment)
        let setup = try await ServerProcessTests().setUpAgent(address: server.address, tenant: "kill-\(UUID())")
        let agent = try await TollgateConnection.connect(address: server.address)
        _ = try await agent.call("auth.hello", ["token": .string(setup.agentToken)])
        // Every batch sent at once; the server is killed as soon as the first is answered.
        var before: [Int: JSONValue] = [:]
        await withTaskGroup(of: (Int, JSONValue?).self) { group in
            for number in 0..<Self.batches {
                group.addTask { (number, try? await agent.call("events.ingest", ["events": Self.batch(number)])) }
            }
            for await (number, answer) in group {
                guard let answer else { continue }
                if before.isEmpty { server.signal(SIGKILL) }
                before[number] = answer
            }
        }
        _ = await server.wait()
        await agent.close()

        server = try await ServerProcess.start(directory: directory, environment: environment)
        let again = try await TollgateConnection.connect(address: server.address)
        _ = try await again.call("auth.hello", ["token": .string(setup.agentToken)])
        var accepted = 0
        for number in 0..<Self.batches {
            let results =
                try await again.call("events.ingest", ["events": Self.batch(number)])["results"]?
                .arrayValue ?? []
            let statuses = results.map { $0["status"]?.stringValue ?? "?" }
            #expect(statuses.allSatisfy { $0 == "accepted" || $0 == "duplicate" }, "\(results.first ?? .null)")
            accepted += statuses.filter { $0 == "accepted" }.count
            if let first = before[number] {
                // Answered before the kill: every one of its events was recorded then, under the same receipt.
                #expect(statuses.allSatisfy { $0 == "duplicate" })
                let receipts = (first["results"]?.arrayValue ?? []).map { $0["receiptId"] }
                #expect(results.map { $0["receiptId"] } == receipts)
            }
        }
        let op = try await TollgateConnection.connect(address: server.address)
        _ = try await op.call("auth.hello", ["token": .string(setup.operatorToken)])
        let usage = try await op.call("usage.summary")
        let total = Self.batches * Self.perBatch
        #expect(usage["total"]?["calls"] == .integer(Int64(total)), "\(usage)")
        #expect(usage["total"]?["cost"] == "6", "\(usage)")  // 6,000 calls at 0.001
        #expect(accepted < total, "the batches answered before the kill were not recorded again")
        await again.close()
        await op.close()
        #expect(await server.stop().status == 0)
    }
}
