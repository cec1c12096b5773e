import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateSQLite
import TollgateTesting

@Suite struct ShutdownTests {
    @Test func gracefulShutdown_answersWhatIsInFlight_thenStops() async throws {
        try await TestServer.scope { servers in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tollgate-\(UUID().uuidString).sqlite"
            )
            .path
            let store = GatedStore(wrapping: try SQLiteStore(path: path))
            let server = try await servers.start(store: store)
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            store.closeGate()
            let inFlight = Task { try await agent.call("meter.verify", verifyParams("draining")) }
            await eventually("the call to reach the ledger") { store.commitsStarted == 1 }
            let stopping = Task { try await server.stop() }
            // New connections are no longer accepted while draining (polled: on a busy machine the listener may
            // take more than a moment to close).
            await eventually("the listener to stop accepting") {
                guard let late = try? await TollgateConnection.connect(host: server.host, port: server.port) else {
                    return true
                }
                await late.close()
                return false
            }
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
}
