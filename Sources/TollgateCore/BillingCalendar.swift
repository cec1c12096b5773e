import Foundation

/// When a subscription's billing periods begin and end: every month on an anchor day, every week on an anchor
/// weekday, or every day — each period starting at midnight in the customer's time zone and ending where the next
/// begins, so that consecutive periods cover time without a gap or an overlap.
///
/// A month's anchor day past the month's end falls on its last day (anchor 31: 28 or 29 February, 30 April), and
/// the next period goes back to the anchor day. A midnight that does not exist (a daylight-saving change at
/// midnight) is the first instant of that day instead; a day may thus be 23 or 25 hours long, and so may a period.
/// The default, `monthlyUTC`, is the calendar month in UTC: what every subscription had before periods were its own.
public struct BillingCalendar: Sendable, Hashable, CustomStringConvertible {
    public enum Cadence: Sendable, Hashable {
        /// Day of the month, 1 to 31.
        case month(anchorDay: Int)
        /// ISO weekday: 1 is Monday, 7 is Sunday.
        case week(anchorWeekday: Int)
        case day
    }

    public let cadence: Cadence
    public let timeZone: TimeZone
    /// The zone's name as the customer's record has it (Foundation names UTC "GMT").
    public let timeZoneName: String
    private let calendar: Calendar

    public static let monthlyUTC = BillingCalendar(stored: .month(anchorDay: 1), timeZone: "UTC")

    /// The names of the weekdays, as the wire and storage spell them, Monday first (ISO order).
    public static let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

    public init(cadence: Cadence, timeZone identifier: String) throws(TollgateError) {
        switch cadence {
        case .month(let day) where !(1...31).contains(day):
            throw .validation(field: "period.anchorDay", rule: "a day of the month, 1 to 31")
        case .week(let weekday) where !(1...7).contains(weekday):
            throw .validation(field: "period.anchorWeekday", rule: "a weekday, monday to sunday")
        default: break
        }
        guard let timeZone = TimeZone(identifier: identifier), Self.isZoneName(identifier) else {
            throw .validation(field: "timeZone", rule: "an IANA time zone name, such as Europe/Paris or UTC")
        }
        self.init(validated: cadence, timeZone: timeZone, name: identifier)
    }

    /// A calendar as stored, validated when it was written. A zone the system no longer knows (its time zone
    /// database lost a name) counts as UTC rather than leaving the subscription without periods.
    public init(stored cadence: Cadence, timeZone identifier: String) {
        if let zone = TimeZone(identifier: identifier) {
            self.init(validated: cadence, timeZone: zone, name: identifier)
        } else {
            self.init(validated: cadence, timeZone: TimeZone(identifier: "UTC")!, name: "UTC")
        }
    }

