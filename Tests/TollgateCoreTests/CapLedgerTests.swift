import Foundation
import Testing

@testable import TollgateCore

@Suite struct CapLedgerTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
    let agent = ScopeRef(.agent, "agt_a")
    let team = ScopeRef(.team, "team_t")

    /// UTC months and days, unless `calendar` says otherwise.
    func windows(_ date: Date, _ calendar: BillingCalendar = .monthlyUTC) -> CapWindows {
        CapWindows(date, calendar: calendar)
    }

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
        #expect(ledger.reserve(try Money(decimal: "0.8"), on: [agent], during: windows(now)) == nil)
        #expect(ledger.reserve(credit, on: [agent], during: windows(now)) == nil)
        #expect(ledger.held[agent] == (try Money(decimal: "0.8")), "a credit in flight holds nothing")
        // Room appears only when the credit is durable: a 0.5 call is still refused while it is in flight.
        #expect(ledger.reserve(try Money(decimal: "0.5"), on: [agent], during: windows(now)) != nil)
        ledger.release(try Money(decimal: "0.8"), on: [agent])
        ledger.commit(credit, on: [agent], during: windows(now))
        #expect(ledger.held[agent] == nil)
        #expect(
            ledger.reserve(try Money(decimal: "1.5"), on: [agent], during: windows(now)) == nil,
            "spend is -0.5 after the credit")
        ledger.release(credit, on: [agent])
    }

    @Test func reserve_withinCap_holdsOnEveryScopeOfThePath() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "0.4"), on: [agent, team], during: windows(now)) == nil)
        #expect(ledger.held[agent] == (try Money(decimal: "0.4")))
        #expect(ledger.held[team] == (try Money(decimal: "0.4")))
    }

    @Test func reserve_whenHoldsWouldCrossCap_refusesWithSpentIncludingHolds() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "0.6"), on: [agent], during: windows(now)) == nil)
        let refused = ledger.reserve(try Money(decimal: "0.5"), on: [agent], during: windows(now))
        let refusal = try #require(refused)
        #expect(refusal.spent == (try Money(decimal: "0.6")))
        #expect(refusal.requested == (try Money(decimal: "0.5")))
        #expect(refusal.resetsAt == nil)
    }

    @Test func reserve_exactlyToTheLimit_isAllowed() throws {
        var ledger = try ledger(limit: "1")
        #expect(ledger.reserve(try Money(decimal: "1"), on: [agent], during: windows(now)) == nil)
        #expect(ledger.reserve(Money(nanos: 1), on: [agent], during: windows(now)) != nil)
    }

    @Test func release_givesTheHoldBack() throws {
        var ledger = try ledger(limit: "1")
        let amount = try Money(decimal: "0.7")
        #expect(ledger.reserve(amount, on: [agent], during: windows(now)) == nil)
        ledger.release(amount, on: [agent])
        #expect(ledger.held[agent] == nil)
        #expect(ledger.reserve(amount, on: [agent], during: windows(now)) == nil)
    }

    @Test func commit_movesHoldIntoSpend() throws {
        var ledger = try ledger(limit: "1")
        let amount = try Money(decimal: "0.7")
        _ = ledger.reserve(amount, on: [agent], during: windows(now))
        ledger.commit(amount, on: [agent], during: windows(now))
        #expect(ledger.held[agent] == nil)
        #expect(ledger.spend[agent]?.lifetime == amount)
        #expect(ledger.reserve(try Money(decimal: "0.31"), on: [agent], during: windows(now)) != nil)
    }

    @Test func dayCap_resetsAtMidnightUTC() throws {
        var ledger = try ledger(limit: "1", period: .day)
        _ = ledger.reserve(try Money(decimal: "1"), on: [agent], during: windows(now))
        ledger.commit(try Money(decimal: "1"), on: [agent], during: windows(now))
        let refused = ledger.reserve(Money(nanos: 1), on: [agent], during: windows(now))
        let refusal = try #require(refused)
        let tomorrow = Timestamp.parse("2026-11-19T00:00:00Z")!
        #expect(refusal.resetsAt == tomorrow)
        #expect(ledger.reserve(try Money(decimal: "1"), on: [agent], during: windows(tomorrow)) == nil)
    }

    /// A customer in Los Angeles: its day ends at 08:00 UTC in November, and its month (anchored on the 18th) at
    /// its midnight starting the 18th.
    @Test func dayAndMonthCaps_countInTheCustomersWindows() throws {
        let losAngeles = try BillingCalendar(cadence: .month(anchorDay: 18), timeZone: "America/Los_Angeles")
        let before = Timestamp.parse("2026-11-18T07:59:59.999Z")!  // 23:59:59.999 on the 17th there
        let after = Timestamp.parse("2026-11-18T08:00:00Z")!
        var ledger = try ledger(limit: "1", period: .day)
        ledger.setCap(
            Cap(
                id: "cap_m", tenantId: "ten", target: team, limit: try Money(decimal: "1"), period: .month,
                warnAtPercent: nil))
        _ = ledger.reserve(try Money(decimal: "1"), on: [agent, team], during: windows(before, losAngeles))
        ledger.commit(try Money(decimal: "1"), on: [agent, team], during: windows(before, losAngeles))
        let refused = ledger.reserve(Money(nanos: 1), on: [agent, team], during: windows(before, losAngeles))
        let refusal = try #require(refused)
        #expect(refusal.cap.period == .day && refusal.resetsAt == after)
        // Both windows turn over at the customer's midnight on the 18th, with the UTC day still the 18th.
        #expect(ledger.used(ledger.caps(on: team)[0], on: [team], during: windows(after, losAngeles)) == .zero)
        #expect(ledger.reserve(try Money(decimal: "1"), on: [agent, team], during: windows(after, losAngeles)) == nil)
    }

    @Test func monthCap_countsOnlyTheCurrentMonth() throws {
        var ledger = try ledger(limit: "1", period: .month)
        let lastMonth = Timestamp.parse("2026-10-31T23:59:59Z")!
        var seeded = ScopeSpend()
        try seeded.add(try Money(decimal: "0.9"), during: windows(lastMonth))
        ledger.load(agent, seeded)
        #expect(ledger.spend[agent]?.lifetime == (try Money(decimal: "0.9")))
        #expect(
            ledger.remaining(ledger.caps(on: agent)[0], on: [agent], during: windows(now)) == (try Money(decimal: "1")))
    }

    @Test func capOnTeam_limitsEveryAgentUnderIt() throws {
        var ledger = try ledger(limit: "1", on: team)
        let other = ScopeRef(.agent, "agt_b")
        #expect(ledger.reserve(try Money(decimal: "0.6"), on: [agent, team], during: windows(now)) == nil)
        let refused = ledger.reserve(try Money(decimal: "0.6"), on: [other, team], during: windows(now))
        let refusal = try #require(refused)
        #expect(refusal.cap.target == team)
    }

    /// A delegated credential's path reaches every credential above it: a child's hold, commit and release count on
    /// its parent and grandparent, so two children together are refused at the parent's limit; loaded spend rolls up.
    @Test func delegatedCredentials_countOnEveryCredentialAboveThem() throws {
        let (parent, child, sibling, grandchild) = (
            ScopeRef(.credential, "cred_p"), ScopeRef(.credential, "cred_c"), ScopeRef(.credential, "cred_s"),
            ScopeRef(.credential, "cred_g")
        )
        var ledger = try ledger(limit: "1", on: parent)
        ledger.delegate("cred_c", from: "cred_p")
        ledger.delegate("cred_s", from: "cred_p")
        ledger.delegate("cred_g", from: "cred_c")
        #expect(ledger.expanded([child, agent]) == [child, parent, agent])
        #expect(ledger.expanded([grandchild]) == [grandchild, child, parent])
        #expect(ledger.expanded([agent]) == [agent])
        #expect(ledger.caps(on: [grandchild]).map(\.id) == ["cap_1"], "the parent's cap applies to the grandchild")

        #expect(ledger.reserve(try Money(decimal: "0.6"), on: [child, agent], during: windows(now)) == nil)
        #expect(ledger.held[parent] == (try Money(decimal: "0.6")))
        let refused = ledger.reserve(try Money(decimal: "0.5"), on: [sibling, agent], during: windows(now))
        #expect(refused?.cap.target == parent)
        #expect(refused?.spent == (try Money(decimal: "0.6")))
        #expect(ledger.held[sibling] == nil, "a refusal holds nothing")
        ledger.commit(try Money(decimal: "0.6"), on: [child, agent], during: windows(now))
        #expect(ledger.held[parent] == nil)
        #expect(ledger.spend[parent]?.lifetime == (try Money(decimal: "0.6")))
        #expect(ledger.reserve(try Money(decimal: "0.4"), on: [grandchild], during: windows(now)) == nil)
        ledger.release(try Money(decimal: "0.4"), on: [grandchild])
        #expect(ledger.held[parent] == nil && ledger.held[child] == nil)

        // Spend loaded at start-up: each credential's own row, then the children's rolled up.
        var loaded = CapLedger()
        loaded.delegate("cred_c", from: "cred_p")
        loaded.delegate("cred_g", from: "cred_c")
        loaded.load(parent, ScopeSpend(lifetime: try Money(decimal: "0.1")))
        loaded.load(grandchild, ScopeSpend(lifetime: try Money(decimal: "0.2")))
        loaded.loadDelegated(try Money(decimal: "0.2"), of: "cred_g")
        #expect(loaded.spend[parent]?.lifetime == (try Money(decimal: "0.3")))
        #expect(loaded.spend[child]?.lifetime == (try Money(decimal: "0.2")))
    }
}

