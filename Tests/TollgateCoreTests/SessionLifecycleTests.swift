import Foundation
import Testing
import TollgateCore

/// The session state machine, driven by hand-set times.
@Suite struct SessionLifecycleTests {
    let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    let timeouts = SessionTimeouts(idleAfter: 60, sessionTimeout: 3600)

    @Test func createdThenActiveOnTheFirstCall_idleAfterAQuietMinute_activeAgainOnACall() throws {
        var session = SessionLifecycle(openedAt: t0)
        #expect(session.state == .created)
        let changedWhileCreated = session.advance(to: t0.addingTimeInterval(600), timeouts: timeouts)
        #expect(!changedWhileCreated, "CREATED does not go idle")
        try session.recordCall(at: t0.addingTimeInterval(600), timeouts: timeouts)
        #expect(session.state == .active)
        let early = session.advance(to: t0.addingTimeInterval(659.999), timeouts: timeouts)
        #expect(!early)
        let onTime = session.advance(to: t0.addingTimeInterval(660), timeouts: timeouts)
        #expect(onTime)
        #expect(session.state == .idle)
        try session.recordCall(at: t0.addingTimeInterval(700), timeouts: timeouts)
        #expect(session.state == .active)
        #expect(session.lastActivityAt == t0.addingTimeInterval(700))
        #expect(session.nextChange(timeouts: timeouts) == t0.addingTimeInterval(760))
    }

    @Test func closesByTimeoutAtTheMomentItElapsed_notWhenNoticed() throws {
        var session = SessionLifecycle(openedAt: t0)
        try session.recordCall(at: t0.addingTimeInterval(10), timeouts: timeouts)
        session.advance(to: t0.addingTimeInterval(100), timeouts: timeouts)
        #expect(session.state == .idle)
        #expect(session.nextChange(timeouts: timeouts) == t0.addingTimeInterval(3610))
        let late = session.advance(to: t0.addingTimeInterval(99_999), timeouts: timeouts)
        #expect(late)
        #expect(session.state == .closed)
        #expect(session.outcome == .timedOut)
        #expect(session.closedAt == t0.addingTimeInterval(3610))
        #expect(session.nextChange(timeouts: timeouts) == nil)
    }

    @Test func aSessionNeverUsedTimesOutFromItsOpening() {
        var session = SessionLifecycle(openedAt: t0)
        session.advance(to: t0.addingTimeInterval(3600), timeouts: timeouts)
        #expect(session.state == .closed && session.closedAt == t0.addingTimeInterval(3600))
    }

    @Test func aClosedSessionRefusesCallsAndASecondClose() throws {
        var session = SessionLifecycle(openedAt: t0)
        try session.close(at: t0.addingTimeInterval(5), outcome: .completed, timeouts: timeouts)
        #expect(
            session.state == .closed && session.outcome == .completed && session.closedAt == t0.addingTimeInterval(5))
        var copy = session
        #expect(throws: SessionLifecycle.Refusal.closed) {
            try copy.recordCall(at: t0.addingTimeInterval(6), timeouts: timeouts)
        }
        #expect(throws: SessionLifecycle.Refusal.closed) {
            try copy.close(at: t0.addingTimeInterval(6), outcome: .failed, timeouts: timeouts)
        }
        session = copy
        #expect(session.outcome == .completed)
    }

    @Test func aCallAfterTheTimeoutFindsTheSessionClosed() {
        var session = SessionLifecycle(openedAt: t0)
        var refusal: SessionLifecycle.Refusal?
        do { try session.recordCall(at: t0.addingTimeInterval(3600), timeouts: timeouts) } catch { refusal = error }
        #expect(refusal == .closed)
        #expect(session.outcome == .timedOut)
    }

    @Test func rebuiltFromStorage() {
        let open = SessionLifecycle(openedAt: t0, lastActivityAt: t0.addingTimeInterval(5), closedAt: nil, outcome: nil)
        #expect(open.state == .active)
        let fresh = SessionLifecycle(openedAt: t0, lastActivityAt: nil, closedAt: nil, outcome: nil)
        #expect(fresh.state == .created)
        let closed = SessionLifecycle(openedAt: t0, lastActivityAt: nil, closedAt: t0, outcome: .failed)
        #expect(closed.state == .closed)
    }
}
