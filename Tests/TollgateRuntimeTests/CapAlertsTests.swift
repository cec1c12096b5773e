import Foundation
import Testing
import TollgateCore
import TollgateStorage

@testable import TollgateRuntime

/// `cap_warning` and `cap_reached` as a value: each fires once per crossing of a cap in its period.
@Suite struct CapAlertsTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)
    static let path = ChargePath(
        customerId: "cus_1", teamId: "team_1", agentId: "agt_1", sessionId: "ses_1", credentialId: "cred_1")

    static func ledger(limit: Int64, warnAt: Int?) -> CapLedger {
        var ledger = CapLedger()
        ledger.setCap(
            Cap(
                id: "cap_1", tenantId: "ten_1", target: ScopeRef(.agent, "agt_1"), limit: Money(nanos: limit),
                period: .day, warnAtPercent: warnAt))
        return ledger
    }

    static func windows(_ date: Date) -> CapWindows { CapWindows(date, calendar: .monthlyUTC) }

    /// Reserves and commits `cost` at `date`, returning the alerts it raised.
    static func spend(_ cost: Int64, at date: Date, _ ledger: inout CapLedger, _ marks: inout AlertMarks) -> [Alert] {
        let scopes = path.scopes
        #expect(ledger.reserve(Money(nanos: cost), on: scopes, during: windows(date)) == nil)
        ledger.commit(Money(nanos: cost), on: scopes, during: windows(date))
        return CapAlerts.recorded(
            Money(nanos: cost), path: path, scopes: scopes, during: windows(date), ledger: ledger, marks: &marks)
    }

    @Test func aWarningFiresOnceWhenSpendCrossesItsPercent_andReachedWhenItHitsTheLimit() {
        var ledger = Self.ledger(limit: 100, warnAt: 80)
        var marks = AlertMarks()
        let kinds = [70, 10, 10, 10].map { Self.spend($0, at: Self.t0, &ledger, &marks).map(\.kind) }
        // 80 % warns once; the limit is reached once.
        #expect(kinds == [[], [.capWarning], [], [.capReached]])
    }

    @Test func aNewDayIsANewCrossing_andSoIsACapSetAnew() throws {
        var ledger = Self.ledger(limit: 100, warnAt: 50)
        var marks = AlertMarks()
        let today = Self.spend(60, at: Self.t0, &ledger, &marks).map(\.kind)
        let tomorrow = Self.spend(60, at: Self.t0.addingTimeInterval(86_400), &ledger, &marks).map(\.kind)
        #expect(today == [.capWarning])
        #expect(tomorrow == [.capWarning])
        marks.clear(capId: "cap_1")
        let day2 = Self.t0.addingTimeInterval(86_400)
        let refused = ledger.reserve(Money(nanos: 50), on: Self.path.scopes, during: Self.windows(day2))
        let refusal = try #require(refused)
        let first = CapAlerts.refused(refusal, path: Self.path, during: Self.windows(day2), marks: &marks)
        let second = CapAlerts.refused(refusal, path: Self.path, during: Self.windows(day2), marks: &marks)
        #expect(first?.kind == .capReached)
        #expect(second == nil)
    }
}