    private init(validated cadence: Cadence, timeZone: TimeZone, name: String) {
        self.cadence = cadence
        self.timeZone = timeZone
        self.timeZoneName = name
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    /// Foundation also accepts abbreviations and offsets ("EST", "GMT+2", "Etc/GMT-3") that name no region's
    /// rules; a customer's time zone is a region's (`Area/Location`), whose daylight-saving changes it follows —
    /// or UTC. (Foundation's list of known names is no guide: it lacks some, such as Asia/Kolkata.)
    private static func isZoneName(_ identifier: String) -> Bool {
        identifier == "UTC" || (identifier.contains("/") && !identifier.hasPrefix("Etc/"))
    }

    // MARK: periods

    /// The period that holds `date`: `start <= date < end`.
    public func period(containing date: Date) -> BillingPeriod {
        let today = localDay(of: date)
        switch cadence {
        case .day:
            return day(containing: date)
        case .week(let anchor):
            // ISO weekday, 1 (Monday) to 7: 1970-01-01 was a Thursday.
            let weekday = ((today.daysSince1970 + 3) % 7 + 7) % 7 + 1
            let start = today - ((weekday - Int64(anchor)) % 7 + 7) % 7
            return BillingPeriod(start: midnight(start), end: midnight(start + 7))
        case .month(let anchor):
            let thisMonth = midnight(anchorDay(anchor, year: today.year, month: today.month))
            if date >= thisMonth {
                let next = Self.month(after: today.year, today.month)
                return BillingPeriod(
                    start: thisMonth, end: midnight(anchorDay(anchor, year: next.year, month: next.month)))
            }
            let previous = Self.month(before: today.year, today.month)
            return BillingPeriod(
                start: midnight(anchorDay(anchor, year: previous.year, month: previous.month)), end: thisMonth)
        }
    }

    /// The local day that holds `date`, from its first instant to the next day's (23 or 25 hours long on the
    /// days the clocks change): the window of `day` caps.
    public func day(containing date: Date) -> BillingPeriod {
        let today = localDay(of: date)
        return BillingPeriod(start: midnight(today), end: midnight(today + 1))
    }

    /// The period after `period` (which must be one of this calendar's).
    public func period(after period: BillingPeriod) -> BillingPeriod { self.period(containing: period.end) }

    /// The periods that overlap `from ..< to`, oldest first; at most `limit` of them.
    public func periods(from: Date, to: Date, limit: Int = 1000) -> [BillingPeriod] {
        guard from < to else { return [] }
        var periods = [period(containing: from)]
        while periods.count < limit, let last = periods.last, last.end < to {
            periods.append(period(after: last))
        }
        return periods
    }

    /// The local date `date` falls on, in this calendar's time zone, as `YYYY-MM-DD`.
    public func localDate(_ date: Date) -> String { localDay(of: date).text }

    public var description: String {
        let zone = timeZoneName
        switch cadence {
        case .month(let day): return "monthly on day \(day) (\(zone))"
        case .week(let weekday): return "weekly on \(Self.weekdays[weekday - 1]) (\(zone))"
        case .day: return "daily (\(zone))"
        }
    }

    // MARK: local days

    /// A date of the proleptic Gregorian calendar, with day arithmetic.
    struct LocalDay: Hashable {
        var year: Int64
        var month: Int64
        var day: Int64

        var daysSince1970: Int64 { Timestamp.days(year: year, month: month, day: day) }

        init(year: Int64, month: Int64, day: Int64) {
            (self.year, self.month, self.day) = (year, month, day)
        }

        init(daysSince1970: Int64) {
            (year, month, day) = Timestamp.civil(daysSince1970: daysSince1970)
        }

        static func + (day: LocalDay, days: Int64) -> LocalDay { LocalDay(daysSince1970: day.daysSince1970 + days) }
        static func - (day: LocalDay, days: Int64) -> LocalDay { day + -days }

        var text: String {
            func pad(_ value: Int64, _ width: Int) -> String {
                String(repeating: "0", count: max(0, width - String(value).count)) + String(value)
            }
            return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
        }
    }

    private func localDay(of date: Date) -> LocalDay {
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return LocalDay(year: Int64(parts.year!), month: Int64(parts.month!), day: Int64(parts.day!))
    }

    /// The first instant of `day` in this time zone: its midnight, or where the day begins when a clock change
    /// skips midnight. Found from the day's noon, which every day has.
    private func midnight(_ day: LocalDay) -> Date {
        let noon = calendar.date(
            from: DateComponents(year: Int(day.year), month: Int(day.month), day: Int(day.day), hour: 12))!
        return calendar.startOfDay(for: noon)
    }

    private func anchorDay(_ anchor: Int, year: Int64, month: Int64) -> LocalDay {
        LocalDay(year: year, month: month, day: min(Int64(anchor), Timestamp.daysIn(month: month, year: year)))
    }

    private static func month(after year: Int64, _ month: Int64) -> (year: Int64, month: Int64) {
        month == 12 ? (year + 1, 1) : (year, month + 1)
    }

    private static func month(before year: Int64, _ month: Int64) -> (year: Int64, month: Int64) {
        month == 1 ? (year - 1, 12) : (year, month - 1)
    }
}

extension BillingCalendar.Cadence {
    /// As stored: `month`, `week` or `day`, and the anchor (a day of the month, an ISO weekday, 0 for days).
    public var stored: (cadence: String, anchor: Int) {
        switch self {
        case .month(let day): ("month", day)
        case .week(let weekday): ("week", weekday)
        case .day: ("day", 0)
        }
    }

    public init?(stored cadence: String, anchor: Int) {
        switch cadence {
        case "month": self = .month(anchorDay: anchor)
        case "week": self = .week(anchorWeekday: anchor)
        case "day": self = .day
        default: return nil
        }
    }
}

/// One billing period: `start <= t < end`.
public struct BillingPeriod: Sendable, Hashable, Comparable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }

    public func contains(_ date: Date) -> Bool { date >= start && date < end }

    public static func < (lhs: BillingPeriod, rhs: BillingPeriod) -> Bool { lhs.start < rhs.start }
}
