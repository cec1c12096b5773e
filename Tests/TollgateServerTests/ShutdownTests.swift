import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateSQLite
import TollgateTesting

@Suite struct ShutdownTests {
    @Test func gracefulShutdown_answersWhatIsInFlight_thenStops() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString).sqlite").path
        let store = GatedStore(wrapping: try SQLiteStore(path: path))
        let server = try await TestServer.start(store: store)
        let world = try await Fixture.make(on: server)
        let agent = try await server.connect(token: world.agentToken)
        store.closeGate()
        let inFlight = Task { try await agent.call("meter.verify", verifyParams("draining")) }
        await eventually("the call to reach the ledger") { store.commitsStarted == 1 }
        let stopping = Task { try await server.stop() }
        try await Task.sleep(for: .milliseconds(100))
        // New connections are no longer accepted while draining.
        await #expect(throws: (any Error).self) { _ = try await TollgateConnection.connect(host: server.host, port: server.port) }
        store.openGate()
        let answer = try await inFlight.value
        #expect(answer["allowed"] == true)
        try await stopping.value
        // What was answered was committed: it is there when the file is opened again.
        let reopened = try SQLiteStore(path: path)
        let usage = try await reopened.usage(tenantId: world.tenantId, filter: .init(), groupBy: [])
        #expect(usage.first?.calls == 1)
        try await reopened.close()
    }
}
