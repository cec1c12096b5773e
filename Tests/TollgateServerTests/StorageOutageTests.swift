import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// A running server whose PostgreSQL goes away: calls fail with `UNAVAILABLE` within the storage timeout
/// (nothing recorded, retryable), and succeed again once the database is back. The database is reached
/// through a relay that the test cuts and restores, on real sockets.
@Suite struct StorageOutageTests {
    static let postgres = ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"]

    @Test(.enabled(if: postgres != nil, "needs TOLLGATE_TEST_POSTGRES_URL"))
    func aLostDatabase_makesCallsUnavailable_andTheyRecoverWhenItReturns() async throws {
        try await TestServer.scope { servers in
            let live = try #require(Self.postgres)
            let (before, port, after) = try #require(Self.splitPort(live))
            let relay = try await TCPRelay(to: "127.0.0.1", port: port)
            let server = try await servers.start(storageURL: before + "\(relay.port)" + after) {
                $0.postgres.requestTimeoutMs = 8000
            }
            do {
                let world = try await Fixture.make(on: server, name: "outage-\(UUID().uuidString)")
                let agent = try await server.connect(token: world.agentToken)
                _ = try await agent.call("meter.verify", verifyParams("k1", tool: "search"))

                relay.cut()
                let started = ContinuousClock.now
                let refused = await rpcError {
                    try await agent.call("meter.verify", verifyParams("k2", tool: "search"))
                }
                #expect(
                    refused?.reason == "UNAVAILABLE" && refused?.data?["retryable"] == true,
                    "\(String(describing: refused))")
                #expect(ContinuousClock.now - started < .seconds(30), "answered within the storage timeout, not never")

                relay.restore()
                // The same key again once the database is back: charged now, and once.
                var recovered: JSONValue?
                for _ in 0..<100 where recovered == nil {
                    recovered = try? await agent.call("meter.verify", verifyParams("k2", tool: "search"))
                    if recovered == nil { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(recovered?["allowed"] == true, "calls succeed again once the database is back")
                let op = try await server.connect(token: world.operatorToken)
                let usage = try await op.call("usage.summary")
                #expect(usage["total"]?["calls"] == 2 && usage["total"]?["cost"] == "0.002")
            } catch {
                Issue.record(error)
            }
            relay.restore()
            try await server.stop()
            try await relay.close()
        }
    }

    /// `postgres://u:p@host:PORT/db` as the text before the port, the port, and the text after it.
    static func splitPort(_ url: String) -> (String, Int, String)? {
        guard let at = url.lastIndex(of: "@"), let slash = url[at...].firstIndex(of: "/"),
            let colon = url[at..<slash].lastIndex(of: ":"), let port = Int(url[url.index(after: colon)..<slash])
        else {
            return nil
        }
        return (String(url[...colon]), port, String(url[slash...]))
    }
}
