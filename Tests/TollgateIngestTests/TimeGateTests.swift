import Foundation
import Testing

@testable import TollgateIngest

/// The timestamp and lateness gates at their edges: a millisecond either side of each bound.
struct TimeGateTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)
    static func at(_ ms: Int64) -> Date { now.addingTimeInterval(Double(ms) / 1000) }

    @Test func theFutureBound_isFiveMinutes_byDefault() {
        let gate = TimestampGate()
        #expect(gate.check(Self.at(300_000), now: Self.now) == nil)
        #expect(gate.check(Self.at(300_001), now: Self.now)?.reason == "TOO_FAR_IN_FUTURE")
        #expect(gate.check(Self.at(300_001), now: Self.now)?.field == "occurredAt")
    }

    @Test func thePastBound_isNinetyDays_byDefault() {
        let gate = TimestampGate()
        let ninetyDays: Int64 = 90 * 86_400_000
        #expect(gate.check(Self.at(-ninetyDays), now: Self.now) == nil)
        #expect(gate.check(Self.at(-ninetyDays - 1), now: Self.now)?.reason == "TOO_OLD")
    }

    @Test func bothBounds_areConfigurable() {
        let gate = TimestampGate(futureToleranceMs: 1_000, maxAgeMs: 60_000)
        #expect(gate.check(Self.at(1_001), now: Self.now)?.reason == "TOO_FAR_IN_FUTURE")
        #expect(gate.check(Self.at(-60_000), now: Self.now) == nil)
        #expect(gate.check(Self.at(-60_001), now: Self.now)?.reason == "TOO_OLD")
    }

    @Test func anEventOlderThanADay_isLate_andOneForAClosedPeriod_isAnAdjustment() {
        let gate = LatenessGate()
        #expect(gate.check(Self.at(-86_400_000), now: Self.now) == .onTime)
        #expect(gate.check(Self.at(-86_400_001), now: Self.now) == .late)
        #expect(gate.check(Self.at(5_000), now: Self.now) == .onTime, "a little ahead is on time")
        // The period closed at `now - 1 h`: an event before it cannot go into it.
        let closed = Self.at(-3_600_000)
        #expect(gate.check(Self.at(-3_600_001), now: Self.now, closedThrough: closed) == .adjustment)
        #expect(gate.check(Self.at(-3_600_000), now: Self.now, closedThrough: closed) == .onTime)
        #expect(LatenessGate(lateAfterMs: 1_000).check(Self.at(-1_001), now: Self.now) == .late)
    }
}
