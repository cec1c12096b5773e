import Foundation
import Testing

@testable import TollgateCore

@Suite struct CapLedgerTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
    let agent = ScopeRef(.agent, "agt_a")
    let team = ScopeRef(.team, "team_t")

    func ledger(limit: String, period: CapPeriod = .lifetime, on target: ScopeRef? = nil) throws -> CapLedger {
        var ledger = CapLedger()
        ledger.setCap(
            Cap(
                id: "cap_1", tenantId: "ten", target: target ?? agent, limit: try Money(decimal: limit),
                period: period, warnAtPercent: nil))
        return ledger
    }

    @Test func credit_holdsNothing_andFreesRoomOnlyOnceCommitted() throws {
        var ledger = try ledger(limit: "1")
        let credit = try Money(decimal: "-0.5")
        #expect(ledger.reserve(try Money(decimal: "0.8"), on: [agent], at: now) == nil)
        #expect(ledger.reserve(credit, on: [agent], at: now) == nil)
        #expect(ledger.held[agent] == (try Money(decimal: "0.8")), "a credit in flight holds nothing")
        // Room appears only when the credit is durable: a 0.5 call is still refused while it is in flight.
        #expect(ledger.reserve(try Money(decimal: "0.5"), on: [agent], at: now) != nil)
        ledger.release(try Money(decimal: "0.8"), on: [agent])
        ledger.commit(credit, on: [agent], at: now)
        #expect(ledger.held[agent] == nil)
        #expect(
            ledger.reserve(try Money(decimal: "1.5"), on: [agent], at: now) == nil, "spend is -0.5 after the credit")
        ledger.release(credit, on: [agent])
    }

    @Test func reserve_withinCap_holdsOnEveryScopeOfThePath() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "0.4"), on: [agent, team], at: now) == nil)
        #expect(ledger.held[agent] == (try Money(decimal: "0.4")))
        #expect(ledger.held[team] == (try Money(decimal: "0.4")))
    }

    @Test func reserve_whenHoldsWouldCrossCap_refusesWithSpentIncludingHolds() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "0.6"), on: [agent], at: now) == nil)
        let refused = ledger.reserve(try Money(decimal: "0.5"), on: [agent], at: now)
        let refusal = try #require(refused)
        #expect(refusal.spent == (try Money(decimal: "0.6")))
        #expect(refusal.requested == (try Money(decimal: "0.5")))
        #expect(refusal.resetsAt == nil)
    }

    @Test func reserve_exactlyToTheLimit_isAllowed() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "1"), on: [agent], at: now) == nil)
        #expect(ledger.reserve(Money(nanos: 1), on: [agent], at: now) != nil)
    }

    @Test func release_givesTheHoldBack() throws {
        var ledger = try ledger(limit: "1")
        let amount = try Money(decimal: "0.7")
        #expect(ledger.reserve(amount, on: [agent], at: now) == nil)
        ledger.release(amount, on: [agent])
        #expect(ledger.held[agent] == nil)
        #expect(ledger.reserve(amount, on: [agent], at: now) == nil)
    }

    @Test func commit_movesHoldIntoSpend() throws {
        var ledger = try ledger(limit: "1")
        let amount = try Money(decimal: "0.7")
        _ = ledger.reserve(amount, on: [agent], at: now)
        ledger.commit(amount, on: [agent], at: now)
        #expect(ledger.held[agent] == nil)
        #expect(ledger.spend[agent]?.lifetime == amount)
        #expect(ledger.reserve(try Money(decimal: "0.31"), on: [agent], at: now) != nil)
    }

    @Test func dayCap_resetsAtMidnightUTC() throws {
        var ledger = try ledger(limit: "1", period: .day)
        _ = ledger.reserve(try Money(decimal: "1"), on: [agent], at: now)
        ledger.commit(try Money(decimal: "1"), on: [agent], at: now)
        let refused = ledger.reserve(Money(nanos: 1), on: [agent], at: now)
        let refusal = try #require(refused)
        #expect(refusal.resetsAt == PeriodCalendar.startOfDay(now).addingTimeInterval(86_400))
        let tomorrow = PeriodCalendar.startOfDay(now).addingTimeInterval(86_400)
        #expect(ledger.reserve(try Money(decimal: "1"), on: [agent], at: tomorrow) == nil)
    }

    @Test func monthCap_countsOnlyTheCurrentMonth() throws {
        var ledger = try ledger(limit: "1", period: .month)
        let lastMonth = PeriodCalendar.startOfMonth(now).addingTimeInterval(-1)
        var seeded = ScopeSpend()
        try seeded.add(try Money(decimal: "0.9"), during: PeriodIndex(lastMonth))
        ledger.load(agent, seeded)
        #expect(ledger.spend[agent]?.lifetime == (try Money(decimal: "0.9")))
        #expect(ledger.remaining(ledger.caps(on: agent)[0], at: now) == (try Money(decimal: "1")))
    }

    @Test func capOnTeam_limitsEveryAgentUnderIt() throws {
        var ledger = try ledger(limit: "1", on: team)
        let other = ScopeRef(.agent, "agt_b")
        #expect(ledger.reserve(try Money(decimal: "0.6"), on: [agent, team], at: now) == nil)
        let refused = ledger.reserve(try Money(decimal: "0.6"), on: [other, team], at: now)
        let refusal = try #require(refused)
        #expect(refusal.cap.target == team)
    }
}

@Suite struct PeriodCalendarTests {
    @Test func monthsAreTheUTCCalendarMonths_acrossYearEndsAndLeapYears() {
        func date(_ text: String) -> Date { Timestamp.parse(text)! }
        // Asked in an order that moves the remembered month back and forth.
        let cases: [(String, String, String, Int64)] = [
            ("2026-11-24T05:00:00.000Z", "2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z", 682),
            ("2026-12-31T23:59:59.999Z", "2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z", 683),
            ("2024-02-29T12:00:00.000Z", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z", 649),
            ("2026-11-30T23:59:59.999Z", "2026-11-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z", 682),
            ("2026-12-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z", 683),
        ]
        for (text, start, next, index) in cases {
            #expect(PeriodCalendar.startOfMonth(date(text)) == date(start), "\(text)")
            #expect(PeriodCalendar.startOfNextMonth(date(text)) == date(next), "\(text)")
            #expect(PeriodCalendar.monthIndex(date(text)) == index, "\(text)")
        }
    }
}
