import Foundation
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateRuntime

/// The tenant's open sessions as a value: lifecycles, calls in flight, timeouts and the order of the list.
@Suite struct SessionTableTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let timeouts = SessionTimeouts(idleAfter: 60, sessionTimeout: 600)

    static func record(_ id: String, openedAt: Date = t0, agent: String = "agt_1") -> SessionRecord {
        SessionRecord(
            tenantId: "ten_1", id: id, agentId: agent, teamId: "team_1", customerId: "cus_1", openedAt: openedAt)
    }

    static func charge(_ session: String, cost: Int64, at: Date) -> ChargeRecord {
        ChargeRecord(
            receiptId: "rcp_\(cost)", tenantId: "ten_1",
            path: ChargePath(
                customerId: "cus_1", teamId: "team_1", agentId: "agt_1", sessionId: session,
                credentialId: "cred_1"),
            subscriptionId: "sub_1", planId: "plan_1", planVersion: 1, tool: "t", quantity: 1,
            cost: Money(nanos: cost), currency: "USD", idempotencyKey: "k\(cost)", at: at)
    }

    @Test func activityMakesASessionActive_andTimePassingMakesItIdleThenClosed() throws {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        let adopted = table.adopt(Self.record("s1"))
        let again = table.adopt(Self.record("s1"))
        #expect(adopted)
        #expect(!again, "held already")
        #expect(table["s1"]?.lifecycle.state == .created)
        try table.activity(in: "s1", at: Self.t0.addingTimeInterval(1))
        #expect(table["s1"]?.lifecycle.state == .active)
        let state = table.advance("s1", to: Self.t0.addingTimeInterval(62))
        #expect(state == .idle)
        table.closeTimedOut(at: Self.t0.addingTimeInterval(599))
        #expect(table.awaitingFinalRecord.isEmpty)
        table.closeTimedOut(at: Self.t0.addingTimeInterval(601))
        #expect(table.awaitingFinalRecord == ["s1"])
        #expect(table.finalRecord("s1")?.outcome == .timedOut)
        // Closed at the moment the timeout elapsed, however late the sweep ran.
        #expect(table.finalRecord("s1")?.closedAt == Self.t0.addingTimeInterval(601))
        #expect(throws: TollgateError.self) { try table.activity(in: "s1", at: Self.t0.addingTimeInterval(602)) }
    }

    @Test func aCallIsNeverStampedBeforeItsSessionOpened() {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        table.adopt(Self.record("s1", openedAt: Self.t0))
        #expect(table.callTime(in: "s1", now: Self.t0.addingTimeInterval(-0.002)) == Self.t0)
        #expect(table.callTime(in: "s1", now: Self.t0.addingTimeInterval(5)) == Self.t0.addingTimeInterval(5))
    }

    @Test func aCloseWaitsForTheCallsInFlight_andTheirChargesAreInTheFinalRecord() throws {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        table.adopt(Self.record("s1"))
        try table.callStarted(in: "s1", at: Self.t0)
        let closed = table.close("s1", at: Self.t0.addingTimeInterval(1), outcome: .completed)
        let closedAgain = table.close("s1", at: Self.t0.addingTimeInterval(2), outcome: .failed)
        #expect(closed)
        #expect(!closedAgain, "closed once")
        let start = table.startFinalizing("s1")
        let second = table.startFinalizing("s1")
        #expect(start == .waitForCalls)
        #expect(second == .nothing, "finalized once at a time")
        _ = table.callEnded(in: "s1", recorded: Self.charge("s1", cost: 7, at: Self.t0))
        let final = try #require(table.finalRecord("s1"))
        #expect(final.totals.calls == 1 && final.totals.cost == Money(nanos: 7))
        #expect(final.outcome == .completed)
        table.finalized(final)
        #expect(table["s1"] == nil && table.count == 0)
    }

    @Test func aFailedFinalWrite_isTriedAgain() {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        table.adopt(Self.record("s1"))
        _ = table.close("s1", at: Self.t0, outcome: .completed)
        let start = table.startFinalizing("s1")
        #expect(start == .ready)
        #expect(table.awaitingFinalRecord.isEmpty)
        table.finalizeFailed("s1")
        #expect(table.awaitingFinalRecord == ["s1"])
        let retry = table.startFinalizing("s1")
        #expect(retry == .ready)
    }

    @Test func theListIsNewestFirst_andSkipsClosedSessions() throws {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 3)
        for n in 0..<3 { table.adopt(Self.record("s\(n)", openedAt: Self.t0.addingTimeInterval(Double(n)))) }
        #expect(table.isFull)
        _ = table.close("s2", at: Self.t0.addingTimeInterval(10), outcome: .completed)
        table.finalized(table.finalRecord("s2")!)
        let newest = table.newest(10, at: Self.t0.addingTimeInterval(11))
        #expect(newest.map(\.record.id) == ["s1", "s0"])
    }

    @Test func newTimeoutsApplyToTheSessionsAlreadyOpen() {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        table.adopt(Self.record("s1"))
        table.configure(SessionTimeouts(idleAfter: 1, sessionTimeout: 2))
        table.closeTimedOut(at: Self.t0.addingTimeInterval(3))
        #expect(table.awaitingFinalRecord == ["s1"])
    }

    @Test func theProjectedCostScalesTheCostSoFarToTheAgentsTypicalLength() throws {
        var table = SessionTable(timeouts: Self.timeouts, openMax: 10)
        var past = Self.record("old", openedAt: Self.t0.addingTimeInterval(-1000))
        past.closedAt = Self.t0.addingTimeInterval(-900)
        table.learn(past)  // 100 s
        table.adopt(Self.record("s1"))
        #expect(table.projectedCost(of: "s1", at: Self.t0.addingTimeInterval(25)) == nil, "no call yet")
        try table.callStarted(in: "s1", at: Self.t0)
        _ = table.callEnded(in: "s1", recorded: Self.charge("s1", cost: 1_000, at: Self.t0))
        // 1000 nanos in 25 s, sessions last 100 s: 4000.
        #expect(table.projectedCost(of: "s1", at: Self.t0.addingTimeInterval(25)) == Money(nanos: 4_000))
    }
}