@Suite struct ScopeSpendTests {
    let calendar = BillingCalendar.monthlyUTC
    func at(_ text: String) -> CapWindows { CapWindows(Timestamp.parse(text)!, calendar: calendar) }

    /// A commit stamped before the turn of a day that arrives after a later one: counted in its month (the same
    /// one) and its lifetime, never in the new day.
    @Test func aLateCommitFromAnEarlierWindow_countsInItsLifetimeOnly() throws {
        var spend = ScopeSpend()
        try spend.add(try Money(decimal: "2"), during: at("2026-11-19T00:00:01Z"))
        try spend.add(try Money(decimal: "1"), during: at("2026-11-18T23:59:59Z"))
        #expect(spend.lifetime == (try Money(decimal: "3")))
        #expect(spend.spent(in: .day, during: at("2026-11-19T12:00:00Z")) == (try Money(decimal: "2")))
        #expect(spend.spent(in: .day, during: at("2026-11-20T00:00:00Z")) == .zero)
        #expect(spend.spent(in: .month, during: at("2026-11-30T23:00:00Z")) == (try Money(decimal: "3")))
        // One from the month before that arrives now: its lifetime only.
        try spend.add(try Money(decimal: "4"), during: at("2026-10-31T23:59:59Z"))
        #expect(spend.spent(in: .month, during: at("2026-11-30T23:00:00Z")) == (try Money(decimal: "3")))
        #expect(spend.lifetime == (try Money(decimal: "7")))
    }

