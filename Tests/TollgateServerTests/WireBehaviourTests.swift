import Foundation
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

/// The transport rules of PROTOCOL.md, over a real socket.
@Suite struct WireBehaviourTests {
    func frame(_ text: String) -> [UInt8] {
        let body = Array(text.utf8)
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + body
    }

    func nextNotification(_ connection: TollgateConnection) async -> JSONValue? {
        var iterator = connection.notifications.makeAsyncIterator()
        return await iterator.next()
    }

    /// A request that fills a whole frame with its id, or with a method name, gets a small answer: an error
    /// never echoes unbounded input, and no answer is ever larger than the frame limit.
    @Test(arguments: ["id", "method"])
    func hugeIdOrMethodName_isAnsweredSmall_andTheConnectionLivesOn(field: String) async throws {
        try await TestServer.with { server in
            let connection = try await server.connect()
            let huge = String(repeating: "x", count: 1_048_576 - 64)
            let request =
                field == "id"
                ? #"{"jsonrpc":"2.0","id":"\#(huge)","method":"no.such"}"#
                : #"{"jsonrpc":"2.0","id":1,"method":"\#(huge)"}"#
            #expect(request.utf8.count <= 1_048_576)
            connection.sendRaw(frame(request))
            let answer = try #require(await nextNotification(connection))
            #expect(JSONCodec.serialize(answer).count < 512, "answered in \(JSONCodec.serialize(answer).count) bytes")
            if field == "id" {
                #expect(answer["id"] == .null && answer["error"]?["code"] == -32600)
            } else {
                #expect(answer["error"]?["code"] == -32601)
            }
            _ = try await connection.call("auth.hello", ["token": .string(TestServer.rootToken)])
        }
    }

    /// Sockets opened and left do not hold the connection limit: a connection that does not authenticate is
    /// closed once quiet for `unauthenticatedIdleMs`; an authenticated one stays (idleMs 0) unless configured.
    @Test func quietConnections_areClosed_unauthenticatedOnesFirst() async throws {
        // Margins wide enough for a busy test machine (the full suite runs in parallel on two cores, and a
        // connection counts as unauthenticated until its auth.hello has been handled, not merely read: under the
        // whole suite's load, CI once took over a second to handle one, and a 1 s limit closed it; a full local run
        // once closed the authenticated connection under a 4 s limit too).
        try await TestServer.with(configure: { $0.listener.unauthenticatedIdleMs = 8000 }) { server in
            let silent = try await server.connect()
            let authenticated = try await server.connect(token: TestServer.rootToken)
            try await Task.sleep(for: .milliseconds(11_000))
            #expect(await nextNotification(silent) == nil, "the unauthenticated connection was closed")
            _ = try await authenticated.call("tenants.list")
        }

        // A request every 100 ms against a limit of 5 s (and no hurry to authenticate). The limit leaves room for a
        // loaded machine: in a full run a gap between two of the busy connection's requests once exceeded 3 s.
        try await TestServer.with(configure: {
            $0.listener.unauthenticatedIdleMs = 60_000
            $0.listener.idleMs = 5000
        }) { strict in
            let quiet = try await strict.connect(token: TestServer.rootToken)
            let busy = try await strict.connect(token: TestServer.rootToken)
            for _ in 0..<70 {
                try await Task.sleep(for: .milliseconds(100))
                _ = try await busy.call("tenants.list")
            }
            #expect(await nextNotification(quiet) == nil, "closed after 5 s without a request")
            _ = try await busy.call("tenants.list")
        }
    }

    @Test func malformedJSON_getsParseError_andTheConnectionLivesOn() async throws {
        try await TestServer.with { server in
            let connection = try await server.connect()
            connection.sendRaw(frame("{not json"))
            let answer = try #require(await nextNotification(connection))
            #expect(answer["error"]?["code"] == -32700)
            #expect(answer["id"] == .null)
            _ = try await connection.call("auth.hello", ["token": .string(TestServer.rootToken)])
        }
    }

