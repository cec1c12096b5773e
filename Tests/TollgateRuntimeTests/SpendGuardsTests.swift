import Foundation
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateRuntime

/// The velocity alert and the margin guard as a value: what a call is refused with, and what it raises.
@Suite struct SpendGuardsTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let path = ChargePath(
        customerId: "cus_1", teamId: "team_1", agentId: "agt_1", sessionId: "ses_1", credentialId: "cred_1")

    static func charge(at date: Date, cost: Int64 = 100, providerCost: Int64 = 0) -> ChargeRecord {
        ChargeRecord(
            receiptId: "rcp", tenantId: "ten_1", path: path, subscriptionId: "sub_1", planId: "plan_1", planVersion: 1,
            tool: "t", quantity: 1, cost: Money(nanos: cost), providerCost: Money(nanos: providerCost),
            currency: "USD", idempotencyKey: "k", at: date)
    }

    /// The UTC month holding `date`: a customer billed monthly from the 1st, in UTC.
    static func month(_ date: Date) -> BillingPeriod { BillingCalendar.monthlyUTC.period(containing: date) }

    static func totals(cost: Int64, providerCost: Int64) -> SessionTotals {
        var totals = SessionTotals()
        totals.cost = Money(nanos: cost)
        totals.providerCost = Money(nanos: providerCost)
        return totals
    }

    @Test func aSessionAtL2IsThrottled_andAtL3Blocked() throws {
        var guards = SpendGuards(limits: GuardLimits(marginThrottleMs: 1000))
        // Provider cost 130 % of revenue: L2 (above 125 %). One call per second passes.
        let l2 = Self.totals(cost: 100, providerCost: 130)
        try guards.admit(Self.path, session: l2, month: Self.month(Self.t0), at: Self.t0)
        #expect(throws: TollgateError.rateLimited(retryAfterMs: 500)) {
            try guards.admit(Self.path, session: l2, month: Self.month(Self.t0), at: Self.t0.addingTimeInterval(0.5))
        }
        try guards.admit(Self.path, session: l2, month: Self.month(Self.t0), at: Self.t0.addingTimeInterval(1))
        // 160 %: L3, blocked.
        #expect(throws: TollgateError.self) {
            try guards.admit(
                Self.path, session: Self.totals(cost: 100, providerCost: 160), month: Self.month(Self.t0),
                at: Self.t0.addingTimeInterval(5))
        }
    }

    @Test func aCustomersMonthIsLoadedOnce_andItsMarginGatesItsCalls() throws {
        var guards = SpendGuards(limits: GuardLimits())
        let month = Self.month(Self.t0)
        #expect(guards.needsMargin("cus_1", in: month))
        guards.loadMargin("cus_1", in: month, revenue: Money(nanos: 100), providerCost: Money(nanos: 200))
        #expect(!guards.needsMargin("cus_1", in: month))
        #expect(throws: TollgateError.self) { try guards.admit(Self.path, session: nil, month: month, at: Self.t0) }
        // A new month starts from nothing.
        #expect(guards.needsMargin("cus_1", in: Self.month(Self.t0.addingTimeInterval(40 * 86_400))))
    }

    @Test func marginAlertsFireOncePerLevel() {
        var guards = SpendGuards(limits: GuardLimits())
        var marks = AlertMarks()
        let high = Self.totals(cost: 100, providerCost: 110)
        let first = guards.recorded(
            Self.charge(at: Self.t0, providerCost: 110), session: high, month: Self.month(Self.t0), marks: &marks)
        #expect(first.filter { $0.kind == .marginGuard }.count == 2, "customer and session, L1")
        let second = guards.recorded(Self.charge(at: Self.t0), session: high, month: Self.month(Self.t0), marks: &marks)
        #expect(second.filter { $0.kind == .marginGuard }.isEmpty)
    }

    @Test func velocityFiresWhenAMinuteIsManyTimesTheUsualRate_oncePerCrossing() {
        var guards = SpendGuards(
            limits: GuardLimits(velocityFactor: 3, velocityWindowMinutes: 10, velocityMinCallsPerMinute: 5))
        var marks = AlertMarks()
        var velocity: [Alert] = []
        // One call a minute for ten minutes, then a burst of 20 in one minute.
        for minute in 0..<10 {
            velocity += guards.recorded(
                Self.charge(at: Self.t0.addingTimeInterval(Double(minute * 60))), session: nil,
                month: Self.month(Self.t0), marks: &marks)
        }
        for call in 0..<20 {
            velocity += guards.recorded(
                Self.charge(at: Self.t0.addingTimeInterval(600 + Double(call))), session: nil,
                month: Self.month(Self.t0), marks: &marks)
        }
        let fired = velocity.filter { $0.kind == .velocity }
        #expect(fired.count == 1)
        guard case .velocity(let crossing)? = fired.first else { return }
        #expect(crossing.callsThisMinute == 5)
        #expect(crossing.averagePerMinute == 1)
    }
}