    /// A customer whose calendar changes (a new subscription, monthly from the 1st to daily): the new calendar's
    /// window counts from the change on — it is not ignored for ending before the old one.
    @Test func aCalendarChange_startsTheLaterWindow() throws {
        var spend = ScopeSpend()
        let monthly = at("2026-11-10T00:00:00Z")
        try spend.add(try Money(decimal: "5"), during: monthly)
        let daily = try BillingCalendar(cadence: .day, timeZone: "UTC")
        let dayWindows = CapWindows(Timestamp.parse("2026-11-10T01:00:00Z")!, calendar: daily)
        // The day is the same UTC day under both calendars; the billing period is now the day.
        try spend.add(try Money(decimal: "1"), during: dayWindows)
        #expect(spend.spent(in: .day, during: dayWindows) == (try Money(decimal: "6")))
        #expect(spend.spent(in: .month, during: dayWindows) == (try Money(decimal: "1")))
        #expect(spend.spent(in: .month, during: monthly) == .zero, "the old calendar's month is no longer counted")
        #expect(spend.lifetime == (try Money(decimal: "6")))
    }
}

@Suite struct CapWindowsTests {
    /// Paris changes its clocks on 29 March 2026: that local day is 23 hours long, and a billing month anchored on
    /// the 31st ends at the last day of shorter months.
    @Test func windowsFollowTheCustomersDaysAndAnchor_acrossDSTAndShortMonths() throws {
        let paris = try BillingCalendar(cadence: .month(anchorDay: 31), timeZone: "Europe/Paris")
        let dst = CapWindows(Timestamp.parse("2026-03-29T12:00:00Z")!, calendar: paris)
        #expect(dst.day.start == Timestamp.parse("2026-03-28T23:00:00Z")!)
        #expect(dst.day.end == Timestamp.parse("2026-03-29T22:00:00Z")!)
        #expect(dst.month.start == Timestamp.parse("2026-02-27T23:00:00Z")!)  // 28 February, midnight in Paris
        #expect(dst.month.end == Timestamp.parse("2026-03-30T22:00:00Z")!)  // 31 March, midnight in Paris
        #expect(dst.contain(Timestamp.parse("2026-03-29T21:59:59Z")!))
        #expect(!dst.contain(Timestamp.parse("2026-03-29T22:00:00Z")!))
        let utc = CapWindows(Timestamp.parse("2024-02-29T12:00:00Z")!, calendar: .monthlyUTC)
        #expect(utc.month.start == Timestamp.parse("2024-02-01T00:00:00Z")!)
        #expect(utc.month.end == Timestamp.parse("2024-03-01T00:00:00Z")!)
        #expect(utc.day.end == Timestamp.parse("2024-03-01T00:00:00Z")!)
    }
}