    @Test(arguments: [([UInt8]([0, 0, 0, 0]), "FRAME_EMPTY"), ([0x00, 0x10, 0x00, 0x01], "FRAME_TOO_LARGE")])
    func impossibleLengthHeader_isAnsweredOnceAndTheConnectionClosed(header: [UInt8], reason: String) async throws {
        try await TestServer.with { server in
            let connection = try await server.connect()
            connection.sendRaw(header)  // no body follows: the server must not wait for one
            let answer = try #require(await nextNotification(connection))
            #expect(answer["error"]?["code"] == -32600)
            #expect(answer["error"]?["data"]?["reason"] == .string(reason))
            #expect(answer["id"] == .null)
            #expect(await nextNotification(connection) == nil, "connection should be closed")
            #expect(
                await self.reason { try await connection.call("auth.hello", ["token": "x"]) }
                    == "the connection to the server is closed")
        }
    }

    @Test func oneBrokenConnection_neverAffectsAnother() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let good = try await server.connect(token: world.agentToken)
            let bad = try await server.connect()
            bad.sendRaw([0xFF, 0xFF, 0xFF, 0xFF])
            _ = await nextNotification(bad)
            _ = try await good.call("meter.verify", verifyParams("still-fine"))
        }
    }

    @Test func batch_isAnsweredAsAnArray_withoutTheNotifications() async throws {
        try await TestServer.with { server in
            let connection = try await server.connect(token: TestServer.rootToken)
            connection.sendRaw(
                frame(
                    """
                    [{"jsonrpc":"2.0","id":"a","method":"tenants.list"},
                     {"jsonrpc":"2.0","method":"tenants.list"},
                     {"jsonrpc":"2.0","id":"b","method":"no.such"},
                     7]
                    """))
            let answer = try #require(await nextNotification(connection))
            guard case .array(let answers) = answer else {
                Issue.record("not an array: \(answer)")
                return
            }
            #expect(answers.count == 3)
            #expect(answers[0]["id"] == "a" && answers[0]["result"] != nil)
            #expect(answers[1]["id"] == "b" && answers[1]["error"]?["code"] == -32601)
            #expect(answers[2]["id"] == .null && answers[2]["error"]?["code"] == -32600)
        }
    }

    @Test func batchOverBatchMax_isRefusedWhole() async throws {
        try await TestServer.with(configure: { $0.listener.batchMax = 2 }) { server in
            let connection = try await server.connect(token: TestServer.rootToken)
            let one = #"{"jsonrpc":"2.0","id":1,"method":"tenants.list"}"#
            connection.sendRaw(frame("[\(one),\(one),\(one)]"))
            let answer = try #require(await nextNotification(connection))
            #expect(answer["error"]?["data"]?["reason"] == "BATCH_TOO_LARGE")
        }
    }

    @Test func pipelinedRequests_areAnsweredOutOfOrderById() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store) { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            store.closeGate()
            let slow = Task { try await agent.call("meter.verify", verifyParams("slow")) }
            await eventually("the slow call to reach the ledger") { store.commitsStarted == 1 }
            // Sent after the slow call on the same connection, answered before it.
            let fast = try await agent.call("auth.hello", ["token": .string(world.agentToken)])
            #expect(fast["principal"]?["kind"] == "agent")
            store.openGate()
            #expect(try await slow.value["allowed"] == true)
        }
    }

    @Test func atInFlightMax_theServerStopsReading_andLosesNothing() async throws {
        try await TestServer.scope { servers in
            let store = GatedStore()
            let server = try await servers.start(store: store) {
                $0.listener.inFlightMax = 4
                $0.listener.batchMax = 4
            }
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            store.closeGate()
            let calls = (0..<12).map { n in Task { try await agent.call("meter.verify", verifyParams("p\(n)")) } }
            // Each call read is either held at the storage gate or queued in the ledger writer behind it.
            let read = { store.entriesAtCommit + server.app.ledger.queuedCount }
            await eventually("four calls to be in flight") { read() == 4 }
            try await Task.sleep(for: .milliseconds(200))
            #expect(read() == 4, "the server read more than inFlightMax requests")
            store.openGate()
            var receipts = Set<String>()
            for call in calls { receipts.insert(try await call.value["receiptId"]!.string!) }
            #expect(receipts.count == 12)
            try await server.stop()
        }
    }

    @Test func connectionLimit_refusesTheNextConnectionWithUnavailable() async throws {
        try await TestServer.with(configure: { $0.listener.connectionsMax = 2 }) { server in
            let first = try await server.connect(token: TestServer.rootToken)
            let second = try await server.connect(token: TestServer.rootToken)
            let third = try await server.connect()
            let answer = try #require(await nextNotification(third))
            #expect(answer["error"]?["data"]?["reason"] == "UNAVAILABLE")
            _ = try await first.call("tenants.list")
            _ = try await second.call("tenants.list")
        }
    }

    func reason(_ body: () async throws -> JSONValue) async -> String? {
        await TollgateServerTests.reason(body)
    }
}
