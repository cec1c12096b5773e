import Foundation
import Testing

@testable import TollgateCore

@Suite struct BillingCalendarTests {
    func at(_ text: String) -> Date { Timestamp.parse(text)! }

    func calendar(_ cadence: BillingCalendar.Cadence, _ zone: String = "UTC") -> BillingCalendar {
        try! BillingCalendar(cadence: cadence, timeZone: zone)
    }

    /// The default is what periods were before they were a subscription's own: UTC calendar months.
    @Test func theDefaultIsTheUTCCalendarMonth() {
        for (text, start, end) in [
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
            ("2026-02-28T23:59:59.999Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
            ("2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"),
            ("1999-12-31T23:00:00Z", "1999-12-01T00:00:00Z", "2000-01-01T00:00:00Z"),
        ] {
            let period = BillingCalendar.monthlyUTC.period(containing: at(text))
            #expect(period == BillingPeriod(start: at(start), end: at(end)), "\(text)")
        }
    }

    /// An anchor past a month's end falls on its last day, and the next period goes back to the anchor.
    @Test func anAnchorPastTheMonthsEndFallsOnItsLastDay() {
        let periods = calendar(.month(anchorDay: 31)).periods(
            from: at("2027-12-31T00:00:00Z"), to: at("2028-06-01T00:00:00Z"))
        #expect(
            periods.map { Timestamp.format($0.start) } == [
                "2027-12-31T00:00:00.000Z", "2028-01-31T00:00:00.000Z", "2028-02-29T00:00:00.000Z",
                "2028-03-31T00:00:00.000Z", "2028-04-30T00:00:00.000Z", "2028-05-31T00:00:00.000Z",
            ])
        // Not a leap year: 28 February.
        let february = calendar(.month(anchorDay: 30)).period(containing: at("2026-03-01T00:00:00Z"))
        #expect(Timestamp.format(february.start) == "2026-02-28T00:00:00.000Z")
        #expect(Timestamp.format(february.end) == "2026-03-30T00:00:00.000Z")
        // 1900 was not a leap year, 2000 was.
        #expect(
            Timestamp.format(calendar(.month(anchorDay: 29)).period(containing: at("1900-03-01T00:00:00Z")).start)
                == "1900-02-28T00:00:00.000Z")
        #expect(
            Timestamp.format(calendar(.month(anchorDay: 29)).period(containing: at("2000-03-01T00:00:00Z")).start)
                == "2000-02-29T00:00:00.000Z")
    }

    /// A period starts at midnight where the customer is: an instant before that midnight belongs to the period
    /// before, however early it is in UTC.
    @Test func aPeriodStartsAtTheCustomersMidnight() {
        let paris = calendar(.month(anchorDay: 15), "Europe/Paris")
        let period = paris.period(containing: at("2026-03-14T23:30:00Z"))  // 00:30 on the 15th in Paris (UTC+1)
        #expect(period.start == at("2026-03-14T23:00:00Z"))
        #expect(period.end == at("2026-04-14T22:00:00Z"))  // summer time by April: UTC+2
        #expect(paris.period(containing: at("2026-03-14T22:59:59.999Z")).end == period.start)
        #expect(paris.localDate(at("2026-03-14T23:30:00Z")) == "2026-03-15")
        // West of UTC, the other way round: 23:30 on the 14th in Los Angeles is already the 15th in UTC.
        let losAngeles = calendar(.month(anchorDay: 15), "America/Los_Angeles")
        #expect(losAngeles.period(containing: at("2026-03-15T06:30:00Z")).end == at("2026-03-15T07:00:00Z"))
    }

    /// Daylight saving: the day the clocks go forward is 23 hours long, the day they go back 25; a week or a
    /// month holding either is an hour shorter or longer.
    @Test func daylightSavingMakesDaysOf23And25Hours() {
        let newYork = calendar(.day, "America/New_York")
        let spring = newYork.period(containing: at("2026-03-08T12:00:00Z"))
        #expect(spring.end.timeIntervalSince(spring.start) == 23 * 3600)
        let autumn = newYork.period(containing: at("2026-11-01T12:00:00Z"))
        #expect(autumn.end.timeIntervalSince(autumn.start) == 25 * 3600)
        let march = calendar(.month(anchorDay: 1), "America/New_York").period(containing: at("2026-03-20T00:00:00Z"))
        #expect(march.end.timeIntervalSince(march.start) == (31 * 24 - 1) * 3600)
    }

    /// Where a clock change skips midnight itself (São Paulo, 4 November 2018: 00:00 became 01:00), the day starts
    /// at its first instant.
    @Test func aDayWhoseMidnightDoesNotExistStartsAtItsFirstInstant() {
        let saoPaulo = calendar(.day, "America/Sao_Paulo")
        let day = saoPaulo.period(containing: at("2018-11-04T15:00:00Z"))
        #expect(day.start == at("2018-11-04T03:00:00Z"))  // 01:00 local, UTC−2
        #expect(day.end == at("2018-11-05T02:00:00Z"))
        #expect(saoPaulo.period(containing: at("2018-11-04T02:59:59Z")).end == day.start)
    }

    @Test func weeksStartOnTheirAnchorWeekday() {
        // 1 December 2026 is a Tuesday.
        let mondays = calendar(.week(anchorWeekday: 1))
        #expect(mondays.period(containing: at("2026-12-01T10:00:00Z")).start == at("2026-11-30T00:00:00Z"))
        #expect(mondays.period(containing: at("2026-11-30T00:00:00Z")).start == at("2026-11-30T00:00:00Z"))
        #expect(mondays.period(containing: at("2026-11-29T23:59:59Z")).start == at("2026-11-23T00:00:00Z"))
        let sundays = calendar(.week(anchorWeekday: 7), "Asia/Tokyo")
        let week = sundays.period(containing: at("2026-12-01T10:00:00Z"))
        #expect(week.start == at("2026-11-28T15:00:00Z"))  // Sunday 29 November, 00:00 in Tokyo (UTC+9)
        #expect(week.end.timeIntervalSince(week.start) == 7 * 86_400)
        #expect(sundays.description == "weekly on sunday (Asia/Tokyo)")
    }

    /// Whatever the calendar, its periods tile time: each ends where the next starts, holds its start and not its
    /// end, and every instant falls in exactly the period `period(containing:)` names.
    @Test func periodsTileTimeWithoutGapsOrOverlaps() {
        var generator = SplitMix64(seed: 7)
        let zones = [
            "UTC", "Europe/Paris", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata",
        ]
        let cadences: [BillingCalendar.Cadence] = [
            .day, .week(anchorWeekday: 3), .month(anchorDay: 1), .month(anchorDay: 29), .month(anchorDay: 31),
        ]
        for zone in zones {
            for cadence in cadences {
                let calendar = calendar(cadence, zone)
                let periods = calendar.periods(from: at("2015-01-01T00:00:00Z"), to: at("2021-01-01T00:00:00Z"))
                for (period, next) in zip(periods, periods.dropFirst()) {
                    #expect(period.end == next.start && period.start < period.end, "\(calendar)")
                }
                for period in periods.prefix(200) {
                    #expect(calendar.period(containing: period.start) == period, "\(calendar) \(period)")
                    #expect(calendar.period(containing: period.end.addingTimeInterval(-0.001)) == period)
                }
                for _ in 0..<200 {
                    let instant = Date(
                        timeIntervalSince1970: Double(
                            Int64.random(in: 1_420_070_400...1_609_459_199, using: &generator)))
                    let period = calendar.period(containing: instant)
                    #expect(period.contains(instant), "\(calendar) \(instant)")
                }
            }
        }
    }

    @Test func anAnchorOrZoneOutOfRangeIsRefusedNamingItsField() {
        func field(_ cadence: BillingCalendar.Cadence, _ zone: String = "UTC") -> String? {
            do {
                _ = try BillingCalendar(cadence: cadence, timeZone: zone)
                return nil
            } catch {
                guard case .validation(let field, _) = error else { return "\(error)" }
                return field
            }
        }
        #expect(field(.month(anchorDay: 0)) == "period.anchorDay")
        #expect(field(.month(anchorDay: 32)) == "period.anchorDay")
        #expect(field(.week(anchorWeekday: 8)) == "period.anchorWeekday")
        #expect(field(.day, "Mars/Olympus_Mons") == "timeZone")
        #expect(field(.day, "GMT+2") == "timeZone")
        #expect(field(.day, "EST") == "timeZone")
        #expect(field(.day, "Etc/GMT-3") == "timeZone")
        #expect(field(.day, "") == "timeZone")
        #expect(field(.month(anchorDay: 31), "Pacific/Chatham") == nil)
    }
}
