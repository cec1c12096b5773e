import Foundation
import Logging
import Testing
import TollgateClient
import TollgateCore
import TollgateJSON
import TollgateTesting

@testable import TollgateMCP

/// The proxy's spool: a real SQLite file, its delivery rule without a socket, and its delivery to a real server.
@Suite struct UsageSpoolTests {
    static func temporarySpool() throws -> UsageSpool {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)")
        return try UsageSpool(path: directory.appendingPathComponent("nested/mcp-spool.sqlite").path)
    }

    static func record(_ key: String, credential: String = "c1", session: String? = "s1", tool: String = "search")
        -> UsageSpool.Entry
    {
        UsageSpool.Entry(
            kind: .record, credential: credential, sessionId: session, tool: tool, key: key,
            usage: ["durationMs": 12, "status": "SUCCESS"])
    }

    @Test func entriesSurviveReopening_inOrder_perCredential_andRefusedOnesStay() throws {
        let spool = try Self.temporarySpool()
        let first = try spool.add(Self.record("k1"))
        try spool.add(Self.record("k2", credential: "c2"))
        let third = try spool.add(Self.record("k3"))
        try spool.refuse(first, reason: "BUDGET_EXCEEDED: budget exceeded")
        let reopened = try UsageSpool(path: spool.path)
        #expect(try reopened.pending(credential: "c1").map(\.key) == ["k3"])
        #expect(try reopened.pending(credential: "c2").map(\.key) == ["k2"])
        #expect(try reopened.pendingCount() == 2)
        let all = try reopened.all()
        #expect(all.map(\.key) == ["k1", "k2", "k3"])
        #expect(all.first?.refused == "BUDGET_EXCEEDED: budget exceeded")
        #expect(all.last?.usage?["durationMs"] == 12)
        try reopened.remove(third)
        #expect(try reopened.pending(credential: "c1").isEmpty)
        // The token is never in the file: entries carry a hash of it.
        let credential = SpoolDelivery.credential(ofToken: "AGT-secret-token")
        #expect(credential.count == 32 && !credential.contains("secret"))
        #expect(credential == SpoolDelivery.credential(ofToken: "AGT-secret-token"))
    }

    static func rpcError(_ reason: String, retryable: Bool = false) -> RPCError {
        RPCError(code: -32030, message: "no", data: ["reason": .string(reason), "retryable": .bool(retryable)])
    }

    @Test func theDeliveryRule() {
        let commit = UsageSpool.Entry(
            kind: .commit, credential: "c", sessionId: "s", tool: "search", key: "run-1", reservationId: "rsv_1")
        let close = UsageSpool.Entry(kind: .close, credential: "c", sessionId: "s", key: "s-close")
        struct ConnectionLost: Error {}
        // Not reachable, or not now: kept, and delivery stops there (entries keep their order).
        #expect(SpoolDelivery.verdict(for: commit, after: ConnectionLost()) == .later)
        #expect(SpoolDelivery.verdict(for: commit, after: Self.rpcError("UNAVAILABLE", retryable: true)) == .later)
        // A commit whose hold is gone: the call ran, so it is recorded on its own.
        var recorded = commit
        recorded.kind = .record
        recorded.reservationId = nil
        #expect(SpoolDelivery.verdict(for: commit, after: Self.rpcError("CONFLICT")) == .sendInstead(recorded))
        // A record whose session is closed: charged outside it; and if even that conflicts, refused.
        var outside = recorded
        outside.sessionId = nil
        #expect(SpoolDelivery.verdict(for: recorded, after: Self.rpcError("CONFLICT")) == .sendInstead(outside))
        #expect(SpoolDelivery.verdict(for: outside, after: Self.rpcError("CONFLICT")) == .refused("CONFLICT: no"))
        // A cap or a revoked credential: refused for good, kept with the reason.
        #expect(
            SpoolDelivery.verdict(for: recorded, after: Self.rpcError("BUDGET_EXCEEDED"))
                == .refused("BUDGET_EXCEEDED: no"))
        // A session already closed, or never opened: nothing left to do.
        #expect(SpoolDelivery.verdict(for: close, after: Self.rpcError("CONFLICT")) == .delivered)
        #expect(SpoolDelivery.verdict(for: close, after: Self.rpcError("NOT_FOUND")) == .delivered)
    }

    @Test func aSpoolSentTwice_countsEachCallOnce_andClosesTheSessionAfterItsCalls() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let credential = SpoolDelivery.credential(ofToken: world.agentToken)
            let spool = try Self.temporarySpool()
            // Sent, then the proxy died before removing it: the same entry is in the spool twice.
            try spool.add(Self.record("run-1", credential: credential, session: "mcp-a"))
            try spool.add(Self.record("run-1", credential: credential, session: "mcp-a"))
            try spool.add(Self.record("run-2", credential: credential, session: "mcp-a", tool: "transform"))
            try spool.add(
                UsageSpool.Entry(kind: .close, credential: credential, sessionId: "mcp-a", key: "mcp-a-close"))
            // Another agent's entry is not ours to send.
            try spool.add(Self.record("other-1", credential: "someone-else", session: "mcp-b"))
            let report = try await SpoolDelivery.drain(spool, credential: credential) { agent }
            #expect(report == SpoolDelivery.Report(delivered: 4, refused: 0, stopped: false))
            #expect(try spool.pendingCount() == 1)
            let session = try await agent.session("mcp-a")
            let cost = try Money(decimal: "0.251")
            #expect(session.state == "CLOSED" && session.calls == 2 && session.cost == cost)
            // Everything sent once more (a second proxy run over a copy of the file): replays, nothing new.
            try spool.add(Self.record("run-2", credential: credential, session: "mcp-a", tool: "transform"))
            try spool.add(
                UsageSpool.Entry(kind: .close, credential: credential, sessionId: "mcp-a", key: "mcp-a-close"))
            #expect(try await SpoolDelivery.drain(spool, credential: credential) { agent }.delivered == 2)
            let op = try await server.connect(token: world.operatorToken)
            let usage = try await op.call("usage.summary")
            #expect(usage["total"]?["calls"] == 2 && usage["total"]?["cost"] == "0.251", "\(usage)")
            // Each record says who sent it: the proxy, by default.
            let event = try await op.call("events.get", ["eventId": .string(SpoolDelivery.recordKey("run-1"))])
            #expect(event["source"] == "proxy", "\(event)")
        }
    }

    /// The Swift wrapper's spooled calls are its own: their records say `sdk`, as its holds do.
    @Test func aSpoolSentForTheSwiftWrapper_recordsItsCallsAsSDK() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let credential = SpoolDelivery.credential(ofToken: world.agentToken)
            let spool = try Self.temporarySpool()
            try spool.add(Self.record("sdk-1", credential: credential, session: "mcp-s"))
            let report = try await SpoolDelivery.drain(spool, credential: credential, source: "sdk") { agent }
            #expect(report.delivered == 1)
            let event = try await agent.call("events.get", ["eventId": .string(SpoolDelivery.recordKey("sdk-1"))])
            #expect(event["source"] == "sdk", "\(event)")
        }
    }

    @Test func aCommitWhoseHoldIsGone_isRecordedOnce_andARefusedOneStaysWithItsReason() async throws {
        try await TestServer.with { server in
            let world = try await Fixture.make(on: server)
            let agent = try await server.connect(token: world.agentToken)
            let credential = SpoolDelivery.credential(ofToken: world.agentToken)
            let spool = try Self.temporarySpool()
            // The hold was given back (its session closed, say) before the commit could be delivered.
            let hold = try await agent.authorize(tool: "search", key: "run-1", sessionId: "mcp-c")
            try await agent.release(reservationId: hold.reservationId)
            try spool.add(
                UsageSpool.Entry(
                    kind: .commit, credential: credential, sessionId: "mcp-c", tool: "search", key: "run-1",
                    reservationId: hold.reservationId, usage: ["durationMs": 5, "status": "SUCCESS"]))
            // A session closed meanwhile: its record is charged outside it.
            _ = try await agent.openSession("mcp-d")
            _ = try await agent.closeSession("mcp-d")
            try spool.add(Self.record("run-2", credential: credential, session: "mcp-d"))
            let report = try await SpoolDelivery.drain(spool, credential: credential) { agent }
            let left = try spool.all()
            #expect(report.delivered == 2 && report.refused == 0, "\(report) \(left)")
            let op = try await server.connect(token: world.operatorToken)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 2)
            #expect(try await agent.session("mcp-d").calls == 0)
            // A cap Tollgate will not let the usage through: kept, with the reason, and not sent again.
            _ = try await op.call(
                "caps.set",
                ["scope": "agent", "scopeId": .string(world.agentId), "limit": "0.002", "period": "day"])
            try spool.add(Self.record("run-3", credential: credential, session: "mcp-c"))
            #expect(try await SpoolDelivery.drain(spool, credential: credential) { agent }.refused == 1)
            #expect(try spool.pendingCount() == 0)
            #expect(try spool.all().last?.refused?.hasPrefix("BUDGET_EXCEEDED") == true)
            #expect(try await SpoolDelivery.drain(spool, credential: credential) { agent }.refused == 0)
            #expect(try await op.call("usage.summary")["total"]?["calls"] == 2)
        }
    }

    /// A proxy that ends while its background drain is still sending lets that send finish before it drains the
    /// rest and closes its own session: cut short, the send would leave its key in progress at Tollgate, the
    /// resend would be turned away (`IN_PROGRESS`), and the last session's close would wait for another run.
    @Test func endingWhileTheSpoolIsBeingSent_deliversEverythingNow() async throws {
        let store = GatedStore()
        try await TestServer.with(store: store) { server in
            let world = try await Fixture.make(on: server)
            let spool = try Self.temporarySpool()
            let credential = SpoolDelivery.credential(ofToken: world.agentToken)
            try spool.add(Self.record("run-1", credential: credential, session: "mcp-e"))
            try spool.add(
                UsageSpool.Entry(kind: .close, credential: credential, sessionId: "mcp-e", key: "mcp-e-close"))
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let settlement = Settlement(
                link: TollgateLink(address: server.address, token: world.agentToken), spool: spool,
                token: world.agentToken, retry: RetryPolicy(attempts: 1), logger: logger)
            let started = store.commitsStarted
            store.closeGate()
            settlement.drainSoon()
            while store.commitsStarted == started { try await Task.sleep(for: .milliseconds(5)) }
            // The record is at Tollgate, its answer held back; the proxy's own (never opened) session ends now.
            let ending = Task { await settlement.close(sessionId: "mcp-f") }
            try await Task.sleep(for: .milliseconds(200))
            store.openGate()
            await ending.value
            let left = try spool.all().filter { $0.refused == nil }
            #expect(left.isEmpty, "\(left)")
            let agent = try await server.connect(token: world.agentToken)
            let session = try await agent.session("mcp-e")
            #expect(session.state == "CLOSED" && session.calls == 1)
            await settlement.link.close()
        }
    }

    @Test func whileTollgateCannotBeReached_entriesStay_andDeliveryStopsAtTheFirst() async throws {
        let spool = try Self.temporarySpool()
        try spool.add(Self.record("k1"))
        try spool.add(Self.record("k2"))
        struct Unreachable: Error {}
        let report = try await SpoolDelivery.drain(spool, credential: "c1") { throw Unreachable() }
        #expect(report == SpoolDelivery.Report(delivered: 0, refused: 0, stopped: true))
        #expect(try spool.pending(credential: "c1").map(\.key) == ["k1", "k2"])
    }
}
